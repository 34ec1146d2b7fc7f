// Package detect decides which protocol a client speaks from the first
// bytes it sends: the HTTP/2 connection preface, an HTTP/1.x request line,
// a TLS ClientHello, or anything else (opaque TCP). The bytes read are kept
// and replayed to whoever handles the connection next.
package detect

import (
	"bufio"
	"bytes"
	"errors"
	"net"
	"os"
	"time"
)

// Protocol is what a connection was detected to speak.
type Protocol int

const (
	// Opaque is anything else: bytes are forwarded as they are.
	Opaque Protocol = iota
	// HTTP1 is an HTTP/1.x request line.
	HTTP1
	// HTTP2 is the HTTP/2 prior-knowledge connection preface.
	HTTP2
	// TLS is a TLS handshake record (a ClientHello).
	TLS
)

func (p Protocol) String() string {
	switch p {
	case HTTP1:
		return "http/1"
	case HTTP2:
		return "h2"
	case TLS:
		return "tls"
	default:
		return "opaque"
	}
}

// Preface is the HTTP/2 client connection preface.
const Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// bufferSize is what a detected connection buffers; it bounds the memory of
// detection per connection and is enough for every decision below.
const bufferSize = 4096

// methods are the HTTP/1 request methods we recognise, each followed by
// the space of the request line. Other tokens are treated as opaque: a
// false "HTTP" would break a binary protocol, a missed exotic method only
// loses HTTP metrics.
var methods = [][]byte{
	[]byte("GET "), []byte("POST "), []byte("PUT "), []byte("DELETE "), []byte("HEAD "),
	[]byte("OPTIONS "), []byte("PATCH "), []byte("CONNECT "), []byte("TRACE "),
}

// Conn is a connection whose first bytes were read for detection; reads
// return those bytes first.
type Conn struct {
	net.Conn
	r *bufio.Reader // nil once its bytes are read: the buffer is let go
}

// Read reads the buffered bytes, then from the connection. Once the
// detection buffer is drained it is dropped, so a long-lived connection
// does not keep it. ServerName and Peeked must come before the first Read.
func (c *Conn) Read(p []byte) (int, error) {
	if c.r != nil {
		if c.r.Buffered() > 0 {
			return c.r.Read(p)
		}
		c.r = nil
	}
	return c.Conn.Read(p)
}

// Unbuffer hands back the bytes read for detection and not yet consumed,
// and the underlying connection to read the rest from; the Conn must not be
// read after. Copying from the raw connection lets the kernel splice
// socket to socket.
func (c *Conn) Unbuffer() ([]byte, net.Conn) {
	if c.r == nil {
		return nil, c.Conn
	}
	n := c.r.Buffered()
	b, _ := c.r.Peek(n)
	out := append([]byte(nil), b...)
	_, _ = c.r.Discard(n)
	return out, c.Conn
}

// Peeked returns the bytes read for detection and not yet consumed.
func (c *Conn) Peeked() []byte {
	if c.r == nil {
		return nil
	}
	b, _ := c.r.Peek(c.r.Buffered())
	return b
}

// Detect reads from conn until the protocol is known or timeout passes. A
// client that sends nothing within timeout (a server-speaks-first
// protocol) is Opaque. The returned Conn must be used instead of conn. The
// error is non-nil only when the connection failed (closed before sending
// anything, or a read error); the Conn is still returned then.
func Detect(conn net.Conn, timeout time.Duration) (Protocol, *Conn, error) {
	c := &Conn{Conn: conn, r: bufio.NewReaderSize(conn, bufferSize)}
	if err := conn.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return Opaque, c, err
	}
	p, err := c.detect()
	// Clear the deadline whatever happened; the handler sets its own. An
	// error here means the connection is already closed, which the next
	// read reports.
	_ = conn.SetReadDeadline(time.Time{})
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return p, c, nil
	}
	return p, c, err
}

// detect peeks as few bytes as the decision needs, one more at a time
// only while the bytes so far are still a prefix of a known protocol.
func (c *Conn) detect() (Protocol, error) {
	n := 1
	for {
		b, err := c.r.Peek(n)
		p, done := classify(b)
		if done || err != nil {
			if err != nil && len(b) > 0 && errors.Is(err, os.ErrDeadlineExceeded) {
				// Some bytes, then silence: whatever they are, they are
				// not a complete known prefix.
				return Opaque, err
			}
			return p, err
		}
		n = len(b) + 1
	}
}

// classify decides from b, the first bytes of the stream. done is false
// while b is a proper prefix of something we recognise and more bytes could
// change the answer.
func classify(b []byte) (p Protocol, done bool) {
	if len(b) == 0 {
		return Opaque, false
	}
	// TLS: a handshake record (22) of version 3.x.
	if b[0] == 0x16 {
		if len(b) < 3 {
			return Opaque, false
		}
		if b[1] == 0x03 && b[2] <= 0x04 {
			return TLS, true
		}
		return Opaque, true
	}
	if len(b) <= len(Preface) && bytes.HasPrefix([]byte(Preface), b) {
		if len(b) == len(Preface) {
			return HTTP2, true
		}
		// "PRI " is also where an HTTP/1 "PRI" method would start; the
		// preface decides.
		return Opaque, false
	}
	prefixOfMethod := false
	for _, m := range methods {
		if len(b) >= len(m) && bytes.HasPrefix(b, m) {
			return HTTP1, true
		}
		if len(b) < len(m) && bytes.HasPrefix(m, b) {
			prefixOfMethod = true
		}
	}
	return Opaque, !prefixOfMethod
}
