package h2guard

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// fr is one frame on the wire.
func fr(typ, flags uint8, id uint32, payload []byte) []byte {
	n := len(payload)
	b := []byte{byte(n >> 16), byte(n >> 8), byte(n), typ, flags, byte(id >> 24), byte(id >> 16), byte(id >> 8), byte(id)}
	return append(b, payload...)
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// block is a request header block (HPACK static-table entries: GET, http,
// /); the guard does not decode it.
var block = []byte{0x82, 0x86, 0x84}

func headers(id uint32) []byte { return fr(frameHeaders, flagEndHeaders|flagEndStream, id, block) }

func rst(id, code uint32) []byte {
	return fr(frameRSTStream, 0, id, binary.BigEndian.AppendUint32(nil, code))
}

func dataFrame(id uint32, flags uint8, payload []byte) []byte {
	return fr(frameData, flags, id, payload)
}

// events runs b through a fresh parser in pieces of size step (0: at
// once) and returns the frames it reported.
func events(t *testing.T, p parser, b []byte, step int) []frame {
	t.Helper()
	var out []frame
	for len(b) > 0 {
		chunk := b
		if step > 0 && len(chunk) > step {
			chunk = chunk[:step]
		}
		b = b[len(chunk):]
		for len(chunk) > 0 {
			n, got, err := p.step(chunk)
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				t.Fatal("no progress")
			}
			chunk = chunk[n:]
			if got {
				out = append(out, p.f)
			}
		}
	}
	if !p.atBoundary() {
		t.Error("parser not at a frame boundary at the end of whole frames")
	}
	return out
}

func TestParserReadsFramesWhateverTheChunking(t *testing.T) {
	in := cat([]byte(Preface),
		fr(frameSettings, 0, 0, make([]byte, 12)),
		headers(1),
		fr(frameData, flagPadded, 1, []byte{3, 'a', 'b', 0, 0, 0}),
		fr(frameData, flagEndStream, 1, make([]byte, 70000)),
		rst(1, codeCancel),
		fr(framePing, 0, 0, make([]byte, 8)),
		fr(0x42, 0xff, 7, nil), // an extension frame
	)
	want := []struct {
		typ, flags uint8
		id, length uint32
		prefix     []byte
	}{
		{frameSettings, 0, 0, 12, nil},
		{frameHeaders, flagEndHeaders | flagEndStream, 1, 3, nil},
		{frameData, flagPadded, 1, 6, []byte{3}},
		{frameData, flagEndStream, 1, 70000, nil},
		{frameRSTStream, 0, 1, 4, nil},
		{framePing, 0, 0, 8, nil},
		{0x42, 0xff, 7, 0, nil},
	}
	for _, step := range []int{0, 1, 2, 5, 9, 10, 4096} {
		got := events(t, newClientParser(), in, step)
		if len(got) != len(want) {
			t.Fatalf("step %d: %d frames, want %d", step, len(got), len(want))
		}
		for i, w := range want {
			g := got[i]
			if g.typ != w.typ || g.flags != w.flags || g.streamID != w.id || g.length != w.length || !bytes.Equal(g.prefix[:g.nprefix], w.prefix) {
				t.Errorf("step %d frame %d: got %+v, want %+v", step, i, g, w)
			}
		}
	}
}

func TestServerParserReadsResetCodes(t *testing.T) {
	in := cat(fr(frameSettings, 0, 0, nil), rst(3, codeEnhanceYourCalm), headers(5))
	for _, step := range []int{0, 1, 3, 11} {
		got := events(t, newServerParser(), in, step)
		if len(got) != 3 || got[1].typ != frameRSTStream || got[1].nprefix != 4 ||
			binary.BigEndian.Uint32(got[1].prefix[:]) != codeEnhanceYourCalm {
			t.Errorf("step %d: %+v", step, got)
		}
	}
}

func TestParserRefusesAnotherPreface(t *testing.T) {
	p := newClientParser()
	n, _, err := p.step([]byte("PRI * HTTP/2.0\r\n"))
	if err != nil || n != 16 {
		t.Fatalf("a preface's first bytes: %d, %v", n, err)
	}
	if _, _, err := p.step([]byte("GET / HTTP/1.1\r\n")); !errors.Is(err, errNotHTTP2) {
		t.Errorf("HTTP/1 after part of the preface: %v", err)
	}
	p = newClientParser()
	if _, _, err := p.step([]byte("GET / HTTP/1.1\r\n\r\n")); !errors.Is(err, errNotHTTP2) {
		t.Errorf("HTTP/1: %v", err)
	}
}

func TestPayloadLeavesPaddingAndPriorityOut(t *testing.T) {
	for _, c := range []struct {
		f    frame
		want int
	}{
		{frame{typ: frameData, length: 10}, 10},
		{frame{typ: frameData, length: 10, flags: flagPadded, prefix: [4]byte{9}, nprefix: 1}, 0},
		{frame{typ: frameData, length: 10, flags: flagPadded, prefix: [4]byte{200}, nprefix: 1}, 0},
		{frame{typ: frameData, length: 0, flags: flagPadded}, 0},
		{frame{typ: frameHeaders, length: 5, flags: flagPriority}, 0},
		{frame{typ: frameHeaders, length: 8, flags: flagPriority | flagPadded, prefix: [4]byte{1}, nprefix: 1}, 1},
	} {
		if got := c.f.payload(); got != c.want {
			t.Errorf("%+v: payload %d, want %d", c.f, got, c.want)
		}
	}
}

func TestGoAwayFrame(t *testing.T) {
	b := goAwayFrame(7, "rst_stream flood")
	got := events(t, newServerParser(), b, 0)
	if len(got) != 1 || got[0].typ != frameGoAway || got[0].streamID != 0 || int(got[0].length) != len(b)-frameHeaderLen {
		t.Fatalf("%+v", got)
	}
	payload := b[frameHeaderLen:]
	if last := binary.BigEndian.Uint32(payload); last != 7 {
		t.Errorf("last stream %d", last)
	}
	if code := binary.BigEndian.Uint32(payload[4:]); code != codeEnhanceYourCalm {
		t.Errorf("code %#x", code)
	}
	if string(payload[8:]) != "rst_stream flood" {
		t.Errorf("debug %q", payload[8:])
	}
}
