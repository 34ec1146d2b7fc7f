package watch

import (
	"maps"
	"net/netip"
	"slices"
	"sync"

	"github.com/linkerd-go/linkerd-go/destination/internal/discovery"
	"github.com/linkerd-go/linkerd-go/destination/internal/metrics"
	"github.com/linkerd-go/linkerd-go/destination/internal/subscription"
	"github.com/linkerd-go/linkerd-go/destination/internal/target"
)

// Subscription is one stream's view of a watcher: a bounded queue of
// messages, and a channel closed when the stream fell behind and must end.
type Subscription[M any] = subscription.Queue[M]

// base is what both kinds of watchers share: subscribers and publishing.
type base[M any] struct {
	ix   *Index
	rpc  string
	mu   sync.Mutex
	subs map[*Subscription[M]]struct{}
	deps map[dep]struct{}
	// closed is set when the last subscriber left; a closed watcher no
	// longer recomputes.
	closed bool
}

// subscribe adds a subscriber whose queue starts with initial. Called with
// b.mu held.
func (b *base[M]) subscribe(initial []M) *Subscription[M] {
	s := subscription.NewQueue(b.ix.cfg.QueueSize, initial)
	if b.subs == nil {
		b.subs = map[*Subscription[M]]struct{}{}
	}
	b.subs[s] = struct{}{}
	return s
}

// publish queues msgs on every subscriber, resetting those whose queue is
// full. Called with b.mu held; never blocks.
func (b *base[M]) publish(msgs []M) {
	if len(msgs) == 0 {
		return
	}
	for s := range b.subs {
		for _, m := range msgs {
			if s.TryPut(m) {
				continue
			}
			// Counted before the reset is signalled, so that whoever sees
			// the reset sees it counted.
			b.ix.metrics.StreamResets.WithLabelValues(b.rpc).Inc()
			delete(b.subs, s)
			s.Abort()
			break
		}
	}
}

// unsubscribe removes s; it reports whether the watcher has no subscribers
// left, in which case it is closed and its dependencies dropped. Called with
// b.mu held.
func (b *base[M]) unsubscribe(self recomputer, s *Subscription[M]) bool {
	delete(b.subs, s)
	if len(b.subs) > 0 {
		return false
	}
	b.closed = true
	b.ix.gate.RLock()
	b.ix.setDeps(self, b.deps, nil)
	b.ix.gate.RUnlock()
	b.deps = nil
	return true
}

// endpointState is what a Get stream's client holds.
type endpointState struct {
	exists    bool
	endpoints map[netip.AddrPort]*discovery.Endpoint
	labels    map[string]string
}

type endpointsWatcher struct {
	base[*discovery.EndpointUpdate]
	target target.Target
	state  endpointState
	fresh  bool // no state computed yet
}

func (w *endpointsWatcher) recompute() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	w.ix.gate.RLock()
	next, deps := w.ix.resolveEndpoints(w.target)
	w.ix.setDeps(w, w.deps, deps)
	w.ix.gate.RUnlock()
	w.deps = deps
	var msgs []*discovery.EndpointUpdate
	if w.fresh {
		w.fresh = false
	} else {
		msgs = diffEndpoints(w.state, next)
	}
	w.state = next
	w.publish(msgs)
}

// SubscribeEndpoints subscribes to the endpoints of t, creating its watcher
// if needed. The returned function unsubscribes; call it exactly once.
func (ix *Index) SubscribeEndpoints(t target.Target) (*Subscription[*discovery.EndpointUpdate], func()) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	w := ix.endpoints[t]
	if w == nil {
		w = &endpointsWatcher{base: base[*discovery.EndpointUpdate]{ix: ix, rpc: metrics.RPCGet}, target: t, fresh: true}
		w.recompute()
		ix.endpoints[t] = w
		ix.metrics.Watchers.WithLabelValues(metrics.RPCGet).Inc()
	}
	w.mu.Lock()
	sub := w.subscribe(initialEndpoints(w.state))
	w.mu.Unlock()
	return sub, release(ix, ix.endpoints, t, w, &w.base, sub)
}

func initialEndpoints(s endpointState) []*discovery.EndpointUpdate {
	switch {
	case !s.exists:
		return []*discovery.EndpointUpdate{doesNotExist}
	case len(s.endpoints) == 0:
		return []*discovery.EndpointUpdate{noEndpoints}
	}
	return adds(slices.Collect(maps.Values(s.endpoints)), s.labels)
}

// diffEndpoints returns the updates that take a client from prev to next.
func diffEndpoints(prev, next endpointState) []*discovery.EndpointUpdate {
	switch {
	case !next.exists:
		if prev.exists {
			return []*discovery.EndpointUpdate{doesNotExist}
		}
		return nil
	case len(next.endpoints) == 0:
		if !prev.exists || len(prev.endpoints) > 0 {
			return []*discovery.EndpointUpdate{noEndpoints}
		}
		return nil
	case !prev.exists || len(prev.endpoints) == 0 || !maps.Equal(prev.labels, next.labels):
		// The client's set was cleared (or its labels change): send all.
		return adds(slices.Collect(maps.Values(next.endpoints)), next.labels)
	}
	var removed []netip.AddrPort
	for ap := range prev.endpoints {
		if _, ok := next.endpoints[ap]; !ok {
			removed = append(removed, ap)
		}
	}
	var added []*discovery.Endpoint
	for ap, ep := range next.endpoints {
		if old, ok := prev.endpoints[ap]; !ok || !old.Equal(ep) {
			added = append(added, ep)
		}
	}
	var msgs []*discovery.EndpointUpdate
	if len(removed) > 0 {
		slices.SortFunc(removed, netip.AddrPort.Compare)
		msgs = append(msgs, &discovery.EndpointUpdate{Kind: discovery.Remove, Removed: removed})
	}
	return append(msgs, adds(added, next.labels)...)
}

// adds returns the add update for eps, sorted by address (none for no
// endpoints).
func adds(eps []*discovery.Endpoint, labels map[string]string) []*discovery.EndpointUpdate {
	if len(eps) == 0 {
		return nil
	}
	slices.SortFunc(eps, func(a, b *discovery.Endpoint) int { return a.Addr.Compare(b.Addr) })
	return []*discovery.EndpointUpdate{{Kind: discovery.Add, Endpoints: eps, Labels: labels}}
}

// The updates that carry nothing but their kind are shared.
var (
	doesNotExist = &discovery.EndpointUpdate{Kind: discovery.DoesNotExist}
	noEndpoints  = &discovery.EndpointUpdate{Kind: discovery.NoEndpoints}
)

// profileKey is a profile target as seen from one client namespace.
type profileKey struct {
	target   target.Target
	clientNS string
}

type profileWatcher struct {
	base[*discovery.Profile]
	key     profileKey
	current *discovery.Profile
}

func (w *profileWatcher) recompute() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	w.ix.gate.RLock()
	next, deps := w.ix.resolveProfile(w.key)
	w.ix.setDeps(w, w.deps, deps)
	w.ix.gate.RUnlock()
	w.deps = deps
	if w.current != nil && w.current.Equal(next) {
		return
	}
	first := w.current == nil
	w.current = next
	if !first {
		w.publish([]*discovery.Profile{next})
	}
}

// SubscribeProfile subscribes to the profile of t as seen from clientNS
// (which may be empty). The returned function unsubscribes; call it once.
func (ix *Index) SubscribeProfile(t target.Target, clientNS string) (*Subscription[*discovery.Profile], func()) {
	key := profileKey{target: t, clientNS: clientNS}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	w := ix.profiles[key]
	if w == nil {
		w = &profileWatcher{base: base[*discovery.Profile]{ix: ix, rpc: metrics.RPCGetProfile}, key: key}
		w.recompute()
		ix.profiles[key] = w
		ix.metrics.Watchers.WithLabelValues(metrics.RPCGetProfile).Inc()
	}
	w.mu.Lock()
	sub := w.subscribe([]*discovery.Profile{w.current})
	w.mu.Unlock()
	return sub, release(ix, ix.profiles, key, w, &w.base, sub)
}

// release returns the function that unsubscribes sub from w (whose base is
// b) and drops w from watchers when sub was its last subscriber. The
// function may be called more than once.
func release[K comparable, M any, W interface {
	comparable
	recomputer
}](ix *Index, watchers map[K]W, key K, w W, b *base[M], sub *Subscription[M]) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			ix.mu.Lock()
			defer ix.mu.Unlock()
			b.mu.Lock()
			empty := b.unsubscribe(w, sub)
			b.mu.Unlock()
			if empty && watchers[key] == w {
				delete(watchers, key)
				ix.metrics.Watchers.WithLabelValues(b.rpc).Dec()
			}
		})
	}
}
