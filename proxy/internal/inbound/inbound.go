// Package inbound is the proxy's server side (port 4143): connections to
// the pod, redirected by proxy-init, arrive here. Mesh TLS addressed to the
// proxy's identity is terminated and the client's identity learned; HTTP is
// served per request towards the application with l5d-client-id set;
// opaque TCP, TLS for someone else and connections carried by the mesh
// transport header are forwarded as bytes.
package inbound

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"time"

	"github.com/go-logr/logr"

	transportv1 "github.com/linkerd-go/linkerd-go/api/linkerd/transport/v1"
	"github.com/linkerd-go/linkerd-go/api/mesh"
	"github.com/linkerd-go/linkerd-go/proxy/internal/detect"
	"github.com/linkerd-go/linkerd-go/proxy/internal/forward"
	"github.com/linkerd-go/linkerd-go/proxy/internal/h2guard"
	"github.com/linkerd-go/linkerd-go/proxy/internal/meshtls"
	"github.com/linkerd-go/linkerd-go/proxy/internal/metrics"
	"github.com/linkerd-go/linkerd-go/proxy/internal/origdst"
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
}

// Proxy is the inbound side.
type Proxy struct {
	cfg   Config
	store *meshtls.Store
	m     *metrics.Metrics
	log   logr.Logger

	http    *forward.HTTPServer
	toApp1  *httputil.ReverseProxy // HTTP/1.x to the application
	toApp2  *httputil.ReverseProxy // HTTP/2 (h2c) to the application
	dialer  net.Dialer
	conns   forward.Conns
	limiter *forward.Limiter
}

// New returns the inbound side.
func New(cfg Config, store *meshtls.Store, m *metrics.Metrics, log logr.Logger) *Proxy {
	if cfg.OrigDst == nil {
		cfg.OrigDst = origdst.Get
	}
	p := &Proxy{cfg: cfg, store: store, m: m, log: log}
	p.dialer = net.Dialer{Timeout: cfg.ConnectTimeout, KeepAlive: 30 * time.Second}
	var p1, p2 http.Protocols
	p1.SetHTTP1(true)
	p2.SetUnencryptedHTTP2(true)
	t1 := &http.Transport{
		DialContext:         p.dialer.DialContext,
		Protocols:           &p1,
		MaxIdleConnsPerHost: 100,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	t2 := &http.Transport{
		DialContext:        p.dialer.DialContext,
		Protocols:          &p2,
		IdleConnTimeout:    90 * time.Second,
		DisableCompression: true,
	}
	p.toApp1 = forward.NewReverseProxy(t1, p.rewrite)
	p.toApp2 = forward.NewReverseProxy(t2, p.rewrite)
	for _, rp := range []*httputil.ReverseProxy{p.toApp1, p.toApp2} {
		answer := rp.ErrorHandler
		rp.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
			if meta := forward.Meta(r.Context()); meta != nil && meta.PeerID != "" && forward.IsConnectError(err) {
				// Nothing reached the application: the client's proxy
				// may send the request to another endpoint.
				w.Header().Set(mesh.NotSentHeader, "true")
			}
			answer(w, r, err)
		}
		rp.ModifyResponse = func(resp *http.Response) error {
			resp.Header.Del(mesh.NotSentHeader)
			return nil
		}
	}
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
	return forward.Serve(ctx, ln, grace, p.http, &p.conns, p.limiter, p.handle)
}

// handle classifies one accepted connection and hands it on.
func (p *Proxy) handle(c net.Conn, slot *forward.Slot) {
	dst, err := p.cfg.OrigDst(c)
	direct := errors.Is(err, origdst.ErrNotRedirected)
	if err != nil && !direct {
		p.log.V(1).Info("no original destination", "err", err)
		c.Close()
		return
	}
	if direct {
		// Only a peer proxy connects to 4143 on purpose: with mesh TLS and
		// the transport header naming the port.
		local, _ := netip.ParseAddrPort(c.LocalAddr().String())
		dst = local
	} else if p.refuseLoop(c, dst) {
		return
	} else if mesh.PortsContain(p.cfg.OpaquePorts, dst.Port()) {
		p.forwardTCP(c, dst, metrics.Labels{Direction: "inbound", TargetAddr: dst.String(), TLS: "no_identity"})
		return
	}
	proto, dc, err := detect.Detect(c, p.cfg.DetectTimeout)
	if err != nil {
		c.Close()
		return
	}
	switch {
	case proto == detect.TLS:
		p.handleTLS(dc, dst, direct, slot)
	case direct:
		p.log.V(1).Info("refused a direct connection without mesh TLS", "client", c.RemoteAddr().String())
		c.Close()
	case proto == detect.HTTP1:
		if err := p.http.Serve(forward.GuardHTTP1(dc), &forward.ConnMeta{Dst: dst, Slot: slot}); err != nil {
			c.Close()
		}
	case proto == detect.HTTP2:
		if err := p.http.Serve(dc, &forward.ConnMeta{Dst: dst, Slot: slot}); err != nil {
			c.Close()
		}
	default:
		p.forwardTCP(dc, dst, metrics.Labels{Direction: "inbound", TargetAddr: dst.String(), TLS: "no_identity"})
	}
}

// handleTLS terminates mesh TLS meant for this proxy; any other TLS is the
// application's and passes through untouched.
func (p *Proxy) handleTLS(dc *detect.Conn, dst netip.AddrPort, direct bool, slot *forward.Slot) {
	sni, err := dc.ServerName()
	if err != nil || sni != p.store.LocalName() {
		if direct {
			dc.Close()
			return
		}
		p.forwardTCP(dc, dst, metrics.Labels{Direction: "inbound", TargetAddr: dst.String(), TLS: "passthru"})
		return
	}
	tc := tls.Server(dc, p.store.ServerConfig([]string{"h2", "http/1.1", transportv1.ALPN}))
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.DetectTimeout)
	err = tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		p.log.V(1).Info("mesh TLS handshake failed", "client", dc.RemoteAddr().String(), "err", err)
		tc.Close()
		return
	}
	st := tc.ConnectionState()
	peer := meshtls.PeerIdentity(st)
	switch st.NegotiatedProtocol {
	case transportv1.ALPN:
		_ = tc.SetReadDeadline(time.Now().Add(p.cfg.DetectTimeout))
		hdr, err := transportv1.ReadHeader(tc)
		_ = tc.SetReadDeadline(time.Time{})
		if err != nil {
			p.log.V(1).Info("bad transport header", "client", dc.RemoteAddr().String(), "err", err)
			tc.Close()
			return
		}
		target := netip.AddrPortFrom(dst.Addr(), uint16(hdr.GetPort()))
		if p.refuseLoop(tc, target) {
			return
		}
		p.forwardTCP(tc, target, metrics.Labels{Direction: "inbound", TargetAddr: target.String(), TLS: "true", ClientID: peer})
	case "h2", "http/1.1":
		if direct {
			tc.Close() // HTTP comes redirected, with its original destination
			return
		}
		if err := p.http.Serve(tc, &forward.ConnMeta{Dst: dst, TLS: true, PeerID: peer, Slot: slot}); err != nil {
			tc.Close()
		}
	default:
		if direct {
			tc.Close()
			return
		}
		p.forwardTCP(tc, dst, metrics.Labels{Direction: "inbound", TargetAddr: dst.String(), TLS: "true", ClientID: peer})
	}
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

// serveHTTP forwards one request to the application.
func (p *Proxy) serveHTTP(w http.ResponseWriter, r *http.Request) {
	meta := forward.Meta(r.Context())
	if meta == nil {
		forward.WriteFailure(w, r, forward.FailNoMeta)
		return
	}
	tlsLabel := "no_identity"
	if meta.TLS {
		tlsLabel = "true"
	}
	h := p.m.For(metrics.Labels{
		Direction: "inbound", Authority: forward.Authority(r, meta.Dst.Port()),
		TargetAddr: meta.Dst.String(), TLS: tlsLabel, ClientID: meta.PeerID,
	})
	if forward.RefuseMalformed(w, r, h) {
		return
	}
	h.Requests.Inc()
	rec := forward.NewRecorder(w)
	defer rec.Done(h)

	// Only this proxy may tell the application who the client is.
	r.Header.Del(mesh.ClientIDHeader)
	if meta.PeerID != "" {
		r.Header.Set(mesh.ClientIDHeader, meta.PeerID)
	}
	toApp := p.toApp2
	if r.ProtoMajor == 1 {
		toApp = p.toApp1
	}
	if v := r.Header.Get(mesh.OrigProtoHeader); v != "" {
		r.Header.Del(mesh.OrigProtoHeader)
		if minor, ok := mesh.ParseOrigProto(v); ok && r.ProtoMajor == 2 {
			// An HTTP/1 request the client's proxy carried over HTTP/2:
			// hand it to the application as it was sent.
			toApp = p.toApp1
			r.ProtoMajor, r.ProtoMinor = 1, minor
			rec.Header().Set(mesh.OrigProtoHeader, v)
		}
	}
	toApp.ServeHTTP(rec, r)
}

// rewrite sends the request to the application at its original
// destination, keeping the Host and removing what the proxy added.
func (p *Proxy) rewrite(pr *httputil.ProxyRequest) {
	meta := forward.Meta(pr.In.Context())
	pr.SetURL(&url.URL{Scheme: "http", Host: meta.Dst.String()})
	pr.Out.Host = pr.In.Host
}
