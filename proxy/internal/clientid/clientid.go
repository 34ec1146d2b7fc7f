// Package clientid is the inbound layer that tells the application who the
// client is: l5d-client-id carries the client's mesh identity, learned from
// mesh TLS, and only this proxy may set it (a client's own value is
// dropped).
package clientid

import (
	"net/http"

	"github.com/linkerd-go/linkerd-go/proxy/internal/forward"
)

// Layer sets l5d-client-id.
type Layer struct {
	next http.RoundTripper
}

// New returns the layer over next.
func New(next http.RoundTripper) *Layer { return &Layer{next: next} }

// RoundTrip replaces the request's l5d-client-id with the connection's
// peer identity (none when the client is not meshed).
func (l *Layer) RoundTrip(r *http.Request) (*http.Response, error) {
	delete(r.Header, forward.ClientIDKey)
	if meta := forward.Meta(r.Context()); meta != nil && meta.PeerID != "" {
		r.Header[forward.ClientIDKey] = []string{meta.PeerID}
	}
	return l.next.RoundTrip(r)
}
