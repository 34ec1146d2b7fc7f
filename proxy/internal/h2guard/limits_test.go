package h2guard

import (
	"testing"
	"time"
)

// tester drives a state with a clock of its own.
type tester struct {
	t   *testing.T
	s   *state
	now time.Duration
}

func newTester(t *testing.T, l Limits) *tester {
	x := &tester{t: t, s: newState(l)}
	x.client(cat([]byte(Preface), fr(frameSettings, 0, 0, nil)))
	x.server(fr(frameSettings, 0, 0, nil))
	return x
}

// client feeds b in pieces of 4 KiB, as the server would read it, and
// returns how much reached the server.
func (x *tester) client(b []byte) int {
	x.t.Helper()
	total := 0
	for len(b) > 0 {
		chunk := b[:min(len(b), 4096)]
		b = b[len(chunk):]
		n, err := x.s.clientBytes(chunk, int64(x.now))
		if err != nil {
			x.t.Fatal(err)
		}
		total += n
		if n < len(chunk) {
			break
		}
	}
	return total
}

func (x *tester) server(b []byte) (int, bool) {
	return x.s.serverBytes(b, int64(x.now))
}

func pairs(first uint32, n int) []byte {
	var b []byte
	for i := range n {
		id := first + 2*uint32(i)
		b = append(b, headers(id)...)
		b = append(b, rst(id, codeCancel)...)
	}
	return b
}

func TestRapidResetFloodTrips(t *testing.T) {
	x := newTester(t, Limits{})
	in := pairs(1, 100_000)
	n := x.client(in)
	if x.s.tripped != RapidReset {
		t.Fatalf("100,000 HEADERS+RST_STREAM pairs: tripped %q", x.s.tripped)
	}
	// The server got the first 1,000 pairs and the HEADERS of the next,
	// not its RST_STREAM.
	pair := len(headers(1)) + len(rst(1, 0))
	if want := 1000*pair + len(headers(1)); n != want {
		t.Errorf("%d bytes reached the server, want %d", n, want)
	}
	if x.s.lastID != 2001 {
		t.Errorf("last stream %d, want 2001", x.s.lastID)
	}
	if got := x.client(headers(5001)); got != 0 {
		t.Errorf("%d bytes reached the server after the trip", got)
	}
}

func TestResetsOfAnsweredOrOldStreamsAreFree(t *testing.T) {
	x := newTester(t, Limits{})
	for i := range 10_000 {
		id := 1 + 2*uint32(i)
		x.client(headers(id))
		x.server(fr(frameHeaders, flagEndHeaders, id, []byte{0x88}))
		x.client(rst(id, codeCancel))
	}
	if x.s.tripped != "" {
		t.Fatalf("resets after the answer: tripped %q", x.s.tripped)
	}
	// Streams reset a second after they were opened, unanswered: a
	// client's deadlines, 250 at a time.
	for round := range 40 {
		first := 20_001 + uint32(round)*500
		for i := range 250 {
			x.client(headers(first + 2*uint32(i)))
		}
		x.now += time.Second
		for i := range 250 {
			x.client(rst(first+2*uint32(i), codeCancel))
		}
	}
	if x.s.tripped != "" {
		t.Fatalf("resets of streams a second old: tripped %q", x.s.tripped)
	}
}

func TestResetBudgetRefills(t *testing.T) {
	x := newTester(t, Limits{})
	// 1,000 unanswered resets per second for ten seconds: at the limit.
	for i := range 10_000 {
		x.client(pairs(1+2*uint32(i), 1))
		x.now += time.Millisecond
	}
	if x.s.tripped != "" {
		t.Fatalf("1,000 rapid resets/s: tripped %q", x.s.tripped)
	}
	// Twice that runs the budget out within two seconds.
	for i := range 4_000 {
		x.client(pairs(20_001+2*uint32(i), 1))
		x.now += time.Millisecond / 2
	}
	if x.s.tripped != RapidReset {
		t.Fatalf("2,000 rapid resets/s: tripped %q", x.s.tripped)
	}
}

func repeat(b []byte, n int) []byte {
	var out []byte
	for range n {
		out = append(out, b...)
	}
	return out
}

func TestFloodsTrip(t *testing.T) {
	ping := make([]byte, 8)
	for _, c := range []struct {
		name string
		in   []byte
		want Reason
	}{
		{"SETTINGS", repeat(fr(frameSettings, 0, 0, nil), 200), Settings},
		{"PING", repeat(fr(framePing, 0, 0, ping), 200), Ping},
		{"PING ACK", repeat(fr(framePing, flagAck, 0, ping), 200), IgnoredFrames},
		{"WINDOW_UPDATE", repeat(fr(frameWindowUpdate, 0, 0, []byte{0, 0, 0, 1}), 2000), WindowUpdate},
		{"empty DATA", cat(fr(frameHeaders, flagEndHeaders, 1, block), repeat(dataFrame(1, 0, nil), 200)), EmptyFrames},
		{"padding-only DATA", cat(fr(frameHeaders, flagEndHeaders, 1, block), repeat(dataFrame(1, flagPadded, []byte{3, 0, 0, 0}), 200)), EmptyFrames},
		{"empty CONTINUATION", cat(fr(frameHeaders, 0, 1, block), repeat(fr(frameContinuation, 0, 1, nil), 200)), EmptyFrames},
		{"empty HEADERS", repeat(fr(frameHeaders, 0, 1, nil), 200), EmptyFrames},
		{"CONTINUATION", cat(fr(frameHeaders, 0, 1, block), repeat(fr(frameContinuation, 0, 1, []byte{0}), 200)), Continuation},
		{"PRIORITY", repeat(fr(framePriority, 0, 3, []byte{0, 0, 0, 1, 16}), 200), IgnoredFrames},
		{"extension frames", repeat(fr(0x10, 0, 0, []byte{1}), 200), IgnoredFrames},
		{"HEADERS+RST_STREAM", pairs(1, 2000), RapidReset},
	} {
		x := newTester(t, Limits{})
		n := x.client(c.in)
		if x.s.tripped != c.want {
			t.Errorf("%s: tripped %q, want %q", c.name, x.s.tripped, c.want)
		}
		if n >= len(c.in) {
			t.Errorf("%s: the whole flood reached the server", c.name)
		}
	}
}

// What clients do legitimately, at their most, stays within the budgets.
func TestLegitimateTrafficDoesNotTrip(t *testing.T) {
	x := newTester(t, Limits{})
	ping := make([]byte, 8)
	data := dataFrame(1, 0, make([]byte, 16384))
	for i := range 3_000 {
		id := 1 + 2*uint32(i)
		// A download of 64 KiB: DATA frames of 16 KiB, each answered with
		// a WINDOW_UPDATE for the stream and one for the connection per
		// 4 KiB read, and a BDP ping after each.
		x.client(fr(frameHeaders, flagEndHeaders|flagEndStream, id, block))
		x.client(fr(framePriority, 0, id, []byte{0, 0, 0, 0, 16}))
		x.server(fr(frameHeaders, flagEndHeaders, id, []byte{0x88}))
		for range 4 {
			x.server(data)
			for range 4 {
				x.client(fr(frameWindowUpdate, 0, id, []byte{0, 0, 16, 0}))
				x.client(fr(frameWindowUpdate, 0, 0, []byte{0, 0, 16, 0}))
			}
			x.client(fr(framePing, 0, 0, ping))
		}
		x.server(dataFrame(id, flagEndStream, nil))
		x.now += time.Millisecond
		if i%500 == 0 {
			// Keepalive, and a window grown by BDP estimation.
			x.client(fr(framePing, 0, 0, ping))
			x.client(fr(frameSettings, 0, 0, []byte{0, 4, 0, 1, 0, 0}))
		}
	}
	if x.s.tripped != "" {
		t.Fatalf("tripped %q", x.s.tripped)
	}
	// Go's client reads frames of up to 1 MiB and returns the window for
	// every 4 KiB it reads, for the stream and for the connection.
	x.client(fr(frameHeaders, flagEndHeaders|flagEndStream, 10_001, block))
	x.server(fr(frameHeaders, flagEndHeaders, 10_001, []byte{0x88}))
	big := dataFrame(10_001, 0, make([]byte, 1<<20))
	wu := cat(fr(frameWindowUpdate, 0, 10_001, []byte{0, 0, 16, 0}), fr(frameWindowUpdate, 0, 0, []byte{0, 0, 16, 0}))
	for range 64 {
		x.server(big)
		x.client(repeat(wu, 256))
	}
	if x.s.tripped != "" {
		t.Fatalf("1 MiB frames: tripped %q", x.s.tripped)
	}
	// A client that reads late: the server has sent 64 MiB before the
	// client returns any window for it.
	for range 64 {
		x.server(big)
	}
	x.client(repeat(wu, 64*256))
	if x.s.tripped != "" {
		t.Fatalf("late window updates: tripped %q", x.s.tripped)
	}
}

func TestStreamErrorsTripOnTheServerSide(t *testing.T) {
	x := newTester(t, Limits{})
	for i := range 1000 {
		id := 1 + 2*uint32(i)
		x.client(headers(id))
		for _, code := range []uint32{codeNoError, codeCancel, codeInternalError, codeRefusedStream} {
			if _, goAway := x.server(rst(id, code)); goAway {
				t.Fatalf("RST_STREAM code %d counted as the client's error", code)
			}
		}
	}
	var n int
	var goAway bool
	for i := range 200 {
		x.client(headers(5001 + 2*uint32(i)))
		out := cat(rst(5001+2*uint32(i), 0x1), dataFrame(1, 0, []byte("after")))
		if n, goAway = x.server(out); goAway {
			if n != len(rst(1, 0)) {
				t.Errorf("GOAWAY after %d bytes, want it right after the RST_STREAM", n)
			}
			break
		}
	}
	if !goAway || x.s.tripped != StreamErrors {
		t.Fatalf("PROTOCOL_ERROR resets: tripped %q", x.s.tripped)
	}
}

func TestGoAwayWaitsForTheServersFrameBoundary(t *testing.T) {
	x := newTester(t, Limits{})
	x.client(headers(1))
	big := dataFrame(1, flagEndStream, make([]byte, 1000))
	if n, goAway := x.server(big[:100]); goAway || n != 100 {
		t.Fatalf("%d, %v", n, goAway)
	}
	x.client(repeat(fr(frameSettings, 0, 0, nil), 200))
	if x.s.tripped != Settings {
		t.Fatalf("tripped %q", x.s.tripped)
	}
	// The rest of the frame in two writes, then another frame.
	if n, goAway := x.server(big[100:500]); goAway || n != 400 {
		t.Errorf("mid-frame: %d, %v", n, goAway)
	}
	rest := cat(big[500:], headers(3))
	if n, goAway := x.server(rest); !goAway || n != len(big)-500 {
		t.Errorf("end of frame: %d, %v; want %d, true", n, goAway, len(big)-500)
	}
}

func TestLimitsDefaultsAndUnlimited(t *testing.T) {
	if got := (Limits{}).WithDefaults(); got != DefaultLimits {
		t.Errorf("zero limits: %+v", got)
	}
	l := Limits{RapidResets: Budget{Burst: -1}, Settings: Budget{Burst: 5, PerSecond: 1}}.WithDefaults()
	if l.Pings != DefaultLimits.Pings || l.Settings.Burst != 5 {
		t.Errorf("%+v", l)
	}
	x := newTester(t, l)
	x.client(pairs(1, 10_000))
	if x.s.tripped != "" {
		t.Errorf("unlimited resets tripped %q", x.s.tripped)
	}
	x.client(repeat(fr(frameSettings, 0, 0, nil), 5))
	if x.s.tripped != Settings {
		t.Errorf("6 SETTINGS over a burst of 5: tripped %q", x.s.tripped)
	}
}

func TestStreamTableIsBounded(t *testing.T) {
	var st streamTable
	for i := range 100_000 {
		st.add(1+2*uint32(i), int64(i))
		if i%3 == 1 {
			st.remove(1 + 2*uint32(i))
		}
		if len(st.s) > maxTrackedStreams {
			t.Fatalf("%d entries after %d streams", len(st.s), i+1)
		}
	}
	last := 1 + 2*uint32(99_999)
	if opened, ok := st.remove(last); !ok || opened != 99_999 {
		t.Errorf("newest stream: %d, %v", opened, ok)
	}
	if _, ok := st.remove(last); ok {
		t.Error("removed twice")
	}
	if _, ok := st.remove(1 + 2*1); ok {
		t.Error("the oldest streams are still held")
	}
	if _, ok := st.remove(1 + 2*99_997); ok {
		t.Error("a removed stream is still held")
	}
	if _, ok := st.remove(1 + 2*99_998); !ok {
		t.Error("a recent stream was forgotten")
	}
}
