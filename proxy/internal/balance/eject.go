package balance

import (
	"context"
	"math/rand/v2"
	"time"
)

// Failure accrual. An endpoint whose connect fails leaves the set that
// Pick chooses from at once: while discovery is down, or slow to say that a
// pod is gone, requests must not keep going to an address nobody answers
// on. It comes back when a probe reaches it (or, without a probe, when its
// ejection ends), after a backoff that doubles with each consecutive
// failure.

// Probe reports whether an ejected endpoint can be connected to again
// (typically: a TCP connect within the connect timeout, then closed). It
// must return when ctx ends.
type Probe[T any] func(ctx context.Context, e *Endpoint[T]) error

// Ejection backoff: the first probe after ejectBase, doubling with each
// failed probe up to ejectMax, each delay drawn from the upper half.
const (
	ejectBase = 500 * time.Millisecond
	ejectMax  = 30 * time.Second
)

// ejection is an endpoint's state out of the set; guarded by the
// balancer's mu.
type ejection struct {
	out     bool        // not chosen by Pick
	gone    bool        // no longer in the set: nothing more is scheduled
	stop    func() bool // stops the scheduled probe
	probing bool        // a probe is running
}

// ejector schedules the probes of a balancer's ejected endpoints.
type ejector[T any] struct {
	probe Probe[T]
	ctx   context.Context // ends with Close: running probes stop
	end   context.CancelFunc
	// afterFunc is time.AfterFunc, replaced in tests.
	afterFunc func(time.Duration, func()) func() bool
}

func (j *ejector[T]) init(probe ...Probe[T]) {
	if len(probe) > 0 {
		j.probe = probe[0]
	}
	j.ctx, j.end = context.WithCancel(context.Background())
	j.afterFunc = func(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }
}

// forget marks an endpoint that left the set; b.mu is held.
func (j *ejector[T]) forget(e *Endpoint[T]) {
	e.ejection.gone = true
	if e.ejection.stop != nil {
		e.ejection.stop()
		e.ejection.stop = nil
	}
}

// ejectDelay is the wait before the probe after failures consecutive
// failures (1 or more).
func ejectDelay(failures int32) time.Duration {
	d := ejectBase
	for i := int32(1); i < failures && d < ejectMax; i++ {
		d *= 2
	}
	d = min(d, ejectMax)
	half := d / 2
	return half + rand.N(d-half+1)
}

// ConnectFailed records that a connect to e failed: e leaves the set Pick
// chooses from until a probe reaches it again. Requests that failed to
// connect were not sent: the caller may pick another endpoint for them.
func (b *Balancer[T]) ConnectFailed(e *Endpoint[T]) {
	n := e.failures.Add(1)
	b.mu.Lock()
	defer b.mu.Unlock()
	if e.ejection.gone || e.ejection.out {
		return // already out; its probe is scheduled
	}
	e.ejection.out = true
	b.refreshLiveLocked()
	b.scheduleLocked(e, n)
}

// scheduleLocked arms e's next probe; b.mu is held.
func (b *Balancer[T]) scheduleLocked(e *Endpoint[T], failures int32) {
	e.ejection.stop = b.ej.afterFunc(ejectDelay(failures), func() { b.runProbe(e) })
}

// runProbe probes an ejected endpoint: back in the set if it answers,
// probed again later if not.
func (b *Balancer[T]) runProbe(e *Endpoint[T]) {
	b.mu.Lock()
	if e.ejection.gone || !e.ejection.out || e.ejection.probing {
		b.mu.Unlock()
		return
	}
	e.ejection.probing = true
	b.mu.Unlock()

	var err error
	if b.ej.probe != nil {
		err = b.ej.probe(b.ej.ctx, e)
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	e.ejection.probing = false
	if e.ejection.gone {
		return
	}
	if err != nil {
		b.scheduleLocked(e, e.failures.Add(1))
		return
	}
	e.failures.Store(0)
	e.ejection.out = false
	e.ejection.stop = nil
	b.refreshLiveLocked()
}

// Ejected reports whether e is out of the set for failed connects.
func (b *Balancer[T]) Ejected(e *Endpoint[T]) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return e.ejection.out
}

// Close stops every probe, scheduled or running. The balancer may still be
// picked from; nothing is probed any more.
func (b *Balancer[T]) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.ej.end()
	for _, e := range *b.set.Load() {
		b.ej.forget(e)
	}
}
