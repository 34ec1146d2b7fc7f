package discovery

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	destinationv1 "github.com/linkerd-go/linkerd-go/api/linkerd/destination/v1"
	"github.com/linkerd-go/linkerd-go/tools/testkit/clocktest"
)

// hangGuard bounds every wait of the tests, so that a bug fails a test
// instead of hanging it; it never decides a pass.
const hangGuard = 30 * time.Second

// fakeStream is one call to the fake server, driven by the test.
type fakeStream[Req, Resp any] struct {
	req  *Req
	send chan *Resp
	end  chan error
	done chan struct{} // closed when the handler returned
}

// serve forwards what the test sends until the test ends the call or the
// client goes away.
func (s *fakeStream[Req, Resp]) serve(ctx context.Context, sendMsg func(*Resp) error) error {
	defer close(s.done)
	for {
		select {
		case m := <-s.send:
			if err := sendMsg(m); err != nil {
				return err
			}
		case err := <-s.end:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func newFakeStream[Req, Resp any](req *Req) *fakeStream[Req, Resp] {
	return &fakeStream[Req, Resp]{req: req, send: make(chan *Resp, 64), end: make(chan error, 1), done: make(chan struct{})}
}

type (
	fakeGetStream     = fakeStream[destinationv1.GetRequest, destinationv1.GetResponse]
	fakeProfileStream = fakeStream[destinationv1.GetProfileRequest, destinationv1.GetProfileResponse]
)

// fakeDestination is a DestinationService whose streams the test drives.
type fakeDestination struct {
	destinationv1.UnimplementedDestinationServiceServer
	gets     chan *fakeGetStream
	profiles chan *fakeProfileStream
}

func (f *fakeDestination) Get(req *destinationv1.GetRequest, stream grpc.ServerStreamingServer[destinationv1.GetResponse]) error {
	s := newFakeStream[destinationv1.GetRequest, destinationv1.GetResponse](req)
	f.gets <- s
	return s.serve(stream.Context(), stream.Send)
}

func (f *fakeDestination) GetProfile(req *destinationv1.GetProfileRequest, stream grpc.ServerStreamingServer[destinationv1.GetProfileResponse]) error {
	s := newFakeStream[destinationv1.GetProfileRequest, destinationv1.GetProfileResponse](req)
	f.profiles <- s
	return s.serve(stream.Context(), stream.Send)
}

// env is a Client connected over loopback gRPC to a fake destination service.
type env struct {
	t      *testing.T
	srv    *grpc.Server
	fake   *fakeDestination
	clock  *clocktest.Clock
	reg    *prometheus.Registry
	client *Client
	opts   Options
	addr   string // the server's
}

const testToken = `{"ns":"client-ns","pod":"client-0"}`

func newEnv(t *testing.T, opts Options) *env {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &env{
		t:     t,
		srv:   grpc.NewServer(),
		fake:  &fakeDestination{gets: make(chan *fakeGetStream, 64), profiles: make(chan *fakeProfileStream, 64)},
		clock: clocktest.New(time.Unix(1_000_000, 0)),
		reg:   prometheus.NewRegistry(),
	}
	destinationv1.RegisterDestinationServiceServer(e.srv, e.fake)
	serveDone := make(chan struct{})
	go func() {
		defer close(serveDone)
		_ = e.srv.Serve(lis)
	}()
	e.addr = lis.Addr().String()
	conn, err := grpc.NewClient("passthrough:///"+e.addr, channelOptions(insecure.NewCredentials())...)
	if err != nil {
		t.Fatal(err)
	}
	if opts.IdleTimeout == 0 {
		opts.IdleTimeout = time.Hour
	}
	if opts.BackoffBase == 0 {
		opts.BackoffBase = time.Second
	}
	if opts.BackoffMax == 0 {
		opts.BackoffMax = 8 * time.Second
	}
	if opts.ResyncSettle == 0 {
		opts.ResyncSettle = 2 * time.Second
	}
	opts.Clock = e.clock
	e.opts = opts
	e.client = New(conn, testToken, testr.New(t), e.reg, opts)
	t.Cleanup(func() {
		e.client.Close()
		_ = conn.Close()
		e.srv.Stop()
		<-serveDone
	})
	return e
}

// restart stops the destination server and starts a new one on the same
// address, with the same fake behind it.
func (e *env) restart() {
	e.t.Helper()
	e.srv.Stop()
	lis, err := net.Listen("tcp", e.addr)
	if err != nil {
		e.t.Fatal(err)
	}
	srv := grpc.NewServer()
	destinationv1.RegisterDestinationServiceServer(srv, e.fake)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(lis)
	}()
	e.srv = srv
	e.t.Cleanup(func() { srv.Stop(); <-done })
}

// nextGet waits for the next Get call.
func (e *env) nextGet() *fakeGetStream {
	e.t.Helper()
	select {
	case s := <-e.fake.gets:
		return s
	case <-time.After(hangGuard):
		e.t.Fatal("no Get call")
		return nil
	}
}

// nextProfile waits for the next GetProfile call.
func (e *env) nextProfile() *fakeProfileStream {
	e.t.Helper()
	select {
	case s := <-e.fake.profiles:
		return s
	case <-time.After(hangGuard):
		e.t.Fatal("no GetProfile call")
		return nil
	}
}

// metric returns the value of a metric of the kind.
func (e *env) metric(name string, k kind) float64 {
	e.t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "kind" && l.GetValue() == k.String() {
					if m.GetGauge() != nil {
						return m.GetGauge().GetValue()
					}
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// waitDone waits for a server-side stream to end.
func waitDone(t *testing.T, done <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(hangGuard):
		t.Fatalf("%s did not end", what)
	}
}

// waitSnap waits until the watch's snapshot satisfies ok, and returns it.
func waitSnap(t *testing.T, w *Watch, what string, ok func(Snapshot) bool) Snapshot {
	t.Helper()
	guard := time.After(hangGuard)
	for {
		ch := w.Changed()
		s := w.Snapshot()
		if ok(s) {
			return s
		}
		select {
		case <-ch:
		case <-guard:
			t.Fatalf("waiting for %s; snapshot %+v", what, s)
		}
	}
}

// waitProfile waits until the profile watch satisfies ok.
func waitProfile(t *testing.T, w *ProfileWatch, what string, ok func(*ProfileWatch) bool) *Profile {
	t.Helper()
	guard := time.After(hangGuard)
	for {
		ch := w.Changed()
		if ok(w) {
			return w.Snapshot()
		}
		select {
		case <-ch:
		case <-guard:
			t.Fatalf("waiting for %s; profile %+v", what, w.Snapshot())
		}
	}
}
