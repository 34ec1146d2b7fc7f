package outbound

import (
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
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
// sends it to another endpoint (up to maxConnectAttempts endpoints) when
// the first did not get it: connecting failed, or a meshed endpoint's
// proxy answered that its application could not be reached
// (mesh.NotSentHeader). The endpoint that failed leaves the balancer until
// a probe reaches it. The body is replayed from what was kept of it; a
// request whose body outgrew replayLimit is not sent again.
type routeTransport struct{}

func (routeTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rt := req.Context().Value(routeKey{}).(*route)
	var body *replayBody
	if req.Body != nil && req.Body != http.NoBody {
		body = newReplayBody(req.Body)
		out := *req
		out.Body = body.first()
		req = &out
	}
	for attempt := 1; ; attempt++ {
		resp, err := rt.transport.RoundTrip(req)
		notSent := err == nil && rt.ep != nil && rt.ep.Value.Identity != "" && resp.Header.Get(mesh.NotSentHeader) != ""
		if err == nil {
			resp.Header.Del(mesh.NotSentHeader)
		}
		if rt.ep == nil || attempt >= maxConnectAttempts || !(notSent || (err != nil && forward.IsConnectError(err))) {
			rt.handles()
			return resp, err
		}
		next, ok := body.again()
		if !ok {
			rt.handles()
			return resp, err
		}
		rt.d.bal.ConnectFailed(rt.ep)
		rt.done(0)
		ep, done, ok := rt.d.bal.Pick()
		if !ok {
			// Discovery emptied the set meanwhile: the first answer
			// stands.
			rt.handles()
			return resp, err
		}
		if err == nil {
			rt.p.log.V(1).Info("endpoint's application unreachable; trying another endpoint", "target", rt.labels.TargetAddr)
			resp.Body.Close()
		} else {
			rt.p.log.V(1).Info("connect failed; trying another endpoint", "target", rt.labels.TargetAddr, "err", err)
		}
		rt.toEndpoint(ep, done)
		req = rt.retarget(req, next)
	}
}

// retarget returns the outgoing request addressed to the route's current
// endpoint.
func (rt *route) retarget(req *http.Request, body io.ReadCloser) *http.Request {
	out := *req
	if body != nil {
		out.Body = body
	}
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
