package meshlab

import (
	"errors"
	"sync"
)

// Cleanup is a stack of undo steps, run last-in first-out by Run.
type Cleanup struct {
	mu  sync.Mutex
	fns []func() error
}

// Add pushes an undo step.
func (c *Cleanup) Add(fn func() error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fns = append(c.fns, fn)
}

// Run runs every step once, newest first, and returns their errors joined.
// Steps added while it runs are run too.
func (c *Cleanup) Run() error {
	var errs []error
	for {
		c.mu.Lock()
		if len(c.fns) == 0 {
			c.mu.Unlock()
			return errors.Join(errs...)
		}
		fn := c.fns[len(c.fns)-1]
		c.fns = c.fns[:len(c.fns)-1]
		c.mu.Unlock()
		if err := fn(); err != nil {
			errs = append(errs, err)
		}
	}
}
