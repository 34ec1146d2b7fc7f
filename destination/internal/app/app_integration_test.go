//go:build integration

package app

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	destinationv1 "github.com/linkerd-go/linkerd-go/api/linkerd/destination/v1"
	"github.com/linkerd-go/linkerd-go/destination/internal/profile"
	"github.com/linkerd-go/linkerd-go/destination/internal/updatetest"
	"github.com/linkerd-go/linkerd-go/tools/testkit/kubetest"
)

const crdDir = "../../../deploy/charts/linkerd-crds/templates"

// waitFor bounds each wait for an expected update; a passing run never
// reaches it.
const waitFor = 30 * time.Second

var shared *kubetest.Env

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	env, err := kubetest.StartEnv(ctx, kubetest.Options{CRDDirs: []string{crdDir}})
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	shared = env
	code := m.Run()
	if err := env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.Exit(code)
}

// running is destination started by Run against a real API server.
type running struct {
	t      *testing.T
	kube   kubernetes.Interface
	dyn    dynamic.Interface
	conn   *grpc.ClientConn
	policy *grpc.ClientConn
	admin  string
	ns     string
}

// startDestination runs destination (plaintext gRPC) against cfg's API
// server until the test ends, and creates a namespace for the test.
func startDestination(t *testing.T, rc *rest.Config) *running {
	t.Helper()
	return startDestinationWith(t, rc, nil)
}

// startDestinationWith is startDestination with more flags; an
// --admission-addr flag serves the policy validator on admission (a
// listener the test bound).
func startDestinationWith(t *testing.T, rc *rest.Config, admission net.Listener, flags ...string) *running {
	t.Helper()
	r := &running{t: t, ns: strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))}
	kube, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	meta, err := metadata.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	if r.dyn, err = dynamic.NewForConfig(rc); err != nil {
		t.Fatal(err)
	}
	r.kube = kube
	grpcLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	adminLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	policyLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.admin = "http://" + adminLis.Addr().String()
	cfg, err := ParseFlags(append([]string{"--insecure-plaintext-grpc", "--shutdown-timeout=5s"}, flags...), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- newAndRun(ctx, cfg, Deps{Log: testr.New(t), Kube: kube, Metadata: meta, Dynamic: r.dyn, Registry: prometheus.NewRegistry(), GRPCListener: grpcLis, PolicyListener: policyLis, AdminListener: adminLis, AdmissionListener: admission})
	}()
	r.conn, err = grpc.NewClient(grpcLis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	r.policy, err = grpc.NewClient(policyLis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.policy.Close()
		r.conn.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	r.create(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: r.ns}})
	return r
}

func (r *running) check(err error) {
	r.t.Helper()
	if err != nil {
		r.t.Fatal(err)
	}
}

func (r *running) create(obj any) {
	r.t.Helper()
	ctx := context.Background()
	var err error
	switch o := obj.(type) {
	case *corev1.Namespace:
		_, err = r.kube.CoreV1().Namespaces().Create(ctx, o, metav1.CreateOptions{})
	case *corev1.Service:
		_, err = r.kube.CoreV1().Services(r.ns).Create(ctx, o, metav1.CreateOptions{})
	case *discoveryv1.EndpointSlice:
		_, err = r.kube.DiscoveryV1().EndpointSlices(r.ns).Create(ctx, o, metav1.CreateOptions{})
	case *corev1.Pod:
		// Status is set apart, as the kubelet would.
		st := o.Status
		var p *corev1.Pod
		if p, err = r.kube.CoreV1().Pods(r.ns).Create(ctx, o, metav1.CreateOptions{}); err == nil {
			p.Status = st
			_, err = r.kube.CoreV1().Pods(r.ns).UpdateStatus(ctx, p, metav1.UpdateOptions{})
		}
	default:
		r.t.Fatalf("cannot create %T", obj)
	}
	r.check(err)
}

func (r *running) updateSlice(s *discoveryv1.EndpointSlice) {
	r.t.Helper()
	cur, err := r.kube.DiscoveryV1().EndpointSlices(r.ns).Get(context.Background(), s.Name, metav1.GetOptions{})
	r.check(err)
	s.ResourceVersion = cur.ResourceVersion
	_, err = r.kube.DiscoveryV1().EndpointSlices(r.ns).Update(context.Background(), s, metav1.UpdateOptions{})
	r.check(err)
}

// waitReady waits until destination serves (it does once its caches have
// synced), and checks that it then says it is ready.
func (r *running) waitReady() {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	s, err := destinationv1.NewDestinationServiceClient(r.conn).GetProfile(ctx, &destinationv1.GetProfileRequest{Path: "192.0.2.1:80"}, grpc.WaitForReady(true))
	r.check(err)
	_, err = s.Recv()
	r.check(err)
	rsp, err := http.Get(r.admin + "/ready")
	r.check(err)
	rsp.Body.Close()
	if rsp.StatusCode != http.StatusOK {
		r.t.Fatalf("/ready: %s", rsp.Status)
	}
}

func (r *running) get(path string) grpc.ServerStreamingClient[destinationv1.GetResponse] {
	r.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r.t.Cleanup(cancel)
	s, err := destinationv1.NewDestinationServiceClient(r.conn).Get(ctx, &destinationv1.GetRequest{Path: path})
	r.check(err)
	return s
}

func (r *running) getProfile(path, clientNS string) grpc.ServerStreamingClient[destinationv1.GetProfileResponse] {
	r.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r.t.Cleanup(cancel)
	s, err := destinationv1.NewDestinationServiceClient(r.conn).GetProfile(ctx, &destinationv1.GetProfileRequest{
		Path: path, ContextToken: destinationv1.ContextToken{Namespace: clientNS}.Encode(),
	})
	r.check(err)
	return s
}

// expect receives the next message of a stream and compares it.
func expect[M any](t *testing.T, s grpc.ServerStreamingClient[M], want string) {
	t.Helper()
	type result struct {
		m   *M
		err error
	}
	ch := make(chan result, 1)
	go func() {
		m, err := s.Recv()
		ch <- result{m, err}
	}()
	select {
	case res := <-ch:
		if res.err != nil {
			t.Fatalf("Recv: %v", res.err)
		}
		got := updatetest.Describe(any(res.m))
		if strings.TrimSpace(got) != strings.TrimSpace(want) {
			t.Fatalf("update:\n%s\nwant:\n%s", got, strings.TrimSpace(want))
		}
	case <-time.After(waitFor):
		t.Fatal("no update arrived")
	}
}

func pod(name, ip string, meshed bool) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{
			ServiceAccountName: "web",
			Containers:         []corev1.Container{{Name: "app", Image: "web", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}},
		},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}},
	}
	if meshed {
		p.Labels["linkerd.io/control-plane-ns"] = "linkerd"
	}
	return p
}

type ep struct {
	ip, pod string
	ready   bool
}

func slice(name string, eps ...ep) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080), Protocol: ptr.To(corev1.ProtocolTCP)}},
	}
	for _, e := range eps {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{e.ip},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(e.ready)},
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Name: e.pod},
		})
	}
	return s
}

func webService() *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}}},
	}
}

func TestGetAndGetProfileAgainstAPIServer(t *testing.T) {
	r := startDestination(t, shared.Config)
	r.waitReady()
	ns := r.ns
	id := "web." + ns + ".serviceaccount.identity.linkerd.cluster.local"
	line := func(ip, pod string) string {
		return ip + ":8080 id=" + id + " h2 {pod=" + pod + ",serviceaccount=web}"
	}
	path := "web." + ns + ".svc.cluster.local:80"

	s := r.get(path)
	expect(t, s, "does_not_exist")

	r.create(pod("web-1", "10.2.0.1", true))
	r.create(pod("web-2", "10.2.0.2", true))
	r.create(webService())
	expect(t, s, "no_endpoints")

	r.create(slice("web-a", ep{"10.2.0.1", "web-1", true}))
	expect(t, s, "add {namespace="+ns+",service=web}\n  "+line("10.2.0.1", "web-1"))

	// A second slice: scale-up.
	r.create(slice("web-b", ep{"10.2.0.2", "web-2", true}))
	expect(t, s, "add {namespace="+ns+",service=web}\n  "+line("10.2.0.2", "web-2"))

	// web-1 becomes not ready.
	r.updateSlice(slice("web-a", ep{"10.2.0.1", "web-1", false}))
	expect(t, s, "remove 10.2.0.1:8080")

	// A cluster IP stream sees the same endpoints.
	svc, err := r.kube.CoreV1().Services(ns).Get(context.Background(), "web", metav1.GetOptions{})
	r.check(err)
	expect(t, r.get(svc.Spec.ClusterIP+":80"), "add {namespace="+ns+",service=web}\n  "+line("10.2.0.2", "web-2"))

	// A pod IP stream.
	expect(t, r.get("10.2.0.1:8080"), "add {namespace="+ns+"}\n  "+line("10.2.0.1", "web-1"))

	// The Service goes away and comes back.
	r.check(r.kube.CoreV1().Services(ns).Delete(context.Background(), "web", metav1.DeleteOptions{}))
	expect(t, s, "does_not_exist")
	r.create(webService())
	expect(t, s, "add {namespace="+ns+",service=web}\n  "+line("10.2.0.2", "web-2"))

	// Profiles: defaults, then a ServiceProfile created, updated, deleted.
	p := r.getProfile(path, "")
	fqdn := "web." + ns + ".svc.cluster.local"
	expect(t, p, `profile "`+fqdn+`" opaque=false budget=0.2/10/10s`)
	spRes := r.dyn.Resource(profile.GVR).Namespace(ns)
	sp := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "linkerd.io/v1alpha2", "kind": "ServiceProfile",
		"metadata": map[string]any{"name": fqdn},
		"spec": map[string]any{
			"routes": []any{map[string]any{
				"name": "GET /books", "condition": map[string]any{"method": "GET", "pathRegex": "/books"},
				"responseClasses": []any{map[string]any{"condition": map[string]any{"status": map[string]any{"min": int64(500)}}, "isFailure": true}},
				"isRetryable":     true, "timeout": "250ms",
			}},
			"dstOverrides": []any{map[string]any{"authority": "web-v2:80", "weight": "500m"}},
		},
	}}
	created, err := spRes.Create(context.Background(), sp, metav1.CreateOptions{})
	r.check(err)
	expect(t, p, `
profile "`+fqdn+`" opaque=false budget=0.2/10/10s
  route "GET /books" retryable=true timeout=250ms classes=1
  split web-v2:80 5000`)
	r.check(unstructured.SetNestedField(created.Object, map[string]any{"retryRatio": 0.5, "minRetriesPerSecond": int64(2), "ttl": "30s"}, "spec", "retryBudget"))
	_, err = spRes.Update(context.Background(), created, metav1.UpdateOptions{})
	r.check(err)
	expect(t, p, `
profile "`+fqdn+`" opaque=false budget=0.5/2/30s
  route "GET /books" retryable=true timeout=250ms classes=1
  split web-v2:80 5000`)
	r.check(spRes.Delete(context.Background(), fqdn, metav1.DeleteOptions{}))
	expect(t, p, `profile "`+fqdn+`" opaque=false budget=0.2/10/10s`)

	// The metrics show the open streams.
	r.expectMetrics(`destination_streams_open{rpc="get"} 3`, `destination_streams_open{rpc="get_profile"} 1`, `grpc_server_started_total{grpc_method="Get"`)
}

// expectMetrics checks that /metrics has lines containing each of wants.
func (r *running) expectMetrics(wants ...string) {
	r.t.Helper()
	rsp, err := http.Get(r.admin + "/metrics")
	r.check(err)
	body, _ := io.ReadAll(rsp.Body)
	rsp.Body.Close()
	for _, want := range wants {
		if !strings.Contains(string(body), want) {
			r.t.Errorf("metrics lack %q", want)
		}
	}
}

func TestKeepsServingWhenTheAPIServerGoesAway(t *testing.T) {
	env := kubetest.Start(t, kubetest.Options{CRDDirs: []string{crdDir}})
	r := startDestination(t, env.Config)
	r.waitReady()
	r.create(pod("web-1", "10.3.0.1", false))
	r.create(webService())
	r.create(slice("web-a", ep{"10.3.0.1", "web-1", true}))
	path := "web." + r.ns + ".svc.cluster.local:80"
	wantNS := "add {namespace=" + r.ns + ",service=web}\n  10.3.0.1:8080 {pod=web-1,serviceaccount=web}"
	s := r.get(path)
	for {
		m, err := s.Recv()
		r.check(err)
		if m.GetAdd() != nil {
			if got := updatetest.Describe(m); strings.TrimSpace(got) != wantNS {
				t.Fatalf("update:\n%s\nwant:\n%s", got, wantNS)
			}
			break
		}
	}

	// The API server and etcd stop: a new stream still gets the last state,
	// the old one stays open, and destination stays ready.
	r.check(env.Stop())
	expect(t, r.get(path), wantNS)
	r.waitReady()
	probe := make(chan error, 1)
	go func() { _, err := s.Recv(); probe <- err }()
	select {
	case err := <-probe:
		t.Fatalf("the open stream ended: %v", err)
	default:
	}
}
