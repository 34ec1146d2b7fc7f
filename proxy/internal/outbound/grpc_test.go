package outbound

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/linkerd-go/linkerd-go/proxy/internal/discovery"
)

// testService answers unary calls with how much of the caller's deadline
// was left when the call arrived, and echoes full-duplex streams.
type testService struct {
	testgrpc.UnimplementedTestServiceServer
	held chan struct{} // told of each call held until its deadline
}

func (s testService) UnaryCall(ctx context.Context, req *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		return nil, status.Error(codes.FailedPrecondition, "no deadline arrived")
	}
	if req.GetResponseSize() > 0 {
		// Asked to outlive the deadline: wait for it.
		select {
		case s.held <- struct{}{}:
		default:
		}
		<-ctx.Done()
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	left := time.Until(deadline)
	return &testgrpc.SimpleResponse{Username: left.String()}, nil
}

func (testService) FullDuplexCall(stream grpc.BidiStreamingServer[testgrpc.StreamingOutputCallRequest, testgrpc.StreamingOutputCallResponse]) error {
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := stream.Send(&testgrpc.StreamingOutputCallResponse{Payload: req.GetPayload()}); err != nil {
			return err
		}
	}
}

// grpcFixture runs a gRPC server behind an inbound proxy and an outbound
// proxy whose discovery points at it, and returns a client of the outbound
// side, as an application's gRPC client would be redirected to it.
func grpcFixture(t *testing.T) testgrpc.TestServiceClient {
	client, _, _ := grpcFixtureWithMetrics(t)
	return client
}

// grpcFixtureWithMetrics is grpcFixture, with the outbound side's fixture
// and a channel told of each call the server holds.
func grpcFixtureWithMetrics(t *testing.T) (testgrpc.TestServiceClient, *fixture, <-chan struct{}) {
	t.Helper()
	f := newFixture(t, discovery.Snapshot{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	held := make(chan struct{}, 1)
	testgrpc.RegisterTestServiceServer(srv, testService{held: held})
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	app := netip.MustParseAddrPort(ln.Addr().String())
	f.watch.set(discovery.Snapshot{State: discovery.Endpoints, Endpoints: []discovery.Endpoint{{Addr: startInbound(t, f.ca, serverID, app), Identity: serverID, HTTP2: true}}})
	conn, err := grpc.NewClient(f.proxy.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return testgrpc.NewTestServiceClient(conn), f, held
}

// The caller's deadline reaches the server through both proxies, and a
// call that outlives it ends with DEADLINE_EXCEEDED.
func TestGRPCDeadlinePropagation(t *testing.T) {
	client := grpcFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := client.UnaryCall(ctx, &testgrpc.SimpleRequest{})
	if err != nil {
		t.Fatalf("unary call: %v", err)
	}
	left, err := time.ParseDuration(resp.GetUsername())
	if err != nil || left <= 0 || left > time.Minute {
		t.Fatalf("deadline left at the server: %q", resp.GetUsername())
	}
	short, cancel2 := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel2()
	_, err = client.UnaryCall(short, &testgrpc.SimpleRequest{ResponseSize: 1})
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("call past its deadline: %v, want DeadlineExceeded", err)
	}
}

// A bidirectional gRPC stream works through both proxies, message by
// message.
func TestGRPCBidirectionalStream(t *testing.T) {
	client := grpcFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stream, err := client.FullDuplexCall(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		body := []byte{byte(i), 'x'}
		if err := stream.Send(&testgrpc.StreamingOutputCallRequest{Payload: &testgrpc.Payload{Body: body}}); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		resp, err := stream.Recv()
		if err != nil || string(resp.GetPayload().GetBody()) != string(body) {
			t.Fatalf("recv %d: %v %v", i, resp, err)
		}
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("end of stream: %v", err)
	}
}

// Every error the proxy makes for a gRPC call is a gRPC status the client
// can read (not "unexpected HTTP status code … content-type text/plain"),
// named in grpc-message and l5d-proxy-error.
func TestGRPCProxyErrors(t *testing.T) {
	f := newFixture(t, discovery.Snapshot{State: discovery.NoEndpoints})
	conn, err := grpc.NewClient(f.proxy.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := testgrpc.NewTestServiceClient(conn)
	call := func() (*metadata.MD, error) {
		var md metadata.MD
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err := client.UnaryCall(ctx, &testgrpc.SimpleRequest{}, grpc.Header(&md), grpc.Trailer(&md))
		return &md, err
	}

	md, err := call()
	if s := status.Convert(err); s.Code() != codes.Unavailable || s.Message() != "no endpoints" || first(md.Get("l5d-proxy-error")) != "no endpoints" {
		t.Errorf("no endpoints: %v, l5d-proxy-error %q", err, md.Get("l5d-proxy-error"))
	}

	// An endpoint that refuses connections.
	refused, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := netip.MustParseAddrPort(refused.Addr().String())
	refused.Close()
	f.watch.set(discovery.Snapshot{State: discovery.Endpoints, Endpoints: []discovery.Endpoint{{Addr: addr, HTTP2: true}}})
	if _, err := call(); status.Code(err) != codes.Unavailable || status.Convert(err).Message() != "connect failed" {
		t.Errorf("connect refused: %v", err)
	}
	if got := f.m.Sample("response_total", map[string]string{"direction": "outbound", "status_code": "200", "grpc_status": "14", "classification": "failure", "error": "connect failed"}); got != 1 {
		t.Errorf("response_total{grpc_status=14,error=connect failed} = %v, want 1", got)
	}
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// A call the caller cancels is not a failure of the proxy or of the
// upstream: the server was still working on it.
func TestGRPCCancelledCallIsNotAFailure(t *testing.T) {
	client, f, held := grpcFixtureWithMetrics(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	done := make(chan error, 1)
	go func() {
		// ResponseSize: the server holds the call until its context ends.
		_, err := client.UnaryCall(ctx, &testgrpc.SimpleRequest{ResponseSize: 1})
		done <- err
	}()
	<-held
	cancel()
	if err := <-done; status.Code(err) != codes.Canceled {
		t.Fatalf("cancelled call: %v", err)
	}
	// The proxy records the request once the reverse proxy returns; wait
	// for the request to be counted as answered or not.
	out := map[string]string{"direction": "outbound"}
	for f.m.Sample("http_requests_pending", out) != 0 {
		runtime.Gosched()
	}
	if got := f.m.Sample("response_total", map[string]string{"direction": "outbound", "classification": "failure"}); got != 0 {
		t.Errorf("response_total{classification=failure} = %v after a cancelled call, want 0", got)
	}
}
