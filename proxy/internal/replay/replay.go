// Package replay keeps the start of a request body so that the request
// can be sent again, to another endpoint or as a retry, when the first
// attempt did not process it.
package replay

import (
	"errors"
	"io"
	"net/http"
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

	mu     sync.Mutex
	kept   []byte // the body's first bytes, as read from src
	lost   bool   // more than Limit was read: no attempt can start over
	srcErr error  // src's final error (io.EOF at its end)
	cur    *bodyAttempt
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

// ErrTooLong is what GetBody returns when more of the body was read than
// was kept: the request cannot be sent again.
var ErrTooLong = errors.New("request body too long to send again")

// GetBody is the request's GetBody: with it, a transport sends again, on a
// new connection, a request that the peer refused without processing it
// (an HTTP/2 GOAWAY that does not cover the stream, REFUSED_STREAM, an
// HTTP/1 connection closed before anything was written), as an
// application does while it shuts down.
func (b *Body) GetBody() (io.ReadCloser, error) {
	body, ok := b.Again()
	if !ok {
		return nil, ErrTooLong
	}
	return body, nil
}

// Layer gives each request with a body a GetBody for the transport below
// it, so that a request refused unprocessed is sent again rather than
// failed.
type Layer struct{ next http.RoundTripper }

// New returns the layer over next.
func New(next http.RoundTripper) *Layer { return &Layer{next: next} }

// RoundTrip sends the request with a replayable body.
func (l *Layer) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body == nil || r.Body == http.NoBody || r.GetBody != nil {
		return l.next.RoundTrip(r)
	}
	b := NewBody(r.Body)
	out := *r
	out.Body, out.GetBody = b.First(), b.GetBody
	return l.next.RoundTrip(&out)
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

// Close closes the client's body only once no attempt can start over
// (more was read than is kept). A transport closes the body of an attempt
// it gives up on, and an HTTP/2 transport does so before it asks for a copy
// to send again (Request.GetBody): while the body can be replayed, closing
// the client's body would cut the next attempt short. The server closes it
// anyway when the request is done.
func (a *bodyAttempt) Close() error {
	b := a.b
	b.mu.Lock()
	lost := b.cur == a && b.lost
	b.mu.Unlock()
	if !lost {
		return nil
	}
	return b.src.Close()
}
