// Package retry is the layer that will send a failed request again when its
// route is retryable, within the route's retry budget, replaying the body it
// kept (package replay).
//
// No route is retryable yet: the layer passes every request through once,
// as before. A request that never reached an application is already sent to
// another endpoint by the balancer; that is not a retry and costs no budget.
package retry

import "net/http"

// Layer retries requests.
type Layer struct {
	next http.RoundTripper
}

// New returns the layer over next.
func New(next http.RoundTripper) *Layer { return &Layer{next: next} }

// RoundTrip sends the request once.
func (l *Layer) RoundTrip(r *http.Request) (*http.Response, error) {
	return l.next.RoundTrip(r)
}
