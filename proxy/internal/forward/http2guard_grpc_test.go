package forward

import (
	"context"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"

	"github.com/linkerd-go/linkerd-go/proxy/internal/h2guard"
)

// holdService holds unary calls until the caller gives up, saying when
// each arrives, and streams what is asked for.
type holdService struct {
	testgrpc.UnimplementedTestServiceServer
	arrived chan struct{}
}

func (s holdService) UnaryCall(ctx context.Context, _ *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	s.arrived <- struct{}{}
	<-ctx.Done()
	return nil, status.FromContextError(ctx.Err()).Err()
}

func (holdService) StreamingOutputCall(req *testgrpc.StreamingOutputCallRequest, stream grpc.ServerStreamingServer[testgrpc.StreamingOutputCallResponse]) error {
	for _, p := range req.GetResponseParameters() {
		if err := stream.Send(&testgrpc.StreamingOutputCallResponse{Payload: &testgrpc.Payload{Body: make([]byte, p.GetSize())}}); err != nil {
			return err
		}
	}
	return nil
}

// flushWriter gives gRPC's handler transport the http.Flusher it needs.
type flushWriter struct{ http.ResponseWriter }

func (w flushWriter) Flush() { _ = http.NewResponseController(w.ResponseWriter).Flush() }

// A gRPC client's heaviest legitimate use on one connection, through mesh
// TLS and h2c: 2,000 calls cancelled before any answer, at up to 1,000 a
// second (a caller whose deadlines and cancellations outrun a slow
// server), 2,000 streams cancelled after their first message, as fast as
// they go, and a 32 MiB stream (BDP pings, window updates and SETTINGS
// from the client's flow-control estimator). Nothing is a flood.
func TestGRPCClientCancellingManyCallsIsNotAFlood(t *testing.T) {
	for _, meshTLS := range []bool{true, false} {
		t.Run(map[bool]string{false: "h2c", true: "tls"}[meshTLS], func(t *testing.T) {
			svc := holdService{arrived: make(chan struct{})}
			gs := grpc.NewServer()
			testgrpc.RegisterTestServiceServer(gs, svc)
			f := newH2Fixture(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				gs.ServeHTTP(flushWriter{w}, r)
			}), meshTLS, h2guard.Limits{})
			creds := insecure.NewCredentials()
			if meshTLS {
				creds = credentials.NewTLS(f.client)
			}
			conn, err := grpc.NewClient(f.addr, grpc.WithTransportCredentials(creds))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			client := testgrpc.NewTestServiceClient(conn)
			ctx := t.Context()

			tick := time.NewTicker(time.Millisecond)
			defer tick.Stop()
			for i := range 2000 {
				<-tick.C
				cctx, cancel := context.WithCancel(ctx)
				done := make(chan error, 1)
				go func() {
					_, err := client.UnaryCall(cctx, &testgrpc.SimpleRequest{})
					done <- err
				}()
				<-svc.arrived
				cancel()
				if err := <-done; status.Code(err) != codes.Canceled {
					t.Fatalf("call %d: %v", i, err)
				}
			}

			one := []*testgrpc.ResponseParameters{{Size: 10}, {Size: 10}}
			for i := range 2000 {
				cctx, cancel := context.WithCancel(ctx)
				stream, err := client.StreamingOutputCall(cctx, &testgrpc.StreamingOutputCallRequest{ResponseParameters: one})
				if err == nil {
					_, err = stream.Recv()
				}
				cancel()
				if err != nil {
					t.Fatalf("stream %d: %v", i, err)
				}
			}

			var big []*testgrpc.ResponseParameters
			for range 512 {
				big = append(big, &testgrpc.ResponseParameters{Size: 64 << 10})
			}
			stream, err := client.StreamingOutputCall(ctx, &testgrpc.StreamingOutputCallRequest{ResponseParameters: big})
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for {
				_, err := stream.Recv()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatalf("after %d messages: %v", n, err)
				}
				n++
			}
			if n != len(big) {
				t.Errorf("%d of %d messages", n, len(big))
			}
			if got := f.allFloods(); got != 0 {
				t.Errorf("%v connections closed as floods", got)
			}
		})
	}
}
