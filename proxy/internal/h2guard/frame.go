package h2guard

import "errors"

// Preface is the HTTP/2 client connection preface (RFC 9113 §3.4).
const Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// Frame types and flags the guard reads (RFC 9113 §6).
const (
	frameData         = 0x0
	frameHeaders      = 0x1
	framePriority     = 0x2
	frameRSTStream    = 0x3
	frameSettings     = 0x4
	framePushPromise  = 0x5
	framePing         = 0x6
	frameGoAway       = 0x7
	frameWindowUpdate = 0x8
	frameContinuation = 0x9

	flagEndStream  = 0x1 // DATA, HEADERS
	flagAck        = 0x1 // SETTINGS, PING
	flagEndHeaders = 0x4 // HEADERS, CONTINUATION
	flagPadded     = 0x8 // DATA, HEADERS
	flagPriority   = 0x20

	frameHeaderLen = 9
)

// Error codes (RFC 9113 §7).
const (
	codeNoError         = 0x0
	codeInternalError   = 0x2
	codeRefusedStream   = 0x7
	codeCancel          = 0x8
	codeEnhanceYourCalm = 0xb
)

const (
	maxPrefix    = 4 // payload bytes a frame event may carry
	streamIDMask = 1<<31 - 1
	maxDebugData = 64 // bytes of GOAWAY debug data
)

var errNotHTTP2 = errors.New("h2guard: the client did not start with the HTTP/2 preface")

// frame is one frame's header, with the first bytes of its payload when
// the guard needs them (the pad length of a padded DATA or HEADERS frame,
// the error code of a RST_STREAM).
type frame struct {
	length   uint32
	typ      uint8
	flags    uint8
	streamID uint32
	prefix   [maxPrefix]byte
	nprefix  uint8
}

func (f *frame) has(flag uint8) bool { return f.flags&flag != 0 }

// payload is what the frame carries besides padding (and, for HEADERS,
// the priority fields): the bytes of a DATA frame, the header block
// fragment of HEADERS. A malformed frame (padding longer than the frame)
// counts as empty; the server refuses it anyway.
func (f *frame) payload() int {
	n := int(f.length)
	if f.has(flagPadded) {
		if f.nprefix < 1 {
			return 0
		}
		n -= 1 + int(f.prefix[0])
	}
	if f.typ == frameHeaders && f.has(flagPriority) {
		n -= 5
	}
	return max(n, 0)
}

// parser follows one direction of an HTTP/2 connection frame by frame
// without buffering it: it reads the 24-byte preface (client side), then
// each 9-byte frame header, collects the few payload bytes wanted, and
// skips the rest. Its state is a few integers, whatever the input.
type parser struct {
	preface int // preface bytes still to check
	hdr     [frameHeaderLen]byte
	nhdr    int
	f       frame  // the frame being read; an event once complete
	need    int    // payload bytes still to collect into f.prefix
	skip    uint32 // payload bytes still to pass
	// want says how many payload bytes of a frame the guard reads.
	want func(typ, flags uint8) int
}

func newClientParser() parser {
	return parser{preface: len(Preface), want: clientWants}
}

func newServerParser() parser {
	return parser{want: serverWants}
}

// clientWants: the pad length of padded DATA and HEADERS frames, to tell
// an empty frame from one with a payload.
func clientWants(typ, flags uint8) int {
	if (typ == frameData || typ == frameHeaders) && flags&flagPadded != 0 {
		return 1
	}
	return 0
}

// serverWants: the error code of the server's RST_STREAM frames.
func serverWants(typ, _ uint8) int {
	if typ == frameRSTStream {
		return 4
	}
	return 0
}

// atBoundary reports whether the parser stands between two frames (after
// the preface, for the client side).
func (p *parser) atBoundary() bool {
	return p.preface == 0 && p.nhdr == 0 && p.need == 0 && p.skip == 0
}

// step consumes a first part of b (at least one byte when b is not empty):
// up to the end of a frame header and the payload bytes wanted, returning
// got when that makes a complete frame event in p.f, or up to the end of
// the current payload. It fails only on a client preface mismatch.
func (p *parser) step(b []byte) (n int, got bool, err error) {
	if len(b) == 0 {
		return 0, false, nil
	}
	switch {
	case p.preface > 0:
		off := len(Preface) - p.preface
		n = min(len(b), p.preface)
		if string(b[:n]) != Preface[off:off+n] {
			return 0, false, errNotHTTP2
		}
		p.preface -= n
		return n, false, nil
	case p.skip > 0:
		n = int(min(uint32(min(len(b), 1<<30)), p.skip))
		p.skip -= uint32(n)
		return n, false, nil
	case p.need > 0:
		n = min(len(b), p.need)
		copy(p.f.prefix[p.f.nprefix:], b[:n])
		p.f.nprefix += uint8(n)
		p.need -= n
		if p.need > 0 {
			return n, false, nil
		}
		p.skip = p.f.length - uint32(p.f.nprefix)
		return n, true, nil
	}
	n = copy(p.hdr[p.nhdr:], b)
	p.nhdr += n
	if p.nhdr < frameHeaderLen {
		return n, false, nil
	}
	p.nhdr = 0
	h := p.hdr
	p.f = frame{
		length:   uint32(h[0])<<16 | uint32(h[1])<<8 | uint32(h[2]),
		typ:      h[3],
		flags:    h[4],
		streamID: (uint32(h[5])<<24 | uint32(h[6])<<16 | uint32(h[7])<<8 | uint32(h[8])) & streamIDMask,
	}
	if w := min(p.want(p.f.typ, p.f.flags), int(p.f.length), maxPrefix); w > 0 {
		p.need = w
		return n, false, nil
	}
	p.skip = p.f.length
	return n, true, nil
}

// goAwayFrame is a GOAWAY with ENHANCE_YOUR_CALM naming lastStreamID, the
// highest client stream the server may have processed, with debug as its
// opaque data (a short reason for whoever reads the client's logs).
func goAwayFrame(lastStreamID uint32, debug string) []byte {
	if len(debug) > maxDebugData {
		debug = debug[:maxDebugData]
	}
	n := 8 + len(debug)
	b := make([]byte, 0, frameHeaderLen+n)
	b = append(b, byte(n>>16), byte(n>>8), byte(n), frameGoAway, 0, 0, 0, 0, 0)
	id := lastStreamID & streamIDMask
	b = append(b, byte(id>>24), byte(id>>16), byte(id>>8), byte(id))
	b = append(b, 0, 0, 0, codeEnhanceYourCalm)
	return append(b, debug...)
}
