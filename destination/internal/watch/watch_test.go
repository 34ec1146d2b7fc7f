package watch

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	webID = "web.emojivoto.serviceaccount.identity.linkerd.cluster.local"
	web1  = "10.1.0.1:8080 id=" + webID + " h2 {deployment=web,pod=web-1,pod_template_hash=5d8f,serviceaccount=web,zone=zone-a}"
	web2  = "10.1.0.2:8080 id=" + webID + " h2 {deployment=web,pod=web-2,pod_template_hash=5d8f,serviceaccount=web,zone=zone-b}"
)

func TestServiceEndpoints(t *testing.T) {
	e := newEnv(t, defaultConfig(), "emojivoto.yaml")
	for _, path := range []string{
		"web.emojivoto.svc.cluster.local:80",
		"WEB.emojivoto.svc.cluster.local.:80", // case and trailing dot
		"10.96.0.10:80",                       // the cluster IP
	} {
		t.Run(path, func(t *testing.T) {
			// Two slices, a named target port, not-ready and terminating
			// endpoints left out.
			e.get(path).expect(`
add {namespace=emojivoto,service=web}
  ` + web1 + `
  ` + web2)
		})
	}
}

func TestIdentityAndHints(t *testing.T) {
	e := newEnv(t, defaultConfig(), "emojivoto.yaml")
	// Meshed by another control plane: no identity, no hint. A skipped port:
	// no identity. A Job's pod: owner label job.
	s := e.get("misc.emojivoto.svc.cluster.local:80")
	s.expect(`
add {namespace=emojivoto,service=misc}
  10.1.2.1:9090 {pod=other-cp,serviceaccount=default}
  10.1.2.2:9090 {pod=skipped,serviceaccount=default}
  10.1.2.3:9090 id=batch.emojivoto.serviceaccount.identity.linkerd.cluster.local h2 {job=job,pod=job-1,serviceaccount=batch}`)

	// The pod's port leaves the skipped range: identity appears.
	e.apply(`
apiVersion: v1
kind: Pod
metadata:
  name: skipped
  namespace: emojivoto
  labels: {linkerd.io/control-plane-ns: linkerd}
  annotations: {config.linkerd.io/skip-inbound-ports: "9000-9089"}
status: {phase: Running, podIP: 10.1.2.2}
`)
	s.expect(`
add {namespace=emojivoto,service=misc}
  10.1.2.2:9090 id=default.emojivoto.serviceaccount.identity.linkerd.cluster.local h2 {pod=skipped,serviceaccount=default}`)
}

func TestHeadlessAndStatefulSetHostnames(t *testing.T) {
	e := newEnv(t, defaultConfig(), "emojivoto.yaml")
	// 5432 is opaque by default: the meshed pod is reached through its
	// proxy's inbound port, the other directly.
	e.get("db.emojivoto.svc.cluster.local:5432").expect(`
add {namespace=emojivoto,service=db}
  10.1.1.0:5432 id=default.emojivoto.serviceaccount.identity.linkerd.cluster.local opaque(4143) {pod=db-0,serviceaccount=default,statefulset=db}
  10.1.1.1:5432 opaque(0) {pod=db-1,serviceaccount=db,statefulset=db}`)
	e.get("db-1.db.emojivoto.svc.cluster.local:5432").expect(`
add {namespace=emojivoto,service=db}
  10.1.1.1:5432 opaque(0) {pod=db-1,serviceaccount=db,statefulset=db}`)
	e.get("db-7.db.emojivoto.svc.cluster.local:5432").expect(`no_endpoints`)
}

func TestPodIPAndUnknownIP(t *testing.T) {
	e := newEnv(t, defaultConfig(), "emojivoto.yaml")
	e.get("10.1.0.2:8080").expect(`
add {namespace=emojivoto}
  10.1.0.2:8080 id=` + webID + ` h2 {deployment=web,pod=web-2,pod_template_hash=5d8f,serviceaccount=web}`)

	s := e.get("10.1.9.9:8080")
	s.expect(`does_not_exist`)
	e.apply(`
apiVersion: v1
kind: Pod
metadata: {name: late, namespace: emojivoto}
status: {phase: Running, podIP: 10.1.9.9}
`)
	s.expect(`
add {namespace=emojivoto}
  10.1.9.9:8080 {pod=late,serviceaccount=default}`)
	// The pod finishes: its IP no longer names anything.
	e.apply(`
apiVersion: v1
kind: Pod
metadata: {name: late, namespace: emojivoto}
status: {phase: Succeeded, podIP: 10.1.9.9}
`)
	s.expect(`does_not_exist`)
}

func TestScaleUpAndDown(t *testing.T) {
	e := newEnv(t, defaultConfig(), "emojivoto.yaml")
	s := e.get("web.emojivoto.svc.cluster.local:80")
	s.expect("add {namespace=emojivoto,service=web}\n  " + web1 + "\n  " + web2)

	// Scale up: a third pod joins slice web-b.
	e.apply(webSlice("web-b", `
- addresses: [10.1.0.2]
  zone: zone-b
  targetRef: {kind: Pod, name: web-2, namespace: emojivoto}
- addresses: [10.1.0.3]
  targetRef: {kind: Pod, name: web-3, namespace: emojivoto}`))
	s.expect(`
add {namespace=emojivoto,service=web}
  10.1.0.3:8080 id=` + webID + ` h2 {pod=web-3,serviceaccount=web}`)

	// Scale down: web-2 and web-3 leave.
	e.apply(webSlice("web-b", ` []`))
	s.expect(`remove 10.1.0.2:8080 10.1.0.3:8080`)

	// To zero, then back.
	e.remove("EndpointSlice", "emojivoto", "web-a")
	s.expect(`no_endpoints`)
	e.apply(webSlice("web-c", `
- addresses: [10.1.0.1]
  zone: zone-a
  targetRef: {kind: Pod, name: web-1, namespace: emojivoto}`))
	s.expect("add {namespace=emojivoto,service=web}\n  " + web1)
}

func TestPodBecomesNotReady(t *testing.T) {
	e := newEnv(t, defaultConfig(), "emojivoto.yaml")
	s := e.get("web.emojivoto.svc.cluster.local:80")
	s.next()
	e.apply(webSlice("web-b", `
- addresses: [10.1.0.2]
  conditions: {ready: false}
  zone: zone-b
  targetRef: {kind: Pod, name: web-2, namespace: emojivoto}`))
	s.expect(`remove 10.1.0.2:8080`)
	// Terminating, even if still ready: left out too.
	e.apply(webSlice("web-a", `
- addresses: [10.1.0.1]
  conditions: {ready: true, terminating: true}
  targetRef: {kind: Pod, name: web-1, namespace: emojivoto}`))
	s.expect(`no_endpoints`)
}

func TestServiceDeletedAndRecreated(t *testing.T) {
	e := newEnv(t, defaultConfig(), "emojivoto.yaml")
	s := e.get("web.emojivoto.svc.cluster.local:80")
	s.next()
	e.remove("Service", "emojivoto", "web")
	s.expect(`does_not_exist`)
	e.apply(`
apiVersion: v1
kind: Service
metadata: {name: web, namespace: emojivoto}
spec:
  clusterIP: 10.96.0.11
  ports: [{name: http, port: 80, targetPort: http}]
`)
	s.expect("add {namespace=emojivoto,service=web}\n  " + web1 + "\n  " + web2)
}

func TestUnknownServiceAppears(t *testing.T) {
	e := newEnv(t, defaultConfig(), "emojivoto.yaml")
	s := e.get("api.emojivoto.svc.cluster.local:8080")
	s.expect(`does_not_exist`)
	e.apply(`
apiVersion: v1
kind: Service
metadata: {name: api, namespace: emojivoto}
spec:
  clusterIP: 10.96.0.30
  ports: [{name: grpc, port: 8080}]
`)
	s.expect(`no_endpoints`)
	e.apply(`
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: api-1
  namespace: emojivoto
  labels: {kubernetes.io/service-name: api}
addressType: IPv4
ports: [{name: grpc, port: 8080}]
endpoints:
- addresses: [10.1.5.1]
`)
	s.expect(`
add {namespace=emojivoto,service=api}
  10.1.5.1:8080`)
}

func TestEndpointsMoveBetweenSlices(t *testing.T) {
	e := newEnv(t, defaultConfig(), "emojivoto.yaml")
	s := e.get("web.emojivoto.svc.cluster.local:80")
	s.next()
	// web-2 appears in a new slice first, then leaves its old one: the
	// client sees nothing change.
	e.apply(webSlice("web-c", `
- addresses: [10.1.0.2]
  zone: zone-b
  targetRef: {kind: Pod, name: web-2, namespace: emojivoto}`))
	e.remove("EndpointSlice", "emojivoto", "web-b")
	// A change the client does see, to show that nothing came before it.
	e.apply(webSlice("web-a", ` []`))
	s.expect(`remove 10.1.0.1:8080`)
	// Moving the other way round: it leaves first, then comes back.
	e.remove("EndpointSlice", "emojivoto", "web-c")
	s.expect(`no_endpoints`)
	e.apply(webSlice("web-a", `
- addresses: [10.1.0.2]
  zone: zone-b
  targetRef: {kind: Pod, name: web-2, namespace: emojivoto}`))
	s.expect("add {namespace=emojivoto,service=web}\n  " + web2)
}

func TestNamedTargetPortFromPods(t *testing.T) {
	e := newEnv(t, defaultConfig(), "emojivoto.yaml")
	// The "named" Service of the fixture: its slice gives no port number.
	e.get("named.emojivoto.svc.cluster.local:80").expect(`
add {namespace=emojivoto,service=named}
  10.1.0.1:8080 id=` + webID + ` h2 {deployment=web,pod=web-1,pod_template_hash=5d8f,serviceaccount=web}`)
}

func TestOpaquePortAnnotations(t *testing.T) {
	e := newEnv(t, defaultConfig(), "emojivoto.yaml")
	s := e.get("web.emojivoto.svc.cluster.local:80")
	s.next()
	// The namespace makes 8080 (the pods' port) opaque.
	e.apply(`
apiVersion: v1
kind: Namespace
metadata:
  name: emojivoto
  annotations: {config.linkerd.io/opaque-ports: "8080"}
`)
	s.expect(`
add {namespace=emojivoto,service=web}
  10.1.0.1:8080 id=` + webID + ` opaque(4143) {deployment=web,pod=web-1,pod_template_hash=5d8f,serviceaccount=web,zone=zone-a}
  10.1.0.2:8080 id=` + webID + ` opaque(4143) {deployment=web,pod=web-2,pod_template_hash=5d8f,serviceaccount=web,zone=zone-b}`)
	// web-2's own annotation wins over the namespace's.
	e.apply(`
apiVersion: v1
kind: Pod
metadata:
  name: web-2
  namespace: emojivoto
  labels: {pod-template-hash: 5d8f, linkerd.io/control-plane-ns: linkerd}
  annotations: {config.linkerd.io/opaque-ports: "3306"}
  ownerReferences:
  - {apiVersion: apps/v1, kind: ReplicaSet, name: web-5d8f, uid: r1, controller: true}
spec: {serviceAccountName: web}
status: {phase: Running, podIP: 10.1.0.2}
`)
	s.expect(`
add {namespace=emojivoto,service=web}
  ` + web2)
	// The Service marks its port 80 opaque: every endpoint is.
	e.apply(`
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: emojivoto
  annotations: {config.linkerd.io/opaque-ports: "80"}
spec:
  clusterIP: 10.96.0.10
  clusterIPs: [10.96.0.10]
  ports: [{name: http, port: 80, targetPort: http}]
`)
	s.expect(`
add {namespace=emojivoto,service=web}
  10.1.0.2:8080 id=` + webID + ` opaque(4143) {deployment=web,pod=web-2,pod_template_hash=5d8f,serviceaccount=web,zone=zone-b}`)
}

func TestSharedWatcherReleased(t *testing.T) {
	e := newEnv(t, defaultConfig(), "emojivoto.yaml")
	a := e.get("web.emojivoto.svc.cluster.local:80")
	b := e.get("web.emojivoto.svc.cluster.local:80")
	p := e.getProfile("web.emojivoto.svc.cluster.local:80", "")
	if n, _ := e.index.WatcherCount(); n != 1 {
		t.Fatalf("%d endpoint watchers for one target, want 1", n)
	}
	a.next()
	b.next()
	p.next()
	e.remove("EndpointSlice", "emojivoto", "web-a")
	a.expect(`remove 10.1.0.1:8080`)
	b.expect(`remove 10.1.0.1:8080`)
	a.close()
	e.remove("Service", "emojivoto", "web")
	b.expect("does_not_exist")
	b.close()
	p.close()
	if n, m := e.index.WatcherCount(); n != 0 || m != 0 {
		t.Fatalf("%d endpoint and %d profile watchers left, want none", n, m)
	}
	if n := e.index.depCount(); n != 0 {
		t.Fatalf("%d dependencies left recorded, want none", n)
	}
	if got := testutil.ToFloat64(e.metrics.Watchers.WithLabelValues("get")); got != 0 {
		t.Fatalf("watchers gauge %v, want 0", got)
	}
}

func TestSlowStreamIsReset(t *testing.T) {
	cfg := defaultConfig()
	cfg.QueueSize = 1
	e := newEnv(t, cfg, "emojivoto.yaml")
	slow := e.get("web.emojivoto.svc.cluster.local:80")
	fast := e.get("web.emojivoto.svc.cluster.local:80")
	fast.next()
	// slow never reads: its initial add and one update fit, the second
	// update overflows its queue.
	e.remove("EndpointSlice", "emojivoto", "web-a")
	fast.expect(`remove 10.1.0.1:8080`)
	e.remove("EndpointSlice", "emojivoto", "web-b")
	fast.expect(`no_endpoints`)
	// The fast stream may read its update before the same publish reaches
	// the slow one: wait for the reset (bounded against a hang).
	select {
	case <-slow.sub.Reset():
	case <-time.After(10 * time.Second):
		t.Fatal("the slow stream was not reset")
	}
	if got := testutil.ToFloat64(e.metrics.StreamResets.WithLabelValues("get")); got != 1 {
		t.Fatalf("resets %v, want 1", got)
	}
	// The fast stream carries on.
	e.remove("Service", "emojivoto", "web")
	fast.expect(`does_not_exist`)
}

// webSlice returns an EndpointSlice of Service web (port "http", 8080) whose
// endpoints are the YAML list items given (or " []").
func webSlice(name, endpoints string) string {
	return `
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: ` + name + `
  namespace: emojivoto
  labels: {kubernetes.io/service-name: web}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints:` + endpoints
}

// A Server with proxyProtocol opaque makes the ports it takes opaque, as
// the annotation does: endpoints are reached through the proxy's inbound
// port, a pod IP's profile is opaque; the change reaches open streams both
// ways, and a Server that declares another protocol changes nothing.
func TestServerDeclaredOpaque(t *testing.T) {
	e := newEnv(t, defaultConfig(), "emojivoto.yaml")
	eps := e.get("web.emojivoto.svc.cluster.local:80")
	eps.expect("add {namespace=emojivoto,service=web}\n  " + web1 + "\n  " + web2)
	prof := e.getProfile("10.1.0.1:8080", "")
	prof.expect(`
profile "" opaque=false budget=0.2/10/10s
  endpoint 10.1.0.1:8080 id=` + webID + ` h2 {deployment=web,pod=web-1,pod_template_hash=5d8f,serviceaccount=web}`)

	server := func(protocol string) string {
		return `
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: web-http, namespace: emojivoto}
spec:
  podSelector: {matchLabels: {app: web}}
  port: http
  proxyProtocol: ` + protocol
	}
	e.apply(server("opaque"))
	opaque1 := "10.1.0.1:8080 id=" + webID + " opaque(4143) {deployment=web,pod=web-1,pod_template_hash=5d8f,serviceaccount=web,zone=zone-a}"
	opaque2 := "10.1.0.2:8080 id=" + webID + " opaque(4143) {deployment=web,pod=web-2,pod_template_hash=5d8f,serviceaccount=web,zone=zone-b}"
	eps.expect("add {namespace=emojivoto,service=web}\n  " + opaque1 + "\n  " + opaque2)
	prof.expect(`
profile "" opaque=true budget=0.2/10/10s
  endpoint 10.1.0.1:8080 id=` + webID + ` opaque(4143) {deployment=web,pod=web-1,pod_template_hash=5d8f,serviceaccount=web}`)

	e.apply(server("HTTP/1"))
	eps.expect("add {namespace=emojivoto,service=web}\n  " + web1 + "\n  " + web2)
	prof.expect(`
profile "" opaque=false budget=0.2/10/10s
  endpoint 10.1.0.1:8080 id=` + webID + ` h2 {deployment=web,pod=web-1,pod_template_hash=5d8f,serviceaccount=web}`)

	e.apply(server("opaque"))
	eps.expect("add {namespace=emojivoto,service=web}\n  " + opaque1 + "\n  " + opaque2)
	e.remove("Server", "emojivoto", "web-http")
	eps.expect("add {namespace=emojivoto,service=web}\n  " + web1 + "\n  " + web2)
}
