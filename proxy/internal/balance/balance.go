// Package balance picks an endpoint per request (HTTP) or per connection
// (TCP): power of two choices over a peak-EWMA estimate of each endpoint's
// latency, weighted by its outstanding requests — the least loaded of two
// random endpoints wins, so a slow or busy endpoint gets less traffic
// without any endpoint being starved of the probes that let it recover.
//
// Two rules bound how long one latency spike keeps an endpoint out (with
// plain peak-EWMA a single spike of r times the typical latency loses every
// comparison for about decay×ln(r), 10–45 s, however healthy the endpoint
// is afterwards):
//   - an endpoint passed over for probeAfter and probeAfterPicks is picked
//     once as a probe, so fresh evidence arrives;
//   - a latency below the estimate pulls it down with the shorter time
//     constant settle, so that evidence counts: the first probe after a
//     spike takes most of the way back.
//
// A truly slow endpoint re-takes its peak on every probe, so it still gets
// only the probes: one per probeAfter at high rates, one per
// probeAfterPicks at low ones.
package balance

import (
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// defaultRTT is the latency assumed for an endpoint never measured.
	defaultRTT = 30 * time.Millisecond
	// decay is how fast a peak is forgotten (the EWMA time constant).
	decay = 10 * time.Second
	// settle is the time constant with which a latency below the estimate
	// pulls it down.
	settle = 500 * time.Millisecond
	// probeAfter and probeAfterPicks: an endpoint not picked for this long
	// and while this many requests went elsewhere is picked once.
	probeAfter      = time.Second
	probeAfterPicks = 20
)

// Endpoint is one choice of the balancer, with its load statistics. T is
// what the caller needs to reach the endpoint.
type Endpoint[T any] struct {
	Addr  netip.AddrPort
	Value T

	weight   float64
	pending  atomic.Int64
	mu       sync.Mutex
	ewma     float64 // nanoseconds
	lastSeen time.Time
	seen     atomic.Bool // lastSeen is set

	// pickedAt and pickedSeq are when the endpoint was last picked (unix
	// nanoseconds) and the balancer's pick count at that moment: the
	// probe rule's inputs.
	pickedAt  atomic.Int64
	pickedSeq atomic.Uint64

	// failures counts consecutive failed connects; ejection is its state
	// out of the set (see eject.go).
	failures atomic.Int32
	ejection ejection
}

// cost is the endpoint's expected latency times its queue, divided by its
// weight: the P2C comparison key. An endpoint never measured is guessed at
// half the set's typical latency, so it wins its first comparisons and gets
// probed; its outstanding requests raise its cost at once, so it is not
// flooded before its first response arrives. (A fixed guess would starve
// new endpoints when the set is fast, or flood them when it is slow.)
func (e *Endpoint[T]) cost(now time.Time, typical float64) float64 {
	e.mu.Lock()
	ewma := typical / 2
	if !e.lastSeen.IsZero() {
		ewma = e.decayed(now)
	}
	e.mu.Unlock()
	return ewma * float64(e.pending.Load()+1) / e.weight
}

// decayed returns the EWMA decayed to now; callers hold mu.
func (e *Endpoint[T]) decayed(now time.Time) float64 {
	if e.lastSeen.IsZero() {
		return float64(defaultRTT)
	}
	dt := now.Sub(e.lastSeen)
	if dt <= 0 {
		return e.ewma
	}
	w := math.Exp(-float64(dt) / float64(decay))
	return e.ewma * w
}

// measured reports whether a latency of e was ever observed; read on every
// request, so without taking mu.
func (e *Endpoint[T]) measured() bool { return e.seen.Load() }

// observe folds a measured latency in: a peak is taken at once, a lower
// value only gradually.
func (e *Endpoint[T]) observe(rtt time.Duration, now time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	v := float64(rtt)
	if e.lastSeen.IsZero() {
		e.ewma = v
	} else {
		cur := e.decayed(now)
		if v > cur {
			e.ewma = v
		} else {
			w := math.Exp(-float64(now.Sub(e.lastSeen)) / float64(settle))
			e.ewma = cur*w + v*(1-w)
		}
	}
	e.lastSeen = now
	e.seen.Store(true)
}

// Balancer holds the current endpoint set. Update replaces the set while
// requests are in flight: the statistics of endpoints that stay are kept,
// a removed endpoint's in-flight requests finish on it.
type Balancer[T any] struct {
	set atomic.Pointer[[]*Endpoint[T]]
	// live is what Pick chooses from: the set without its ejected
	// endpoints, or the whole set when every endpoint is ejected.
	live atomic.Pointer[[]*Endpoint[T]]
	now  func() time.Time
	mu   sync.Mutex // serializes Update, ejections and the live set
	ej   ejector[T]
	// typical is a moving average of every latency observed (float64 bits,
	// nanoseconds); 0 until the first observation.
	typical atomic.Uint64
	// picks counts Picks among two or more endpoints (the probe rule's
	// clock in requests).
	picks atomic.Uint64
}

// starved reports whether e is due a probe: measured, idle, and passed
// over for probeAfter and probeAfterPicks.
func (e *Endpoint[T]) starved(now time.Time, seq uint64) bool {
	return e.measured() && e.pending.Load() == 0 &&
		now.UnixNano()-e.pickedAt.Load() >= int64(probeAfter) &&
		seq-e.pickedSeq.Load() >= probeAfterPicks
}

// typicalRTT is the latency assumed for endpoints never measured.
func (b *Balancer[T]) typicalRTT() float64 {
	if v := math.Float64frombits(b.typical.Load()); v > 0 {
		return v
	}
	return float64(defaultRTT)
}

// observeTypical folds a latency into the set-wide average (weight 1/8).
func (b *Balancer[T]) observeTypical(rtt time.Duration) {
	for {
		old := b.typical.Load()
		cur := math.Float64frombits(old)
		next := float64(rtt)
		if cur > 0 {
			next = cur + (float64(rtt)-cur)/8
		}
		if b.typical.CompareAndSwap(old, math.Float64bits(next)) {
			return
		}
	}
}

// New returns an empty Balancer. probe, when not nil, tells whether an
// endpoint ejected for failed connects answers again (see ConnectFailed).
func New[T any](probe ...Probe[T]) *Balancer[T] {
	b := &Balancer[T]{now: time.Now}
	b.ej.init(probe...)
	b.set.Store(&[]*Endpoint[T]{})
	b.live.Store(&[]*Endpoint[T]{})
	return b
}

// Target is an endpoint to balance over, with its weight (0 is treated as
// 1: every endpoint gets some traffic).
type Target[T any] struct {
	Addr   netip.AddrPort
	Weight uint32
	Value  T
}

// Update replaces the endpoint set.
func (b *Balancer[T]) Update(targets []Target[T]) {
	b.mu.Lock()
	defer b.mu.Unlock()
	old := *b.set.Load()
	next := make([]*Endpoint[T], 0, len(targets))
	for _, t := range targets {
		w := float64(t.Weight)
		if w == 0 {
			w = 1
		}
		i := slices.IndexFunc(old, func(e *Endpoint[T]) bool { return e.Addr == t.Addr })
		if i >= 0 && old[i].weight == w {
			// The same endpoint: its statistics and ejection stay.
			old[i].Value = t.Value
			next = append(next, old[i])
			continue
		}
		e := &Endpoint[T]{Addr: t.Addr, Value: t.Value, weight: w}
		e.pickedAt.Store(b.now().UnixNano())
		e.pickedSeq.Store(b.picks.Load())
		if i >= 0 {
			// Same endpoint, new weight: keep its statistics.
			old[i].mu.Lock()
			e.ewma, e.lastSeen = old[i].ewma, old[i].lastSeen
			old[i].mu.Unlock()
			e.pending.Store(old[i].pending.Load())
		}
		next = append(next, e)
	}
	for _, e := range old {
		if !slices.Contains(next, e) {
			b.ej.forget(e)
		}
	}
	b.set.Store(&next)
	b.refreshLiveLocked()
}

// refreshLiveLocked recomputes the endpoints Pick chooses from; b.mu is
// held.
func (b *Balancer[T]) refreshLiveLocked() {
	set := *b.set.Load()
	live := make([]*Endpoint[T], 0, len(set))
	for _, e := range set {
		if !e.ejection.out {
			live = append(live, e)
		}
	}
	if len(live) == 0 {
		// Every endpoint failed its connects: keep trying all of them
		// rather than failing every request at once.
		live = set
	}
	b.live.Store(&live)
}

// Len is the number of endpoints.
func (b *Balancer[T]) Len() int { return len(*b.set.Load()) }

// Pick chooses an endpoint and counts a request in flight on it; call the
// returned done with the request's latency when it ends (or 0 to count it
// without a latency sample, e.g. a failed connect). Endpoints ejected for
// failed connects are passed over while any other remains. ok is false
// when the set is empty.
func (b *Balancer[T]) Pick() (e *Endpoint[T], done func(rtt time.Duration), ok bool) {
	set := *b.live.Load()
	switch len(set) {
	case 0:
		return nil, nil, false
	case 1:
		e = set[0]
	default:
		i := rand.IntN(len(set))
		j := rand.IntN(len(set) - 1)
		if j >= i {
			j++
		}
		now, typical := b.now(), b.typicalRTT()
		seq := b.picks.Add(1)
		a, c := set[i], set[j]
		switch {
		case a.starved(now, seq):
			e = a
		case c.starved(now, seq):
			e = c
		case c.cost(now, typical) < a.cost(now, typical):
			e = c
		default:
			e = a
		}
		e.pickedAt.Store(now.UnixNano())
		e.pickedSeq.Store(seq)
	}
	e.pending.Add(1)
	var once atomic.Bool
	return e, func(rtt time.Duration) {
		if !once.CompareAndSwap(false, true) {
			return
		}
		e.pending.Add(-1)
		if rtt > 0 {
			e.observe(rtt, b.now())
			b.observeTypical(rtt)
			// An answer: the endpoint's connects work.
			if e.failures.Load() != 0 {
				e.failures.Store(0)
			}
		}
	}, true
}

// Pending returns the requests in flight on e.
func (e *Endpoint[T]) Pending() int64 { return e.pending.Load() }
