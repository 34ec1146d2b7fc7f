//go:build integration

package meshtest

import (
	"context"
	"fmt"
	"testing"
	"time"

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

	apply(t, ctx, dyn,
		meshlab.PolicyObject{Kind: "Server", Name: "web-http", Spec: map[string]any{
			"podSelector": map[string]any{"matchLabels": map[string]any{"app": "web"}},
			"port":        "http",
		}},
		callers("someone-else"),
		meshlab.PolicyObject{Kind: "AuthorizationPolicy", Name: "web-callers", Spec: map[string]any{
			"targetRef":                  map[string]any{"group": "policy.linkerd.io", "kind": "Server", "name": "web-http"},
			"requiredAuthenticationRefs": []any{map[string]any{"group": "policy.linkerd.io", "kind": "MeshTLSAuthentication", "name": "web-callers"}},
		}})
	t.Logf("Server applied → the client refused after %s", until("another identity authorized, the client", clientCalls, 403))
	until("another identity authorized, the unmeshed namespace", bareCalls, 403)

	apply(t, ctx, dyn, callers("client"))
	t.Logf("MeshTLSAuthentication changed → the client served after %s", until("the client authorized, the client", clientCalls, 200))
	until("the client authorized, the unmeshed namespace", bareCalls, 403)

	server, err := scrape(fmt.Sprintf("http://%s:%d/metrics", m.Net.IP(meshlab.WebHosts[0]), mesh.AdminPort))
	if err != nil {
		t.Fatal(err)
	}
	allowed, _ := sum(server, "inbound_http_authz_allow_total", map[string]string{"srv_kind": "server", "srv_name": "web-http", "authz_kind": "authorizationpolicy", "authz_name": "web-callers"})
	denied, _ := sum(server, "inbound_http_authz_deny_total", map[string]string{"srv_kind": "server", "srv_name": "web-http"})
	if allowed == 0 || denied == 0 {
		t.Errorf("web-0's proxy counted %v allowed and %v denied requests under web-http; want both:\n%s\n%s", allowed, denied,
			named(server, "inbound_http_authz_allow_total"), named(server, "inbound_http_authz_deny_total"))
	}
}

// callers is the MeshTLSAuthentication that admits ServiceAccount sa.
func callers(sa string) meshlab.PolicyObject {
	return meshlab.PolicyObject{Kind: "MeshTLSAuthentication", Name: "web-callers", Spec: map[string]any{
		"identities": []any{meshlab.IdentityName(sa, meshlab.AppNS)},
	}}
}

func apply(t *testing.T, ctx context.Context, dyn dynamic.Interface, objs ...meshlab.PolicyObject) {
	t.Helper()
	if err := meshlab.ApplyPolicy(ctx, dyn, meshlab.AppNS, objs...); err != nil {
		t.Fatal(err)
	}
}
