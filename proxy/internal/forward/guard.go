package forward

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/linkerd-go/linkerd-go/proxy/internal/metrics"
)

// GuardHTTP1 wraps a client connection that speaks HTTP/1 so that requests
// with ambiguous or malformed framing — the tools of request smuggling —
// never reach the HTTP server as they are. It follows the framing of every
// request on the connection (lengths, chunks, trailers) to find where the
// next one starts, and checks, as the bytes pass:
//
//   - the request line: a method of RFC 9110 token characters, one space, a
//     request-target without spaces or control characters, one space,
//     HTTP/1.x;
//   - the head: CRLF line endings only (no bare CR or LF), no folded lines,
//     field names that are tokens, values without control characters, at
//     most 64 KiB; a Content-Length of digits, the same in every copy; a
//     single Transfer-Encoding, "chunked", never with a Content-Length nor
//     in an HTTP/1.0 request;
//   - chunked bodies (RFC 9112 §7.1): hexadecimal chunk sizes that fit in 63
//     bits, extensions of the grammar `*( BWS ";" BWS token [ BWS "=" BWS
//     ( token / quoted-string ) ] )`, CRLF after every line and every
//     chunk's data (an LF alone is refused: parsers differ on it), bounded
//     lines, bounded framing per byte of data, a last chunk and a trailer
//     section of valid fields without framing fields (Content-Length,
//     Transfer-Encoding, Host).
//
// The limits are inside those of Go's HTTP server, which reads through a
// 4 KiB buffer: whatever the server would fail on, the guard has refused
// first, so the client gets the proxy's answer instead of a failed body.
//
// A request refused in its head is not forwarded at all: the server reads
// a replacement request in its place, which the side's handler answers
// with RefuseMalformed (400, or 431 for a head too large, with
// l5d-proxy-error and Connection: close). A request refused in its body —
// its head, and the chunks before the bad one, have already gone to the
// application — makes the server's reads of it fail from that point: the
// request to the application is abandoned (the application never sees a
// complete body, nor anything past the bad chunk), and the reverse proxy
// answers 400 and closes if the application has not answered yet. If the
// application already has, the answer cannot be taken back: the connection
// is closed, which ends (and truncates) the application's response. In
// both cases nothing after the bad request is read as a request.
//
// The server reads at most one request per Read, so that a failure in a
// request's body is never returned to a read the server makes while it
// handles an earlier request on the connection (pipelining).
//
// After a request that asks to switch protocols (Upgrade, CONNECT), and
// its body if it has one, the guard watches the response the server
// writes: on 101 (or a 2xx to CONNECT) the connection is no longer HTTP
// and the guard steps aside; otherwise it goes on checking.
func GuardHTTP1(c net.Conn) net.Conn {
	g := &h1Guard{Conn: c}
	g.switched.Store(switchRefused) // no switch pending
	return g
}

// ErrMalformedRequest is the l5d-proxy-error prefix and the error metric
// label of a request the HTTP/1 guard refused. It is the client's error:
// the response (400, or 431) is not a failure of the workload.
const ErrMalformedRequest = "malformed request"

// isClientError reports whether a proxy error name is the client's doing,
// which Recorder.Done does not classify as a failure.
func isClientError(name string) bool { return name == ErrMalformedRequest }

const (
	maxHeadBytes = 64 << 10 // request line and header section; longer is refused with 431
	// A chunk-size line with its extensions and CRLF, and a trailer
	// section with its final CRLF: both well inside the 4 KiB the server
	// reads a line or a trailer section into.
	maxChunkLine    = 1 << 10
	maxTrailerBytes = 4<<10 - 1
	// Chunk framing is free up to chunkAllowance bytes per chunk plus
	// twice the chunk's data; past that it accumulates, and a request
	// whose unpaid framing passes maxChunkOverhead is refused (a body of
	// tiny chunks with long extensions, which the server refuses too).
	chunkAllowance   = 16
	maxChunkOverhead = 16 << 10
	// Bytes held while a protocol switch is pending (the client should
	// wait for the response).
	maxHeldBytes = 64 << 10
	// A refused connection is half-closed and drained for this long (or
	// until the client closes) before it is closed.
	lingerTimeout  = 500 * time.Millisecond
	lingerMaxBytes = 256 << 10
)

type guardState uint8

const (
	gHead guardState = iota
	gBody
	gChunkLine
	gChunkData
	gChunkCR // the CRLF after a chunk's data
	gChunkLF
	gTrailer
	gAwaitSwitch // after a request that asks to switch, until its response
	gPassthrough
	gRefused // a head was refused: its replacement is queued, the rest dropped
	gFailed  // a request was refused after its head: reads fail
)

// Positions within a chunk-size line.
const (
	clSize       uint8 = iota // hex digits
	clBWS                     // whitespace after the size or a value: ";" must follow
	clSemi                    // after ";": whitespace, then a name
	clName                    // extension name
	clAfterName               // whitespace after a name: "=" or ";" must follow
	clEquals                  // after "=": whitespace, then a value
	clToken                   // token value
	clQuoted                  // inside a quoted-string
	clQuotedPair              // after a backslash in a quoted-string
	clAfterQuote              // after the closing quote
	clLF                      // after the CR
)

// Positions within a trailer section.
const (
	tLineStart uint8 = iota
	tName
	tValue
	tLF    // after a field line's CR
	tEndLF // after the CR of the empty line that ends the section
)

// Outcomes of a protocol-switch request, as seen in the response.
const (
	switchPending int32 = iota
	switchDone
	switchRefused
)

// refusedHeader marks the replacement of a refused request. A client's
// request carrying it is refused itself, so on a guarded connection only
// the guard can send it.
const refusedHeader = "L5d-Proxy-Refused"

// replacementRequest is what the server reads instead of a request refused
// in its head. Connection: close ends the connection after its answer.
var replacementRequest = []byte("GET / HTTP/1.1\r\nHost: \r\n" + refusedHeader + ": 1\r\nConnection: close\r\n\r\n")

// errRefusedRequest is what the server's reads return once a request has
// been refused after its head.
var errRefusedRequest = errors.New("request refused by the proxy: malformed framing")

// refusal is why a guard refused a request; set once.
type refusal struct {
	status    int
	detail    string
	inRequest bool // after the head: the server was already serving it
}

type h1Guard struct {
	net.Conn
	out  []byte  // checked bytes not yet read by the server
	ends []int64 // where the requests in out end, as offsets in the checked stream
	read int64   // checked bytes the server has read
	acc  []byte  // a head begun in an earlier read, or bytes held for a switch
	seen int     // bytes of acc already searched for the end of the head

	state         guardState
	sub           uint8 // position within a chunk-size line or the trailer section
	remain        int64 // body or chunk bytes left; the chunk size being read
	digits        int   // hex digits of the chunk size so far
	line          int   // bytes of the chunk-size line so far
	section       int   // bytes of the trailer section so far
	overhead      int64 // chunk framing not paid for by data
	name          [len("transfer-encoding")]byte
	nameLen       int     // of the trailer field name, lower-cased; past len(name): longer
	switchPending bool    // the current request asks for a protocol switch
	next          framing // of the head checked last

	// Within one feed: the first k bytes of the buffer read are checked
	// output as they are (fast: nothing was held from before).
	k    int
	fast bool

	// connectFlag is true when the pending switch is a CONNECT (a 2xx
	// response switches).
	connectFlag atomic.Bool
	// switched is written by Write (the server's goroutine) and read by
	// feed (the reading goroutine).
	switched atomic.Int32
	// refusal is written by the reading goroutine, read by handlers.
	refusal atomic.Pointer[refusal]
	linger  sync.Once
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
		switch g.state {
		case gFailed:
			return 0, errRefusedRequest
		case gAwaitSwitch:
			if len(g.acc) > 0 {
				// Bytes held for a switch that is now decided are
				// checked without waiting for more from the client.
				g.k, g.fast = 0, false
				if g.switchDecided() {
					continue
				}
			}
		case gRefused:
			// The replacement has been read. What the client sends after
			// it is dropped; reading on keeps the server's deadlines and
			// the client's close working as usual.
			if _, err := g.Conn.Read(p); err != nil {
				return 0, err
			}
			continue
		}
		// The caller's buffer takes the bytes read: what passes as it is
		// stays there, and only what is held is copied, so an idle
		// connection keeps no buffer of its own.
		n, err := g.Conn.Read(p)
		if k := g.feed(p[:n]); k > 0 {
			return g.handOver(p, k), nil // an error comes back on the next read
		}
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
	n := len(g.out)
	if len(g.ends) > 0 {
		n = min(n, int(g.ends[0]-g.read))
	}
	n = copy(p, g.out[:n])
	g.out = g.out[n:]
	if len(g.out) == 0 {
		g.out = nil
	}
	g.advance(n)
	return n, nil
}

// handOver returns how many of the first k checked bytes of p the server
// reads now: up to the end of the request they start, the rest waiting in
// out ahead of what it holds.
func (g *h1Guard) handOver(p []byte, k int) int {
	n := k
	if len(g.ends) > 0 && g.ends[0]-g.read < int64(k) {
		n = int(g.ends[0] - g.read)
		rest := make([]byte, 0, k-n+len(g.out))
		g.out = append(append(rest, p[n:k]...), g.out...)
	}
	g.advance(n)
	return n
}

// advance counts n bytes read by the server and drops the request ends it
// has reached.
func (g *h1Guard) advance(n int) {
	g.read += int64(n)
	for len(g.ends) > 0 && g.ends[0] <= g.read {
		g.ends = g.ends[:copy(g.ends, g.ends[1:])]
	}
}

// feed checks b, the bytes just read into the caller's buffer, and returns
// k: the first k bytes of b go to the server as they are, before whatever
// feed put in out.
func (g *h1Guard) feed(b []byte) int {
	g.k, g.fast = 0, len(g.acc) == 0
	g.run(b)
	return g.k
}

// emit passes b[from:to] on as checked.
func (g *h1Guard) emit(b []byte, from, to int) {
	if from == to {
		return
	}
	if g.fast && len(g.out) == 0 && from == g.k {
		g.k = to
		return
	}
	g.out = append(g.out, b[from:to]...)
}

// run is the framing state machine over b.
func (g *h1Guard) run(b []byte) {
	for i := 0; i < len(b); {
		switch g.state {
		case gPassthrough:
			g.emit(b, i, len(b))
			return
		case gRefused, gFailed:
			return
		case gAwaitSwitch:
			if g.switchDecided() {
				continue
			}
			// A client must wait for the response before sending more;
			// hold what it sent until the response is known.
			if len(g.acc)+len(b)-i > maxHeldBytes {
				g.fail("too many bytes sent before the protocol switch was answered")
				return
			}
			g.acc = append(g.acc, b[i:]...)
			return
		case gHead:
			i = g.head(b, i)
		case gBody:
			n := int(min(int64(len(b)-i), g.remain))
			g.emit(b, i, i+n)
			i += n
			if g.remain -= int64(n); g.remain == 0 {
				g.requestDone()
			}
		case gChunkLine:
			i = g.chunkLine(b, i)
		case gChunkData:
			n := int(min(int64(len(b)-i), g.remain))
			g.emit(b, i, i+n)
			i += n
			if g.remain -= int64(n); g.remain == 0 {
				g.state = gChunkCR
			}
		case gChunkCR, gChunkLF:
			want, next := byte('\r'), gChunkLF
			if g.state == gChunkLF {
				want, next = '\n', gChunkLine
			}
			if b[i] != want {
				g.fail("chunk data not followed by CRLF")
				return
			}
			g.emit(b, i, i+1)
			i++
			g.state = next
		case gTrailer:
			i = g.trailer(b, i)
		}
	}
}

// switchDecided leaves gAwaitSwitch once the response to the switch
// request is known, checking what was held meanwhile as the first bytes
// of what follows. It reports whether it did.
func (g *h1Guard) switchDecided() bool {
	switch g.switched.Load() {
	case switchDone:
		g.state = gPassthrough
	case switchRefused:
		g.state = gHead
	default:
		return false
	}
	if held := g.acc; len(held) > 0 {
		g.acc, g.fast = nil, false
		g.run(held)
	}
	return true
}

// head accumulates a request head from b[i:] and checks it once complete.
// It returns where the bytes after the head start.
func (g *h1Guard) head(b []byte, i int) int {
	var (
		head []byte
		next int
	)
	if len(g.acc) == 0 {
		end := headEnd(b[i:], 0)
		if end < 0 {
			if len(b)-i > maxHeadBytes {
				g.refuseHead(http.StatusRequestHeaderFieldsTooLarge, "request head larger than 64 KiB")
				return len(b)
			}
			g.acc, g.seen = append(g.acc, b[i:]...), len(b)-i
			return len(b)
		}
		head, next = b[i:i+end], i+end
	} else {
		held := len(g.acc)
		g.acc = append(g.acc, b[i:]...)
		end := headEnd(g.acc, g.seen)
		if end < 0 {
			if len(g.acc) > maxHeadBytes {
				g.refuseHead(http.StatusRequestHeaderFieldsTooLarge, "request head larger than 64 KiB")
				return len(b)
			}
			g.seen = len(g.acc)
			return len(b)
		}
		head, next = g.acc[:end], i+end-held
	}
	if len(head) > maxHeadBytes {
		g.refuseHead(http.StatusRequestHeaderFieldsTooLarge, "request head larger than 64 KiB")
		return len(b)
	}
	if detail := g.checkHead(head); detail != "" {
		g.refuseHead(http.StatusBadRequest, detail)
		return len(b)
	}
	if len(g.acc) > 0 {
		g.out = append(g.out, head...)
		g.acc, g.fast = nil, false
	} else {
		g.emit(b, i, next)
	}
	g.afterHead()
	return next
}

// headEnd returns the length of the head at the start of buf (through the
// empty line that ends it, CRLF or a bare LF), or -1 when it is not
// complete. Line ends before from were already searched.
func headEnd(buf []byte, from int) int {
	for j := from; j < len(buf); j++ {
		k := bytes.IndexByte(buf[j:], '\n')
		if k < 0 {
			return -1
		}
		j += k
		if j >= 1 && buf[j-1] == '\n' || j >= 2 && buf[j-1] == '\r' && buf[j-2] == '\n' {
			return j + 1
		}
	}
	return -1
}

// Framing of the request whose head was checked last, for afterHead.
type framing struct {
	contentLength int64 // -1: none
	chunked       bool
}

// checkHead validates a complete request head and notes its framing. It
// returns why the head is refused, or "".
func (g *h1Guard) checkHead(head []byte) string {
	f := framing{contentLength: -1}
	var upgrade, connect, http10, te bool
	for first := true; ; first = false {
		j := bytes.IndexByte(head, '\n') // the head ends with one
		line := head[:j]
		head = head[j+1:]
		if len(line) == 0 || line[len(line)-1] != '\r' {
			return "line ending in LF without CR"
		}
		line = line[:len(line)-1]
		if first {
			method, h10, detail := checkRequestLine(line)
			if detail != "" {
				return detail
			}
			connect, http10 = string(method) == http.MethodConnect, h10
			continue
		}
		if len(line) == 0 {
			break // the empty line that ends the head
		}
		if line[0] == ' ' || line[0] == '\t' {
			return "obsolete line folding"
		}
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			return "header field without a colon"
		}
		name, value := line[:colon], line[colon+1:]
		if !isToken(name) {
			return "invalid header field name"
		}
		for _, c := range value {
			if !fieldByte[c] {
				return "invalid byte in a header field value"
			}
		}
		value = trimOWS(value)
		switch {
		case bytes.EqualFold(name, []byte("content-length")):
			n, ok := parseLength(value)
			if !ok || (f.contentLength >= 0 && n != f.contentLength) {
				return "invalid or differing Content-Length"
			}
			f.contentLength = n
		case bytes.EqualFold(name, []byte("transfer-encoding")):
			if te || !bytes.EqualFold(value, []byte("chunked")) {
				return "Transfer-Encoding other than a single chunked"
			}
			te, f.chunked = true, true
		case bytes.EqualFold(name, []byte("upgrade")):
			upgrade = true
		case bytes.EqualFold(name, []byte(refusedHeader)):
			return "reserved header field " + refusedHeader
		}
	}
	if te && f.contentLength >= 0 {
		return "both Content-Length and Transfer-Encoding"
	}
	if te && http10 {
		return "Transfer-Encoding in an HTTP/1.0 request"
	}
	g.next = f
	g.switchPending = upgrade || connect
	if g.switchPending {
		// Whether the protocol switches is up to the response.
		g.connectFlag.Store(connect)
		g.switched.Store(switchPending)
	}
	return ""
}

// checkRequestLine validates method SP request-target SP HTTP/1.x.
func checkRequestLine(l []byte) (method []byte, http10 bool, detail string) {
	sp := bytes.IndexByte(l, ' ')
	if sp < 0 {
		return nil, false, "malformed request line"
	}
	method, l = l[:sp], l[sp+1:]
	if !isToken(method) {
		return nil, false, "invalid method"
	}
	sp = bytes.IndexByte(l, ' ')
	if sp < 0 {
		return nil, false, "malformed request line"
	}
	target, version := l[:sp], l[sp+1:]
	if len(target) == 0 {
		return nil, false, "malformed request line"
	}
	for _, c := range target {
		if !targetByte[c] {
			return nil, false, "invalid byte in the request target"
		}
	}
	if len(version) != len("HTTP/1.1") || !bytes.HasPrefix(version, []byte("HTTP/1.")) || version[7] < '0' || version[7] > '9' {
		return nil, false, "malformed HTTP version"
	}
	return method, version[7] == '0', ""
}

// afterHead sets the body state of the request whose head was just passed.
func (g *h1Guard) afterHead() {
	switch f := g.next; {
	case f.chunked:
		g.state, g.sub = gChunkLine, clSize
		g.remain, g.digits, g.line, g.overhead = 0, 0, 0, 0
	case f.contentLength > 0:
		g.state, g.remain = gBody, f.contentLength
	default:
		g.requestDone()
	}
}

// requestDone marks the end of a request in the checked stream.
func (g *h1Guard) requestDone() {
	g.ends = append(g.ends, g.read+int64(g.k)+int64(len(g.out)))
	g.state = gHead
	if g.switchPending {
		g.switchPending = false
		g.state = gAwaitSwitch
	}
}

// chunkLine checks a chunk-size line from b[i:], byte by byte, passing
// each byte on once it is known to be valid so far.
func (g *h1Guard) chunkLine(b []byte, i int) int {
	start := i
	for ; i < len(b); i++ {
		c := b[i]
		if g.line++; g.line > maxChunkLine {
			return g.failAt(b, start, i, "chunk-size line longer than 1 KiB")
		}
		if c == '\n' && g.sub != clLF {
			return g.failAt(b, start, i, "chunk-size line ending in LF without CR")
		}
		switch g.sub {
		case clSize:
			if v := unhex(c); v >= 0 {
				if g.digits++; g.digits > 16 || g.remain > (math.MaxInt64-int64(v))>>4 {
					return g.failAt(b, start, i, "chunk size too large")
				}
				g.remain = g.remain<<4 | int64(v)
				continue
			}
			switch {
			case g.digits == 0:
				return g.failAt(b, start, i, "invalid chunk size")
			case c == '\r':
				g.sub = clLF
			case c == ';':
				g.sub = clSemi
			case c == ' ' || c == '\t':
				g.sub = clBWS
			default:
				return g.failAt(b, start, i, "invalid chunk size")
			}
		case clBWS, clAfterName:
			switch {
			case c == ' ' || c == '\t':
			case c == ';':
				g.sub = clSemi
			case c == '=' && g.sub == clAfterName:
				g.sub = clEquals
			default:
				return g.failAt(b, start, i, "invalid chunk extension")
			}
		case clSemi, clEquals:
			switch {
			case c == ' ' || c == '\t':
			case tchar[c] && g.sub == clSemi:
				g.sub = clName
			case tchar[c]:
				g.sub = clToken
			case c == '"' && g.sub == clEquals:
				g.sub = clQuoted
			default:
				return g.failAt(b, start, i, "invalid chunk extension")
			}
		case clName, clToken:
			switch {
			case tchar[c]:
			case c == ';':
				g.sub = clSemi
			case c == '\r':
				g.sub = clLF
			case (c == ' ' || c == '\t') && g.sub == clName:
				g.sub = clAfterName
			case c == ' ' || c == '\t':
				g.sub = clBWS
			case c == '=' && g.sub == clName:
				g.sub = clEquals
			default:
				return g.failAt(b, start, i, "invalid chunk extension")
			}
		case clQuoted:
			switch {
			case c == '"':
				g.sub = clAfterQuote
			case c == '\\':
				g.sub = clQuotedPair
			case !qdtext[c]:
				return g.failAt(b, start, i, "invalid chunk extension")
			}
		case clQuotedPair:
			if c != '\t' && c != ' ' && (c < 0x21 || c == 0x7f) {
				return g.failAt(b, start, i, "invalid chunk extension")
			}
			g.sub = clQuoted
		case clAfterQuote:
			switch c {
			case ' ', '\t':
				g.sub = clBWS
			case ';':
				g.sub = clSemi
			case '\r':
				g.sub = clLF
			default:
				return g.failAt(b, start, i, "invalid chunk extension")
			}
		case clLF:
			if c != '\n' {
				return g.failAt(b, start, i, "CR without LF in a chunk-size line")
			}
			g.emit(b, start, i+1)
			g.chunkLineDone()
			return i + 1
		}
	}
	g.emit(b, start, len(b))
	return len(b)
}

// chunkLineDone accounts for a complete chunk-size line and moves to the
// chunk's data, or to the trailer section after the last chunk.
func (g *h1Guard) chunkLineDone() {
	// The line and the CRLF after the data are framing; the allowance and
	// twice the data pay for it.
	g.overhead += int64(g.line) + 2 - chunkAllowance - 2*min(g.remain, maxChunkOverhead)
	g.overhead = max(g.overhead, 0)
	if g.overhead > maxChunkOverhead {
		g.fail("too much chunk framing for the data it carries")
		return
	}
	g.line, g.digits, g.sub = 0, 0, clSize
	if g.remain == 0 {
		g.state, g.sub, g.section = gTrailer, tLineStart, 0
		return
	}
	g.state = gChunkData
}

// trailer checks the trailer section after the last chunk from b[i:],
// byte by byte like chunkLine.
func (g *h1Guard) trailer(b []byte, i int) int {
	start := i
	for ; i < len(b); i++ {
		c := b[i]
		if g.section++; g.section > maxTrailerBytes {
			return g.failAt(b, start, i, "trailer section larger than 4 KiB")
		}
		switch g.sub {
		case tLineStart:
			switch {
			case c == '\r':
				g.sub = tEndLF
			case c == ' ' || c == '\t':
				return g.failAt(b, start, i, "obsolete line folding in the trailer section")
			case tchar[c]:
				g.sub, g.nameLen = tName, 0
				g.addName(c)
			default:
				return g.failAt(b, start, i, "invalid trailer field")
			}
		case tName:
			switch {
			case tchar[c]:
				g.addName(c)
			case c == ':':
				if g.nameLen <= len(g.name) && forbiddenTrailer(g.name[:g.nameLen]) {
					return g.failAt(b, start, i, "framing or routing field in the trailer section")
				}
				g.sub = tValue
			default:
				return g.failAt(b, start, i, "invalid trailer field name")
			}
		case tValue:
			switch {
			case c == '\r':
				g.sub = tLF
			case !fieldByte[c]:
				return g.failAt(b, start, i, "invalid byte in a trailer field value")
			}
		case tLF, tEndLF:
			if c != '\n' {
				return g.failAt(b, start, i, "CR without LF in the trailer section")
			}
			if g.sub == tLF {
				g.sub = tLineStart
				continue
			}
			g.emit(b, start, i+1)
			g.requestDone()
			return i + 1
		}
	}
	g.emit(b, start, len(b))
	return len(b)
}

func (g *h1Guard) addName(c byte) {
	if g.nameLen < len(g.name) {
		g.name[g.nameLen] = c | 0x20 // lower-cases letters; other tchars never match
	}
	g.nameLen++
}

// forbiddenTrailer reports the fields that must not come after the body
// (RFC 9110 §6.5.1): what frames the message or routes it.
func forbiddenTrailer(name []byte) bool {
	return string(name) == "content-length" || string(name) == "transfer-encoding" || string(name) == "host"
}

// refuseHead replaces the request being read with replacementRequest.
func (g *h1Guard) refuseHead(status int, detail string) {
	g.refusal.CompareAndSwap(nil, &refusal{status: status, detail: detail})
	g.out = append(g.out, replacementRequest...)
	g.acc = nil
	g.state = gRefused
}

// failAt passes b[start:i], the valid bytes before the offending one, and
// refuses the request being read; it returns len(b) (the rest is dropped).
func (g *h1Guard) failAt(b []byte, start, i int, detail string) int {
	g.emit(b, start, i)
	g.fail(detail)
	return len(b)
}

// fail refuses the request being served: the server's reads fail once it
// has read what was checked before.
func (g *h1Guard) fail(detail string) {
	g.refusal.CompareAndSwap(nil, &refusal{status: http.StatusBadRequest, detail: detail, inRequest: true})
	g.acc = nil
	g.state = gFailed
}

// Close half-closes a connection the guard refused requests on and reads
// what the client still sends, for a short while, before closing it:
// closing with unread bytes would reset the connection, and the reset can
// destroy the answer before the client reads it.
func (g *h1Guard) Close() error {
	if g.refusal.Load() != nil {
		g.linger.Do(g.drain)
	}
	return g.Conn.Close()
}

func (g *h1Guard) drain() {
	raw := g.Conn
	if nc, ok := raw.(interface{ NetConn() net.Conn }); ok {
		raw = nc.NetConn() // below the detection buffer: it may be read elsewhere
	}
	cw, ok := raw.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil || raw.SetReadDeadline(time.Now().Add(lingerTimeout)) != nil {
		return
	}
	_, _ = io.CopyN(io.Discard, raw, lingerMaxBytes)
}

type guardKey struct{}

// guardContext returns ctx with the guard of c, when c is one, for the
// requests served on it (http.Server.ConnContext).
func guardContext(ctx context.Context, c net.Conn) context.Context {
	if g, ok := c.(*h1Guard); ok {
		return context.WithValue(ctx, guardKey{}, g)
	}
	return ctx
}

func guardOf(ctx context.Context) *h1Guard {
	g, _ := ctx.Value(guardKey{}).(*h1Guard)
	return g
}

// RefuseMalformed answers r when it is the replacement of a request the
// HTTP/1 guard refused in its head: 400 (431 for a head too large) with
// l5d-proxy-error "malformed request: …" and Connection: close, counted
// on h (request and response, status_code 400, classification success,
// error "malformed request": the client's error). It reports whether it
// did; the caller must then not forward r. Every handler of guarded
// connections calls it before anything else.
func RefuseMalformed(w http.ResponseWriter, r *http.Request, h *metrics.Handles) bool {
	g := guardOf(r.Context())
	if g == nil {
		return false
	}
	ref := g.refusal.Load()
	if ref == nil || ref.inRequest || r.Header.Get(refusedHeader) == "" {
		return false
	}
	if h != nil {
		h.Requests.Inc()
	}
	rec := NewRecorder(w)
	answerRefusal(rec, ref)
	rec.Done(h)
	return true
}

// answerRefusedBody answers, in place of the 502 of a failed round trip, a
// request the guard refused after its head: the round trip failed because
// the client's framing did. It reports whether it did.
func answerRefusedBody(w http.ResponseWriter, r *http.Request) bool {
	g := guardOf(r.Context())
	if g == nil {
		return false
	}
	ref := g.refusal.Load()
	if ref == nil || !ref.inRequest {
		return false
	}
	answerRefusal(w, ref)
	return true
}

func answerRefusal(w http.ResponseWriter, ref *refusal) {
	if rec, ok := w.(*Recorder); ok {
		rec.ErrName = ErrMalformedRequest
	}
	w.Header().Set("Connection", "close")
	ProxyError(w, ref.status, ErrMalformedRequest+": "+ref.detail)
}

// Byte classes of RFC 9110 and RFC 9112.
var (
	// tchar: the characters of a token (method, field name, extension).
	tchar = byteClass(func(c byte) bool {
		return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || bytes.IndexByte([]byte("!#$%&'*+-.^_`|~"), c) >= 0
	})
	// fieldByte: field-value characters (VCHAR, obs-text, SP, HTAB).
	fieldByte = byteClass(func(c byte) bool { return c == ' ' || c == '\t' || c >= 0x21 && c != 0x7f })
	// targetByte: a request-target's characters: no space, no control.
	targetByte = byteClass(func(c byte) bool { return c >= 0x21 && c != 0x7f })
	// qdtext: quoted-string characters other than a quoted-pair.
	qdtext = byteClass(func(c byte) bool { return c == ' ' || c == '\t' || c >= 0x21 && c != 0x7f && c != '"' && c != '\\' })
)

func byteClass(in func(byte) bool) (t [256]bool) {
	for c := range 256 {
		t[c] = in(byte(c))
	}
	return t
}

func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !tchar[c] {
			return false
		}
	}
	return true
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// parseLength parses a Content-Length: 1 to 18 digits (under 2^63).
func parseLength(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
