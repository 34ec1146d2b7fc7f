//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/linkerd-go/linkerd-go/api/mesh"
	"github.com/linkerd-go/linkerd-go/tools/cli/authz"
	"github.com/linkerd-go/linkerd-go/tools/dev/cluster"
	"github.com/linkerd-go/linkerd-go/tools/dev/demo"
	"github.com/linkerd-go/linkerd-go/tools/suites/meshlab"
)

// The policy test's clients of the demo's backend, beside the demo's own
// frontend: a meshed frontend in another namespace, and an unmeshed one in
// the demo's namespace.
const (
	otherClient    = "frontend-elsewhere"
	unmeshedClient = "frontend-unmeshed"
)

// testPolicy puts the demo's backend behind a Server that only the demo's
// frontend's ServiceAccount may use, as Linkerd's documentation does, and
// checks what each caller gets: the frontend is served, a meshed caller
// from another namespace and an unmeshed one get PERMISSION_DENIED from the
// backend's proxy. Then: a NetworkAuthentication admits the unmeshed
// caller's address; a namespace annotated deny refuses what is not
// authorized, audit lets it through and counts it; with destination scaled
// to zero the proxies keep the policy. Every change takes effect without a
// pod restart; the delays are logged. Objects that cannot work are refused
// by the policy validator.
func testPolicy(t *testing.T, ctx context.Context, kube kubernetes.Interface, c *cluster.Cluster, ns string) {
	rc, err := clientcmd.BuildConfigFromFlags("", c.KubeconfigPath())
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	otherNS := ns + "-elsewhere"
	objs := []any{&corev1.Namespace{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: metav1.ObjectMeta{Name: otherNS, Annotations: map[string]string{mesh.AnnotationInject: "enabled"}},
	}}
	objs = append(objs, demo.FrontendClient(otherNS, otherClient, ns, true)...)
	objs = append(objs, demo.FrontendClient(ns, unmeshedClient, ns, false)...)
	if err := demo.Apply(ctx, kube, objs...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		_ = kube.CoreV1().Namespaces().Delete(ctx, otherNS, metav1.DeleteOptions{})
		_ = kube.AppsV1().Deployments(ns).Delete(ctx, unmeshedClient, metav1.DeleteOptions{})
		_ = kube.CoreV1().ServiceAccounts(ns).Delete(ctx, unmeshedClient, metav1.DeleteOptions{})
		_ = meshlab.DeletePolicy(ctx, dyn, ns,
			meshlab.PolicyObject{Kind: "AuthorizationPolicy", Name: "backend-frontend-only"},
			meshlab.PolicyObject{Kind: "AuthorizationPolicy", Name: "backend-unmeshed-network"},
			meshlab.PolicyObject{Kind: "MeshTLSAuthentication", Name: "frontend-only"},
			meshlab.PolicyObject{Kind: "NetworkAuthentication", Name: "unmeshed-frontend"},
			meshlab.PolicyObject{Kind: "Server", Name: "backend-grpc"})
	})
	if err := demo.Poll(ctx, stepTimeout, time.Second, func(ctx context.Context) error {
		if err := demo.DeploymentsReady(ctx, kube, otherNS, otherClient); err != nil {
			return err
		}
		return demo.DeploymentsReady(ctx, kube, ns, unmeshedClient)
	}); err != nil {
		t.Fatal(err)
	}
	own := caller{kube: kube, ns: ns, app: demo.Frontend}
	other := caller{kube: kube, ns: otherNS, app: otherClient}
	unmeshed := caller{kube: kube, ns: ns, app: unmeshedClient}

	t.Run("all-callers-served-without-policy", func(t *testing.T) {
		for _, c := range []caller{own, other, unmeshed} {
			c.waitFor(t, ctx, served)
		}
	})

	t.Run("validator-refuses-unusable-objects", func(t *testing.T) {
		// The API server asks destination's policy validator, which refuses
		// with the reason; nothing is stored.
		for _, o := range []struct {
			obj  meshlab.PolicyObject
			want string
		}{
			{meshlab.PolicyObject{Kind: "AuthorizationPolicy", Name: "no-such-kind", Spec: map[string]any{
				"targetRef":                  map[string]any{"group": "policy.linkerd.io", "kind": "Servers", "name": "backend-grpc"},
				"requiredAuthenticationRefs": []any{},
			}}, `targetRef: unsupported kind "Servers"`},
			{meshlab.PolicyObject{Kind: "NetworkAuthentication", Name: "bad-except", Spec: map[string]any{
				"networks": []any{map[string]any{"cidr": "198.18.0.0/15", "except": []any{"10.0.0.0/8"}}},
			}}, `except "10.0.0.0/8" is not inside "198.18.0.0/15"`},
		} {
			err := meshlab.ApplyPolicy(ctx, dyn, ns, o.obj)
			if err == nil || !strings.Contains(err.Error(), `admission webhook "linkerd-policy-validator.linkerd.io" denied the request`) || !strings.Contains(err.Error(), o.want) {
				_ = meshlab.DeletePolicy(ctx, dyn, ns, o.obj)
				t.Errorf("%s %s: %v, want refused by the policy validator with %q", o.obj.Kind, o.obj.Name, err, o.want)
			}
		}
	})

	t.Run("only-the-frontend-authorized", func(t *testing.T) {
		start := time.Now()
		applyPolicy(t, ctx, dyn, ns,
			meshlab.PolicyObject{Kind: "Server", Name: "backend-grpc", Spec: map[string]any{
				"podSelector":   map[string]any{"matchLabels": map[string]any{"app": demo.Backend}},
				"port":          "grpc",
				"proxyProtocol": "gRPC",
			}},
			meshlab.PolicyObject{Kind: "MeshTLSAuthentication", Name: "frontend-only", Spec: map[string]any{
				"identityRefs": []any{map[string]any{"kind": "ServiceAccount", "name": demo.Frontend}},
			}},
			meshlab.PolicyObject{Kind: "AuthorizationPolicy", Name: "backend-frontend-only", Spec: map[string]any{
				"targetRef":                  map[string]any{"group": "policy.linkerd.io", "kind": "Server", "name": "backend-grpc"},
				"requiredAuthenticationRefs": []any{map[string]any{"group": "policy.linkerd.io", "kind": "MeshTLSAuthentication", "name": "frontend-only"}},
			}},
		)
		other.waitFor(t, ctx, permissionDenied)
		t.Logf("policy applied → a meshed caller from another namespace refused after %s", time.Since(start).Round(10*time.Millisecond))
		unmeshed.waitFor(t, ctx, permissionDenied)
		own.waitFor(t, ctx, served)
		// linkerd authz says what the proxies enforce.
		checkAuthz(t, ctx, kube, rc, ns)
		// The backend's proxies say who they let in and what they refused.
		allowed, denied := backendAuthz(t, ctx, kube, ns)
		if allowed == 0 || denied == 0 {
			t.Errorf("backend proxies: %v requests allowed by backend-frontend-only, %v denied; want both", allowed, denied)
		}
	})
	if t.Failed() {
		return
	}

	t.Run("network-authentication-admits-a-cidr", func(t *testing.T) {
		pod := unmeshed.pod(t, ctx)
		start := time.Now()
		applyPolicy(t, ctx, dyn, ns,
			meshlab.PolicyObject{Kind: "NetworkAuthentication", Name: "unmeshed-frontend", Spec: map[string]any{
				"networks": []any{map[string]any{"cidr": pod.Status.PodIP + "/32"}},
			}},
			meshlab.PolicyObject{Kind: "AuthorizationPolicy", Name: "backend-unmeshed-network", Spec: map[string]any{
				"targetRef":                  map[string]any{"group": "policy.linkerd.io", "kind": "Server", "name": "backend-grpc"},
				"requiredAuthenticationRefs": []any{map[string]any{"group": "policy.linkerd.io", "kind": "NetworkAuthentication", "name": "unmeshed-frontend"}},
			}},
		)
		unmeshed.waitFor(t, ctx, served)
		t.Logf("NetworkAuthentication applied → the unmeshed caller served after %s", time.Since(start).Round(10*time.Millisecond))
		other.waitFor(t, ctx, permissionDenied)
	})

	t.Run("namespace-deny-and-audit", func(t *testing.T) {
		// The other namespace's frontend has no Server: its namespace's
		// annotation decides. This test calls it from outside the mesh
		// (the API server), which deny refuses and audit lets through.
		annotate(t, ctx, kube, otherNS, "deny")
		start := time.Now()
		other.waitFor(t, ctx, forbiddenByProxy)
		t.Logf("namespace annotated deny → refused after %s", time.Since(start).Round(10*time.Millisecond))
		annotate(t, ctx, kube, otherNS, "audit")
		start = time.Now()
		other.waitFor(t, ctx, permissionDenied) // through its proxy, refused by the backend's
		t.Logf("namespace annotated audit → let through after %s", time.Since(start).Round(10*time.Millisecond))
		m, err := proxyMetrics(ctx, kube, other.pod(t, ctx))
		if err != nil {
			t.Fatal(err)
		}
		if n := sum(where(m["inbound_http_authz_allow_total"], map[string]string{"authz_kind": "default", "authz_name": "audit"})); n == 0 {
			t.Error("the audited requests were not counted under authz_name=audit")
		}
	})
	t.Run("policy-kept-without-destination", func(t *testing.T) {
		scaleControlPlane(t, ctx, kube, "destination", 0)
		defer scaleControlPlane(t, ctx, kube, "destination", 1)
		for _, c := range []struct {
			c    caller
			want outcome
		}{{own, served}, {other, permissionDenied}, {unmeshed, served}} {
			if got := c.c.call(t, ctx); got.kind != c.want {
				t.Errorf("%s/%s with destination down: %s, want %s", c.c.ns, c.c.app, got, c.want)
			}
		}
	})

}

// outcome is what a call of a frontend came to.
type outcome string

const (
	served           outcome = "served"            // 200
	permissionDenied outcome = "permission-denied" // 502 from the frontend: the backend's proxy answered PERMISSION_DENIED
	forbiddenByProxy outcome = "forbidden"         // 403 from the frontend's own proxy
	otherOutcome     outcome = "other"
)

type result struct {
	kind   outcome
	status int
	body   string
}

func (r result) String() string { return fmt.Sprintf("%s (%d %q)", r.kind, r.status, r.body) }

// caller is a frontend that the test calls through the API server's pod
// proxy; the frontend calls the backend.
type caller struct {
	kube    kubernetes.Interface
	ns, app string
}

func (c caller) pod(t *testing.T, ctx context.Context) corev1.Pod {
	t.Helper()
	pods, err := demo.Pods(ctx, c.kube, c.ns, c.app)
	if err != nil || len(pods) == 0 {
		t.Fatalf("pods of %s/%s: %d, %v", c.ns, c.app, len(pods), err)
	}
	return pods[0]
}

func (c caller) call(t *testing.T, ctx context.Context) result {
	t.Helper()
	p := c.pod(t, ctx)
	body, err := c.kube.CoreV1().Pods(p.Namespace).ProxyGet("http", p.Name, fmt.Sprint(demo.Port), "/", nil).DoRaw(ctx)
	code := 200
	if err != nil {
		// A status other than 2xx comes back as an API status error with
		// the pod's answer as its body.
		code = 0
		if s, ok := err.(apierrors.APIStatus); ok {
			code = int(s.Status().Code)
		}
		if len(body) == 0 {
			body = []byte(err.Error())
		}
	}
	r := result{status: code, body: strings.TrimSpace(string(body)), kind: otherOutcome}
	switch {
	case code == 200:
		r.kind = served
	case code == 502 && strings.Contains(r.body, "PermissionDenied"):
		r.kind = permissionDenied
	case code == 403:
		r.kind = forbiddenByProxy
	}
	return r
}

// waitFor calls c until the call comes to want.
func (c caller) waitFor(t *testing.T, ctx context.Context, want outcome) {
	t.Helper()
	waitUntil(t, ctx, fmt.Sprintf("%s/%s %s", c.ns, c.app, want), func() error {
		if got := c.call(t, ctx); got.kind != want {
			return fmt.Errorf("got %s", got)
		}
		return nil
	})
}

func applyPolicy(t *testing.T, ctx context.Context, dyn dynamic.Interface, ns string, objs ...meshlab.PolicyObject) {
	t.Helper()
	if err := meshlab.ApplyPolicy(ctx, dyn, ns, objs...); err != nil {
		t.Fatal(err)
	}
}

// backendAuthz sums, over the backend's proxies, the requests the
// backend-frontend-only policy allowed and those the Server refused.
func backendAuthz(t *testing.T, ctx context.Context, kube kubernetes.Interface, ns string) (allowed, denied float64) {
	t.Helper()
	pods, err := demo.Pods(ctx, kube, ns, demo.Backend)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods {
		m, err := proxyMetrics(ctx, kube, p)
		if err != nil {
			t.Fatal(err)
		}
		allowed += sum(where(m["inbound_http_authz_allow_total"], map[string]string{"srv_name": "backend-grpc", "authz_name": "backend-frontend-only"}))
		denied += sum(where(m["inbound_http_authz_deny_total"], map[string]string{"srv_name": "backend-grpc"}))
	}
	return allowed, denied
}

// annotate sets ns's default inbound policy.
func annotate(t *testing.T, ctx context.Context, kube kubernetes.Interface, ns, policy string) {
	t.Helper()
	patch := []byte(fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, mesh.AnnotationDefaultInboundPolicy, policy))
	if _, err := kube.CoreV1().Namespaces().Patch(ctx, ns, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}

// checkAuthz runs linkerd authz's query for deploy/backend: every backend
// pod's grpc port is under Server/backend-grpc, whose default route admits
// the frontend's AuthorizationPolicy and whose probe route the probes.
func checkAuthz(t *testing.T, ctx context.Context, kube kubernetes.Interface, rc *rest.Config, ns string) {
	t.Helper()
	pods, err := demo.Pods(ctx, kube, ns, demo.Backend)
	if err != nil {
		t.Fatal(err)
	}
	c, err := authz.Connect(ctx, authz.Config{RESTConfig: rc, Kube: kube, ControlPlaneNamespace: namespace})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rows, err := c.Query(ctx, pods)
	if err != nil {
		t.Fatal(err)
	}
	var table bytes.Buffer
	if err := authz.WriteTable(&table, rows); err != nil {
		t.Fatal(err)
	}
	t.Logf("linkerd authz -n %s deploy/backend:\n%s", ns, table.String())
	seen := map[string]bool{}
	for _, r := range rows {
		if r.Server != "server/backend-grpc" || r.Protocol != "gRPC" {
			t.Errorf("%s port %d: server %s (%s), want server/backend-grpc (gRPC)", r.Pod, r.Port, r.Server, r.Protocol)
		}
		seen[r.Route] = true
		if !slices.Contains(r.Authorizations, "authorizationpolicy/backend-frontend-only") {
			t.Errorf("%s port %d route %s: authorizations %v lack the frontend's", r.Pod, r.Port, r.Route, r.Authorizations)
		}
	}
	if !seen["default/default"] || !seen["default/probe"] {
		t.Errorf("routes %v, want the default and the probe route", seen)
	}
}
