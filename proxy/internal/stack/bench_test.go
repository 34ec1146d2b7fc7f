package stack_test

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/linkerd-go/linkerd-go/proxy/internal/accrual"
	"github.com/linkerd-go/linkerd-go/proxy/internal/balance"
	"github.com/linkerd-go/linkerd-go/proxy/internal/discovery"
	"github.com/linkerd-go/linkerd-go/proxy/internal/metrics"
	"github.com/linkerd-go/linkerd-go/proxy/internal/retry"
	"github.com/linkerd-go/linkerd-go/proxy/internal/route"
	"github.com/linkerd-go/linkerd-go/proxy/internal/split"
	"github.com/linkerd-go/linkerd-go/proxy/internal/stack"
	"github.com/linkerd-go/linkerd-go/proxy/internal/tap"
	"github.com/linkerd-go/linkerd-go/proxy/internal/timeout"
)

// BenchmarkLayers measures what the outbound layers cost a request on top
// of the handler beneath them: "bare" calls the bottom directly, "layers"
// goes through the eight layers of the outbound stack (the balancer over
// one endpoint), "layers+exchange" also creates and attaches the exchange,
// as the server side does for every request.
func BenchmarkLayers(b *testing.B) {
	resp := &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody}
	bottom := stack.Func(func(*http.Request) (*http.Response, error) { return resp, nil })
	bal := balance.New[discovery.Endpoint]()
	addr := netip.MustParseAddrPort("198.18.0.1:8080")
	bal.Update([]balance.Target[discovery.Endpoint]{{Addr: addr, Value: discovery.Endpoint{Addr: addr}}})
	balanced := stack.Layers{
		func(next http.RoundTripper) http.RoundTripper { return accrual.New(next) },
		func(next http.RoundTripper) http.RoundTripper {
			return balance.NewHTTP(balance.LayerConfig{Attempts: 3}, bal, next)
		},
		func(next http.RoundTripper) http.RoundTripper { return tap.New(next) },
	}.Over(bottom)
	backends := []split.Backend{{Weight: 1, Next: balanced}}
	layers := stack.Layers{
		stack.CountSent,
		func(next http.RoundTripper) http.RoundTripper { return route.New(route.Config{}, next) },
		func(next http.RoundTripper) http.RoundTripper { return timeout.New(next) },
		func(next http.RoundTripper) http.RoundTripper { return retry.New(next) },
	}.Over(split.New(func() []split.Backend { return backends }))

	r := httptest.NewRequest("GET", "http://svc.test/", nil)
	withEx := stack.With(r, stack.NewExchange(nil, metrics.Labels{}))
	run := func(b *testing.B, f func() error) {
		b.ReportAllocs()
		for b.Loop() {
			if err := f(); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("bare", func(b *testing.B) {
		run(b, func() error { _, err := bottom.RoundTrip(withEx); return err })
	})
	b.Run("layers", func(b *testing.B) {
		run(b, func() error {
			_, err := layers.RoundTrip(withEx)
			stack.From(withEx).End(0)
			return err
		})
	})
	b.Run("layers+exchange", func(b *testing.B) {
		run(b, func() error {
			req := stack.With(r, stack.NewExchange(nil, metrics.Labels{}))
			_, err := layers.RoundTrip(req)
			stack.From(req).End(0)
			return err
		})
	})
}
