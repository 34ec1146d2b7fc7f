package balance

import (
	"net/http"
	"net/http/httptrace"
	"time"

	"github.com/go-logr/logr"

	"github.com/linkerd-go/linkerd-go/proxy/internal/discovery"
	"github.com/linkerd-go/linkerd-go/proxy/internal/forward"
	"github.com/linkerd-go/linkerd-go/proxy/internal/replay"
	"github.com/linkerd-go/linkerd-go/proxy/internal/stack"
)

// LayerConfig tunes the balancer layers (HTTP and TCP).
type LayerConfig struct {
	// Attempts bounds the endpoints one request or connection tries when
	// it was not sent (at least 1).
	Attempts int
	Log      logr.Logger
	// Now is the clock (nil: time.Now); tests replace it.
	Now func() time.Time
}

// HTTP is the layer that sends each request to an endpoint of a target's
// balancer: it records the pick in the exchange for the endpoint layer
// beneath, and sends the request to another endpoint (up to Attempts
// endpoints) when the first did not get it: connecting failed, or a meshed
// endpoint's proxy answered that its application could not be reached
// (mesh.NotSentHeader). The endpoint that failed leaves the balancer until
// a probe reaches it. The body is replayed from what was kept of it; a
// request whose body outgrew replay.Limit is not sent again. A request the
// endpoint refused without processing it (it is shutting down: GOAWAY,
// REFUSED_STREAM) the transport itself sends again on a new connection,
// through the request's GetBody; when that connect fails, the request goes
// to another endpoint as above.
type HTTP struct {
	cfg  LayerConfig
	b    *Balancer[discovery.Endpoint]
	next http.RoundTripper
}

// NewHTTP returns the layer over next, picking from b.
func NewHTTP(cfg LayerConfig, b *Balancer[discovery.Endpoint], next http.RoundTripper) *HTTP {
	if cfg.Attempts < 1 {
		cfg.Attempts = 1
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &HTTP{cfg: cfg, b: b, next: next}
}

// firstRoundTrip sends a request to an endpoint never measured, whose
// first requests usually open its connection: the latency the balancer
// learns is the endpoint's answer, from the moment a connection was in
// hand, not the connect and TLS handshake. Counted with them, one slow
// handshake (a busy node, a pod just started) would make a new endpoint
// look many times slower than the others, and the peak would keep it
// nearly idle until it decayed, tens of seconds later.
func (l *HTTP) firstRoundTrip(req *http.Request, ex *stack.Exchange, done func(time.Duration)) (*http.Response, error) {
	var gotConn time.Time
	trace := &httptrace.ClientTrace{GotConn: func(httptrace.GotConnInfo) { gotConn = l.cfg.Now() }}
	resp, err := l.next.RoundTrip(req.WithContext(httptrace.WithClientTrace(req.Context(), trace)))
	if err != nil || gotConn.IsZero() {
		return resp, err
	}
	answer := max(l.cfg.Now().Sub(gotConn), time.Nanosecond)
	ex.Release = func(headerLatency time.Duration) {
		if headerLatency == 0 {
			answer = 0 // no response reached the client: no sample
		}
		done(answer)
	}
	return resp, err
}

// RoundTrip balances the request.
func (l *HTTP) RoundTrip(req *http.Request) (*http.Response, error) {
	ex := stack.From(req)
	ep, done, ok := l.b.Pick()
	if !ok {
		return nil, forward.Fail(forward.FailNoEndpoints)
	}
	var body *replay.Body
	if req.Body != nil && req.Body != http.NoBody {
		body = replay.NewBody(req.Body)
		out := *req
		out.Body, out.GetBody = body.First(), body.GetBody
		req = &out
	}
	for attempt := 1; ; attempt++ {
		ex.Endpoint, ex.Picked, ex.Release = ep.Value, true, done
		var resp *http.Response
		var err error
		if ep.measured() {
			resp, err = l.next.RoundTrip(req)
		} else {
			resp, err = l.firstRoundTrip(req, ex, done)
		}
		notSent := false
		if err == nil {
			_, marked := resp.Header[forward.NotSentKey]
			notSent = marked && ep.Value.Identity != ""
			if marked {
				delete(resp.Header, forward.NotSentKey)
			}
		}
		if attempt >= l.cfg.Attempts || !(notSent || (err != nil && forward.IsConnectError(err))) {
			return resp, err
		}
		next, ok := body.Again()
		if !ok {
			return resp, err
		}
		l.b.ConnectFailed(ep)
		ex.End(0)
		var nextDone func(time.Duration)
		ep, nextDone, ok = l.b.Pick()
		if !ok {
			// Discovery emptied the set meanwhile: the first answer
			// stands.
			return resp, err
		}
		done = nextDone
		if err == nil {
			l.cfg.Log.V(1).Info("endpoint's application unreachable; trying another endpoint", "target", ex.Labels.TargetAddr)
			resp.Body.Close()
		} else {
			l.cfg.Log.V(1).Info("connect failed; trying another endpoint", "target", ex.Labels.TargetAddr, "err", err)
		}
		// The transport of the attempt given up may still hold the
		// request: the next attempt gets its own copy.
		out := *req
		if next != nil {
			out.Body, out.GetBody = next, body.GetBody
		}
		out.Header = req.Header.Clone()
		u := *req.URL
		out.URL = &u
		req = &out
	}
}
