// Package inbound is the proxy's server side (port 4143): connections to
// the pod, redirected by proxy-init, arrive here. Mesh TLS addressed to the
// proxy's identity is terminated and the client's identity learned; HTTP is
// served per request towards the application with l5d-client-id set;
// opaque TCP, TLS for someone else and connections carried by the mesh
// transport header are forwarded as bytes.
package inbound

import (
	"context"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/linkerd-go/linkerd-go/api/mesh"
	"github.com/linkerd-go/linkerd-go/proxy/internal/apppool"
	"github.com/linkerd-go/linkerd-go/proxy/internal/authz"
	"github.com/linkerd-go/linkerd-go/proxy/internal/forward"
	"github.com/linkerd-go/linkerd-go/proxy/internal/h2guard"
	"github.com/linkerd-go/linkerd-go/proxy/internal/meshtls"
	"github.com/linkerd-go/linkerd-go/proxy/internal/metrics"
	"github.com/linkerd-go/linkerd-go/proxy/internal/origdst"
	"github.com/linkerd-go/linkerd-go/proxy/internal/policy"
	"github.com/linkerd-go/linkerd-go/proxy/internal/selfaddr"
)

// Config tunes the inbound side.
type Config struct {
	// DetectTimeout bounds protocol detection and the TLS handshake.
	DetectTimeout time.Duration
	// ConnectTimeout bounds connecting to the application.
	ConnectTimeout time.Duration
	// OpaquePorts skip protocol detection.
	OpaquePorts []mesh.PortRange
	// Limits bound the side's work; zero fields take their defaults.
	Limits forward.Limits
	// OrigDst recovers a connection's original destination; tests replace
	// it to run without nftables.
	OrigDst func(net.Conn) (netip.AddrPort, error)
	// Self holds the proxy's own listeners: a connection is never
	// forwarded to one of them (nil: no check).
	Self *selfaddr.Set
	// HTTP2 bounds what one HTTP/2 client connection may flood; zero
	// fields take h2guard's defaults.
	HTTP2 h2guard.Limits
	// Authz enforces the inbound policy (nil: every client is allowed, as
	// with the all-unauthenticated default).
	Authz *authz.Authorizer
}

// Proxy is the inbound side.
type Proxy struct {
	cfg   Config
	store *meshtls.Store
	m     *metrics.Metrics
	log   logr.Logger

	http     *forward.HTTPServer
	requests *httputil.ReverseProxy // the server side of the request stack
	app      *apppool.Pool
	dialer   net.Dialer
	conns    forward.Conns
	limiter  *forward.Limiter
}

// New returns the inbound side.
func New(cfg Config, store *meshtls.Store, m *metrics.Metrics, log logr.Logger) *Proxy {
	if cfg.OrigDst == nil {
		cfg.OrigDst = origdst.Get
	}
	if cfg.Authz == nil {
		allowAll, _ := policy.Default(policy.DefaultAllUnauthenticated, nil)
		cfg.Authz = authz.New(authz.Fixed{Policy: allowAll}, prometheus.NewRegistry(), log)
	}
	p := &Proxy{cfg: cfg, store: store, m: m, log: log}
	p.dialer = net.Dialer{Timeout: cfg.ConnectTimeout, KeepAlive: 30 * time.Second}
	p.app = apppool.New(apppool.Config{ConnectTimeout: cfg.ConnectTimeout})
	p.requests = p.newRequestStack()
	p.limiter = forward.NewLimiter(cfg.Limits.WithDefaults(), m.Load("inbound"), log)
	p.http = forward.NewHTTPServer(http.HandlerFunc(p.serveHTTP), forward.DefaultLimits, p.limiter, log)
	p.http.GuardHTTP2(cfg.HTTP2, m.HTTP2Floods("inbound"))
	return p
}

// Connections returns the side's accepted connections open now and the
// most open at once since the last call.
func (p *Proxy) Connections() (open, peak int) { return p.limiter.Connections() }

// Serve accepts on ln until ctx ends, then shuts down gracefully within
// grace: HTTP requests in flight finish, opaque connections are closed at
// the end of the grace period.
func (p *Proxy) Serve(ctx context.Context, ln net.Listener, grace time.Duration) error {
	err := forward.Serve(ctx, ln, grace, p.http, &p.conns, p.limiter, p.handle)
	p.app.CloseIdle()
	return err
}

// refuseLoop closes c when its target is one of the proxy's own listeners:
// forwarding it would bring it back to the proxy, again and again.
func (p *Proxy) refuseLoop(c net.Conn, target netip.AddrPort) bool {
	if !p.cfg.Self.Contains(target) {
		return false
	}
	p.limiter.RefuseLoop(c.RemoteAddr().String(), target.String())
	c.Close()
	return true
}

// forwardTCP connects to the application and copies bytes both ways.
func (p *Proxy) forwardTCP(c net.Conn, dst netip.AddrPort, l metrics.Labels) {
	client := policy.Client{Addr: remoteAddr(c), Identity: l.ClientID}
	if !p.cfg.Authz.Connection(dst.String(), dst.Port(), client) {
		c.Close()
		return
	}
	h := p.m.For(l)
	h.TCPOpen.Inc()
	h.TCPConns.Inc()
	defer p.conns.Track(c)()
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.ConnectTimeout)
	up, err := p.dialer.DialContext(ctx, "tcp", dst.String())
	cancel()
	if err != nil {
		c.Close()
		h.TCPClosed(forward.Errno(err))
		return
	}
	defer p.conns.Track(up)()
	err = forward.TCP(c, up, h)
	h.TCPClosed(forward.Errno(err))
}

// remoteAddr is c's peer address (the zero Addr when it is not TCP).
func remoteAddr(c net.Conn) netip.Addr {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}
