package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// ResponseSize is the body of every answer: HTTP bodies and the bytes of
// the gRPC reply message.
const ResponseSize = 1024

// ServerReady is what the test server prints once it listens.
const ServerReady = "listening on"

// The gRPC method of the test server: a BytesValue in, a BytesValue of
// ResponseSize bytes out, with the standard protobuf codec (no generated
// code needed).
const (
	grpcService = "bench.Bench"
	grpcMethod  = "/" + grpcService + "/Get"
)

var grpcDesc = grpc.ServiceDesc{
	ServiceName: grpcService,
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Get",
		Handler: func(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			if err := dec(new(wrapperspb.BytesValue)); err != nil {
				return nil, err
			}
			return grpcReply, nil
		},
	}},
}

var (
	body      = make([]byte, ResponseSize)
	grpcReply = wrapperspb.Bytes(body)
)

func init() {
	for i := range body {
		body[i] = 'x'
	}
}

// ListenAndServe listens on httpAddr and grpcAddr and runs Serve.
func ListenAndServe(ctx context.Context, httpAddr, grpcAddr string, w io.Writer) error {
	hln, err := net.Listen("tcp", httpAddr)
	if err != nil {
		return err
	}
	gln, err := net.Listen("tcp", grpcAddr)
	if err != nil {
		hln.Close()
		return err
	}
	return Serve(ctx, hln, gln, w)
}

// Serve runs the test server until ctx ends: HTTP/1.1 and h2c (prior
// knowledge) on hln, gRPC on gln, every answer ResponseSize bytes. It
// prints ServerReady to w first.
func Serve(ctx context.Context, hln, gln net.Listener, w io.Writer) error {
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	size := strconv.Itoa(ResponseSize)
	hs := &http.Server{
		Protocols: &protocols,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, 1<<20))
			w.Header().Set("Content-Length", size)
			w.Header().Set("Content-Type", "application/octet-stream")
			_, _ = w.Write(body)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	gs := grpc.NewServer()
	gs.RegisterService(&grpcDesc, nil)
	fmt.Fprintf(w, "%s %s (HTTP/1.1, h2c) and %s (gRPC)\n", ServerReady, hln.Addr(), gln.Addr())
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := hs.Serve(hln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	g.Go(func() error { return gs.Serve(gln) })
	g.Go(func() error {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := hs.Shutdown(sctx)
		stopped := make(chan struct{})
		go func() { gs.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-sctx.Done():
			gs.Stop()
		}
		return err
	})
	return g.Wait()
}
