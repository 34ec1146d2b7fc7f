package stack_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/linkerd-go/linkerd-go/proxy/internal/metrics"
	"github.com/linkerd-go/linkerd-go/proxy/internal/stack"
)

// Layers run in the order they are listed, the first outermost.
func TestLayersRunInListedOrder(t *testing.T) {
	var order []string
	mark := func(name string) stack.Layer {
		return func(next http.RoundTripper) http.RoundTripper {
			return stack.Func(func(r *http.Request) (*http.Response, error) {
				order = append(order, name)
				return next.RoundTrip(r)
			})
		}
	}
	bottom := stack.Func(func(r *http.Request) (*http.Response, error) {
		order = append(order, "bottom")
		return &http.Response{StatusCode: 204, Header: http.Header{}, Body: http.NoBody}, nil
	})
	h := stack.Layers{mark("a"), mark("b"), mark("c")}.Over(bottom)
	resp, err := h.RoundTrip(httptest.NewRequest("GET", "/", nil))
	if err != nil || resp.StatusCode != 204 {
		t.Fatalf("got %v, %v", resp, err)
	}
	if got, want := order, []string{"a", "b", "c", "bottom"}; !equal(got, want) {
		t.Errorf("order %v, want %v", got, want)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// What a layer writes in the exchange, the layers above read; a request
// without one gets a fresh exchange each time.
func TestExchangeTravelsWithTheRequest(t *testing.T) {
	ex := stack.NewExchange(nil, metrics.Labels{Direction: "outbound"})
	r := stack.With(httptest.NewRequest("GET", "/", nil), ex)
	stack.From(r).Route = stack.Route{Name: "r1"}
	if ex.Route.Name != "r1" || stack.From(r.Clone(r.Context())) != ex {
		t.Errorf("exchange not shared: %+v", ex.Route)
	}
	bare := httptest.NewRequest("GET", "/", nil)
	if first, second := stack.From(bare), stack.From(bare); first == second {
		t.Error("a request without an exchange shares one")
	}
	if stack.From(bare).Counted() != nil {
		t.Error("a fresh exchange is counted somewhere")
	}
}

// CountSent counts the request once, under the labels the layers beneath
// set, whether they answered or failed; End releases once.
func TestCountSentCountsOnceUnderFinalLabels(t *testing.T) {
	m := metrics.New()
	ex := stack.NewExchange(m, metrics.Labels{Direction: "outbound", TargetAddr: "198.18.0.1:80", TLS: "no_identity"})
	var released []time.Duration
	h := stack.CountSent(stack.Func(func(r *http.Request) (*http.Response, error) {
		e := stack.From(r)
		e.Labels.TargetAddr = "198.18.0.2:8080"
		e.Release = func(d time.Duration) { released = append(released, d) }
		return nil, http.ErrHandlerTimeout
	}))
	if _, err := h.RoundTrip(stack.With(httptest.NewRequest("GET", "/", nil), ex)); err == nil {
		t.Fatal("error lost")
	}
	ex.Counted()
	ex.End(time.Second)
	ex.End(2 * time.Second)
	if len(released) != 1 || released[0] != time.Second {
		t.Errorf("released %v, want once with 1s", released)
	}
	if got := testutil.ToFloat64(m.For(ex.Labels).Requests); got != 1 {
		t.Errorf("request_total under the endpoint's labels = %v, want 1", got)
	}
	first := ex.Labels
	first.TargetAddr = "198.18.0.1:80"
	if got := testutil.ToFloat64(m.For(first).Requests); got != 0 {
		t.Errorf("request_total under the target's labels = %v, want 0", got)
	}
}
