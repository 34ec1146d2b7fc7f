package admin

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestRoutes(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "request_total", Help: "x"})
	reg.MustRegister(c)
	c.Inc()
	var ready, shut atomic.Bool
	h := Handler(reg, Config{Ready: ready.Load, Shutdown: func() { shut.Store(true) }})
	do := func(method, path, remote string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, path, nil)
		r.RemoteAddr = remote
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	if w := do("GET", "/ready", "10.0.0.1:1"); w.Code != 503 {
		t.Errorf("/ready before a certificate: %d", w.Code)
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
	off := Handler(reg, Config{Ready: ready.Load})
	w := httptest.NewRecorder()
	r := httptest.NewRequest("POST", "/shutdown", nil)
	r.RemoteAddr = "127.0.0.1:1"
	off.ServeHTTP(w, r)
	if w.Code != http.StatusNotFound {
		t.Errorf("/shutdown when disabled: %d", w.Code)
	}
}
