package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// BackendConfig configures the backend.
type BackendConfig struct {
	// Listener serves gRPC (nil = listen on Addr).
	Listener net.Listener
	Addr     string
	// Name is what Whoami answers (the pod's name).
	Name string
	Log  *slog.Logger
}

type backend struct {
	name string
	log  *slog.Logger
}

func (b backend) Whoami(_ context.Context, in *wrapperspb.StringValue) (*wrapperspb.StringValue, error) {
	if len(in.GetValue()) > 253 {
		return nil, status.Error(codes.InvalidArgument, "caller name longer than 253 bytes")
	}
	return wrapperspb.String(b.name), nil
}

// RunBackend serves the Whoami service and the gRPC health service until ctx
// ends, then stops gracefully (in-flight calls finish, within 5s).
func RunBackend(ctx context.Context, cfg BackendConfig) error {
	l, err := listenerOr(ctx, cfg.Listener, cfg.Addr)
	if err != nil {
		return err
	}
	srv := grpc.NewServer(grpc.ConnectionTimeout(10*time.Second), grpc.MaxRecvMsgSize(64<<10), grpc.MaxConcurrentStreams(1000))
	srv.RegisterService(&backendDesc, backend{name: cfg.Name, log: cfg.Log})
	hs := health.NewServer()
	hs.SetServingStatus(ServiceName, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	cfg.Log.Info("backend serving gRPC", "addr", l.Addr().String(), "name", cfg.Name)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	hs.Shutdown()
	stopped := make(chan struct{})
	go func() { srv.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		srv.Stop()
	}
	return <-errc
}

// FrontendConfig configures the frontend.
type FrontendConfig struct {
	// Listener serves HTTP (nil = listen on Addr).
	Listener net.Listener
	Addr     string
	// Backend is the backend's gRPC target, e.g. "backend.demo.svc.cluster.local:8080".
	Backend string
	// Name is the frontend's name (the pod's).
	Name string
	// Timeout bounds each backend call.
	Timeout time.Duration
	Log     *slog.Logger
}

// RunFrontend serves HTTP until ctx ends: GET / calls the backend's Whoami
// and answers 200 with "<frontend> -> <backend>" (and the backend's name in
// the X-Demo-Backend header), or 502 when the call fails; GET /ready
// answers 200.
func RunFrontend(ctx context.Context, cfg FrontendConfig) error {
	if cfg.Backend == "" {
		return errors.New("frontend: no backend address")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	l, err := listenerOr(ctx, cfg.Listener, cfg.Addr)
	if err != nil {
		return err
	}
	// One connection to the Service's address: the client proxy balances
	// each request over the backend's pods.
	conn, err := grpc.NewClient("passthrough:///"+cfg.Backend, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		l.Close()
		return err
	}
	defer conn.Close()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), cfg.Timeout)
		defer cancel()
		name, err := Whoami(ctx, conn, cfg.Name)
		if err != nil {
			cfg.Log.Warn("backend call failed", "err", err)
			http.Error(w, "backend: "+err.Error(), http.StatusBadGateway)
			return
		}
		w.Header().Set(BackendHeader, name)
		fmt.Fprintf(w, "%s -> %s\n", cfg.Name, name)
	})
	cfg.Log.Info("frontend serving HTTP", "addr", l.Addr().String(), "backend", cfg.Backend)
	return serveHTTP(ctx, newHTTPServer(mux), l)
}

// runAll runs fns under one errgroup until the first error or ctx's end.
func runAll(ctx context.Context, fns ...func(context.Context) error) error {
	g, ctx := errgroup.WithContext(ctx)
	for _, fn := range fns {
		g.Go(func() error { return fn(ctx) })
	}
	return g.Wait()
}
