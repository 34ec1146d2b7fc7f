package clocktest

import (
	"testing"
	"time"
)

var start = time.Unix(1_000_000, 0)

// Timers are taken in the order started, fire at their deadline, and move
// the clock there.
func TestNextAndFire(t *testing.T) {
	c := New(start)
	ch1, _ := c.NewTimer(time.Minute)
	ch2, stop2 := c.NewTimer(time.Second)
	t1, t2 := c.Next(t), c.Next(t)
	if t1.D != time.Minute || t2.D != time.Second {
		t.Fatalf("timers %v, %v: want in the order started", t1.D, t2.D)
	}
	if _, ok := c.TryNext(); ok {
		t.Fatal("a third timer appeared")
	}
	t1.Fire()
	if got := <-ch1; !got.Equal(start.Add(time.Minute)) || !c.Now().Equal(got) {
		t.Errorf("fired at %v, clock %v; want both at start+1m", got, c.Now())
	}
	// t2's deadline is already past: firing it does not move time back.
	if !stop2() || stop2() {
		t.Error("Stop: want true once, then false")
	}
	if !t2.Stopped() || c.Pending() != 0 {
		t.Errorf("stopped %v, pending %d", t2.Stopped(), c.Pending())
	}
	t2.Fire()
	<-ch2
	if !c.Now().Equal(start.Add(time.Minute)) {
		t.Errorf("clock went back to %v", c.Now())
	}
}

// Advance fires what is due, earliest first, AfterFunc callbacks before it
// returns, and leaves the rest.
func TestAdvance(t *testing.T) {
	c := New(start)
	var order []string
	c.AfterFunc(3*time.Second, func() { order = append(order, "3s") })
	c.AfterFunc(time.Second, func() { order = append(order, "1s") })
	ch, _ := c.NewTimer(time.Hour)
	c.WaitTimers(t, 3)
	c.Advance(5 * time.Second)
	if len(order) != 2 || order[0] != "1s" || order[1] != "3s" {
		t.Errorf("fired %v, want [1s 3s]", order)
	}
	select {
	case <-ch:
		t.Error("the hour timer fired early")
	default:
	}
	if c.Pending() != 1 {
		t.Errorf("pending %d, want 1", c.Pending())
	}
	c.Advance(time.Hour)
	if got := <-ch; !got.Equal(start.Add(time.Hour + 5*time.Second)) {
		t.Errorf("fired at %v", got)
	}
}

// Next waits for a timer started by another goroutine.
func TestNextWaits(t *testing.T) {
	c := New(start)
	go c.NewTimer(time.Second)
	if tm := c.Next(t); tm.D != time.Second {
		t.Errorf("got %v", tm.D)
	}
}
