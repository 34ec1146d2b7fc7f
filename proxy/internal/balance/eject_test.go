package balance

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// fakeTimers replaces the ejector's time.AfterFunc: the test fires the
// scheduled probes itself.
type fakeTimers struct {
	mu     sync.Mutex
	queued []func()
	delays []time.Duration
}

func (f *fakeTimers) afterFunc(d time.Duration, fn func()) func() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := len(f.queued)
	f.queued = append(f.queued, fn)
	f.delays = append(f.delays, d)
	return func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		stopped := f.queued[i] != nil
		f.queued[i] = nil
		return stopped
	}
}

// fire runs every scheduled probe once (those scheduled meanwhile wait for
// the next fire) and reports how many ran.
func (f *fakeTimers) fire() int {
	f.mu.Lock()
	q := f.queued
	f.queued = make([]func(), len(q)) // keep indexes stable for stops
	f.mu.Unlock()
	n := 0
	for _, fn := range q {
		if fn != nil {
			fn()
			n++
		}
	}
	return n
}

func withTimers[T any](b *Balancer[T]) *fakeTimers {
	f := &fakeTimers{}
	b.ej.afterFunc = f.afterFunc
	return f
}

// An endpoint whose connect fails is not picked again until a probe
// reaches it; the probes back off while it stays down.
func TestConnectFailedEjectsUntilProbed(t *testing.T) {
	var down sync.Map // addr → true
	probes := 0
	b := New(func(_ context.Context, e *Endpoint[int]) error {
		probes++
		if _, ok := down.Load(e.Addr); ok {
			return errors.New("connect refused")
		}
		return nil
	})
	timers := withTimers(b)
	b.Update(targets(3))
	dead := (*b.set.Load())[0]
	down.Store(dead.Addr, true)
	b.ConnectFailed(dead)
	b.ConnectFailed(dead) // a second request failing on it meanwhile
	if !b.Ejected(dead) {
		t.Fatal("not ejected after a failed connect")
	}
	for range 1000 {
		e, done, _ := b.Pick()
		if e == dead {
			t.Fatal("an ejected endpoint was picked")
		}
		done(0)
	}
	// Still down: probed again, each time later.
	for i := range 3 {
		if n := timers.fire(); n != 1 {
			t.Fatalf("round %d: %d probes scheduled, want 1", i, n)
		}
		if !b.Ejected(dead) {
			t.Fatalf("round %d: back in the set while down", i)
		}
	}
	for i := 1; i < len(timers.delays); i++ {
		if timers.delays[i] < timers.delays[i-1]/2 || timers.delays[i] > ejectMax {
			t.Errorf("probe delays %v do not back off up to %v", timers.delays, ejectMax)
		}
	}
	// Up again: the next probe brings it back.
	down.Delete(dead.Addr)
	timers.fire()
	if b.Ejected(dead) {
		t.Fatal("still ejected after a probe reached it")
	}
	seen := false
	for range 1000 {
		e, done, _ := b.Pick()
		seen = seen || e == dead
		done(0)
	}
	if !seen {
		t.Error("the endpoint is never picked after coming back")
	}
	if probes != 4 {
		t.Errorf("%d probes, want 4", probes)
	}
}

// When every endpoint failed, Pick keeps trying all of them rather than
// failing every request.
func TestAllEjectedFailsOpen(t *testing.T) {
	b := New[int]()
	withTimers(b)
	b.Update(targets(2))
	for _, e := range *b.set.Load() {
		b.ConnectFailed(e)
	}
	if _, _, ok := b.Pick(); !ok {
		t.Fatal("no pick with every endpoint ejected")
	}
}

// Without a probe, an ejected endpoint comes back when its ejection ends,
// and the next request probes it.
func TestEjectionWithoutProbeEnds(t *testing.T) {
	b := New[int]()
	timers := withTimers(b)
	b.Update(targets(2))
	e := (*b.set.Load())[0]
	b.ConnectFailed(e)
	timers.fire()
	if b.Ejected(e) {
		t.Error("still ejected after its backoff")
	}
}

// An endpoint that leaves the set is probed no more; one that stays keeps
// its ejection across updates.
func TestUpdateKeepsAndForgetsEjections(t *testing.T) {
	b := New(func(context.Context, *Endpoint[int]) error { return errors.New("down") })
	timers := withTimers(b)
	b.Update(targets(3))
	set := *b.set.Load()
	b.ConnectFailed(set[0])
	b.ConnectFailed(set[1])
	b.Update(targets(3)[1:]) // set[0] removed, set[1] stays
	if !b.Ejected(set[1]) {
		t.Error("an update brought back an ejected endpoint")
	}
	if n := timers.fire(); n != 1 {
		t.Errorf("%d probes ran, want 1 (the removed endpoint's was stopped)", n)
	}
	b.Close()
	if n := timers.fire(); n != 0 {
		t.Errorf("%d probes ran after Close", n)
	}
}

// A successful request resets the count of consecutive failures, so the
// next ejection starts from the shortest backoff.
func TestSuccessResetsFailures(t *testing.T) {
	b := New[int]()
	withTimers(b)
	b.Update(targets(1))
	e := (*b.set.Load())[0]
	e.failures.Store(5)
	_, done, _ := b.Pick()
	done(time.Millisecond)
	if n := e.failures.Load(); n != 0 {
		t.Errorf("failures = %d after an answer, want 0", n)
	}
}
