package app

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/go-logr/logr/testr"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	metadatafake "k8s.io/client-go/metadata/fake"

	destinationv1 "github.com/linkerd-go/linkerd-go/api/linkerd/destination/v1"
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
		cfg.InsecurePlaintextGRPC {
		t.Fatalf("defaults: %+v", cfg)
	}
	for _, bad := range [][]string{
		{"--default-opaque-ports=80,,81"},
		{"--stream-queue-size=0"},
		{"--log-format=xml"},
		{"--log-level=loud"},
		{"--identity-service-account=a.b"},
		{"--identity-token-file="},
		{"extra"},
	} {
		if _, err := ParseFlags(bad, io.Discard); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestServe runs destination over fake clients in plaintext and checks the
// admin endpoints, the gRPC status codes and shutdown.
func TestServe(t *testing.T) {
	kube := fake.NewClientset()
	metaScheme := metadatafake.NewTestScheme()
	if err := metav1.AddMetaToScheme(metaScheme); err != nil {
		t.Fatal(err)
	}
	meta := metadatafake.NewSimpleMetadataClient(metaScheme)
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
		profile.GVR: "ServiceProfileList",
	})
	grpcLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	adminLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseFlags([]string{"--insecure-plaintext-grpc"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, cfg, Deps{Log: testr.New(t), Kube: kube, Metadata: meta, Dynamic: dyn, GRPCListener: grpcLis, AdminListener: adminLis})
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

	// Shutdown ends open streams with UNAVAILABLE.
	cancel()
	if _, err := s.Recv(); status.Code(err) != codes.Unavailable {
		t.Fatalf("stream at shutdown: %v, want Unavailable", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
