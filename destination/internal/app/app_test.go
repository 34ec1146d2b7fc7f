package app

import (
	"context"
	"io"
	"maps"
	"net"
	"net/http"
	"testing"

	"github.com/go-logr/logr/testr"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	metadatafake "k8s.io/client-go/metadata/fake"

	destinationv1 "github.com/linkerd-go/linkerd-go/api/linkerd/destination/v1"
	policyv1 "github.com/linkerd-go/linkerd-go/api/linkerd/policy/v1"
	"github.com/linkerd-go/linkerd-go/destination/internal/k8s"
	"github.com/linkerd-go/linkerd-go/destination/internal/profile"
)

func TestFlags(t *testing.T) {
	cfg, err := ParseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.IdentityAddr != "linkerd-identity-headless.linkerd.svc.cluster.local:8080" ||
		cfg.IdentityServerName != "linkerd-identity.linkerd.serviceaccount.identity.linkerd.cluster.local" ||
		cfg.OwnName().String() != "linkerd-destination.linkerd.serviceaccount.identity.linkerd.cluster.local" ||
		cfg.InsecurePlaintextGRPC || cfg.PolicyAddr != ":8090" || cfg.DefaultInboundPolicy != "all-unauthenticated" {
		t.Fatalf("defaults: %+v", cfg)
	}
	for _, bad := range [][]string{
		{"--default-opaque-ports=80,,81"},
		{"--stream-queue-size=0"},
		{"--log-format=xml"},
		{"--log-level=loud"},
		{"--identity-service-account=a.b"},
		{"--identity-token-file="},
		{"--default-inbound-policy=allow"},
		{"--cluster-networks=10.0.0.0/8,bogus"},
		{"--probe-networks=::/129"},
		{"--policy-addr="},
		{"extra"},
	} {
		if _, err := ParseFlags(bad, io.Discard); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// fakeDeps are fake clients holding pod ns/web-1, and loopback listeners.
func fakeDeps(t *testing.T) Deps {
	t.Helper()
	d := Deps{Log: testr.New(t), Kube: fake.NewClientset(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "ns"}})}
	metaScheme := metadatafake.NewTestScheme()
	if err := metav1.AddMetaToScheme(metaScheme); err != nil {
		t.Fatal(err)
	}
	d.Metadata = metadatafake.NewSimpleMetadataClient(metaScheme)
	listKinds := map[schema.GroupVersionResource]string{profile.GVR: "ServiceProfileList"}
	maps.Copy(listKinds, k8s.PolicyGVRs)
	d.Dynamic = dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), listKinds)
	for _, l := range []*net.Listener{&d.GRPCListener, &d.PolicyListener, &d.AdminListener} {
		var err error
		if *l, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// TestServe runs destination over fake clients in plaintext and checks the
// admin endpoints, the gRPC status codes and shutdown.
func TestServe(t *testing.T) {
	d := fakeDeps(t)
	kube, meta, dyn := d.Kube, d.Metadata, d.Dynamic
	grpcLis, policyLis, adminLis := d.GRPCListener, d.PolicyListener, d.AdminListener
	cfg, err := ParseFlags([]string{"--insecure-plaintext-grpc", "--default-inbound-policy=deny"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- newAndRun(ctx, cfg, Deps{Log: testr.New(t), Kube: kube, Metadata: meta, Dynamic: dyn, GRPCListener: grpcLis, PolicyListener: policyLis, AdminListener: adminLis})
	}()
	conn, err := grpc.NewClient(grpcLis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := destinationv1.NewDestinationServiceClient(conn)

	// The server serves once its caches have synced: the first call waits
	// for it, and then destination is ready.
	s, err := client.Get(context.Background(), &destinationv1.GetRequest{Path: "web.ns.svc.cluster.local:80"}, grpc.WaitForReady(true))
	if err != nil {
		t.Fatal(err)
	}
	if m, err := s.Recv(); err != nil || m.GetDoesNotExist() == nil {
		t.Fatalf("first update %v, %v; want DoesNotExist", m, err)
	}
	admin := "http://" + adminLis.Addr().String()
	for _, path := range []string{"/ready", "/live", "/metrics"} {
		rsp, err := http.Get(admin + path)
		if err != nil {
			t.Fatal(err)
		}
		rsp.Body.Close()
		if rsp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %s", path, rsp.Status)
		}
	}

	bad, err := client.Get(context.Background(), &destinationv1.GetRequest{Path: "example.com:80"})
	if err == nil {
		_, err = bad.Recv()
	}
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("bad path: %v, want InvalidArgument", err)
	}

	p, err := client.GetProfile(context.Background(), &destinationv1.GetProfileRequest{Path: "10.0.0.1:3306", ContextToken: "not json"})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := p.Recv(); err != nil || !m.GetProfile().GetOpaqueProtocol() {
		t.Fatalf("profile %v, %v; want opaque by default", m, err)
	}

	// The policy API on its own port: the configured default, and the
	// status codes of bad requests.
	pconn, err := grpc.NewClient(policyLis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer pconn.Close()
	pclient := policyv1.NewInboundPolicyServiceClient(pconn)
	watch := func(ns, pod string, port uint32) (grpc.ServerStreamingClient[policyv1.WatchPortResponse], *policyv1.WatchPortResponse, error) {
		w, err := pclient.WatchPort(context.Background(), &policyv1.WatchPortRequest{
			Workload: &policyv1.Workload{Kind: &policyv1.Workload_Pod{Pod: &policyv1.Workload_PodRef{Namespace: ns, Name: pod}}}, Port: port,
		}, grpc.WaitForReady(true))
		if err != nil {
			return nil, nil, err
		}
		m, err := w.Recv()
		return w, m, err
	}
	ws, m, err := watch("ns", "web-1", 8080)
	if err != nil || m.GetServer().GetLabels()["name"] != "deny" {
		t.Fatalf("policy %v, %v; want the deny default", m, err)
	}
	for _, bad := range []struct {
		ns, pod string
		port    uint32
		want    codes.Code
	}{
		{"ns", "nope", 8080, codes.NotFound},
		{"ns", "web-1", 0, codes.InvalidArgument},
		{"ns", "web-1", 70000, codes.InvalidArgument},
		{"NS", "web-1", 80, codes.InvalidArgument},
		{"ns", "", 80, codes.InvalidArgument},
	} {
		if _, _, err := watch(bad.ns, bad.pod, bad.port); status.Code(err) != bad.want {
			t.Errorf("WatchPort %s/%s:%d: %v, want %v", bad.ns, bad.pod, bad.port, err, bad.want)
		}
	}

	// Shutdown ends open streams with UNAVAILABLE.
	cancel()
	if _, err := s.Recv(); status.Code(err) != codes.Unavailable {
		t.Fatalf("stream at shutdown: %v, want Unavailable", err)
	}
	if _, err := ws.Recv(); status.Code(err) != codes.Unavailable {
		t.Fatalf("policy stream at shutdown: %v, want Unavailable", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// newAndRun is New then Run, for tests that wait for Run's result.
func newAndRun(ctx context.Context, cfg Config, d Deps) error {
	a, err := New(cfg, d)
	if err != nil {
		return err
	}
	return a.Run(ctx)
}
