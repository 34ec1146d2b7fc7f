package balance

import (
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/netip"
	"testing"
	"time"

	"github.com/linkerd-go/linkerd-go/proxy/internal/discovery"
	"github.com/linkerd-go/linkerd-go/proxy/internal/metrics"
	"github.com/linkerd-go/linkerd-go/proxy/internal/stack"
)

// A new endpoint's first request opens its connection: the balancer learns
// the time from the connection to the answer, not the handshake before it.
// Later requests are not traced.
func TestFirstLatencyLeavesTheConnectOut(t *testing.T) {
	now := time.Unix(1000, 0)
	clock := func() time.Time { return now }
	b := New[discovery.Endpoint]()
	b.now = clock
	addr := netip.MustParseAddrPort("198.18.0.1:8080")
	b.Update([]Target[discovery.Endpoint]{{Addr: addr, Value: discovery.Endpoint{Addr: addr}}})
	traced, calls := 0, 0
	next := stack.Func(func(r *http.Request) (*http.Response, error) {
		calls++
		if calls == 1 {
			now = now.Add(500 * time.Millisecond) // connect and handshake
		}
		if tr := httptrace.ContextClientTrace(r.Context()); tr != nil {
			traced++
			tr.GotConn(httptrace.GotConnInfo{Reused: calls > 1})
		}
		now = now.Add(2 * time.Millisecond) // the endpoint's answer
		return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody}, nil
	})
	l := NewHTTP(LayerConfig{Attempts: 1, Now: clock}, b, next)
	for range 2 {
		ex := stack.NewExchange(nil, metrics.Labels{})
		start := now
		if _, err := l.RoundTrip(stack.With(httptest.NewRequest("GET", "/", nil), ex)); err != nil {
			t.Fatal(err)
		}
		ex.End(now.Sub(start)) // what the server side measures: 502 ms the first time
	}
	if traced != 1 {
		t.Errorf("%d requests traced, want the first only", traced)
	}
	e := (*b.set.Load())[0]
	e.mu.Lock()
	ewma := time.Duration(e.ewma)
	e.mu.Unlock()
	if ewma > 10*time.Millisecond {
		t.Errorf("latency learned %v: the connect was counted", ewma)
	}
}
