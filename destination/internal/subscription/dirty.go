package subscription

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Dirty is the set of watchers (of any kind W) whose state must be
// recomputed, each with the time it was first marked. Informer handlers
// mark without blocking; one worker (Run) recomputes.
type Dirty[W comparable] struct {
	mu   sync.Mutex
	set  map[W]time.Time
	wake chan struct{}
}

// NewDirty returns an empty set.
func NewDirty[W comparable]() *Dirty[W] {
	return &Dirty[W]{set: map[W]time.Time{}, wake: make(chan struct{}, 1)}
}

// Mark adds ws, marked since then unless they already are.
func (d *Dirty[W]) Mark(since time.Time, ws ...W) {
	if len(ws) == 0 {
		return
	}
	d.mu.Lock()
	for _, w := range ws {
		if _, ok := d.set[w]; !ok {
			d.set[w] = since
		}
	}
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Run calls recompute on every marked watcher until ctx is done, and
// observes in delay the time from each mark to the end of its recompute.
func (d *Dirty[W]) Run(ctx context.Context, recompute func(W), delay prometheus.Histogram) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
		}
		d.mu.Lock()
		batch := d.set
		d.set = make(map[W]time.Time, len(batch))
		d.mu.Unlock()
		for w, since := range batch {
			recompute(w)
			delay.Observe(time.Since(since).Seconds())
		}
	}
}
