//go:build integration

package meshtest

import (
	"context"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	"github.com/linkerd-go/linkerd-go/api/mesh"
	"github.com/linkerd-go/linkerd-go/tools/suites/meshlab"
)

// policyWait bounds how long a policy change may take to reach the
// proxies; it only turns a hang into a failure.
const policyWait = time.Minute

// TestInboundPolicy: real proxies, a real destination serving the policy
// API from a real API server. web's port goes behind a Server whose
// AuthorizationPolicy names one identity: while that is not the client's,
// the client's requests get 403 from web's proxy (and the unmeshed bare
// namespace's too); once it is, they are served. Each change reaches the
// running proxies; nothing restarts.
func TestInboundPolicy(t *testing.T) {
	m := startMesh(t)
	dyn, err := dynamic.NewForConfig(m.Env.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	clientURL := fmt.Sprintf("http://%s:%d/", meshlab.WebClusterIP, meshlab.WebPort)
	podURL := fmt.Sprintf("http://%s:%d/", m.Net.IP(meshlab.WebHosts[0]), meshlab.AppPort)
	clientCalls := func() clientResult {
		var res clientResult
		runApp(t, m.ClientNS, false, []string{helperEnv + "=client", urlEnv + "=" + clientURL, argEnv + "=1"}, &res)
		return res
	}
	bareCalls := func() clientResult {
		var res clientResult
		runApp(t, m.BareNS, false, []string{helperEnv + "=client", urlEnv + "=" + podURL, argEnv + "=1"}, &res)
		return res
	}
	// until runs calls until every request got status.
	until := func(what string, calls func() clientResult, status int) time.Duration {
		t.Helper()
		start := time.Now()
		for {
			res := calls()
			if res.Statuses[status] == res.Requests && len(res.Errors) == 0 {
				return time.Since(start)
			}
			if time.Since(start) > policyWait {
				t.Fatalf("%s: not every request got %d after %s: %+v", what, status, policyWait, res)
			}
		}
	}
	until("without policy, the client", clientCalls, 200)
	until("without policy, the unmeshed namespace", bareCalls, 200)

	apply(t, ctx, dyn, "servers", "v1beta3", "Server", "web-http", map[string]any{
		"podSelector": map[string]any{"matchLabels": map[string]any{"app": "web"}},
		"port":        "http",
	})
	apply(t, ctx, dyn, "meshtlsauthentications", "v1alpha1", "MeshTLSAuthentication", "web-callers", map[string]any{
		"identities": []any{meshlab.IdentityName("someone-else", meshlab.AppNS)},
	})
	apply(t, ctx, dyn, "authorizationpolicies", "v1alpha1", "AuthorizationPolicy", "web-callers", map[string]any{
		"targetRef":                  map[string]any{"group": "policy.linkerd.io", "kind": "Server", "name": "web-http"},
		"requiredAuthenticationRefs": []any{map[string]any{"group": "policy.linkerd.io", "kind": "MeshTLSAuthentication", "name": "web-callers"}},
	})
	t.Logf("Server applied → the client refused after %s", until("another identity authorized, the client", clientCalls, 403))
	until("another identity authorized, the unmeshed namespace", bareCalls, 403)

	apply(t, ctx, dyn, "meshtlsauthentications", "v1alpha1", "MeshTLSAuthentication", "web-callers", map[string]any{
		"identities": []any{meshlab.IdentityName("client", meshlab.AppNS)},
	})
	t.Logf("MeshTLSAuthentication changed → the client served after %s", until("the client authorized, the client", clientCalls, 200))
	until("the client authorized, the unmeshed namespace", bareCalls, 403)

	server, err := scrape(fmt.Sprintf("http://%s:%d/metrics", m.Net.IP(meshlab.WebHosts[0]), mesh.AdminPort))
	if err != nil {
		t.Fatal(err)
	}
	allowed, _ := sum(server, "inbound_http_authz_allow_total", map[string]string{"srv_kind": "Server", "srv_name": "web-http", "authz_kind": "AuthorizationPolicy", "authz_name": "web-callers"})
	denied, _ := sum(server, "inbound_http_authz_deny_total", map[string]string{"srv_kind": "Server", "srv_name": "web-http"})
	if allowed == 0 || denied == 0 {
		t.Errorf("web-0's proxy counted %v allowed and %v denied requests under web-http; want both:\n%s\n%s", allowed, denied,
			named(server, "inbound_http_authz_allow_total"), named(server, "inbound_http_authz_deny_total"))
	}
}

func apply(t *testing.T, ctx context.Context, dyn dynamic.Interface, resource, version, kind, name string, spec map[string]any) {
	t.Helper()
	o := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "policy.linkerd.io/" + version,
		"kind":       kind,
		"metadata":   map[string]any{"name": name, "namespace": meshlab.AppNS},
		"spec":       spec,
	}}
	data, err := o.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	force := true
	gvr := schema.GroupVersionResource{Group: "policy.linkerd.io", Version: version, Resource: resource}
	if _, err := dyn.Resource(gvr).Namespace(meshlab.AppNS).Patch(ctx, name, types.ApplyPatchType, data, metav1.PatchOptions{FieldManager: "meshtest", Force: &force}); err != nil {
		t.Fatalf("applying %s %s: %v", kind, name, err)
	}
}
