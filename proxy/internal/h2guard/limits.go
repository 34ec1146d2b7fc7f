package h2guard

import (
	"encoding/binary"
	"time"
)

// Reason names the budget a client ran out of; it is the reason label of
// the metric that counts closed connections.
type Reason string

const (
	// RapidReset: RST_STREAM frames for streams the server had not
	// answered yet, within RapidResetAge of opening them.
	RapidReset Reason = "rst_stream"
	// Settings: SETTINGS frames (ACKs excluded).
	Settings Reason = "settings"
	// Ping: PING frames (ACKs excluded) beyond the one each HEADERS or
	// DATA frame of the server allows.
	Ping Reason = "ping"
	// WindowUpdate: WINDOW_UPDATE frames beyond those that the server's
	// DATA frames and the client's new streams allow.
	WindowUpdate Reason = "window_update"
	// EmptyFrames: DATA frames without payload or END_STREAM, HEADERS and
	// CONTINUATION frames without header bytes or END_HEADERS.
	EmptyFrames Reason = "empty_frames"
	// Continuation: more CONTINUATION frames in one header block than
	// MaxContinuations.
	Continuation Reason = "continuation"
	// IgnoredFrames: frames the server does nothing with — PRIORITY,
	// PRIORITY_UPDATE and other extension types, PING ACKs it did not ask
	// for, the client's GOAWAY — beyond two per stream the client opens.
	IgnoredFrames Reason = "ignored_frames"
	// StreamErrors: streams the server reset because the client broke the
	// protocol on them (RST_STREAM other than NO_ERROR, CANCEL,
	// INTERNAL_ERROR or REFUSED_STREAM).
	StreamErrors Reason = "stream_errors"
)

// Reasons lists every Reason, for metrics and documentation.
var Reasons = []Reason{RapidReset, Settings, Ping, WindowUpdate, EmptyFrames, Continuation, IgnoredFrames, StreamErrors}

// Budget is a token bucket: Burst events at once, refilled at PerSecond.
// A negative Burst is unlimited; a zero Budget takes the default.
type Budget struct {
	Burst     int
	PerSecond float64
}

// PerSecond is a budget of n events a second, and n at once.
func PerSecond(n int) Budget { return Budget{Burst: n, PerSecond: float64(n)} }

// Limits are what one HTTP/2 client connection may send. Each budget is
// per connection; the first one a client runs out of ends the connection
// with GOAWAY ENHANCE_YOUR_CALM. Zero fields take their defaults (see
// DefaultLimits).
type Limits struct {
	// RapidResets counts RST_STREAM frames for streams the server has not
	// answered (sent no response HEADERS for) and that were opened less
	// than RapidResetAge ago: the HTTP/2 rapid reset attack (CVE-2023-
	// 44487) is a flood of those. A client's reset of a stream it got an
	// answer on, or of an older one, is not counted: those cost the server
	// no more than the requests themselves.
	RapidResets   Budget
	RapidResetAge time.Duration
	// Settings counts SETTINGS frames; clients send one, and a few more
	// when their flow-control windows grow.
	Settings Budget
	// Pings counts PING frames; each HEADERS or DATA frame the server
	// sends gives one more (gRPC's BDP pings follow received data).
	Pings Budget
	// WindowUpdates counts WINDOW_UPDATE frames; each DATA frame the
	// server sends gives two more and two per 4 KiB it carries (a client
	// returns window as it reads: Go's for every 4 KiB, for the stream
	// and for the connection; 16 KiB frames make Envoy's allowance of
	// ten), and each stream the client opens two.
	WindowUpdates Budget
	// EmptyFrames counts frames without payload that end nothing.
	EmptyFrames Budget
	// IgnoredFrames counts frames the server ignores; each stream the
	// client opens gives two more.
	IgnoredFrames Budget
	// StreamErrors counts streams the server resets for a protocol error
	// of the client.
	StreamErrors Budget
	// MaxContinuations bounds the CONTINUATION frames of one header block.
	MaxContinuations int
}

// DefaultLimits sit well above what legitimate clients send (gRPC clients
// cancelling many calls, browsers, keepalive and BDP pings, window updates
// under large streams) and cut a flood after about a thousand frames of
// it; the proxy README says why each is what it is.
var DefaultLimits = Limits{
	RapidResets:      PerSecond(1000),
	RapidResetAge:    time.Second,
	Settings:         Budget{Burst: 100, PerSecond: 10},
	Pings:            Budget{Burst: 100, PerSecond: 10},
	WindowUpdates:    Budget{Burst: 1000, PerSecond: 100},
	EmptyFrames:      Budget{Burst: 100, PerSecond: 10},
	IgnoredFrames:    Budget{Burst: 100, PerSecond: 10},
	StreamErrors:     Budget{Burst: 100, PerSecond: 10},
	MaxContinuations: 128,
}

// Credits the server's frames and the client's streams give to other
// budgets.
const (
	pingsPerServerFrame       = 1
	windowUpdatesPerDataFrame = 2
	windowUpdatesPer4KiB      = 2
	windowUpdatesPerStream    = 2
	ignoredFramesPerStream    = 2
	maxTrackedStreams         = 1024 // unanswered streams remembered per connection
)

// WithDefaults returns l with every zero field set to its default.
func (l Limits) WithDefaults() Limits {
	d := DefaultLimits
	for _, b := range []struct{ v, def *Budget }{
		{&l.RapidResets, &d.RapidResets}, {&l.Settings, &d.Settings}, {&l.Pings, &d.Pings},
		{&l.WindowUpdates, &d.WindowUpdates}, {&l.EmptyFrames, &d.EmptyFrames},
		{&l.IgnoredFrames, &d.IgnoredFrames}, {&l.StreamErrors, &d.StreamErrors},
	} {
		if *b.v == (Budget{}) {
			*b.v = *b.def
		}
	}
	if l.RapidResetAge == 0 {
		l.RapidResetAge = d.RapidResetAge
	}
	if l.MaxContinuations == 0 {
		l.MaxContinuations = d.MaxContinuations
	}
	return l
}

// bucket is the state of one Budget; times are nanoseconds on the
// connection's clock (0 at its start, when every bucket is full).
type bucket struct {
	used float64 // tokens taken and not yet refilled
	last int64
	bank float64 // tokens earned by what the server sent, spent first
}

// maxBank bounds earned tokens. Each costs the server more to earn (a
// frame it sent, a stream it opened) than the frame it pays for, so a
// client that saves them up buys nothing it did not pay for.
const maxBank = 1 << 20

// take spends one token, earned or refilled; false when none is left.
func (b *bucket) take(now int64, l Budget) bool {
	if l.Burst < 0 {
		return true
	}
	if b.bank >= 1 {
		b.bank--
		return true
	}
	if now > b.last {
		b.used = max(0, b.used-float64(now-b.last)*l.PerSecond/1e9)
		b.last = now
	}
	if b.used+1 > float64(l.Burst) {
		return false
	}
	b.used++
	return true
}

// credit earns n tokens: what the server sent allows n more frames, which
// may come later (a client that reads late returns window late).
func (b *bucket) credit(n float64) { b.bank = min(maxBank, b.bank+n) }

// openStream is a client stream the server has not answered yet.
type openStream struct {
	id     uint32
	opened int64 // <0: answered or reset (a hole until compacted away)
}

// streamTable holds the client's unanswered streams in opening order,
// which is stream-id order (RFC 9113 §5.1.1), so lookups are binary
// searches. It never holds more than maxTrackedStreams: the oldest are
// forgotten first, and their resets are not counted.
type streamTable struct {
	s    []openStream
	head int
}

func (t *streamTable) add(id uint32, now int64) {
	if len(t.s) >= maxTrackedStreams {
		t.compact()
		if len(t.s) >= maxTrackedStreams {
			// Forget the oldest quarter at once, so that a client holding
			// this many unanswered streams costs a copy every 256 streams.
			t.head = maxTrackedStreams / 4
			t.compact()
		}
	}
	t.s = append(t.s, openStream{id: id, opened: now})
}

// compact drops the holes and what is before head.
func (t *streamTable) compact() {
	live := t.s[:0]
	for _, e := range t.s[t.head:] {
		if e.opened >= 0 {
			live = append(live, e)
		}
	}
	clear(t.s[len(live):])
	t.s, t.head = live, 0
}

// remove forgets stream id and reports when it was opened (ok false when
// it is not held).
func (t *streamTable) remove(id uint32) (opened int64, ok bool) {
	lo, hi := t.head, len(t.s)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if t.s[mid].id < id {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo == len(t.s) || t.s[lo].id != id || t.s[lo].opened < 0 {
		return 0, false
	}
	opened = t.s[lo].opened
	t.s[lo].opened = -1
	for t.head < len(t.s) && t.s[t.head].opened < 0 {
		t.head++
	}
	if t.head == len(t.s) {
		t.s, t.head = t.s[:0], 0
	}
	return opened, true
}

// state is one connection's accounting: the two parsers and the budgets.
// It does no I/O, so the decisions are tested on byte streams alone.
type state struct {
	lim      Limits
	in, out  parser
	tripped  Reason
	lastID   uint32 // highest client stream whose HEADERS reached the server
	maxID    uint32 // highest client stream opened
	conts    int    // CONTINUATION frames in the current header block
	streams  streamTable
	resets   bucket
	settings bucket
	pings    bucket
	windows  bucket
	empty    bucket
	ignored  bucket
	errors   bucket
}

func newState(l Limits) *state {
	return &state{lim: l.WithDefaults(), in: newClientParser(), out: newServerParser()}
}

// clientBytes follows b, read from the client, and returns how much of it
// the server may have: all of it, or, once a budget runs out, what comes
// before the frame that exceeded it (tripped is then set, and nothing
// more goes to the server). err is set when the client does not speak
// HTTP/2.
func (s *state) clientBytes(b []byte, now int64) (n int, err error) {
	if s.tripped != "" {
		return 0, nil
	}
	start := 0 // where the frame being read began in b
	for off := 0; off < len(b); {
		if s.in.atBoundary() {
			start = off
		}
		k, got, err := s.in.step(b[off:])
		if err != nil {
			return off, err
		}
		off += k
		if !got {
			continue
		}
		if r := s.client(&s.in.f, now); r != "" {
			s.tripped = r
			return start, nil
		}
	}
	return len(b), nil
}

// client accounts for one frame from the client and names the budget it
// exceeded, if any.
func (s *state) client(f *frame, now int64) Reason {
	l := &s.lim
	switch f.typ {
	case frameHeaders:
		s.conts = 0
		if !f.has(flagEndHeaders) && f.payload() == 0 && !s.empty.take(now, l.EmptyFrames) {
			return EmptyFrames
		}
		if id := f.streamID; id&1 == 1 && id > s.maxID {
			s.maxID = id
			s.streams.add(id, now)
			s.windows.credit(windowUpdatesPerStream)
			s.ignored.credit(ignoredFramesPerStream)
		}
		s.lastID = max(s.lastID, f.streamID)
	case frameContinuation:
		s.conts++
		if s.conts > l.MaxContinuations {
			return Continuation
		}
		if !f.has(flagEndHeaders) && f.length == 0 && !s.empty.take(now, l.EmptyFrames) {
			return EmptyFrames
		}
	case frameData:
		if !f.has(flagEndStream) && f.payload() == 0 && !s.empty.take(now, l.EmptyFrames) {
			return EmptyFrames
		}
	case frameRSTStream:
		opened, ok := s.streams.remove(f.streamID)
		if ok && now-opened < int64(l.RapidResetAge) && !s.resets.take(now, l.RapidResets) {
			return RapidReset
		}
	case frameSettings:
		if !f.has(flagAck) && !s.settings.take(now, l.Settings) {
			return Settings
		}
	case framePing:
		if f.has(flagAck) {
			if !s.ignored.take(now, l.IgnoredFrames) {
				return IgnoredFrames
			}
		} else if !s.pings.take(now, l.Pings) {
			return Ping
		}
	case frameWindowUpdate:
		if !s.windows.take(now, l.WindowUpdates) {
			return WindowUpdate
		}
	case framePushPromise:
		// A protocol error the server answers by closing the connection.
	default: // PRIORITY, GOAWAY, extension frames
		if !s.ignored.take(now, l.IgnoredFrames) {
			return IgnoredFrames
		}
	}
	return ""
}

// serverBytes follows b, written by the server. Once a budget has run
// out, it returns how much of b goes out before the GOAWAY: up to the
// first frame boundary, with goAway set; goAway is false when b ends
// mid-frame (the GOAWAY then waits for the rest) or nothing is wrong.
func (s *state) serverBytes(b []byte, now int64) (n int, goAway bool) {
	for off := 0; ; {
		if s.tripped != "" && s.out.atBoundary() {
			return off, true
		}
		if off == len(b) {
			return off, false
		}
		k, got, _ := s.out.step(b[off:])
		off += k
		if got && s.tripped == "" {
			s.tripped = s.server(&s.out.f, now)
		}
	}
}

// server accounts for one frame from the server.
func (s *state) server(f *frame, now int64) Reason {
	switch f.typ {
	case frameHeaders:
		s.streams.remove(f.streamID)
		s.pings.credit(pingsPerServerFrame)
	case frameData:
		s.pings.credit(pingsPerServerFrame)
		if f.length > 0 {
			s.windows.credit(windowUpdatesPerDataFrame + windowUpdatesPer4KiB*float64(f.length>>12))
		}
	case frameRSTStream:
		s.streams.remove(f.streamID)
		if f.nprefix < 4 {
			break
		}
		switch binary.BigEndian.Uint32(f.prefix[:]) {
		case codeNoError, codeCancel, codeInternalError, codeRefusedStream:
			// The handler's own doing, or the client's first flight
			// before it saw SETTINGS_MAX_CONCURRENT_STREAMS.
		default:
			if !s.errors.take(now, s.lim.StreamErrors) {
				return StreamErrors
			}
		}
	}
	return ""
}
