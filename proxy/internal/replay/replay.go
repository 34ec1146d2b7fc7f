// Package replay keeps the start of a request body so that the request
// can be sent again, to another endpoint or as a retry, when the first
// attempt did not process it.
package replay

import (
	"errors"
	"io"
	"sync"
)

// Limit is how much of a request body is kept so that the request
// can go to another endpoint when the first did not process it. Bodies
// longer than that are streamed, and such a request is not sent again once
// more than this was read.
const Limit = 64 << 10

// errRetired is what an attempt's body reads return once the request went
// on to another endpoint: its bytes belong to the next attempt.
var errRetired = errors.New("request body moved to another attempt")

// Body is a request body sent to one endpoint after another. It
// keeps what it read from the client (up to Limit) so that every
// attempt reads the body from its start, and it is read by one attempt at
// a time: the transport of an attempt that was given up may still be in
// a read, whose bytes are kept for the next attempt.
type Body struct {
	src io.ReadCloser

	rmu sync.Mutex // held while reading src

	mu      sync.Mutex
	kept    []byte // the body's first bytes, as read from src
	lost    bool   // more than Limit was read: no attempt can start over
	srcErr  error  // src's final error (io.EOF at its end)
	cur     *bodyAttempt
	started bool
}

func NewBody(src io.ReadCloser) *Body {
	b := &Body{src: src}
	b.cur = &bodyAttempt{b: b}
	return b
}

// First is the body of the first attempt.
func (b *Body) First() io.ReadCloser { return b.cur }

// Again starts a new attempt that reads the body from its start, and
// retires the current one; ok is false when the body cannot be replayed
// (more of it was read than was kept). A nil body replays trivially.
func (b *Body) Again() (body io.ReadCloser, ok bool) {
	if b == nil {
		return nil, true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.lost {
		return nil, false
	}
	b.cur = &bodyAttempt{b: b}
	return b.cur, true
}

// bodyAttempt is the body one attempt's transport reads.
type bodyAttempt struct {
	b   *Body
	off int // bytes of the body this attempt has read
}

func (a *bodyAttempt) Read(p []byte) (int, error) {
	b := a.b
	if len(p) == 0 {
		return 0, nil
	}
	for {
		b.mu.Lock()
		if b.cur != a {
			b.mu.Unlock()
			return 0, errRetired
		}
		b.started = true
		if a.off < len(b.kept) {
			n := copy(p, b.kept[a.off:])
			a.off += n
			b.mu.Unlock()
			return n, nil
		}
		if b.srcErr != nil {
			err := b.srcErr
			b.mu.Unlock()
			return 0, err
		}
		b.mu.Unlock()

		b.rmu.Lock()
		b.mu.Lock()
		// A retired attempt may have read while this one waited: serve
		// its bytes first.
		if b.cur != a || a.off < len(b.kept) || b.srcErr != nil {
			b.mu.Unlock()
			b.rmu.Unlock()
			continue
		}
		b.mu.Unlock()
		n, err := b.src.Read(p)
		b.mu.Lock()
		if b.cur == a && (b.lost || len(b.kept)+n > Limit) {
			// Past what is kept: this attempt reads through, and no
			// later one can start over.
			b.lost, b.kept = true, nil
			a.off += n
		} else if n > 0 {
			// Kept for the attempts to come, and for this one's next
			// read if it was retired meanwhile.
			b.kept = append(b.kept, p[:n]...)
			if b.cur == a {
				a.off += n
			} else {
				n = 0
			}
		}
		if err != nil {
			b.srcErr = err
		}
		retired := b.cur != a
		b.mu.Unlock()
		b.rmu.Unlock()
		if retired {
			return 0, errRetired
		}
		if n == 0 && err == nil {
			continue
		}
		if n > 0 {
			return n, nil
		}
		return 0, err
	}
}

// Close closes the client's body once the current attempt is done with
// it; a transport closes the body of a request it failed to send, and a
// retired attempt's close must not take the body from the next attempt.
// A body never read is left to the server to close.
func (a *bodyAttempt) Close() error {
	b := a.b
	b.mu.Lock()
	cur, started := b.cur == a, b.started
	b.mu.Unlock()
	if !cur || !started {
		return nil
	}
	return b.src.Close()
}
