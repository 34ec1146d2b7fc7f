package outbound

import (
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/linkerd-go/linkerd-go/api/mesh"
	"github.com/linkerd-go/linkerd-go/proxy/internal/balance"
	"github.com/linkerd-go/linkerd-go/proxy/internal/discovery"
	"github.com/linkerd-go/linkerd-go/proxy/internal/forward"
	"github.com/linkerd-go/linkerd-go/proxy/internal/metrics"
)

// route is where one request goes: chosen by serveHTTP, read by the
// reverse proxy's rewrite and transport. A connect failure moves it to
// another endpoint: the request was not sent.
type route struct {
	p  *Proxy
	in *http.Request // as the application sent it
	d  *dest

	url       url.URL
	transport http.RoundTripper
	origProto string
	labels    metrics.Labels

	ep   *balance.Endpoint[discovery.Endpoint] // nil: the original destination
	done func(time.Duration)
	h    *metrics.Handles // set once the request is sent
}

type routeKey struct{}

// toEndpoint points the route at an endpoint the balancer picked: mesh TLS
// to a meshed one (HTTP/2 between the proxies when the peer takes it, with
// HTTP/1 marked l5d-orig-proto), the application's own protocol to others.
func (rt *route) toEndpoint(ep *balance.Endpoint[discovery.Endpoint], done func(time.Duration)) {
	rt.ep, rt.done = ep, done
	e, r, p := ep.Value, rt.in, rt.p
	rt.labels.TargetAddr, rt.labels.Dst = e.Addr.String(), metrics.DstFromMap(e.Labels)
	rt.labels.TLS, rt.labels.ServerID = "no_identity", ""
	rt.url = url.URL{Scheme: "http", Host: e.Addr.String()}
	rt.origProto = ""
	switch {
	case e.Identity == "":
		rt.transport = p.plainTransport(r)
	case forward.IsUpgrade(r) || (r.ProtoMajor == 1 && !e.HTTP2):
		rt.labels.TLS, rt.labels.ServerID = "true", e.Identity
		rt.url.Scheme = "https"
		rt.transport = p.meshTransport(meshKey{identity: e.Identity, serverName: e.ServerName})
	default:
		rt.labels.TLS, rt.labels.ServerID = "true", e.Identity
		rt.url.Scheme = "https"
		rt.transport = p.meshTransport(meshKey{identity: e.Identity, serverName: e.ServerName, h2: true})
		if r.ProtoMajor == 1 {
			rt.origProto = forward.OrigProto(r)
		}
	}
}

// handles are the metrics of where the request went (counted in
// request_total once sent).
func (rt *route) handles() *metrics.Handles {
	if rt.h == nil {
		rt.h = rt.p.m.For(rt.labels)
		rt.h.Requests.Inc()
	}
	return rt.h
}

func rewrite(pr *httputil.ProxyRequest) {
	rt := pr.In.Context().Value(routeKey{}).(*route)
	pr.SetURL(&rt.url)
	pr.Out.Host = pr.In.Host
	if rt.origProto != "" {
		pr.Out.Header.Set(mesh.OrigProtoHeader, rt.origProto)
	}
}

// routeTransport sends a request with the transport its route chose, and
// sends it to another endpoint when connecting fails (up to
// maxConnectAttempts endpoints, and only while nothing of the body was
// read), ejecting the one that failed from the balancer.
type routeTransport struct{}

func (routeTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rt := req.Context().Value(routeKey{}).(*route)
	var body *unreadBody
	if req.Body != nil && req.Body != http.NoBody {
		body = &unreadBody{ReadCloser: req.Body}
		out := *req
		out.Body = body
		req = &out
	}
	for attempt := 1; ; attempt++ {
		resp, err := rt.transport.RoundTrip(req)
		if err == nil || rt.ep == nil || !forward.IsConnectError(err) || body.started() || attempt >= maxConnectAttempts {
			rt.handles()
			return resp, err
		}
		rt.p.log.V(1).Info("connect failed; trying another endpoint", "target", rt.labels.TargetAddr, "err", err)
		rt.d.bal.ConnectFailed(rt.ep)
		rt.done(0)
		ep, done, ok := rt.d.bal.Pick()
		if !ok {
			rt.handles()
			return nil, err
		}
		rt.toEndpoint(ep, done)
		req = rt.retarget(req)
	}
}

// retarget returns the outgoing request addressed to the route's current
// endpoint.
func (rt *route) retarget(req *http.Request) *http.Request {
	out := *req
	u := *req.URL
	u.Scheme, u.Host = rt.url.Scheme, rt.url.Host
	out.URL = &u
	out.Header = req.Header.Clone()
	if rt.origProto != "" {
		out.Header.Set(mesh.OrigProtoHeader, rt.origProto)
	} else {
		out.Header.Del(mesh.OrigProtoHeader)
	}
	return &out
}

// unreadBody is a request body that says whether the transport began to
// read it, and that is not closed before then: a transport closes the body
// of a request it failed to send, and the next endpoint needs it whole.
// (The server closes the application's body when the request ends.)
type unreadBody struct {
	io.ReadCloser
	read atomic.Bool
}

func (b *unreadBody) Read(p []byte) (int, error) {
	b.read.Store(true)
	return b.ReadCloser.Read(p)
}

func (b *unreadBody) Close() error {
	if !b.read.Load() {
		return nil
	}
	return b.ReadCloser.Close()
}

// started reports whether any of the body was asked for; a nil body never
// is.
func (b *unreadBody) started() bool { return b != nil && b.read.Load() }
