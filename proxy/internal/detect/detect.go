// Package detect decides which protocol a client speaks from the first
// bytes it sends: the HTTP/2 connection preface, an HTTP/1.x request line,
// a TLS ClientHello, or anything else (opaque TCP). The bytes read are kept
// and replayed to whoever handles the connection next.
package detect

import (
	"bufio"
	"bytes"
	"errors"
	"io"
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

// registeredMethods are the methods of RFC 9110 and RFC 5789. Detection
// does not depend on them, except for a request line longer than the
// detection buffer (see classify).
var registeredMethods = []string{"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}

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

// NetConn returns the connection below the detection buffer (as
// tls.Conn.NetConn does), for what must reach the socket itself.
func (c *Conn) NetConn() net.Conn { return c.Conn }

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

// detect reads until the bytes read so far decide the protocol: each
// decision looks at everything buffered, and more is read only while the
// bytes are still a prefix of something recognised.
func (c *Conn) detect() (Protocol, error) {
	n := 1
	for {
		b, err := c.r.Peek(n)
		if len(b) < c.r.Buffered() {
			b, _ = c.r.Peek(c.r.Buffered())
		}
		p, done := classify(b)
		if done || err != nil {
			if err != nil && len(b) > 0 {
				// Some bytes, then silence or the end of what the client
				// sends: whatever they are, they are not a complete known
				// prefix. The bytes are forwarded; the next read reports
				// the end.
				if errors.Is(err, io.EOF) {
					return Opaque, nil
				}
				return Opaque, err
			}
			return p, err
		}
		n = len(b) + 1
	}
}

// classify decides from b, the first bytes of the stream. done is false
// while b is a proper prefix of something we recognise and more bytes could
// change the answer; it is true at the latest when b fills the buffer.
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
	if bytes.HasPrefix(b, []byte(Preface)) {
		return HTTP2, true
	}
	if len(b) < len(Preface) && bytes.HasPrefix([]byte(Preface), b) {
		// "PRI " is also where an HTTP/1 "PRI" request would start; the
		// preface decides.
		return Opaque, false
	}
	return classifyHTTP1(b)
}

// maxMethod bounds the method of a request line detection waits for.
const maxMethod = 64

// classifyHTTP1 recognises an HTTP/1 request line by its shape, whatever
// its method: a method of visible characters, a space, and a line that
// ends with " HTTP/1." and a digit before its CR or LF. That is enough to
// tell HTTP from the text protocols that also begin with a word and a
// space (a Redis inline command, memcached's "get key", SMTP's "EHLO
// host"), and lenient enough that a malformed request line (a method
// outside the token characters, a bare LF, a control character in the
// target) is still HTTP, for the HTTP/1 guard to answer 400, rather than
// opaque bytes sent on as they are. A request line longer than the
// detection buffer cannot be seen whole: it is HTTP/1 when it starts with a
// registered method and an origin- or absolute-form target.
func classifyHTTP1(b []byte) (Protocol, bool) {
	sp := -1
	for i, c := range b {
		if c == ' ' && i > 0 {
			sp = i
			break
		}
		if c < 0x21 || c > 0x7e || i >= maxMethod {
			return Opaque, true
		}
	}
	if sp < 0 {
		return Opaque, len(b) >= bufferSize
	}
	end := bytes.IndexAny(b[sp:], "\r\n")
	if end < 0 {
		if len(b) < bufferSize {
			return Opaque, false
		}
		if longRequestLine(b[:sp], b[sp+1:]) {
			return HTTP1, true
		}
		return Opaque, true
	}
	line := b[:sp+end]
	const version = " HTTP/1."
	n := len(line)
	if n < sp+len(version)+2 || string(line[n-len(version)-1:n-1]) != version || line[n-1] < '0' || line[n-1] > '9' {
		return Opaque, true
	}
	return HTTP1, true
}

// longRequestLine reports whether a request line too long to see whole
// starts as one of a registered method would.
func longRequestLine(method, target []byte) bool {
	registered := false
	for _, m := range registeredMethods {
		registered = registered || string(method) == m
	}
	return registered && (bytes.HasPrefix(target, []byte("/")) || bytes.HasPrefix(target, []byte("http://")) || bytes.HasPrefix(target, []byte("https://")))
}
