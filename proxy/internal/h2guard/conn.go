// Package h2guard bounds what one HTTP/2 client connection may make the
// server do for nothing: rapid resets (CVE-2023-44487) and floods of
// SETTINGS, PING, WINDOW_UPDATE, empty and ignored frames, CONTINUATION
// and stream errors. Net/http's HTTP/2 server bounds concurrent handlers
// but not these; it cannot be told to, so the guard sits beneath it, as the
// net.Conn it serves.
//
// A Conn follows the frames of both directions as they pass (the client's
// preface and frame headers as the server reads them, the server's frame
// headers as it writes them) without buffering either, and keeps one token
// bucket per kind of frame. When a client exceeds a budget the server reads
// nothing more from it: the Conn writes GOAWAY with ENHANCE_YOUR_CALM at the
// next frame boundary of the server's output, drops what the server writes
// after it, reads and discards what the client still sends for a moment
// (so that closing does not reset the connection before the client has read
// the GOAWAY), and closes.
package h2guard

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// goAwayTimeout bounds the wait for the GOAWAY to go out: a server
	// write stuck on a client that does not read is cut.
	goAwayTimeout = time.Second
	// After the GOAWAY, what the client still sends is read and dropped
	// until it is silent for lingerIdle, for lingerMax or lingerBytes at
	// most, then the connection is closed.
	lingerIdle  = 100 * time.Millisecond
	lingerMax   = time.Second
	lingerBytes = 1 << 20
)

// FloodError is what the server reads from a Conn whose client ran out of
// a budget. It wraps net.ErrClosed, so the server ends the connection as
// one the client closed, without logging it.
type FloodError struct{ Reason Reason }

func (e *FloodError) Error() string {
	return "HTTP/2 client exceeded its " + string(e.Reason) + " budget: " + net.ErrClosed.Error()
}

func (e *FloodError) Unwrap() error { return net.ErrClosed }

// Conn is a server-side HTTP/2 connection under the guard's limits. It
// hides the connection it wraps (a *tls.Conn is no longer one): net/http
// serves it as HTTP/2 prior knowledge when its Protocols allow unencrypted
// HTTP/2, and its requests have no TLS state.
type Conn struct {
	net.Conn
	onTrip func(Reason)
	now    func() int64 // nanoseconds since the connection was wrapped

	mu sync.Mutex // guards st
	st *state

	wmu    sync.Mutex // serializes the server's writes and the GOAWAY
	wrote  bool       // GOAWAY written: the server's output is dropped
	failed atomic.Bool

	done     chan struct{} // closed once the GOAWAY is out, or given up on
	doneOnce sync.Once

	// Read side only.
	calming, lingered bool
}

// Wrap returns c under limits l (zero fields: DefaultLimits). onTrip, if
// not nil, is called once, with the reason, when the client exceeds a
// budget; it must not block.
func Wrap(c net.Conn, l Limits, onTrip func(Reason)) *Conn {
	start := time.Now()
	return &Conn{
		Conn:   c,
		onTrip: onTrip,
		now:    func() int64 { return int64(time.Since(start)) },
		st:     newState(l),
		done:   make(chan struct{}),
	}
}

// Read reads the client's bytes for the server, as long as the client
// keeps within its budgets.
func (c *Conn) Read(b []byte) (int, error) {
	if c.calming {
		return c.calm()
	}
	n, err := c.Conn.Read(b)
	c.mu.Lock()
	was := c.st.tripped
	k, perr := c.st.clientBytes(b[:n], c.now())
	tripped := c.st.tripped
	c.mu.Unlock()
	switch {
	case perr != nil:
		// Not HTTP/2 after all (ALPN said h2): the server must not serve
		// it as HTTP/1 either.
		c.failed.Store(true)
		return 0, perr
	case tripped == "":
		return n, err
	}
	if was == "" {
		c.report(tripped)
	}
	c.calming = true
	if k > 0 {
		return k, nil // the frames before the one over budget
	}
	return c.calm()
}

// calm sends the GOAWAY (or waits for the server's write in progress to
// reach a frame boundary and send it), lingers, and closes.
func (c *Conn) calm() (int, error) {
	c.mu.Lock()
	reason := c.st.tripped
	c.mu.Unlock()
	if !c.lingered {
		c.lingered = true
		c.sendGoAway()
		c.linger()
	}
	return 0, &FloodError{Reason: reason}
}

// sendGoAway writes the GOAWAY now if the server's output is at a frame
// boundary; otherwise the server's next write does, after finishing its
// frame. It returns once the GOAWAY is out, or after goAwayTimeout.
func (c *Conn) sendGoAway() {
	t := time.AfterFunc(goAwayTimeout, c.abort)
	defer t.Stop()
	c.wmu.Lock()
	if !c.wrote {
		c.mu.Lock()
		at := c.st.out.atBoundary()
		c.mu.Unlock()
		if at {
			c.writeGoAway()
		}
	}
	c.wmu.Unlock()
	<-c.done
}

// writeGoAway writes the GOAWAY; wmu is held.
func (c *Conn) writeGoAway() {
	c.mu.Lock()
	last, reason := c.st.lastID, c.st.tripped
	c.mu.Unlock()
	_ = c.Conn.SetWriteDeadline(time.Now().Add(goAwayTimeout))
	_, _ = c.Conn.Write(goAwayFrame(last, string(reason)+" flood"))
	c.wrote = true
	c.finish()
}

// linger reads and drops what the client still sends, so that the close
// is not a reset that could destroy the GOAWAY before the client reads it,
// then closes.
func (c *Conn) linger() {
	deadline := time.Now().Add(lingerMax)
	buf := make([]byte, 4096)
	for n := 0; n < lingerBytes; {
		d := time.Now().Add(lingerIdle)
		if d.After(deadline) {
			d = deadline
		}
		_ = c.Conn.SetReadDeadline(d)
		k, err := c.Conn.Read(buf)
		n += k
		if err != nil {
			break
		}
	}
	c.Conn.Close()
}

// Write writes the server's bytes; once the client is over budget, up to
// the next frame boundary, then the GOAWAY, and nothing after it.
func (c *Conn) Write(b []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.wrote {
		return len(b), nil
	}
	if c.failed.Load() {
		return 0, net.ErrClosed
	}
	c.mu.Lock()
	was := c.st.tripped
	n, goAway := c.st.serverBytes(b, c.now())
	tripped := c.st.tripped
	c.mu.Unlock()
	if was == "" && tripped != "" {
		// Tripped by what the server writes (stream errors): wake the
		// reader, which then reads no more for the server, lingers and
		// closes, once the GOAWAY is out.
		_ = c.Conn.SetReadDeadline(time.Now())
		defer c.report(tripped)
	}
	if !goAway {
		return c.Conn.Write(b)
	}
	if n > 0 {
		if m, err := c.Conn.Write(b[:n]); err != nil {
			c.finish()
			return m, err
		}
	}
	c.writeGoAway()
	return len(b), nil
}

// NetConn returns the connection under the guard, as tls.Conn.NetConn
// does.
func (c *Conn) NetConn() net.Conn { return c.Conn }

// Close closes the connection.
func (c *Conn) Close() error {
	err := c.Conn.Close()
	c.finish()
	return err
}

// abort closes the connection when the GOAWAY could not go out in time.
func (c *Conn) abort() {
	c.Conn.Close()
	c.finish()
}

func (c *Conn) finish() { c.doneOnce.Do(func() { close(c.done) }) }

func (c *Conn) report(r Reason) {
	if c.onTrip != nil {
		c.onTrip(r)
	}
}
