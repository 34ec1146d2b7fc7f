// Package apppool is the bottom of the inbound stacks: the connections to
// the application, at the request's original destination, pooled per
// protocol (HTTP/1.x, and HTTP/2 in plaintext with prior knowledge).
package apppool

import (
	"context"
	"net"
	"net/http"
	"time"

	"github.com/linkerd-go/linkerd-go/proxy/internal/forward"
)

// Config tunes the pools.
type Config struct {
	ConnectTimeout time.Duration
	// Dial connects (nil: a TCP dialer with ConnectTimeout); tests
	// replace it to run without sockets.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Pool sends requests to the application.
type Pool struct {
	h1, h2 *http.Transport
}

// New returns the pools.
func New(cfg Config) *Pool {
	dial := cfg.Dial
	if dial == nil {
		d := &net.Dialer{Timeout: cfg.ConnectTimeout, KeepAlive: 30 * time.Second}
		dial = d.DialContext
	}
	p := &Pool{}
	p.h1, p.h2 = forward.PlainTransports(dial)
	return p
}

// RoundTrip sends the request to the application at the connection's
// original destination, in the request's protocol.
func (p *Pool) RoundTrip(r *http.Request) (*http.Response, error) {
	meta := forward.Meta(r.Context())
	if meta == nil {
		return nil, forward.Fail(forward.FailNoMeta)
	}
	r.URL.Scheme, r.URL.Host = "http", meta.Dst.String()
	if r.ProtoMajor == 1 {
		return p.h1.RoundTrip(r)
	}
	return p.h2.RoundTrip(r)
}

// CloseIdle closes the pooled connections not in use.
func (p *Pool) CloseIdle() {
	p.h1.CloseIdleConnections()
	p.h2.CloseIdleConnections()
}
