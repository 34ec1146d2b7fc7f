//go:build integration

package app

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	policyv1 "github.com/linkerd-go/linkerd-go/api/linkerd/policy/v1"
	"github.com/linkerd-go/linkerd-go/destination/internal/k8s"
	"github.com/linkerd-go/linkerd-go/destination/internal/policy"
	"github.com/linkerd-go/linkerd-go/destination/internal/updatetest"
	"github.com/linkerd-go/linkerd-go/tools/testkit/kubetest"
)

var policyResources = map[string]string{
	"Server": "servers", "ServerAuthorization": "serverauthorizations", "AuthorizationPolicy": "authorizationpolicies",
	"MeshTLSAuthentication": "meshtlsauthentications", "NetworkAuthentication": "networkauthentications", "HTTPRoute": "httproutes",
}

// applySpec creates a policy object in the test's namespace from its spec
// (YAML), or replaces the object when it exists.
func (r *running) applySpec(apiVersion, kind, name, spec string) {
	r.t.Helper()
	indented := "  " + strings.ReplaceAll(strings.TrimSpace(spec), "\n", "\n  ")
	manifest := "apiVersion: " + apiVersion + "\nkind: " + kind + "\nmetadata: {name: " + name + "}\nspec:\n" + indented + "\n"
	objs, err := kubetest.DecodeObjects([]byte(manifest))
	r.check(err)
	for _, u := range objs {
		res := r.policyResource(u.GetKind())
		cur, err := res.Get(context.Background(), u.GetName(), metav1.GetOptions{})
		if err == nil {
			u.SetResourceVersion(cur.GetResourceVersion())
			_, err = res.Update(context.Background(), u, metav1.UpdateOptions{})
		} else {
			_, err = res.Create(context.Background(), u, metav1.CreateOptions{})
		}
		r.check(err)
	}
}

func (r *running) deletePolicy(kind, name string) {
	r.t.Helper()
	r.check(r.policyResource(kind).Delete(context.Background(), name, metav1.DeleteOptions{}))
}

func (r *running) policyResource(kind string) interface {
	Get(context.Context, string, metav1.GetOptions, ...string) (*unstructured.Unstructured, error)
	Create(context.Context, *unstructured.Unstructured, metav1.CreateOptions, ...string) (*unstructured.Unstructured, error)
	Update(context.Context, *unstructured.Unstructured, metav1.UpdateOptions, ...string) (*unstructured.Unstructured, error)
	Delete(context.Context, string, metav1.DeleteOptions, ...string) error
} {
	for gvr := range k8s.PolicyGVRs {
		if gvr.Resource == policyResources[kind] {
			return r.dyn.Resource(gvr).Namespace(r.ns)
		}
	}
	r.t.Fatalf("no resource for %s", kind)
	return nil
}

func (r *running) watchPort(pod string, port uint32) grpc.ServerStreamingClient[policyv1.WatchPortResponse] {
	r.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r.t.Cleanup(cancel)
	s, err := policyv1.NewInboundPolicyServiceClient(r.policy).WatchPort(ctx, &policyv1.WatchPortRequest{
		Workload: &policyv1.Workload{Kind: &policyv1.Workload_Pod{Pod: &policyv1.Workload_PodRef{Namespace: r.ns, Name: pod}}},
		Port:     port,
	}, grpc.WaitForReady(true))
	r.check(err)
	return s
}

// expectEventually reads a stream until a message matches want: for a
// change that spans two objects (an authentication and the policy that
// needs it), whose informers deliver in no set order.
func expectEventually(t *testing.T, s grpc.ServerStreamingClient[policyv1.WatchPortResponse], want string) {
	t.Helper()
	var last string
	for range 3 {
		m, err := s.Recv()
		if err != nil {
			t.Fatalf("Recv: %v", err)
		}
		if last = strings.TrimSpace(updatetest.Describe(m)); last == strings.TrimSpace(want) {
			return
		}
	}
	t.Fatalf("update:\n%s\nwant:\n%s", last, strings.TrimSpace(want))
}

// policyText is an expected policy: the server line, then indented lines.
func policyText(lines ...string) string { return strings.Join(lines, "\n") }

func TestWatchPortAgainstAPIServer(t *testing.T) {
	r := startDestination(t, shared.Config)
	r.waitReady()
	ns := r.ns
	id := func(sa string) string { return sa + "." + ns + ".serviceaccount.identity.linkerd.cluster.local" }
	const anyNet = "0.0.0.0/0,::/0"
	const clusterNets = "10.0.0.0/8,100.64.0.0/10,172.16.0.0/12,192.168.0.0/16,fd00::/8"
	defaultRoutes := policyText(
		"  route default/default",
		"    rule /*",
		"  route default/probe",
		"    rule GET =/ready",
		"    authz default/probe any from "+anyNet)

	p := pod("web-1", "10.4.0.1", true)
	p.Spec.Containers[0].ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intstr.FromString("http")}}}
	r.create(p)
	s := r.watchPort("web-1", 8080)
	expect(t, s, policyText("server default/all-unauthenticated detect", "  authz default/all-unauthenticated any from "+anyNet, defaultRoutes))

	// Defaults: the namespace's annotation, then the pod's over it.
	nsObj, err := r.kube.CoreV1().Namespaces().Get(context.Background(), ns, metav1.GetOptions{})
	r.check(err)
	nsObj.Annotations = map[string]string{"config.linkerd.io/default-inbound-policy": "deny"}
	_, err = r.kube.CoreV1().Namespaces().Update(context.Background(), nsObj, metav1.UpdateOptions{})
	r.check(err)
	expect(t, s, policyText("server default/deny detect", defaultRoutes))
	podObj, err := r.kube.CoreV1().Pods(ns).Get(context.Background(), "web-1", metav1.GetOptions{})
	r.check(err)
	podObj.Annotations = map[string]string{"config.linkerd.io/default-inbound-policy": "all-authenticated"}
	_, err = r.kube.CoreV1().Pods(ns).Update(context.Background(), podObj, metav1.UpdateOptions{})
	r.check(err)
	expect(t, s, policyText("server default/all-authenticated detect", "  authz default/all-authenticated * from "+anyNet, defaultRoutes))

	// Server: created (the CRD defaults accessPolicy to deny), changed.
	server := "podSelector: {matchLabels: {app: web}}\nport: http\n"
	r.applySpec("policy.linkerd.io/v1beta3", "Server", "web-http", server)
	expect(t, s, policyText("server server/web-http detect", defaultRoutes))
	// proxyProtocol opaque reaches discovery too: the pod's port is hinted
	// opaque, reached through its proxy's inbound port.
	eps := r.get("10.4.0.1:8080")
	expect(t, eps, "add {namespace="+ns+"}\n  10.4.0.1:8080 id="+id("web")+" h2 {pod=web-1,serviceaccount=web}")
	r.applySpec("policy.linkerd.io/v1beta3", "Server", "web-http", server+"proxyProtocol: opaque\n")
	expect(t, s, policyText("server server/web-http opaque", defaultRoutes))
	expect(t, eps, "add {namespace="+ns+"}\n  10.4.0.1:8080 id="+id("web")+" opaque(4143) {pod=web-1,serviceaccount=web}")
	r.applySpec("policy.linkerd.io/v1beta3", "Server", "web-http", server+"proxyProtocol: HTTP/2\n")
	expect(t, s, policyText("server server/web-http http2", defaultRoutes))
	expect(t, eps, "add {namespace="+ns+"}\n  10.4.0.1:8080 id="+id("web")+" h2 {pod=web-1,serviceaccount=web}")

	// ServerAuthorization: created, changed, deleted.
	r.applySpec("policy.linkerd.io/v1beta1", "ServerAuthorization", "vote", `
server: {name: web-http}
client: {meshTLS: {serviceAccounts: [{name: vote}]}}`)
	expect(t, s, policyText("server server/web-http http2", "  authz serverauthorization/vote "+id("vote")+" from "+clusterNets, defaultRoutes))
	r.applySpec("policy.linkerd.io/v1beta1", "ServerAuthorization", "vote", `
server: {name: web-http}
client: {unauthenticated: true, networks: [{cidr: 10.1.0.0/16}]}`)
	expect(t, s, policyText("server server/web-http http2", "  authz serverauthorization/vote any from 10.1.0.0/16", defaultRoutes))
	r.deletePolicy("ServerAuthorization", "vote")
	expect(t, s, policyText("server server/web-http http2", defaultRoutes))

	// MeshTLSAuthentication and the AuthorizationPolicy that needs it.
	r.applySpec("policy.linkerd.io/v1alpha1", "MeshTLSAuthentication", "meshed", `identities: ["*.`+ns+`.serviceaccount.identity.linkerd.cluster.local"]`)
	r.applySpec("policy.linkerd.io/v1alpha1", "AuthorizationPolicy", "ap-mtls", `
targetRef: {group: policy.linkerd.io, kind: Server, name: web-http}
requiredAuthenticationRefs: [{group: policy.linkerd.io, kind: MeshTLSAuthentication, name: meshed}]`)
	mtlsAll := "  authz authorizationpolicy/ap-mtls *." + ns + ".serviceaccount.identity.linkerd.cluster.local from " + anyNet
	expectEventually(t, s, policyText("server server/web-http http2", mtlsAll, defaultRoutes))
	r.applySpec("policy.linkerd.io/v1alpha1", "MeshTLSAuthentication", "meshed", `identityRefs: [{kind: ServiceAccount, name: vote}]`)
	mtlsVote := "  authz authorizationpolicy/ap-mtls " + id("vote") + " from " + anyNet
	expect(t, s, policyText("server server/web-http http2", mtlsVote, defaultRoutes))

	// NetworkAuthentication and its policy; both changed.
	r.applySpec("policy.linkerd.io/v1alpha1", "NetworkAuthentication", "office", `networks: [{cidr: 10.2.0.0/16, except: [10.2.3.0/24]}]`)
	r.applySpec("policy.linkerd.io/v1alpha1", "AuthorizationPolicy", "ap-net", `
targetRef: {group: policy.linkerd.io, kind: Server, name: web-http}
requiredAuthenticationRefs: [{group: policy.linkerd.io, kind: NetworkAuthentication, name: office}]`)
	expectEventually(t, s, policyText("server server/web-http http2", mtlsVote, "  authz authorizationpolicy/ap-net any from 10.2.0.0/16-10.2.3.0/24", defaultRoutes))
	r.applySpec("policy.linkerd.io/v1alpha1", "NetworkAuthentication", "office", `networks: [{cidr: 10.3.0.0/16}]`)
	expect(t, s, policyText("server server/web-http http2", mtlsVote, "  authz authorizationpolicy/ap-net any from 10.3.0.0/16", defaultRoutes))
	r.applySpec("policy.linkerd.io/v1alpha1", "AuthorizationPolicy", "ap-net", `
targetRef: {group: policy.linkerd.io, kind: Server, name: web-http}
requiredAuthenticationRefs:
- {group: policy.linkerd.io, kind: NetworkAuthentication, name: office}
- {kind: ServiceAccount, name: web}`)
	netWeb := "  authz authorizationpolicy/ap-net " + id("web") + " from 10.3.0.0/16"
	expect(t, s, policyText("server server/web-http http2", mtlsVote, netWeb, defaultRoutes))

	// HTTPRoute: created, given a policy, changed, its policy deleted, deleted.
	route := `
parentRefs: [{group: policy.linkerd.io, kind: Server, name: web-http}]
rules: [{matches: [{path: {type: %s, value: %s}}]}]`
	r.applySpec("policy.linkerd.io/v1beta3", "HTTPRoute", "api", fmt.Sprintf(route, "PathPrefix", "/api"))
	expect(t, s, policyText("server server/web-http http2", mtlsVote, netWeb, "  route HTTPRoute/api", "    rule /api*"))
	r.applySpec("policy.linkerd.io/v1alpha1", "AuthorizationPolicy", "ap-route", `
targetRef: {group: policy.linkerd.io, kind: HTTPRoute, name: api}
requiredAuthenticationRefs: [{kind: ServiceAccount, name: bot}]`)
	routeAuthz := "    authz authorizationpolicy/ap-route " + id("bot") + " from " + anyNet
	expect(t, s, policyText("server server/web-http http2", mtlsVote, netWeb, "  route HTTPRoute/api", "    rule /api*", routeAuthz))
	r.applySpec("policy.linkerd.io/v1beta3", "HTTPRoute", "api", fmt.Sprintf(route, "Exact", "/api/v1"))
	expect(t, s, policyText("server server/web-http http2", mtlsVote, netWeb, "  route HTTPRoute/api", "    rule =/api/v1", routeAuthz))
	r.deletePolicy("AuthorizationPolicy", "ap-route")
	expect(t, s, policyText("server server/web-http http2", mtlsVote, netWeb, "  route HTTPRoute/api", "    rule =/api/v1"))
	r.deletePolicy("HTTPRoute", "api")
	expect(t, s, policyText("server server/web-http http2", mtlsVote, netWeb, defaultRoutes))

	// Deleting an authentication leaves out the policy that needs it.
	r.deletePolicy("MeshTLSAuthentication", "meshed")
	expect(t, s, policyText("server server/web-http http2", netWeb, defaultRoutes))
	r.deletePolicy("NetworkAuthentication", "office")
	expect(t, s, policyText("server server/web-http http2", defaultRoutes))

	// An unusable object changes nothing and gets a Warning Event saying
	// why.
	r.applySpec("policy.linkerd.io/v1alpha1", "NetworkAuthentication", "broken", `networks: [{cidr: 10.4.0.0/16, except: [10.5.0.0/24]}]`)
	var last string
	waitFor := time.Now().Add(time.Minute)
	poll := time.NewTicker(100 * time.Millisecond)
	defer poll.Stop()
	for {
		evs, err := r.kube.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{FieldSelector: "involvedObject.name=broken,reason=" + policy.ReasonInvalid})
		r.check(err)
		if len(evs.Items) > 0 {
			ev := evs.Items[0]
			if ev.Type != corev1.EventTypeWarning || ev.InvolvedObject.Kind != "NetworkAuthentication" || !strings.Contains(ev.Message, "except") {
				t.Errorf("event %s %s on %s: %q", ev.Type, ev.Reason, ev.InvolvedObject.Kind, ev.Message)
			}
			break
		}
		if time.Now().After(waitFor) {
			t.Fatalf("no %s Event on the broken NetworkAuthentication after a minute (%s)", policy.ReasonInvalid, last)
		}
		last = fmt.Sprintf("%d events", len(evs.Items))
		<-poll.C
	}
	r.deletePolicy("NetworkAuthentication", "broken")

	// The metrics show the stream, its messages and the gRPC calls.
	r.expectMetrics(`destination_streams_open{rpc="watch_port"} 1`, `destination_updates_sent_total{rpc="watch_port"} `,
		`destination_watchers{rpc="watch_port"} 1`, `grpc_server_started_total{grpc_method="WatchPort",grpc_service="linkerd.policy.v1.InboundPolicyService",grpc_type="server_stream"} 1`)

	// The Server goes: the pod's default is back.
	r.deletePolicy("Server", "web-http")
	expect(t, s, policyText("server default/all-authenticated detect", "  authz default/all-authenticated * from "+anyNet, defaultRoutes))

	// The pod goes: the stream ends with NOT_FOUND, and so does a new one.
	r.check(r.kube.CoreV1().Pods(ns).Delete(context.Background(), "web-1", metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}))
	if _, err := s.Recv(); status.Code(err) != codes.NotFound {
		t.Fatalf("after the pod was deleted: %v, want NotFound", err)
	}
	if _, err := r.watchPort("web-1", 8080).Recv(); status.Code(err) != codes.NotFound {
		t.Fatalf("a deleted pod: %v, want NotFound", err)
	}
}
