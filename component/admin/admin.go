// Package admin is the admin server every component runs (the proxy's on
// port 4191, the control plane's on its --admin-addr): Prometheus metrics,
// liveness, readiness with the reason it is not ready, and, for the proxy,
// a shutdown endpoint reachable from localhost only. One implementation, so
// that probes, scrapes and their limits behave the same everywhere.
package admin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Config of the admin server.
type Config struct {
	// Registry is what GET /metrics serves.
	Registry *prometheus.Registry
	// Ready reports whether the component can serve; GET /ready answers
	// 200, or 503 with NotReady ("not ready: " + NotReady).
	Ready    func() bool
	NotReady string
	// Shutdown, when not nil, is called by POST /shutdown from localhost.
	Shutdown func()
}

// maxBody bounds what a request to the admin server may send: none of its
// routes reads a body.
const maxBody = 4 << 10

// Handler returns the admin routes.
func Handler(cfg Config) http.Handler {
	mux := http.NewServeMux()
	// Uncompressed: a gzip writer costs some 800 KB of allocation, made
	// anew for nearly every scrape (its pool does not outlive a garbage
	// collection, and scrapes are seconds apart), where the text itself is
	// tens of KB on the pod's network. At most 4 scrapes at once, each
	// within 10 s.
	mux.Handle("GET /metrics", promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{
		Registry: cfg.Registry, MaxRequestsInFlight: 4, Timeout: 10 * time.Second, DisableCompression: true,
	}))
	mux.HandleFunc("GET /live", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "live") })
	notReady := "not ready"
	if cfg.NotReady != "" {
		notReady += ": " + cfg.NotReady
	}
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, _ *http.Request) {
		if cfg.Ready != nil && !cfg.Ready() {
			http.Error(w, notReady, http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.HandleFunc("POST /shutdown", func(w http.ResponseWriter, r *http.Request) {
		if cfg.Shutdown == nil {
			http.NotFound(w, r)
			return
		}
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			http.Error(w, "shutdown is only accepted from localhost", http.StatusForbidden)
			return
		}
		fmt.Fprintln(w, "shutting down")
		cfg.Shutdown()
	})
	return http.MaxBytesHandler(mux, maxBody)
}

// NewServer returns the admin server: the routes behind timeouts on
// every phase of a request, so that a slow or idle client cannot hold it.
func NewServer(cfg Config) *http.Server {
	return &http.Server{
		Handler:           Handler(cfg),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
}

// Serve runs the admin server on ln until ctx ends, then lets requests in
// flight finish within grace (default 5 s).
func Serve(ctx context.Context, ln net.Listener, cfg Config, grace time.Duration) error {
	if grace <= 0 {
		grace = 5 * time.Second
	}
	srv := NewServer(cfg)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("admin server: %w", err)
	case <-ctx.Done():
		shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
		defer cancel()
		err := srv.Shutdown(shutdown)
		if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) {
			err = errors.Join(err, serr)
		}
		return err
	}
}
