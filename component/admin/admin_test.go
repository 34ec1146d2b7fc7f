package admin

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestRoutes(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "request_total", Help: "x"})
	reg.MustRegister(c)
	c.Inc()
	var ready, shut atomic.Bool
	h := Handler(Config{Registry: reg, Ready: ready.Load, NotReady: "no certificate yet", Shutdown: func() { shut.Store(true) }})
	do := func(method, path, remote string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, path, nil)
		r.RemoteAddr = remote
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	if w := do("GET", "/ready", "10.0.0.1:1"); w.Code != 503 || w.Body.String() != "not ready: no certificate yet\n" {
		t.Errorf("/ready before a certificate: %d %q", w.Code, w.Body.String())
	}
	ready.Store(true)
	if w := do("GET", "/ready", "10.0.0.1:1"); w.Code != 200 {
		t.Errorf("/ready: %d", w.Code)
	}
	if w := do("GET", "/live", "10.0.0.1:1"); w.Code != 200 {
		t.Errorf("/live: %d", w.Code)
	}
	if w := do("GET", "/metrics", "10.0.0.1:1"); w.Code != 200 || !strings.Contains(w.Body.String(), "request_total 1") {
		t.Errorf("/metrics: %d %q", w.Code, w.Body.String())
	}
	if w := do("POST", "/shutdown", "198.18.0.9:1234"); w.Code != 403 || shut.Load() {
		t.Errorf("remote /shutdown: %d, shut %v", w.Code, shut.Load())
	}
	if w := do("POST", "/shutdown", "127.0.0.1:1234"); w.Code != 200 || !shut.Load() {
		t.Errorf("local /shutdown: %d, shut %v", w.Code, shut.Load())
	}
	off := Handler(Config{Registry: reg, Ready: ready.Load})
	w := httptest.NewRecorder()
	r := httptest.NewRequest("POST", "/shutdown", nil)
	r.RemoteAddr = "127.0.0.1:1"
	off.ServeHTTP(w, r)
	if w.Code != http.StatusNotFound {
		t.Errorf("/shutdown when disabled: %d", w.Code)
	}
}

// Serve stops when its context ends and returns no error for that.
func TestServeStops(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, Config{Registry: prometheus.NewRegistry()}, time.Second) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/live")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve after cancel: %v", err)
	}
}
