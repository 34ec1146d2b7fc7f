// Package timeout is the layer that bounds a request by its route's
// timeout: the whole exchange, from sending the request to the end of the
// response body. A request whose timeout passes before the response's
// headers is answered 504 (gRPC: DEADLINE_EXCEEDED) with l5d-proxy-error
// "timeout"; a response cut by it ends early, like a reset stream.
//
// No route sets a timeout yet, so every request passes through unbounded,
// as before.
package timeout

import (
	"context"
	"io"
	"net/http"

	"github.com/linkerd-go/linkerd-go/proxy/internal/stack"
)

// Layer applies route timeouts.
type Layer struct {
	next http.RoundTripper
}

// New returns the layer over next.
func New(next http.RoundTripper) *Layer { return &Layer{next: next} }

// RoundTrip sends the request under its route's timeout.
func (l *Layer) RoundTrip(r *http.Request) (*http.Response, error) {
	d := stack.From(r).Route.Timeout
	if d <= 0 {
		return l.next.RoundTrip(r)
	}
	ctx, cancel := context.WithTimeout(r.Context(), d)
	resp, err := l.next.RoundTrip(r.WithContext(ctx))
	if err != nil {
		cancel()
		return nil, err
	}
	// The deadline covers the body too: it is released when the body is
	// closed, the end of the exchange.
	b := &body{ReadCloser: resp.Body, cancel: cancel}
	if w, ok := resp.Body.(io.Writer); ok {
		// A response that switched protocols: the reverse proxy writes
		// to its body too.
		resp.Body = upgradedBody{body: b, Writer: w}
	} else {
		resp.Body = b
	}
	return resp, nil
}

// body releases the deadline when closed.
type body struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *body) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// upgradedBody is body for a response that switched protocols: it stays
// an io.ReadWriteCloser.
type upgradedBody struct {
	*body
	io.Writer
}
