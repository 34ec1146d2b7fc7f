package memtrim

import (
	"testing"

	"github.com/go-logr/logr"
)

// counts is a side whose counts the test sets.
type counts struct{ open, peak int }

func (c *counts) get() (int, int) {
	p := max(c.peak, c.open)
	c.peak = c.open
	return c.open, p
}

func TestTrimsOnceABurstEnds(t *testing.T) {
	in, out := &counts{}, &counts{}
	trims := 0
	tr := &Trimmer{MinDrop: 256, Sides: []Counts{in.get, out.get}, Log: logr.Discard(), free: func() { trims++ }}
	step := func(inOpen, inPeak, outOpen int, want bool) {
		t.Helper()
		in.open, in.peak, out.open = inOpen, inPeak, outOpen
		before := trims
		tr.check()
		if got := trims > before; got != want {
			t.Errorf("in open %d peak %d, out open %d: trimmed %v, want %v", inOpen, inPeak, outOpen, got, want)
		}
	}
	step(20, 20, 5, false)     // steady
	step(520, 520, 5, false)   // a burst
	step(400, 520, 5, false)   // most still open
	step(30, 400, 5, true)     // it ended
	step(30, 30, 5, false)     // nothing new since
	step(20, 200, 5, false)    // a small burst: not worth a collection
	step(10, 700, 5, true)     // a burst between two checks is seen by its peak
	step(300, 300, 300, false) // many connections, none closed
}
