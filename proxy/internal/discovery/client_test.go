package discovery

import (
	"errors"
	"maps"
	"net/netip"
	"slices"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	destinationv1 "github.com/linkerd-go/linkerd-go/api/linkerd/destination/v1"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// Message builders.

func sockAddr(s string) *destinationv1.SocketAddress {
	return destinationv1.NewSocketAddress(netip.MustParseAddrPort(s))
}

func pbEndpoint(addr string, mods ...func(*destinationv1.Endpoint)) *destinationv1.Endpoint {
	e := &destinationv1.Endpoint{Address: sockAddr(addr)}
	for _, m := range mods {
		m(e)
	}
	return e
}

func withIdentity(name, sni string) func(*destinationv1.Endpoint) {
	return func(e *destinationv1.Endpoint) {
		e.TlsIdentity = destinationv1.NewTlsIdentity(name)
		e.TlsIdentity.ServerName = sni
	}
}

func withHTTP2(e *destinationv1.Endpoint) {
	e.ProtocolHint = &destinationv1.ProtocolHint{Protocol: &destinationv1.ProtocolHint_Http2{Http2: &destinationv1.ProtocolHint_Http2Options{}}}
}

func withOpaque(port uint32) func(*destinationv1.Endpoint) {
	return func(e *destinationv1.Endpoint) {
		e.ProtocolHint = &destinationv1.ProtocolHint{Protocol: &destinationv1.ProtocolHint_Opaque{Opaque: &destinationv1.ProtocolHint_OpaqueOptions{InboundPort: port}}}
	}
}

func withWeight(w uint32) func(*destinationv1.Endpoint) {
	return func(e *destinationv1.Endpoint) { e.Weight = w }
}

func withLabels(kv ...string) func(*destinationv1.Endpoint) {
	return func(e *destinationv1.Endpoint) { e.MetricLabels = labels(kv...) }
}

func labels(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func addMsg(setLabels map[string]string, eps ...*destinationv1.Endpoint) *destinationv1.GetResponse {
	return &destinationv1.GetResponse{Update: &destinationv1.GetResponse_Add{Add: &destinationv1.EndpointsAdded{Endpoints: eps, MetricLabels: setLabels}}}
}

func removeMsg(addrs ...string) *destinationv1.GetResponse {
	r := &destinationv1.EndpointsRemoved{}
	for _, a := range addrs {
		r.Addresses = append(r.Addresses, sockAddr(a))
	}
	return &destinationv1.GetResponse{Update: &destinationv1.GetResponse_Remove{Remove: r}}
}

var (
	noEndpointsMsg  = &destinationv1.GetResponse{Update: &destinationv1.GetResponse_NoEndpoints{NoEndpoints: &destinationv1.NoEndpoints{}}}
	doesNotExistMsg = &destinationv1.GetResponse{Update: &destinationv1.GetResponse_DoesNotExist{DoesNotExist: &destinationv1.DoesNotExist{}}}
)

func addrsOf(s Snapshot) []string {
	var out []string
	for _, e := range s.Endpoints {
		out = append(out, e.Addr.String())
	}
	return out
}

func hasAddrs(want ...string) func(Snapshot) bool {
	return func(s Snapshot) bool { return s.State == Endpoints && slices.Equal(addrsOf(s), want) }
}

const (
	webTarget = "web.ns.svc.cluster.local:80"
	idA       = "web.ns.serviceaccount.identity.linkerd.cluster.local"
)

func TestEndpointsMapping(t *testing.T) {
	e := newEnv(t, Options{})
	w := e.client.Endpoints(webTarget)
	defer w.Release()
	s := w.Snapshot()
	if s.State != Pending || s.Stale {
		t.Fatalf("before any message: %+v, want Pending, not stale", s)
	}
	g := e.nextGet()
	if g.req.GetPath() != webTarget || g.req.GetContextToken() != testToken {
		t.Fatalf("request %v", g.req)
	}

	setLabels := labels("namespace", "ns", "service", "web")
	g.send <- addMsg(setLabels,
		pbEndpoint("10.0.0.2:8080", withIdentity(idA, ""), withHTTP2, withLabels("pod", "web-2", "deployment", "web")),
		pbEndpoint("10.0.0.1:8080", withWeight(5), withIdentity(idA, "sni.example"), withOpaque(4143), withLabels("pod", "web-1", "service", "override")),
		pbEndpoint("[2001:db8::1]:8080"),
		pbEndpoint("10.0.0.3:8080", withOpaque(4143)), // not meshed: the inbound port does not apply
	)
	s = waitSnap(t, w, "four endpoints", hasAddrs("10.0.0.1:8080", "10.0.0.2:8080", "10.0.0.3:8080", "[2001:db8::1]:8080"))
	want := []Endpoint{
		{Addr: netip.MustParseAddrPort("10.0.0.1:8080"), Weight: 5, Identity: idA, ServerName: "sni.example", Opaque: true, OpaqueInboundPort: 4143,
			Labels: labels("namespace", "ns", "service", "override", "pod", "web-1")},
		{Addr: netip.MustParseAddrPort("10.0.0.2:8080"), Weight: destinationv1.DefaultEndpointWeight, Identity: idA, ServerName: idA, HTTP2: true,
			Labels: labels("namespace", "ns", "service", "web", "pod", "web-2", "deployment", "web")},
		{Addr: netip.MustParseAddrPort("10.0.0.3:8080"), Weight: destinationv1.DefaultEndpointWeight, Opaque: true, Labels: setLabels},
		{Addr: netip.MustParseAddrPort("[2001:db8::1]:8080"), Weight: destinationv1.DefaultEndpointWeight, Labels: setLabels},
	}
	if !slices.EqualFunc(s.Endpoints, want, endpointEqual) {
		t.Fatalf("endpoints\n got %+v\nwant %+v", s.Endpoints, want)
	}
	if !maps.Equal(s.Labels, setLabels) || s.Stale || s.Err != nil {
		t.Fatalf("snapshot %+v", s)
	}

	// A later add for a held address replaces it.
	g.send <- addMsg(setLabels, pbEndpoint("10.0.0.3:8080", withWeight(7)))
	waitSnap(t, w, "replaced endpoint", func(s Snapshot) bool {
		return len(s.Endpoints) == 4 && s.Endpoints[2].Weight == 7 && !s.Endpoints[2].Opaque
	})

	g.send <- removeMsg("10.0.0.2:8080", "[2001:db8::1]:8080", "10.9.9.9:1")
	waitSnap(t, w, "after remove", hasAddrs("10.0.0.1:8080", "10.0.0.3:8080"))

	g.send <- noEndpointsMsg
	s = waitSnap(t, w, "no endpoints", func(s Snapshot) bool { return s.State == NoEndpoints })
	if len(s.Endpoints) != 0 {
		t.Fatalf("NoEndpoints with endpoints %v", addrsOf(s))
	}

	g.send <- addMsg(setLabels, pbEndpoint("10.0.0.4:8080"))
	waitSnap(t, w, "endpoints again", hasAddrs("10.0.0.4:8080"))

	// Removing the last endpoint leaves a target with no endpoints.
	g.send <- removeMsg("10.0.0.4:8080")
	waitSnap(t, w, "no endpoints after remove", func(s Snapshot) bool { return s.State == NoEndpoints })

	g.send <- addMsg(setLabels, pbEndpoint("10.0.0.5:8080"))
	waitSnap(t, w, "endpoints again", hasAddrs("10.0.0.5:8080"))
	g.send <- doesNotExistMsg
	s = waitSnap(t, w, "does not exist", func(s Snapshot) bool { return s.State == DoesNotExist })
	if len(s.Endpoints) != 0 || s.Labels != nil || s.Err != nil {
		t.Fatalf("DoesNotExist snapshot %+v", s)
	}
	if got := e.metric("discovery_updates_total", kindEndpoints); got != 8 {
		t.Errorf("updates_total = %v, want 8", got)
	}
	if got := e.metric("discovery_invalid_updates_total", kindEndpoints); got != 0 {
		t.Errorf("invalid_updates_total = %v, want 0", got)
	}
}

func endpointEqual(a, b Endpoint) bool {
	return a.Addr == b.Addr && a.Weight == b.Weight && a.Identity == b.Identity && a.ServerName == b.ServerName &&
		a.HTTP2 == b.HTTP2 && a.Opaque == b.Opaque && a.OpaqueInboundPort == b.OpaqueInboundPort && maps.Equal(a.Labels, b.Labels)
}

func TestMalformedInputIgnored(t *testing.T) {
	e := newEnv(t, Options{})
	w := e.client.Endpoints(webTarget)
	defer w.Release()
	g := e.nextGet()

	unknownIdentity := pbEndpoint("10.0.0.6:80")
	unknownIdentity.TlsIdentity = &destinationv1.TlsIdentity{ServerName: "x"} // a kind this client does not know
	g.send <- &destinationv1.GetResponse{}                                    // no update at all
	g.send <- addMsg(labels("bad-label", "x", "namespace", "ns"),
		&destinationv1.Endpoint{Address: &destinationv1.SocketAddress{Ip: []byte{1, 2, 3}, Port: 80}},
		&destinationv1.Endpoint{Address: &destinationv1.SocketAddress{Ip: []byte{10, 0, 0, 7}, Port: 0}},
		&destinationv1.Endpoint{Address: &destinationv1.SocketAddress{Ip: []byte{10, 0, 0, 8}, Port: 70000}},
		&destinationv1.Endpoint{},
		unknownIdentity,
		pbEndpoint("10.0.0.9:80", withIdentity(idA, ""), withOpaque(70000)),
		pbEndpoint("10.0.0.1:80", withLabels("pod", "p", "0bad", "x", "", "y")),
	)
	g.send <- &destinationv1.GetResponse{Update: &destinationv1.GetResponse_Remove{Remove: &destinationv1.EndpointsRemoved{
		Addresses: []*destinationv1.SocketAddress{{Ip: []byte{1}, Port: 1}, nil},
	}}}
	s := waitSnap(t, w, "the valid endpoint", hasAddrs("10.0.0.1:80"))
	if want := labels("namespace", "ns", "pod", "p"); !maps.Equal(s.Endpoints[0].Labels, want) {
		t.Errorf("labels %v, want %v", s.Endpoints[0].Labels, want)
	}
	waitFor(t, "invalid updates counted", func() bool {
		return e.metric("discovery_invalid_updates_total", kindEndpoints) == 9
	}, w.Changed)
}

// waitFor waits until cond holds, re-checking whenever changed's channel
// closes.
func waitFor(t *testing.T, what string, cond func() bool, changed func() <-chan struct{}) {
	t.Helper()
	guard := time.After(hangGuard)
	for {
		ch := changed()
		if cond() {
			return
		}
		select {
		case <-ch:
		case <-guard:
			t.Fatalf("waiting for %s", what)
		}
	}
}

func TestWatchersShareOneStream(t *testing.T) {
	e := newEnv(t, Options{})
	w1 := e.client.Endpoints(webTarget)
	w2 := e.client.Endpoints("WEB.ns.svc.cluster.local:80")
	defer w1.Release()
	defer w2.Release()
	g := e.nextGet()
	g.send <- addMsg(nil, pbEndpoint("10.0.0.1:80"))
	waitSnap(t, w1, "first watcher", hasAddrs("10.0.0.1:80"))
	waitSnap(t, w2, "second watcher", hasAddrs("10.0.0.1:80"))
	select {
	case extra := <-e.fake.gets:
		t.Fatalf("second Get call for %q", extra.req.GetPath())
	default:
	}
	if got := e.metric("discovery_streams_open", kindEndpoints); got != 1 {
		t.Errorf("streams_open = %v, want 1", got)
	}
	if got := e.metric("discovery_targets", kindEndpoints); got != 1 {
		t.Errorf("targets = %v, want 1", got)
	}
	// Releasing one watcher keeps the stream for the other.
	w1.Release()
	w1.Release() // twice does nothing more
	if e.clock.Pending() != 0 {
		t.Fatalf("idle timer armed while a watcher holds the target")
	}
}

func TestIdleEvictionCancelsStream(t *testing.T) {
	e := newEnv(t, Options{IdleTimeout: time.Minute})
	w := e.client.Endpoints(webTarget)
	g := e.nextGet()
	g.send <- addMsg(nil, pbEndpoint("10.0.0.1:80"))
	waitSnap(t, w, "endpoint", hasAddrs("10.0.0.1:80"))

	// Released, then taken again before the timeout: nothing is evicted.
	w.Release()
	e.clock.Advance(30 * time.Second)
	w2 := e.client.Endpoints(webTarget)
	if s := w2.Snapshot(); !hasAddrs("10.0.0.1:80")(s) {
		t.Fatalf("re-acquired target lost its state: %+v", s)
	}
	e.clock.Advance(time.Hour)
	if got := e.metric("discovery_evictions_total", kindEndpoints); got != 0 {
		t.Fatalf("evictions = %v while held", got)
	}

	w2.Release()
	e.clock.Advance(time.Minute - time.Nanosecond)
	if got := e.metric("discovery_evictions_total", kindEndpoints); got != 0 {
		t.Fatalf("evicted before the idle timeout")
	}
	e.clock.Advance(time.Nanosecond)
	if got := e.metric("discovery_evictions_total", kindEndpoints); got != 1 {
		t.Fatalf("evictions = %v after the idle timeout, want 1", got)
	}
	waitDone(t, g.done, "evicted target's stream")
	if got := e.metric("discovery_targets", kindEndpoints); got != 0 {
		t.Errorf("targets = %v, want 0", got)
	}

	// A new watch opens a new stream from scratch.
	w3 := e.client.Endpoints(webTarget)
	defer w3.Release()
	if s := w3.Snapshot(); s.State != Pending {
		t.Fatalf("new watch after eviction: %+v", s)
	}
	e.nextGet()
}

func TestMaxTargets(t *testing.T) {
	e := newEnv(t, Options{MaxTargets: 2})
	a := e.client.Endpoints("a.ns.svc.cluster.local:80")
	b := e.client.Endpoints("b.ns.svc.cluster.local:80")
	defer b.Release()
	e.nextGet()
	e.nextGet()

	c := e.client.Endpoints("c.ns.svc.cluster.local:80")
	s := c.Snapshot()
	if s.State != DoesNotExist || !errors.Is(s.Err, ErrTooManyTargets) {
		t.Fatalf("watch beyond the limit: %+v", s)
	}
	c.Release()
	if got := e.metric("discovery_target_refusals_total", kindEndpoints); got != 1 {
		t.Errorf("refusals = %v, want 1", got)
	}

	// An idle target makes room.
	a.Release()
	c = e.client.Endpoints("c.ns.svc.cluster.local:80")
	defer c.Release()
	if s := c.Snapshot(); s.State != Pending || s.Err != nil {
		t.Fatalf("watch after room was made: %+v", s)
	}
	if got := e.metric("discovery_evictions_total", kindEndpoints); got != 1 {
		t.Errorf("evictions = %v, want 1", got)
	}
	if g := e.nextGet(); g.req.GetPath() != "c.ns.svc.cluster.local:80" {
		t.Errorf("Get for %q", g.req.GetPath())
	}
}

func TestInvalidTargetsRefused(t *testing.T) {
	e := newEnv(t, Options{})
	for _, target := range []string{"", "web", "web:0", "web:http", ":80", "web:65536", "[::1:80"} {
		w := e.client.Endpoints(target)
		if s := w.Snapshot(); s.State != DoesNotExist || !errors.Is(s.Err, ErrInvalidTarget) {
			t.Errorf("Endpoints(%q): %+v", target, s)
		}
		w.Release()
		p := e.client.Profile(target)
		if p.Snapshot() != nil || !errors.Is(p.Err(), ErrInvalidTarget) {
			t.Errorf("Profile(%q): err %v", target, p.Err())
		}
		p.Release()
	}
}

func TestServerRefusesTarget(t *testing.T) {
	e := newEnv(t, Options{})
	w := e.client.Endpoints("198.18.0.5:8080")
	defer w.Release()
	g := e.nextGet()
	g.end <- status.Error(codes.InvalidArgument, "not a target")
	s := waitSnap(t, w, "refused", func(s Snapshot) bool { return s.State == DoesNotExist })
	if !errors.Is(s.Err, ErrInvalidTarget) || s.Stale {
		t.Fatalf("refused target: %+v", s)
	}
	p := e.client.Profile("198.18.0.5:8080")
	defer p.Release()
	e.nextProfile().end <- status.Error(codes.InvalidArgument, "not a target")
	waitProfile(t, p, "refused profile", func(p *ProfileWatch) bool { return p.Err() != nil })
	if !errors.Is(p.Err(), ErrInvalidTarget) || p.Snapshot() != nil {
		t.Fatalf("refused profile: %v", p.Err())
	}
}

// TestReconnectResync ends the stream with an error: the last set is kept
// (stale), a new stream is opened after the backoff, and its first adds are
// merged with what was held until the initial burst is over; the set is
// never empty on the way.
func TestReconnectResync(t *testing.T) {
	e := newEnv(t, Options{})
	w := e.client.Endpoints(webTarget)
	defer w.Release()
	g := e.nextGet()
	g.send <- addMsg(nil, pbEndpoint("10.0.0.1:80"), pbEndpoint("10.0.0.2:80"), pbEndpoint("10.0.0.3:80"))
	waitSnap(t, w, "initial set", hasAddrs("10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"))

	// Record every snapshot from here on.
	seen := make(chan Snapshot, 100)
	stop := make(chan struct{})
	recorded := make(chan struct{})
	go func() {
		defer close(recorded)
		for {
			ch := w.Changed()
			seen <- w.Snapshot()
			select {
			case <-ch:
			case <-stop:
				return
			}
		}
	}()

	g.end <- status.Error(codes.ResourceExhausted, "fell behind")
	s := waitSnap(t, w, "stale set", func(s Snapshot) bool { return s.Stale })
	if !hasAddrs("10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80")(s) {
		t.Fatalf("stale snapshot lost endpoints: %+v", s)
	}
	e.clock.WaitTimers(t, 1) // the backoff
	e.clock.Advance(e.opts.BackoffMax)
	g2 := e.nextGet()

	// The new stream's initial state comes in two parts.
	g2.send <- addMsg(nil, pbEndpoint("10.0.0.2:80"), pbEndpoint("10.0.0.4:80", withWeight(3)))
	s = waitSnap(t, w, "merged set", func(s Snapshot) bool { return !s.Stale })
	if want := []string{"10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80", "10.0.0.4:80"}; !hasAddrs(want...)(s) {
		t.Fatalf("during resync: %v, want %v", addrsOf(s), want)
	}
	g2.send <- addMsg(nil, pbEndpoint("10.0.0.5:80"))
	waitSnap(t, w, "second part", hasAddrs("10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80", "10.0.0.4:80", "10.0.0.5:80"))

	// The burst is over: what the new stream did not confirm goes.
	e.clock.WaitTimers(t, 1) // the settle timer
	e.clock.Advance(e.opts.ResyncSettle)
	waitSnap(t, w, "resynced set", hasAddrs("10.0.0.2:80", "10.0.0.4:80", "10.0.0.5:80"))

	// A second failure, then a stream whose first message is a remove: the
	// initial state was complete, so the resync ends at once.
	g2.end <- status.Error(codes.Unavailable, "restarting")
	waitSnap(t, w, "stale again", func(s Snapshot) bool { return s.Stale })
	e.clock.WaitTimers(t, 1)
	e.clock.Advance(e.opts.BackoffMax)
	g3 := e.nextGet()
	g3.send <- addMsg(nil, pbEndpoint("10.0.0.5:80"))
	g3.send <- removeMsg("10.0.0.9:80")
	waitSnap(t, w, "resynced by a remove", hasAddrs("10.0.0.5:80"))

	close(stop)
	<-recorded
	close(seen)
	n := 0
	for s := range seen {
		n++
		if s.State != Endpoints || len(s.Endpoints) == 0 {
			t.Errorf("snapshot %d during reconnects has no endpoints: %+v", n, s)
		}
	}
	if got := e.metric("discovery_reconnects_total", kindEndpoints); got != 2 {
		t.Errorf("reconnects = %v, want 2", got)
	}
}

func TestBackoffWhileServerFails(t *testing.T) {
	e := newEnv(t, Options{BackoffBase: time.Second, BackoffMax: 4 * time.Second})
	w := e.client.Endpoints(webTarget)
	defer w.Release()
	for range 4 {
		e.nextGet().end <- status.Error(codes.Unavailable, "down")
		e.clock.WaitTimers(t, 1)
		e.clock.Advance(4 * time.Second)
	}
	if s := w.Snapshot(); s.State != Pending || !s.Stale {
		t.Fatalf("never answered: %+v, want Pending and stale", s)
	}
	e.nextGet()
	for failures, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second, 4 * time.Second} {
		for range 50 {
			if d := backoff(time.Second, 4*time.Second, failures); d < want/2 || d > want {
				t.Fatalf("backoff after %d failures = %v, want in [%v, %v]", failures, d, want/2, want)
			}
		}
	}
}

func TestStaleWhenServerGone(t *testing.T) {
	e := newEnv(t, Options{})
	w := e.client.Endpoints(webTarget)
	defer w.Release()
	p := e.client.Profile(webTarget)
	defer p.Release()
	e.nextGet().send <- addMsg(nil, pbEndpoint("10.0.0.1:80", withIdentity(idA, "")))
	e.nextProfile().send <- &destinationv1.GetProfileResponse{Profile: &destinationv1.Profile{FullyQualifiedName: "web.ns.svc.cluster.local"}}
	waitSnap(t, w, "endpoint", hasAddrs("10.0.0.1:80"))
	waitProfile(t, p, "profile", func(p *ProfileWatch) bool { return p.Snapshot() != nil })

	e.srv.Stop()
	s := waitSnap(t, w, "stale", func(s Snapshot) bool { return s.Stale })
	if !hasAddrs("10.0.0.1:80")(s) || s.Endpoints[0].Identity != idA {
		t.Fatalf("stale snapshot: %+v", s)
	}
	prof := waitProfile(t, p, "stale profile", func(p *ProfileWatch) bool { return p.Stale() })
	if prof == nil || prof.FullyQualifiedName != "web.ns.svc.cluster.local" {
		t.Fatalf("stale profile: %+v", prof)
	}
	// The streams are reopened after their backoff and wait for the
	// channel; the state stays meanwhile.
	e.clock.WaitTimers(t, 2)
	e.clock.Advance(e.opts.BackoffMax)
	if s := w.Snapshot(); !s.Stale || !hasAddrs("10.0.0.1:80")(s) {
		t.Fatalf("while the server is gone: %+v", s)
	}

	// The server returns: the waiting streams reach it as soon as the
	// channel reconnects, with no further backoff of the client's (the
	// fake clock does not move).
	e.restart()
	e.nextGet().send <- addMsg(nil, pbEndpoint("10.0.0.2:80"))
	e.nextProfile()
	waitSnap(t, w, "fresh endpoints", func(s Snapshot) bool { return !s.Stale && hasAddrs("10.0.0.1:80", "10.0.0.2:80")(s) })
}

func TestClose(t *testing.T) {
	e := newEnv(t, Options{})
	w := e.client.Endpoints(webTarget)
	g := e.nextGet()
	g.send <- addMsg(nil, pbEndpoint("10.0.0.1:80"))
	waitSnap(t, w, "endpoint", hasAddrs("10.0.0.1:80"))
	e.client.Close()
	waitDone(t, g.done, "stream after Close")
	if s := w.Snapshot(); !hasAddrs("10.0.0.1:80")(s) {
		t.Fatalf("snapshot after Close: %+v", s)
	}
	w.Release()
	if s := e.client.Endpoints(webTarget).Snapshot(); !errors.Is(s.Err, ErrClosed) {
		t.Fatalf("watch after Close: %+v", s)
	}
	e.client.Close()
}
