// Package stack is the model the proxy's HTTP layers share: a layer is an
// http.RoundTripper that wraps the next one, and what the layers learn about
// a request on its way (its route, the endpoint it went to, the labels it is
// counted under) travels with it as one Exchange in the request's context.
//
// The model is net/http's own Request and Response, not a type of the
// proxy's: the server already allocates them for every request and the
// transports beneath take them as they are, so a layer costs nothing to
// hand a request on. A model of our own would need a conversion at the top
// and at the bottom of every stack until the engine beneath is replaced.
// Measured (go test -bench BenchmarkLayers ./internal/stack/): the layers
// of the outbound stack allocate nothing themselves (the 3 allocations, 60
// B, per request are the balancer's pick, as before the layers); the
// Exchange costs 3 allocations, 752 B (itself, the context value, the
// request copy that carries it), what the per-request state it replaced
// cost. Through both proxies (BenchmarkHTTPThroughMesh in outbound) an
// HTTP/1 request allocates 247 times, 21.7 KB, against 255 times, 21.3 KB,
// before the stacks (HTTP/2: 269 against 275); the mesh's headers are read
// and written by their canonical keys (forward.ClientIDKey and the like),
// so no header name is canonicalized per request, which pays for the
// inbound side's exchange. An engine that
// replaces net/http beneath only has to call a stack's RoundTrip with the
// request it parsed.
//
// Rules the layers keep: a layer passes the request on or answers it, never
// both; it may change the request's headers and URL in place (the server
// side of a stack hands down a request it owns), but a layer that sends a
// request more than once sends a shallow copy each time after the first;
// the proxy's own answers are errors (forward.Fail), turned into responses by the
// server side of the stack.
package stack

import (
	"context"
	"net/http"
	"time"

	"github.com/linkerd-go/linkerd-go/proxy/internal/discovery"
	"github.com/linkerd-go/linkerd-go/proxy/internal/metrics"
)

// Layer wraps the next handler of a stack.
type Layer func(next http.RoundTripper) http.RoundTripper

// Layers are a stack's layers, the first the outermost: the order a
// request passes them.
type Layers []Layer

// Over returns the stack of the layers over bottom, the handler that
// finally sends the request.
func (ls Layers) Over(bottom http.RoundTripper) http.RoundTripper {
	h := bottom
	for i := len(ls) - 1; i >= 0; i-- {
		h = ls[i](h)
	}
	return h
}

// Func adapts a function to a handler.
type Func func(*http.Request) (*http.Response, error)

// RoundTrip calls f.
func (f Func) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Route is the route a request matched, and what the route says about it.
type Route struct {
	// Name is the route's name ("" for the default route).
	Name string
	// Timeout bounds the whole request, response body included (0: none).
	Timeout time.Duration
}

// Exchange is what the layers learn about one request and tell the layers
// above and below. The server side of a stack creates it; layers fill it in
// as the request goes down.
type Exchange struct {
	// Labels are those the request is counted under: the server side sets
	// the target's, the endpoint layer those of the endpoint it sent to.
	Labels metrics.Labels
	// Route is set by the route layer.
	Route Route
	// Endpoint is where the balancer sent the request (Picked is then
	// true); the endpoint layer sends it there.
	Endpoint discovery.Endpoint
	Picked   bool
	// Release, when set, is called once by the server side when the
	// response is over, with the latency to its headers (0 when there was
	// no response): the balancer learns the endpoint's latency and load.
	Release func(time.Duration)

	m *metrics.Metrics
	h *metrics.Handles
}

// NewExchange returns the exchange of a request counted on m under labels.
func NewExchange(m *metrics.Metrics, labels metrics.Labels) *Exchange {
	return &Exchange{Labels: labels, m: m}
}

// Counted returns the metrics of where the request went, counting it in
// request_total the first time: once it was sent, or answered by the
// proxy. Later changes to Labels are not seen.
func (ex *Exchange) Counted() *metrics.Handles {
	if ex.h == nil && ex.m != nil {
		ex.h = ex.m.For(ex.Labels)
		ex.h.Requests.Inc()
	}
	return ex.h
}

// End calls Release, once.
func (ex *Exchange) End(headerLatency time.Duration) {
	if ex.Release != nil {
		ex.Release(headerLatency)
		ex.Release = nil
	}
}

type exchangeKey struct{}

// With returns r carrying ex.
func With(r *http.Request, ex *Exchange) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), exchangeKey{}, ex))
}

// From returns the exchange r carries. A request without one gets a fresh
// exchange that is counted nowhere and shared with no other layer, so that
// layers need no nil checks; a stack's server side always sets one.
func From(r *http.Request) *Exchange {
	if ex, ok := r.Context().Value(exchangeKey{}).(*Exchange); ok {
		return ex
	}
	return &Exchange{}
}

// CountSent is the layer that counts a request in request_total as soon as
// the layers beneath return: the response's headers arrived (or the request
// failed), so a long response is counted from its start.
func CountSent(next http.RoundTripper) http.RoundTripper {
	return Func(func(r *http.Request) (*http.Response, error) {
		resp, err := next.RoundTrip(r)
		From(r).Counted()
		return resp, err
	})
}
