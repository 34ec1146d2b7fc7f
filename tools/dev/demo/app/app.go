// Package app holds the demo workloads of `make demo` and the e2e suite, run
// by one static binary (cmd/demoapp) in four modes:
//
//   - backend: a gRPC service (HTTP/2) whose one method, Whoami, answers
//     with the pod's name, plus the standard gRPC health service;
//   - frontend: an HTTP/1.1 server; each request calls the backend over
//     gRPC and answers with the names of both pods;
//   - load: requests to the frontend at a constant rate, with a JSON report
//     of what happened on /stats;
//   - job: a fixed number of requests to the frontend; success means every
//     one was answered 200.
//
// The gRPC service is written by hand (a grpc.ServiceDesc with a protobuf
// well-known type as its messages), so no code is generated.
package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// ServiceName is the backend's gRPC service, WhoamiMethod its method.
const (
	ServiceName  = "linkerd.demo.v1.Backend"
	WhoamiMethod = "/" + ServiceName + "/Whoami"
)

// BackendHeader is the frontend's response header naming the backend pod
// that answered.
const BackendHeader = "X-Demo-Backend"

// whoamiServer is the backend service's interface.
type whoamiServer interface {
	Whoami(context.Context, *wrapperspb.StringValue) (*wrapperspb.StringValue, error)
}

var backendDesc = grpc.ServiceDesc{
	ServiceName: ServiceName,
	HandlerType: (*whoamiServer)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Whoami",
		Handler: func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
			in := new(wrapperspb.StringValue)
			if err := dec(in); err != nil {
				return nil, err
			}
			call := func(ctx context.Context, req any) (any, error) {
				return srv.(whoamiServer).Whoami(ctx, req.(*wrapperspb.StringValue))
			}
			if interceptor == nil {
				return call(ctx, in)
			}
			return interceptor(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: WhoamiMethod}, call)
		},
	}},
	Metadata: "demo",
}

// Whoami calls the backend's Whoami with the caller's name and returns the
// backend's.
func Whoami(ctx context.Context, conn grpc.ClientConnInterface, caller string) (string, error) {
	out := new(wrapperspb.StringValue)
	if err := conn.Invoke(ctx, WhoamiMethod, wrapperspb.String(caller), out); err != nil {
		return "", err
	}
	return out.GetValue(), nil
}

// serveHTTP runs srv on l until ctx ends, then shuts it down within 5s.
func serveHTTP(ctx context.Context, srv *http.Server, l net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(shutdown)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}

// newHTTPServer is an HTTP server with the timeouts every server here has.
func newHTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       90 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
}

// listenerOr returns l, or a new listener on addr when l is nil.
func listenerOr(ctx context.Context, l net.Listener, addr string) (net.Listener, error) {
	if l != nil {
		return l, nil
	}
	l, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	return l, nil
}
