// Package accrual is the layer that will learn from responses which
// endpoints fail (consecutive 5xx, gRPC errors) and take them out of the
// balancer for a while: circuit breaking.
//
// No failure is accrued yet: the layer passes every request through. The
// balancer already takes out an endpoint that cannot be connected to.
package accrual

import "net/http"

// Layer accrues failures.
type Layer struct {
	next http.RoundTripper
}

// New returns the layer over next.
func New(next http.RoundTripper) *Layer { return &Layer{next: next} }

// RoundTrip passes the request on.
func (l *Layer) RoundTrip(r *http.Request) (*http.Response, error) {
	return l.next.RoundTrip(r)
}
