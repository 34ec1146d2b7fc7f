package policy

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	policyv1 "github.com/linkerd-go/linkerd-go/api/linkerd/policy/v1"
	"github.com/linkerd-go/linkerd-go/tools/testkit/clocktest"
)

// hangGuard turns a hang into a failure; it never decides a pass.
const hangGuard = 30 * time.Second

// fakePolicy is a policy service the test drives: each WatchPort call is
// handed to the test, which sends policies or ends the stream.
type fakePolicy struct {
	policyv1.UnimplementedInboundPolicyServiceServer
	calls chan *call
}

type call struct {
	req  *policyv1.WatchPortRequest
	send chan *policyv1.Server
	end  chan error
}

func (f *fakePolicy) WatchPort(req *policyv1.WatchPortRequest, st grpc.ServerStreamingServer[policyv1.WatchPortResponse]) error {
	c := &call{req: req, send: make(chan *policyv1.Server), end: make(chan error)}
	f.calls <- c
	for {
		select {
		case s := <-c.send:
			if err := st.Send(&policyv1.WatchPortResponse{Server: s}); err != nil {
				return err
			}
		case err := <-c.end:
			return err
		case <-st.Context().Done():
			return st.Context().Err()
		}
	}
}

func (f *fakePolicy) next(t *testing.T) *call {
	t.Helper()
	select {
	case c := <-f.calls:
		return c
	case <-time.After(hangGuard):
		t.Fatal("no WatchPort call")
		return nil
	}
}

type env struct {
	fake    *fakePolicy
	store   *Store
	clk     *clocktest.Clock
	updates chan string // port:server name, as the store stores them
}

func newEnv(t *testing.T, cfg Config) *env {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fake := &fakePolicy{calls: make(chan *call, 8)}
	srv := grpc.NewServer()
	policyv1.RegisterInboundPolicyServiceServer(srv, fake)
	go func() { _ = srv.Serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	clk := clocktest.New(time.Unix(1_000_000, 0))
	cfg.Clock = clk
	cfg.Namespace, cfg.Pod = "emojivoto", "web-1"
	if cfg.Default == nil {
		cfg.Default, _ = Default(DefaultDeny, nil)
	}
	store := NewStore(cfg, policyv1.NewInboundPolicyServiceClient(conn), prometheus.NewRegistry(), testr.New(t))
	updates := make(chan string, 16)
	store.onUpdate = func(port uint16, p *Port) { updates <- fmt.Sprintf("%d:%s", port, p.Server.Name) }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = store.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
		conn.Close()
		srv.Stop()
	})
	return &env{fake: fake, store: store, clk: clk, updates: updates}
}

func server(name string) *policyv1.Server {
	return &policyv1.Server{
		Labels:         map[string]string{"kind": "Server", "name": name},
		Authorizations: []*policyv1.Authorization{{Authentication: anyClient}},
	}
}

// waitFor sends s on c and waits until the store has stored it for port.
func (e *env) waitFor(t *testing.T, port uint16, name string, c *call, s *policyv1.Server) {
	t.Helper()
	select {
	case c.send <- s:
	case <-time.After(hangGuard):
		t.Fatal("the stream did not take the policy")
	}
	select {
	case got := <-e.updates:
		if want := fmt.Sprintf("%d:%s", port, name); got != want {
			t.Fatalf("stored %s, want %s", got, want)
		}
	case <-time.After(hangGuard):
		t.Fatal("the store did not take the policy")
	}
	if got := e.store.Port(port).Server.Name; got != name {
		t.Fatalf("port %d: policy %q, want %q", port, got, name)
	}
}

func TestDefaultThenDiscovered(t *testing.T) {
	e := newEnv(t, Config{Ports: []uint16{8080}})
	c := e.fake.next(t)
	if c.req.GetPort() != 8080 || c.req.GetWorkload().GetPod().GetName() != "web-1" || c.req.GetWorkload().GetPod().GetNamespace() != "emojivoto" {
		t.Fatalf("request %v", c.req)
	}
	if got := e.store.Port(8080).Server; got != (Labels{Kind: "default", Name: "deny"}) {
		t.Fatalf("before the first answer: %+v, want the default", got)
	}
	e.waitFor(t, 8080, "web-http", c, server("web-http"))
	select {
	case <-e.store.Discovered(8080):
	default:
		t.Error("Discovered not closed after the first policy")
	}
	// A change replaces the policy.
	e.waitFor(t, 8080, "web-http-v2", c, server("web-http-v2"))
}

// A broken stream keeps the last policy; the store reconnects after its
// backoff and takes what the new stream says.
func TestKeepsLastPolicyWhileDisconnected(t *testing.T) {
	e := newEnv(t, Config{Ports: []uint16{8080}})
	c := e.fake.next(t)
	e.waitFor(t, 8080, "web-http", c, server("web-http"))
	c.end <- status.Error(codes.Unavailable, "destination restarting")
	tm := e.clk.Next(t)
	if tm.D < time.Second/2 || tm.D > time.Second {
		t.Errorf("first backoff %v, want within [0.5s, 1s]", tm.D)
	}
	if got := e.store.Port(8080).Server.Name; got != "web-http" {
		t.Errorf("while disconnected: %q, want the last policy", got)
	}
	tm.Fire()
	c = e.fake.next(t)
	e.waitFor(t, 8080, "web-http-v3", c, server("web-http-v3"))
}

// A pod destination does not know yet keeps the default and is asked for
// again.
func TestNotFoundRetries(t *testing.T) {
	e := newEnv(t, Config{Ports: []uint16{8080}})
	for range 3 {
		c := e.fake.next(t)
		c.end <- status.Error(codes.NotFound, "no pod emojivoto/web-1")
		e.clk.Next(t).Fire()
	}
	if got := e.store.Port(8080).Server.Name; got != "deny" {
		t.Errorf("policy %q, want the default", got)
	}
	c := e.fake.next(t)
	e.waitFor(t, 8080, "web-http", c, server("web-http"))
}

// Ports not configured are watched from their first use; past MaxPorts a
// port keeps the default without a watch.
func TestLazyPortsAndBound(t *testing.T) {
	e := newEnv(t, Config{MaxPorts: 1})
	if got := e.store.Port(9090).Server.Name; got != "deny" {
		t.Errorf("first use: %q", got)
	}
	c := e.fake.next(t)
	if c.req.GetPort() != 9090 {
		t.Fatalf("watched port %d", c.req.GetPort())
	}
	e.waitFor(t, 9090, "metrics", c, server("metrics"))
	if got := e.store.Port(7070).Server.Name; got != "deny" || e.store.Discovered(7070) != nil {
		t.Errorf("port beyond the bound: %q, watched %v", got, e.store.Discovered(7070) != nil)
	}
	select {
	case c := <-e.fake.calls:
		t.Errorf("a port beyond the bound was watched: %v", c.req)
	default:
	}
}
