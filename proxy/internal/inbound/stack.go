package inbound

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"time"

	transportv1 "github.com/linkerd-go/linkerd-go/api/linkerd/transport/v1"
	"github.com/linkerd-go/linkerd-go/api/mesh"
	"github.com/linkerd-go/linkerd-go/proxy/internal/clientid"
	"github.com/linkerd-go/linkerd-go/proxy/internal/detect"
	"github.com/linkerd-go/linkerd-go/proxy/internal/forward"
	"github.com/linkerd-go/linkerd-go/proxy/internal/meshtls"
	"github.com/linkerd-go/linkerd-go/proxy/internal/metrics"
	"github.com/linkerd-go/linkerd-go/proxy/internal/origdst"
	"github.com/linkerd-go/linkerd-go/proxy/internal/origproto"
	"github.com/linkerd-go/linkerd-go/proxy/internal/policy"
	"github.com/linkerd-go/linkerd-go/proxy/internal/replay"
	"github.com/linkerd-go/linkerd-go/proxy/internal/route"
	"github.com/linkerd-go/linkerd-go/proxy/internal/stack"
	"github.com/linkerd-go/linkerd-go/proxy/internal/tap"
)

// This file is the inbound path, top to bottom: a connection is accepted
// (forward.Serve, under the side's limiter), its original destination
// recovered, its protocol detected (within what the port's Server
// declares); mesh TLS meant for this proxy is terminated and the client's
// identity learned (handleTLS); opaque bytes go to the application as they
// are (forwardTCP), HTTP is served per request by the request stack
// (newRequestStack).

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
	// The port's Server may say what it carries (proxyProtocol): opaque
	// and application TLS are never read as HTTP, and declared HTTP is
	// never forwarded as opaque bytes. Mesh TLS is terminated on every
	// port, as a client proxy that saw HTTP sends it over mesh TLS
	// whatever the Server says.
	declared := policy.Detect
	timeout := p.cfg.DetectTimeout
	if !direct {
		if pol := p.cfg.Authz.Policy(dst.Port()); pol != nil {
			declared = pol.Protocol
			if pol.DetectTimeout > 0 {
				timeout = pol.DetectTimeout
			}
		}
	}
	proto, dc, err := detect.Detect(c, timeout)
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
	case declared == policy.Opaque || declared == policy.TLS:
		p.forwardTCP(dc, dst, metrics.Labels{Direction: "inbound", TargetAddr: dst.String(), TLS: "no_identity"})
	case (declared == policy.HTTP1 || declared == policy.HTTP2 || declared == policy.GRPC) && proto != detect.HTTP1 && proto != detect.HTTP2:
		p.log.V(1).Info("closed a connection that is not HTTP on a port its Server declares HTTP", "client", c.RemoteAddr().String(), "port", dst.Port())
		dc.Close()
	case proto == detect.HTTP1:
		if err := p.http.Serve(forward.GuardHTTP1(dc), &forward.ConnMeta{Dst: dst, Client: remoteAddr(c), Slot: slot}); err != nil {
			c.Close()
		}
	case proto == detect.HTTP2:
		if err := p.http.Serve(dc, &forward.ConnMeta{Dst: dst, Client: remoteAddr(c), Slot: slot}); err != nil {
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
		if err := p.http.Serve(tc, &forward.ConnMeta{Dst: dst, TLS: true, PeerID: peer, Client: remoteAddr(dc), Slot: slot}); err != nil {
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

// newRequestStack builds the inbound request stack, shared by every
// connection: the layers read what they need of the connection (its
// original destination, the client's identity) from forward.ConnMeta.
func (p *Proxy) newRequestStack() *httputil.ReverseProxy {
	requests := stack.Layers{
		// route selection: every request takes the default route; the
		// inbound policy names the route it matched (authz)
		func(next http.RoundTripper) http.RoundTripper { return route.New(route.Config{}, next) },
		// the port's inbound policy: the request's route, who may send it,
		// the route's filters
		p.cfg.Authz.Layer,
		// l5d-client-id from mesh TLS
		func(next http.RoundTripper) http.RoundTripper { return clientid.New(next) },
		// an HTTP/1 request carried over HTTP/2 goes on as HTTP/1
		func(next http.RoundTripper) http.RoundTripper { return origproto.New(next) },
		// tap point: a seam, passes through
		func(next http.RoundTripper) http.RoundTripper { return tap.New(next) },
		// a request the application refused unprocessed (it is shutting
		// down) goes again on a new connection
		func(next http.RoundTripper) http.RoundTripper { return replay.New(next) },
	}.Over(p.app) // the application, at the original destination

	// The server side of the stack: streams both ways, turns the layers'
	// errors into the proxy's failures, keeps the Host.
	rp := forward.NewReverseProxy(requests, func(pr *httputil.ProxyRequest) { pr.Out.Host = pr.In.Host })
	answer := rp.ErrorHandler
	rp.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		if meta := forward.Meta(r.Context()); meta != nil && meta.PeerID != "" && forward.IsConnectError(err) {
			// Nothing reached the application: the client's proxy may send
			// the request to another endpoint.
			w.Header().Set(mesh.NotSentHeader, "true")
		}
		answer(w, r, err)
	}
	rp.ModifyResponse = func(resp *http.Response) error {
		delete(resp.Header, forward.NotSentKey)
		return nil
	}
	return rp
}

// serveHTTP is where a request enters the request stack.
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
	labels := metrics.Labels{
		Direction: "inbound", Authority: forward.Authority(r, meta.Dst.Port()),
		TargetAddr: meta.Dst.String(), TLS: tlsLabel, ClientID: meta.PeerID,
	}
	h := p.m.For(labels)
	if forward.RefuseMalformed(w, r, h) {
		return
	}
	h.Requests.Inc()
	rec := forward.NewRecorder(w)
	defer rec.Done(h)
	// Counted above, when it arrived: the exchange only carries what the
	// layers learn.
	p.requests.ServeHTTP(rec, stack.With(r, stack.NewExchange(nil, labels)))
}
