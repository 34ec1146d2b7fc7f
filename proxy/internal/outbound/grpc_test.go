package outbound

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"

	"github.com/linkerd-go/linkerd-go/proxy/internal/discovery"
)

// testService answers unary calls with how much of the caller's deadline
// was left when the call arrived, and echoes full-duplex streams.
type testService struct {
	testgrpc.UnimplementedTestServiceServer
}

func (testService) UnaryCall(ctx context.Context, req *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		return nil, status.Error(codes.FailedPrecondition, "no deadline arrived")
	}
	if req.GetResponseSize() > 0 {
		// Asked to outlive the deadline: wait for it.
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
	t.Helper()
	f := newFixture(t, discovery.Snapshot{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	testgrpc.RegisterTestServiceServer(srv, testService{})
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	app := netip.MustParseAddrPort(ln.Addr().String())
	f.watch.set(discovery.Snapshot{State: discovery.Endpoints, Endpoints: []discovery.Endpoint{{Addr: startInbound(t, f.ca, serverID, app), Identity: serverID, HTTP2: true}}})
	conn, err := grpc.NewClient(f.proxy.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return testgrpc.NewTestServiceClient(conn)
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
