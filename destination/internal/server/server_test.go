package server

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/go-logr/logr/testr"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	destinationv1 "github.com/linkerd-go/linkerd-go/api/linkerd/destination/v1"
	"github.com/linkerd-go/linkerd-go/destination/internal/discovery"
	"github.com/linkerd-go/linkerd-go/destination/internal/metrics"
	"github.com/linkerd-go/linkerd-go/destination/internal/subscription"
	"github.com/linkerd-go/linkerd-go/destination/internal/target"
	"github.com/linkerd-go/linkerd-go/destination/internal/updatetest"
)

// fakeSource serves fixed initial states and lets the test push changes.
type fakeSource struct {
	mu        sync.Mutex
	endpoints map[target.Target]*subscription.Queue[*discovery.EndpointUpdate]
	profiles  map[string]*subscription.Queue[*discovery.Profile] // by client namespace
	opened    chan target.Target
	released  chan target.Target
}

func newFakeSource() *fakeSource {
	return &fakeSource{
		endpoints: map[target.Target]*subscription.Queue[*discovery.EndpointUpdate]{},
		profiles:  map[string]*subscription.Queue[*discovery.Profile]{},
		opened:    make(chan target.Target, 8),
		released:  make(chan target.Target, 8),
	}
}

var web = []*discovery.Endpoint{{Addr: netip.MustParseAddrPort("198.18.0.1:8080"), Protocol: discovery.ProtocolHTTP2, Identity: "web.emojivoto.serviceaccount.identity.linkerd.cluster.local"}}

func (f *fakeSource) SubscribeEndpoints(t target.Target) (*subscription.Queue[*discovery.EndpointUpdate], func()) {
	q := subscription.NewQueue(4, []*discovery.EndpointUpdate{{Kind: discovery.Add, Endpoints: web, Labels: map[string]string{"service": t.Service}}})
	f.mu.Lock()
	f.endpoints[t] = q
	f.mu.Unlock()
	f.opened <- t
	return q, func() { f.released <- t }
}

func (f *fakeSource) SubscribeProfile(t target.Target, clientNS string) (*subscription.Queue[*discovery.Profile], func()) {
	fqdn := target.ServiceFQDN(t.Service, t.Namespace, "cluster.local")
	q := subscription.NewQueue(4, []*discovery.Profile{{FQDN: fqdn, Opaque: clientNS == "opaque-please"}})
	f.mu.Lock()
	f.profiles[clientNS] = q
	f.mu.Unlock()
	f.opened <- t
	return q, func() { f.released <- t }
}

func (f *fakeSource) push(t target.Target, u *discovery.EndpointUpdate) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.endpoints[t].TryPut(u)
}

// startServer starts a Server over src on loopback and returns a client.
func startServer(t *testing.T, src Source) (*Server, destinationv1.DestinationServiceClient) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := New(testr.New(t), src, metrics.New(prometheus.NewRegistry()), "cluster.local")
	g := grpc.NewServer()
	srv.Register(g)
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return srv, destinationv1.NewDestinationServiceClient(conn)
}

// A Get stream sends the source's updates in their wire form, in order,
// and releases its subscription when the client leaves.
func TestGetStreamsTranslatedUpdates(t *testing.T) {
	src := newFakeSource()
	_, client := startServer(t, src)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := client.Get(ctx, &destinationv1.GetRequest{Path: "web.emojivoto.svc.cluster.local:80"})
	if err != nil {
		t.Fatal(err)
	}
	recv := func() string {
		t.Helper()
		m, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(updatetest.Describe(m))
	}
	if got, want := recv(), "add {service=web}\n  198.18.0.1:8080 id=web.emojivoto.serviceaccount.identity.linkerd.cluster.local h2"; got != want {
		t.Errorf("first update:\n%s\nwant:\n%s", got, want)
	}
	tgt := <-src.opened
	src.push(tgt, &discovery.EndpointUpdate{Kind: discovery.Remove, Removed: []netip.AddrPort{web[0].Addr}})
	src.push(tgt, &discovery.EndpointUpdate{Kind: discovery.NoEndpoints})
	for _, want := range []string{"remove 198.18.0.1:8080", "no_endpoints"} {
		if got := recv(); got != want {
			t.Errorf("update %q, want %q", got, want)
		}
	}
	cancel()
	if got := <-src.released; got != tgt {
		t.Errorf("released %v, want %v", got, tgt)
	}
}

func TestGetProfileTranslates(t *testing.T) {
	src := newFakeSource()
	_, client := startServer(t, src)
	stream, err := client.GetProfile(context.Background(), &destinationv1.GetProfileRequest{Path: "web.emojivoto.svc.cluster.local:80", ContextToken: `{"ns":"opaque-please"}`})
	if err != nil {
		t.Fatal(err)
	}
	m, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.TrimSpace(updatetest.Describe(m)), `profile "web.emojivoto.svc.cluster.local" opaque=true budget=0.2/10/10s`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

// A path that is not a destination is refused before the source is asked.
func TestBadPathRefused(t *testing.T) {
	src := newFakeSource()
	_, client := startServer(t, src)
	stream, err := client.Get(context.Background(), &destinationv1.GetRequest{Path: "not a path"})
	if err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("got %v, want InvalidArgument", err)
	}
	select {
	case tgt := <-src.opened:
		t.Errorf("the source was asked for %v", tgt)
	default:
	}
}

// Stop ends open streams with UNAVAILABLE, so that clients reconnect to
// another replica.
func TestStopEndsStreams(t *testing.T) {
	src := newFakeSource()
	srv, client := startServer(t, src)
	stream, err := client.Get(context.Background(), &destinationv1.GetRequest{Path: "web.emojivoto.svc.cluster.local:80"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	if _, err := stream.Recv(); status.Code(err) != codes.Unavailable {
		t.Errorf("after Stop: %v, want UNAVAILABLE", err)
	}
	<-src.released
}
