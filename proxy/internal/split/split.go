// Package split is the layer that spreads a target's requests over its
// backends by weight: the traffic split of a ServiceProfile's dstOverrides
// or an HTTPRoute's backendRefs. Each backend is a stack of its own (a
// balancer over a service's endpoints, or the original address).
//
// A target has one backend today, chosen by what discovery says about it;
// with one backend the layer only hands the request to it.
package split

import (
	"math/rand/v2"
	"net/http"

	"github.com/linkerd-go/linkerd-go/proxy/internal/forward"
)

// Backend is one place a request may go, and its share.
type Backend struct {
	Weight uint32
	Next   http.RoundTripper
}

// Layer picks a backend per request.
type Layer struct {
	backends func() []Backend
}

// New returns the layer over the backends that backends returns: it is
// called for every request, so that the split follows discovery. It must
// not block, and the slice it returns must not change afterwards.
func New(backends func() []Backend) *Layer { return &Layer{backends: backends} }

// RoundTrip sends the request to a backend picked by weight. With no
// backend, or none with a weight, the request is answered 503 "no
// endpoints".
func (l *Layer) RoundTrip(r *http.Request) (*http.Response, error) {
	bs := l.backends()
	if len(bs) == 1 && bs[0].Weight > 0 {
		return bs[0].Next.RoundTrip(r)
	}
	var total uint64
	for _, b := range bs {
		total += uint64(b.Weight)
	}
	if total == 0 {
		return nil, forward.Fail(forward.FailNoEndpoints)
	}
	n := rand.Uint64N(total)
	for _, b := range bs {
		if n < uint64(b.Weight) {
			return b.Next.RoundTrip(r)
		}
		n -= uint64(b.Weight)
	}
	return bs[len(bs)-1].Next.RoundTrip(r) // not reached: n < total

}
