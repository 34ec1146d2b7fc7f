// Package tap is the layer where a tap (a live view of requests and
// responses for an operator) will observe traffic, in both directions.
//
// Nothing taps yet: the layer passes every request through.
package tap

import "net/http"

// Layer is a tap point.
type Layer struct {
	next http.RoundTripper
}

// New returns the layer over next.
func New(next http.RoundTripper) *Layer { return &Layer{next: next} }

// RoundTrip passes the request on.
func (l *Layer) RoundTrip(r *http.Request) (*http.Response, error) {
	return l.next.RoundTrip(r)
}
