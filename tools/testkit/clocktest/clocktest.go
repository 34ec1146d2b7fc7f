// Package clocktest is a clock that tests move by hand: every timer the
// code under test starts is recorded, and the test either takes the timers
// one by one as they are made (Next, then Fire) or moves time (Advance).
// Nothing waits on the wall clock, so a schedule of hours runs in
// microseconds and a test cannot pass by luck of timing.
//
// It has the method set of component/clock.Clock (and of any interface
// with the same shape), without importing it.
package clocktest

import (
	"slices"
	"sync"
	"testing"
	"time"
)

// HangGuard is how long Next and WaitTimers wait for the code under test
// to start a timer before failing the test. It only turns a hang into a
// failure; it never decides a pass.
const HangGuard = 30 * time.Second

// Clock is the fake clock. The zero value is not usable; call New.
type Clock struct {
	mu      sync.Mutex
	now     time.Time
	pending []*Timer      // started, neither fired nor stopped
	made    []*Timer      // every timer, in the order started
	taken   int           // how many of made Next has returned
	changed chan struct{} // closed and replaced when a timer starts
}

// Timer is one timer the code under test started.
type Timer struct {
	clk *Clock
	// D is the duration the code asked for; At is when it is due.
	D  time.Duration
	At time.Time
	ch chan time.Time
	f  func()
}

// New returns a clock reading start.
func New(start time.Time) *Clock {
	return &Clock{now: start, changed: make(chan struct{})}
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// NewTimer starts a timer whose channel receives when it fires.
func (c *Clock) NewTimer(d time.Duration) (<-chan time.Time, func() bool) {
	t := c.start(d, nil)
	return t.ch, t.Stop
}

// AfterFunc starts a timer that calls f when it fires (synchronously,
// in Fire or Advance, so its effects are visible when they return).
func (c *Clock) AfterFunc(d time.Duration, f func()) func() bool {
	return c.start(d, f).Stop
}

func (c *Clock) start(d time.Duration, f func()) *Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &Timer{clk: c, D: d, At: c.now.Add(d), ch: make(chan time.Time, 1), f: f}
	c.pending = append(c.pending, t)
	c.made = append(c.made, t)
	close(c.changed)
	c.changed = make(chan struct{})
	return t
}

// Stop stops t; it reports whether t was still pending.
func (t *Timer) Stop() bool {
	c := t.clk
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.removeLocked(t)
}

func (c *Clock) removeLocked(t *Timer) bool {
	i := slices.Index(c.pending, t)
	if i < 0 {
		return false
	}
	c.pending = slices.Delete(c.pending, i, i+1)
	return true
}

// Stopped reports whether t was stopped or has fired.
func (t *Timer) Stopped() bool {
	t.clk.mu.Lock()
	defer t.clk.mu.Unlock()
	return !slices.Contains(t.clk.pending, t)
}

// Fire moves the clock to t's deadline (if that is later than now) and
// fires t, whether or not it is still pending (a stopped timer's channel
// is no longer read by anyone, so firing it changes nothing).
func (t *Timer) Fire() {
	c := t.clk
	c.mu.Lock()
	if t.At.After(c.now) {
		c.now = t.At
	}
	now := c.now
	c.removeLocked(t)
	c.mu.Unlock()
	t.deliver(now)
}

func (t *Timer) deliver(now time.Time) {
	if t.f != nil {
		t.f()
		return
	}
	select {
	case t.ch <- now:
	default: // already fired once; like time.Timer, it holds one value
	}
}

// Advance moves the clock by d and fires the timers now due, earliest
// first.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	now := c.now
	var due []*Timer
	c.pending = slices.DeleteFunc(c.pending, func(t *Timer) bool {
		if !t.At.After(now) {
			due = append(due, t)
			return true
		}
		return false
	})
	c.mu.Unlock()
	slices.SortStableFunc(due, func(a, b *Timer) int { return a.At.Compare(b.At) })
	for _, t := range due {
		t.deliver(now)
	}
}

// Pending returns how many timers are started and not yet fired or
// stopped.
func (c *Clock) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending)
}

// Next returns the next timer the code under test starts (in the order
// started, each once), waiting for it up to HangGuard.
func (c *Clock) Next(tb testing.TB) *Timer {
	tb.Helper()
	t, ok := c.next(HangGuard)
	if !ok {
		tb.Fatalf("no timer was started within %v", HangGuard)
	}
	return t
}

// TryNext returns the next timer started, if one was, without waiting.
func (c *Clock) TryNext() (*Timer, bool) { return c.next(0) }

func (c *Clock) next(wait time.Duration) (*Timer, bool) {
	guard := time.NewTimer(wait)
	defer guard.Stop()
	for {
		c.mu.Lock()
		if c.taken < len(c.made) {
			t := c.made[c.taken]
			c.taken++
			c.mu.Unlock()
			return t, true
		}
		ch := c.changed
		c.mu.Unlock()
		if wait <= 0 {
			return nil, false
		}
		select {
		case <-ch:
		case <-guard.C:
			return nil, false
		}
	}
}

// WaitTimers waits until at least n timers are pending, up to HangGuard.
func (c *Clock) WaitTimers(tb testing.TB, n int) {
	tb.Helper()
	guard := time.NewTimer(HangGuard)
	defer guard.Stop()
	for {
		c.mu.Lock()
		pending, ch := len(c.pending), c.changed
		c.mu.Unlock()
		if pending >= n {
			return
		}
		select {
		case <-ch:
		case <-guard.C:
			tb.Fatalf("%d timers pending after %v, want %d", pending, HangGuard, n)
		}
	}
}
