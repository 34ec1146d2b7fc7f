package balance

import (
	"context"
	"errors"
	"net"

	"github.com/linkerd-go/linkerd-go/proxy/internal/discovery"
	"github.com/linkerd-go/linkerd-go/proxy/internal/forward"
)

// ErrNoEndpoints is what TCP.Connect returns when the balancer has no
// endpoint to pick.
var ErrNoEndpoints = errors.New("no endpoints")

// Connector opens a connection for opaque bytes to one endpoint (the
// endpoint layer).
type Connector interface {
	Connect(ctx context.Context, e discovery.Endpoint) (net.Conn, error)
}

// TCP is the balancer layer of opaque connections: each connection goes to
// an endpoint of the target's balancer, and to another one (up to Attempts
// endpoints) when connecting fails: nothing was sent. The endpoint that
// failed leaves the balancer until a probe reaches it.
type TCP struct {
	cfg  LayerConfig
	b    *Balancer[discovery.Endpoint]
	next Connector
}

// NewTCP returns the layer over next, picking from b.
func NewTCP(cfg LayerConfig, b *Balancer[discovery.Endpoint], next Connector) *TCP {
	cfg.Attempts = max(cfg.Attempts, 1)
	return &TCP{cfg: cfg, b: b, next: next}
}

// Connect returns a connection to a picked endpoint, that endpoint, and
// release, to call when the connection ends. On an error, e is the
// endpoint of the last attempt (zero with ErrNoEndpoints) and release is a
// no-op.
func (l *TCP) Connect(ctx context.Context) (up net.Conn, e discovery.Endpoint, release func(), err error) {
	for attempt := 1; ; attempt++ {
		ep, done, ok := l.b.Pick()
		if !ok {
			return nil, e, func() {}, ErrNoEndpoints
		}
		e = ep.Value
		up, err = l.next.Connect(ctx, e)
		if err == nil {
			return up, e, func() { done(0) }, nil
		}
		done(0)
		if !forward.IsConnectError(err) || attempt >= l.cfg.Attempts {
			return nil, e, func() {}, err
		}
		l.cfg.Log.V(1).Info("connect failed; trying another endpoint", "target", e.Addr.String(), "err", err)
		l.b.ConnectFailed(ep)
	}
}
