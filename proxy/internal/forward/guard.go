package forward

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
)

// GuardHTTP1 wraps a client connection that speaks HTTP/1 so that requests
// with ambiguous framing — the tools of request smuggling — never reach the
// HTTP server: a request with both Content-Length and Transfer-Encoding, a
// Transfer-Encoding other than chunked, differing Content-Lengths, a folded
// header line, or a bare CR or LF in its head. Such a request is replaced by
// a malformed request line, which the server answers with 400 Bad Request
// before closing the connection; nothing of it is forwarded.
//
// The guard follows the framing of every request on the connection
// (lengths and chunks) to find where the next one starts. After a request
// that asks to switch protocols (Upgrade, CONNECT) it watches the response
// the server writes: on 101 (or a 2xx to CONNECT) the connection is no
// longer HTTP and the guard steps aside; otherwise it goes on checking.
func GuardHTTP1(c net.Conn) net.Conn {
	g := &h1Guard{Conn: c}
	g.switched.Store(switchRefused) // no switch pending
	return g
}

const (
	maxHeadBytes    = 64 << 10 // beyond this the server answers 431 itself
	maxChunkLine    = 4 << 10
	maxTrailerBytes = 64 << 10
)

type guardState int

const (
	gHead guardState = iota
	gBody
	gChunkSize
	gChunkData
	gChunkCRLF
	gTrailer
	gAwaitSwitch // after an Upgrade or CONNECT request, until its response
	gPassthrough
	gRejected
)

// Outcomes of a protocol-switch request, as seen in the response.
const (
	switchPending int32 = iota
	switchDone
	switchRefused
)

// rejectedRequest is what the server sees instead of a refused request.
var rejectedRequest = []byte("\x00 refused by the proxy: ambiguous request framing\r\n\r\n")

type h1Guard struct {
	net.Conn
	out    []byte // checked bytes not yet read by the server
	acc    []byte // head, chunk-size line or trailer being accumulated
	state  guardState
	remain int64 // body or chunk bytes left
	// connectFlag is true when the pending switch is a CONNECT (a 2xx
	// response switches).
	connectFlag atomic.Bool
	// switched is written by Write (the server's goroutine) and read by
	// feed (the reading goroutine).
	switched atomic.Int32
}

// Write passes the server's bytes on, noting the status of the response to
// a protocol-switch request. 1xx responses other than 101 are interim.
func (g *h1Guard) Write(p []byte) (int, error) {
	if g.switched.Load() == switchPending && bytes.HasPrefix(p, []byte("HTTP/1.")) && len(p) >= 12 {
		code := string(p[9:12])
		switch {
		case code == "101", g.isConnect() && code[0] == '2':
			g.switched.CompareAndSwap(switchPending, switchDone)
		case code[0] != '1':
			g.switched.CompareAndSwap(switchPending, switchRefused)
		}
	}
	return g.Conn.Write(p)
}

func (g *h1Guard) isConnect() bool { return g.connectFlag.Load() }

func (g *h1Guard) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for len(g.out) == 0 {
		if g.state == gRejected {
			return 0, io.EOF
		}
		// The caller's buffer takes the bytes read: feed copies what it
		// keeps, so an idle connection holds no buffer of its own.
		n, err := g.Conn.Read(p)
		g.feed(p[:n])
		if err != nil {
			if len(g.out) > 0 {
				break // hand over what is checked; the error comes back next time
			}
			if errors.Is(err, io.EOF) && len(g.acc) > 0 && g.state == gHead {
				// An incomplete head at end of stream goes to the server
				// as it is: it reports the truncated request.
				g.out, g.acc = g.acc, nil
				break
			}
			// Errors are not kept: the server interrupts its own reads
			// with deadlines and reads again after.
			return 0, err
		}
	}
	n := copy(p, g.out)
	g.out = g.out[n:]
	if len(g.out) == 0 {
		g.out = nil
	}
	return n, nil
}

// feed runs the framing state machine over b, moving checked bytes to out.
func (g *h1Guard) feed(b []byte) {
	for len(b) > 0 {
		switch g.state {
		case gPassthrough:
			g.out = append(g.out, b...)
			return
		case gAwaitSwitch:
			switch g.switched.Load() {
			case switchDone:
				g.state = gPassthrough
			case switchRefused:
				g.state = gHead
			default:
				// A client must wait for the response before sending
				// more; hold what it sent until the response is known.
				g.acc = append(g.acc, b...)
				return
			}
			held := append(g.acc, b...)
			g.acc = nil
			b = held
		case gRejected:
			return
		case gHead:
			g.acc = append(g.acc, b...)
			b = nil
			end := bytes.Index(g.acc, []byte("\r\n\r\n"))
			if end < 0 {
				if bytes.Contains(g.acc, []byte("\n\n")) || len(g.acc) > maxHeadBytes {
					// A bare-LF head, or one too long: decide on what we
					// have (the second case the server refuses with 431).
					if len(g.acc) > maxHeadBytes {
						g.pass()
						return
					}
					g.reject()
					return
				}
				return
			}
			head, rest := g.acc[:end+4], g.acc[end+4:]
			g.acc = nil
			if !g.checkHead(head) {
				g.reject()
				return
			}
			g.out = append(g.out, head...)
			b = rest
		case gBody:
			n := min(int64(len(b)), g.remain)
			g.out = append(g.out, b[:n]...)
			b = b[n:]
			g.remain -= n
			if g.remain == 0 {
				g.state = gHead
			}
		case gChunkSize, gTrailer:
			i := bytes.IndexByte(b, '\n')
			if i < 0 {
				g.acc = append(g.acc, b...)
				b = nil
				if (g.state == gChunkSize && len(g.acc) > maxChunkLine) || len(g.acc) > maxTrailerBytes {
					g.reject()
				}
				continue
			}
			g.acc = append(g.acc, b[:i+1]...)
			b = b[i+1:]
			if !g.lineDone() {
				g.reject()
				return
			}
		case gChunkData:
			n := min(int64(len(b)), g.remain)
			g.out = append(g.out, b[:n]...)
			b = b[n:]
			g.remain -= n
			if g.remain == 0 {
				g.state = gChunkCRLF
				g.acc = g.acc[:0]
			}
		case gChunkCRLF:
			need := 2 - len(g.acc)
			n := min(need, len(b))
			g.acc = append(g.acc, b[:n]...)
			b = b[n:]
			if len(g.acc) == 2 {
				if string(g.acc) != "\r\n" {
					g.reject()
					return
				}
				g.out = append(g.out, g.acc...)
				g.acc = nil
				g.state = gChunkSize
			}
		}
	}
}

// lineDone handles a complete chunk-size or trailer line in acc.
func (g *h1Guard) lineDone() bool {
	line := g.acc
	if !bytes.HasSuffix(line, []byte("\r\n")) || bytes.IndexByte(line[:len(line)-2], '\r') >= 0 {
		return false // bare LF or CR
	}
	if g.state == gTrailer {
		if len(line) == 2 { // end of trailers
			g.out = append(g.out, line...)
			g.acc = nil
			g.state = gHead
			return true
		}
		g.out = append(g.out, line...)
		g.acc = g.acc[len(g.acc):]
		return true
	}
	size := string(line[:len(line)-2])
	if i := strings.IndexByte(size, ';'); i >= 0 {
		size = size[:i]
	}
	n, err := strconv.ParseUint(strings.TrimRight(size, " \t"), 16, 63)
	if err != nil || size == "" {
		return false
	}
	g.out = append(g.out, line...)
	g.acc = nil
	if n == 0 {
		g.state = gTrailer
		g.acc = []byte{}
		return true
	}
	g.state, g.remain = gChunkData, int64(n)
	return true
}

// checkHead validates a request head and sets the body state.
func (g *h1Guard) checkHead(head []byte) bool {
	lines := bytes.Split(head[:len(head)-4], []byte("\r\n"))
	var (
		contentLength = int64(-1)
		chunked       bool
		te            bool
		upgrade       bool
		connect       bool
	)
	for i, l := range lines {
		if bytes.IndexByte(l, '\r') >= 0 || bytes.IndexByte(l, '\n') >= 0 || bytes.IndexByte(l, 0) >= 0 {
			return false // bare CR or LF, or NUL
		}
		if i == 0 {
			if bytes.HasPrefix(l, []byte("CONNECT ")) {
				upgrade, connect = true, true
			}
			continue
		}
		if len(l) > 0 && (l[0] == ' ' || l[0] == '\t') {
			return false // obsolete line folding
		}
		name, value, ok := bytes.Cut(l, []byte(":"))
		if !ok {
			return false
		}
		v := strings.TrimSpace(string(value))
		switch strings.ToLower(string(name)) {
		case "content-length":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 || (contentLength >= 0 && n != contentLength) {
				return false
			}
			contentLength = n
		case "transfer-encoding":
			if te || !strings.EqualFold(v, "chunked") {
				return false // only a single "chunked" is unambiguous
			}
			te, chunked = true, true
		case "upgrade":
			upgrade = true
		}
	}
	if te && contentLength >= 0 {
		return false
	}
	switch {
	case upgrade:
		// Whether the protocol switches is up to the response.
		g.state = gAwaitSwitch
		g.connectFlag.Store(connect)
		g.switched.Store(switchPending)
	case chunked:
		g.state = gChunkSize
	case contentLength > 0:
		g.state, g.remain = gBody, contentLength
	default:
		g.state = gHead
	}
	return true
}

func (g *h1Guard) reject() {
	g.out = append(g.out, rejectedRequest...)
	g.acc = nil
	g.state = gRejected
}

func (g *h1Guard) pass() {
	g.out = append(g.out, g.acc...)
	g.acc = nil
	g.state = gPassthrough
}
