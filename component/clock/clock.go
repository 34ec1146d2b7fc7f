// Package clock is the time seam of the components' schedules (certificate
// renewal, backoff, idle eviction): code that waits takes a Clock, the
// process passes Real, and tests pass the test kit's fake clock
// (tools/testkit/clocktest), which they move by hand instead of sleeping.
package clock

import "time"

// Clock is a source of time and timers.
type Clock interface {
	Now() time.Time
	// NewTimer returns a channel that receives once d has passed, and a
	// function that stops the timer (reporting whether it was still
	// pending).
	NewTimer(d time.Duration) (c <-chan time.Time, stop func() bool)
	// AfterFunc calls f in its own goroutine once d has passed, unless
	// stopped first.
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

// Real is the system clock.
var Real Clock = system{}

type system struct{}

func (system) Now() time.Time { return time.Now() }

func (system) NewTimer(d time.Duration) (<-chan time.Time, func() bool) {
	t := time.NewTimer(d)
	return t.C, t.Stop
}

func (system) AfterFunc(d time.Duration, f func()) func() bool {
	return time.AfterFunc(d, f).Stop
}
