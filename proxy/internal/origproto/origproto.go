// Package origproto is the inbound layer that undoes what the client's
// proxy did to carry an HTTP/1 request over HTTP/2: a request marked
// l5d-orig-proto goes to the application as the HTTP/1 request it was,
// and its response says so with the same header. The mark is never passed
// to the application.
package origproto

import (
	"net/http"

	"github.com/linkerd-go/linkerd-go/api/mesh"
	"github.com/linkerd-go/linkerd-go/proxy/internal/forward"
)

// Layer downgrades marked requests.
type Layer struct {
	next http.RoundTripper
}

// New returns the layer over next.
func New(next http.RoundTripper) *Layer { return &Layer{next: next} }

// RoundTrip passes the request on in its original protocol.
func (l *Layer) RoundTrip(r *http.Request) (*http.Response, error) {
	vs := r.Header[forward.OrigProtoKey]
	if len(vs) == 0 {
		return l.next.RoundTrip(r)
	}
	v := vs[0]
	delete(r.Header, forward.OrigProtoKey)
	minor, ok := mesh.ParseOrigProto(v)
	if !ok || r.ProtoMajor != 2 {
		return l.next.RoundTrip(r)
	}
	r.ProtoMajor, r.ProtoMinor = 1, minor
	resp, err := l.next.RoundTrip(r)
	if err == nil {
		resp.Header[forward.OrigProtoKey] = []string{v}
	}
	return resp, err
}
