// Package admin is the proxy's admin server (port 4191): Prometheus
// metrics, readiness (a certificate is held), liveness, and an optional
// shutdown endpoint reachable from localhost only.
package admin

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Config of the admin server.
type Config struct {
	// Ready reports whether the proxy can serve traffic.
	Ready func() bool
	// Shutdown, when not nil, is called by POST /shutdown from localhost.
	Shutdown func()
}

// Handler returns the admin routes.
func Handler(reg *prometheus.Registry, cfg Config) http.Handler {
	mux := http.NewServeMux()
	// Uncompressed: a gzip writer costs some 800 KB of allocation, made
	// anew for nearly every scrape (its pool does not outlive a garbage
	// collection, and scrapes are seconds apart), where the text itself is
	// tens of KB on the pod's network.
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{MaxRequestsInFlight: 4, Timeout: 10 * time.Second, DisableCompression: true}))
	mux.HandleFunc("GET /live", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "live") })
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, _ *http.Request) {
		if !cfg.Ready() {
			http.Error(w, "not ready: no certificate yet", http.StatusServiceUnavailable)
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
	return mux
}

// Serve runs the admin server on ln until ctx ends.
func Serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
		<-errc
		return nil
	}
}
