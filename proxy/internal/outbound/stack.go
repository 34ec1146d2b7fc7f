package outbound

import (
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"

	"github.com/linkerd-go/linkerd-go/api/mesh"
	"github.com/linkerd-go/linkerd-go/proxy/internal/accrual"
	"github.com/linkerd-go/linkerd-go/proxy/internal/balance"
	"github.com/linkerd-go/linkerd-go/proxy/internal/detect"
	"github.com/linkerd-go/linkerd-go/proxy/internal/discovery"
	"github.com/linkerd-go/linkerd-go/proxy/internal/endpoint"
	"github.com/linkerd-go/linkerd-go/proxy/internal/forward"
	"github.com/linkerd-go/linkerd-go/proxy/internal/metrics"
	"github.com/linkerd-go/linkerd-go/proxy/internal/retry"
	"github.com/linkerd-go/linkerd-go/proxy/internal/route"
	"github.com/linkerd-go/linkerd-go/proxy/internal/split"
	"github.com/linkerd-go/linkerd-go/proxy/internal/stack"
	"github.com/linkerd-go/linkerd-go/proxy/internal/tap"
	"github.com/linkerd-go/linkerd-go/proxy/internal/timeout"
)

// This file is the outbound path, top to bottom: a connection is accepted
// (forward.Serve, under the side's limiter), its original destination
// recovered, its protocol detected; opaque bytes are balanced over the
// target's endpoints (forwardTCP: d.tcp, then endpoint.Clients.Connect), HTTP is served per request by the
// target's request stack (newDest).

// handle takes one accepted connection.
func (p *Proxy) handle(c net.Conn, slot *forward.Slot) {
	dst, err := p.cfg.OrigDst(c)
	if err != nil {
		p.log.V(1).Info("no original destination", "err", err)
		c.Close()
		return
	}
	if p.cfg.Self.Contains(dst) {
		// Forwarding it would bring it back to the proxy, again and again.
		p.limiter.RefuseLoop(c.RemoteAddr().String(), dst.String())
		c.Close()
		return
	}
	d := p.dest(dst) // discovery lookup: the target's shared state
	d.inUse.Add(1)
	defer d.inUse.Add(-1)
	if mesh.PortsContain(p.cfg.OpaquePorts, dst.Port()) {
		p.forwardTCP(c, d)
		return
	}
	proto, dc, err := detect.Detect(c, p.cfg.DetectTimeout)
	if err != nil {
		c.Close()
		return
	}
	switch proto {
	case detect.HTTP1:
		if err := p.http.Serve(forward.GuardHTTP1(dc), &forward.ConnMeta{Dst: dst, Slot: slot}); err != nil {
			c.Close()
		}
	case detect.HTTP2:
		if err := p.http.Serve(dc, &forward.ConnMeta{Dst: dst, Slot: slot}); err != nil {
			c.Close()
		}
	default:
		p.forwardTCP(dc, d)
	}
}

// newDest builds a target's state and its request stack. Everything a layer
// reads of discovery is a watched value (the balancer's endpoint set, the
// discovery state), refreshed by dest.current; no layer calls the control
// plane.
func (p *Proxy) newDest(dst netip.AddrPort) *dest {
	d := &dest{addr: dst, watch: p.resolve(dst.String()), bal: balance.New(p.probe)}

	// A target discovery knows: its endpoints, balanced.
	balanced := stack.Layers{
		// failure accrual (circuit breaking): a seam, passes through
		func(next http.RoundTripper) http.RoundTripper { return accrual.New(next) },
		// P2C over the endpoints; a request not sent goes to another one
		func(next http.RoundTripper) http.RoundTripper {
			return balance.NewHTTP(balance.LayerConfig{Attempts: maxConnectAttempts, Log: p.log}, d.bal, next)
		},
		// tap point: a seam, passes through
		func(next http.RoundTripper) http.RoundTripper { return tap.New(next) },
	}.Over(endpoint.NewPicked(p.clients)) // mesh TLS and HTTP/2 pools, or plaintext
	d.balanced = []split.Backend{{Weight: 1, Next: balanced}}
	// Opaque connections: the same balancer, then the endpoint's
	// connection (mesh TLS with the transport header, or plaintext).
	d.tcp = balance.NewTCP(balance.LayerConfig{Attempts: maxConnectAttempts, Log: p.log}, d.bal, p.clients)
	// A target discovery does not know: the address the application
	// connected to.
	d.original = []split.Backend{{Weight: 1, Next: tap.New(endpoint.NewOriginal(p.clients, dst))}}

	requests := stack.Layers{
		// counted in request_total once sent (or answered by the proxy)
		stack.CountSent,
		// route selection: every request takes the default route for now
		func(next http.RoundTripper) http.RoundTripper { return route.New(route.Config{}, next) },
		// the route's timeout: none yet
		func(next http.RoundTripper) http.RoundTripper { return timeout.New(next) },
		// the route's retries: a seam, passes through
		func(next http.RoundTripper) http.RoundTripper { return retry.New(next) },
	}.Over(split.New(d.backends)) // traffic split over the target's backends

	// The server side of the stack: streams both ways, turns the layers'
	// errors into the proxy's failures, keeps the Host.
	d.requests = forward.NewReverseProxy(requests, keepHost)
	d.requests.ModifyResponse = func(resp *http.Response) error {
		delete(resp.Header, forward.OrigProtoKey)
		return nil
	}
	return d
}

// backends are the target's backends for what discovery says now: none
// when it has no endpoints (503), its balancer, or its original address.
func (d *dest) backends() []split.Backend {
	switch discovery.State(d.state.Load()) {
	case discovery.NoEndpoints:
		return nil
	case discovery.Endpoints:
		return d.balanced
	default:
		return d.original
	}
}

// serveHTTP is where a request enters its target's stack.
func (p *Proxy) serveHTTP(w http.ResponseWriter, r *http.Request) {
	meta := forward.Meta(r.Context())
	if meta == nil {
		forward.WriteFailure(w, r, forward.FailNoMeta)
		return
	}
	d := p.dest(meta.Dst)
	d.inUse.Add(1)
	defer d.inUse.Add(-1)
	snap := d.current(r.Context(), p.cfg.DiscoveryTimeout)
	// The application's own mesh headers are not trusted downstream.
	delete(r.Header, forward.ClientIDKey)
	delete(r.Header, forward.OrigProtoKey)

	ex := stack.NewExchange(p.m, metrics.Labels{
		Direction: "outbound", Authority: forward.Authority(r, meta.Dst.Port()),
		TargetAddr: meta.Dst.String(), TLS: "no_identity", Dst: metrics.DstFromMap(snap.Labels),
	})
	if forward.RefuseMalformed(w, r, p.m.For(ex.Labels)) {
		return
	}
	rec := forward.NewRecorder(w)
	// Deferred: the reverse proxy aborts the handler (a panic) when a
	// response is cut short, and the response must still be counted.
	defer func() {
		rec.Done(ex.Counted())
		// The balancer learns the latency to the response's headers.
		ex.End(rec.HeaderLatency())
	}()
	d.requests.ServeHTTP(rec, stack.With(r, ex))
}

// keepHost leaves the outgoing request's URL to the endpoint layer and
// keeps the Host the application sent.
func keepHost(pr *httputil.ProxyRequest) {
	pr.Out.Host = pr.In.Host
}
