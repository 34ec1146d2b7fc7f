// Package memtrim gives memory back to the system after a burst of
// connections ends. Go keeps what a burst allocated until a garbage
// collection finds it unused, and a quiet proxy collects rarely (the
// runtime forces one only every two minutes); then it returns the pages
// slowly. Left alone, a sidecar that took 500 slow uploads stays at close
// to three times its working set for minutes. Once most of a burst's
// connections have closed, the trimmer collects and returns the memory at
// once (two full collections of a small heap and
// runtime/debug.FreeOSMemory: milliseconds).
package memtrim

import (
	"context"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/go-logr/logr"
)

// Defaults of a Trimmer.
const (
	DefaultInterval = 5 * time.Second
	// DefaultMinDrop is how many connections must have closed since the
	// peak: some 50 KiB each, so a trim returns megabytes.
	DefaultMinDrop = 256
)

// Counts reports accepted connections: open now, and the most open at
// once since its last call (forward.Limiter.Connections).
type Counts func() (open, peak int)

// Trimmer watches the sides' connection counts.
type Trimmer struct {
	Interval time.Duration
	MinDrop  int
	Sides    []Counts
	Log      logr.Logger
	// free is debug.FreeOSMemory, replaced in tests.
	free func()

	peak int // the highest total seen since the last trim
}

// freeAll collects twice, so that what sat in sync.Pools during the burst
// (buffers of connections; a pool keeps its objects through one
// collection) is freed too, and returns the free pages to the system.
func freeAll() {
	runtime.GC()
	debug.FreeOSMemory()
}

// Run checks the counts every Interval until ctx ends.
func (t *Trimmer) Run(ctx context.Context) {
	if t.Interval <= 0 {
		t.Interval = DefaultInterval
	}
	tick := time.NewTicker(t.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			t.check()
		}
	}
}

// check trims when the connections open now are at most half of the peak
// and at least MinDrop fewer. It reports whether it trimmed.
func (t *Trimmer) check() bool {
	minDrop := t.MinDrop
	if minDrop <= 0 {
		minDrop = DefaultMinDrop
	}
	open, peak := 0, 0
	for _, side := range t.Sides {
		o, p := side()
		open, peak = open+o, peak+p
	}
	t.peak = max(t.peak, peak)
	if t.peak-open < minDrop || open > t.peak/2 {
		return false
	}
	start := time.Now()
	free := t.free
	if free == nil {
		free = freeAll
	}
	free()
	t.Log.V(1).Info("returned memory after a burst of connections", "peakConnections", t.peak, "openConnections", open, "took", time.Since(start))
	t.peak = open
	return true
}
