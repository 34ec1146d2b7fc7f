// Package h2test writes raw HTTP/2 for the proxy's tests: frames, the
// floods a hostile client sends, a client that sends one and reports how
// the server answered, and an application that refuses a stream as a
// server shutting down does. It is imported only by _test files.
package h2test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/linkerd-go/linkerd-go/proxy/internal/h2guard"
)

// Preface is the HTTP/2 client connection preface.
const Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// Frame types, flags and error codes (RFC 9113).
const (
	FrameData         = 0x0
	FrameHeaders      = 0x1
	FramePriority     = 0x2
	FrameRSTStream    = 0x3
	FrameSettings     = 0x4
	FramePing         = 0x6
	FrameGoAway       = 0x7
	FrameWindowUpdate = 0x8
	FrameContinuation = 0x9

	FlagEndStream  = 0x1
	FlagAck        = 0x1
	FlagEndHeaders = 0x4
	FlagPadded     = 0x8

	CodeCancel          = 0x8
	CodeEnhanceYourCalm = 0xb
)

// Frame is one frame on the wire.
func Frame(typ, flags uint8, stream uint32, payload []byte) []byte {
	n := len(payload)
	b := make([]byte, 0, 9+n)
	b = append(b, byte(n>>16), byte(n>>8), byte(n), typ, flags)
	b = binary.BigEndian.AppendUint32(b, stream&(1<<31-1))
	return append(b, payload...)
}

// Request is the header block of a GET of path on localhost, HPACK-encoded
// with static-table names and literal values, no Huffman, no dynamic table.
func Request(path string) []byte {
	b := []byte{0x82, 0x86} // :method GET, :scheme http
	b = append(b, 0x04, byte(len(path)))
	b = append(b, path...) // :path
	b = append(b, 0x01, byte(len("localhost")))
	return append(b, "localhost"...) // :authority
}

// field is one more header, x: y, for CONTINUATION frames.
var field = []byte{0x00, 1, 'x', 1, 'y'}

// Headers opens stream id with a GET of path (its only frame when end).
func Headers(id uint32, path string, end bool) []byte {
	flags := uint8(FlagEndHeaders)
	if end {
		flags |= FlagEndStream
	}
	return Frame(FrameHeaders, flags, id, Request(path))
}

// RSTStream resets stream id with code.
func RSTStream(id, code uint32) []byte {
	return Frame(FrameRSTStream, 0, id, binary.BigEndian.AppendUint32(nil, code))
}

// Repeat is n copies of b.
func Repeat(b []byte, n int) []byte { return bytes.Repeat(b, n) }

// RapidReset is n HEADERS+RST_STREAM pairs on streams 1, 3, 5, …: the
// HTTP/2 rapid reset attack. path should be slow to answer, as a real
// backend is.
func RapidReset(n int, path string) []byte {
	var b []byte
	for i := range n {
		id := uint32(1 + 2*i)
		b = append(b, Headers(id, path, true)...)
		b = append(b, RSTStream(id, CodeCancel)...)
	}
	return b
}

// Limits are the guard's default bursts with nothing refilled over time,
// so that a flood trips them however slowly the server reads it (a pass or
// fail that does not depend on the machine's speed).
func Limits() h2guard.Limits {
	l := h2guard.DefaultLimits
	for _, b := range []*h2guard.Budget{&l.RapidResets, &l.Settings, &l.Pings, &l.WindowUpdates, &l.EmptyFrames, &l.IgnoredFrames, &l.StreamErrors} {
		b.PerSecond = 0
	}
	return l
}

// Flood is a hostile client's frames, and the reason the proxy's guard
// answers it with.
type Flood struct {
	Name   string
	Reason h2guard.Reason
	Frames []byte
}

// Floods are n frames of each kind the guard bounds (n HEADERS+RST_STREAM
// pairs for the rapid reset), sent after the preface and SETTINGS. Streams
// are opened on slowPath, which should answer late or never (no more than
// 126 bytes).
func Floods(n int, slowPath string) []Flood {
	open := Frame(FrameHeaders, FlagEndHeaders, 1, Request(slowPath)) // a request with a body to come
	ping := Frame(FramePing, 0, 0, make([]byte, 8))
	return []Flood{
		{"rapid reset", h2guard.RapidReset, RapidReset(n, slowPath)},
		{"SETTINGS", h2guard.Settings, Repeat(Frame(FrameSettings, 0, 0, nil), n)},
		{"PING", h2guard.Ping, Repeat(ping, n)},
		{"WINDOW_UPDATE", h2guard.WindowUpdate, Repeat(Frame(FrameWindowUpdate, 0, 0, []byte{0, 0, 0, 1}), n)},
		{"empty DATA", h2guard.EmptyFrames, append(open, Repeat(Frame(FrameData, 0, 1, nil), n)...)},
		{"CONTINUATION", h2guard.Continuation, append(Frame(FrameHeaders, 0, 1, Request(slowPath)), Repeat(Frame(FrameContinuation, 0, 1, field), n)...)},
		{"PRIORITY", h2guard.IgnoredFrames, Repeat(Frame(FramePriority, 0, 3, []byte{0, 0, 0, 1, 16}), n)},
	}
}

// Answer is how a server answered a client's frames.
type Answer struct {
	// GoAway is set when the server sent GOAWAY, with its code, last
	// stream and debug data.
	GoAway     bool
	Code       uint32
	LastStream uint32
	Debug      string
	// Closed is set when the server ended the connection (EOF or reset)
	// before answering the PING that follows the frames.
	Closed bool
	// Streams counts the HEADERS frames the server sent.
	Streams int
}

// endPing is the payload of the PING that ends a run: its ACK means the
// server read every frame before it.
var endPing = []byte("h2test!!")

// Send writes the preface, an empty SETTINGS, frames and a PING on c, and
// reads the server's frames until it acknowledges that PING or ends the
// connection. It stops writing once the server sent GOAWAY, as a client
// does, and closes c.
func Send(c net.Conn, frames []byte) (Answer, error) {
	defer c.Close()
	all := append([]byte(Preface), Frame(FrameSettings, 0, 0, nil)...)
	all = append(all, frames...)
	all = append(all, Frame(FramePing, 0, 0, endPing)...)
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for len(all) > 0 && !stop.Load() {
			n := min(len(all), 32<<10)
			if _, err := c.Write(all[:n]); err != nil {
				return
			}
			all = all[n:]
		}
	}()
	defer wg.Wait()
	defer stop.Store(true)
	var a Answer
	hdr := make([]byte, 9)
	for {
		if _, err := io.ReadFull(c, hdr); err != nil {
			a.Closed = true
			return a, nil
		}
		n := int(hdr[0])<<16 | int(hdr[1])<<8 | int(hdr[2])
		if n > 1<<24 {
			return a, errors.New("h2test: frame too large")
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(c, payload); err != nil {
			a.Closed = true
			return a, nil
		}
		switch hdr[3] {
		case FrameHeaders:
			a.Streams++
		case FrameGoAway:
			if n < 8 {
				return a, errors.New("h2test: short GOAWAY")
			}
			a.GoAway = true
			a.LastStream = binary.BigEndian.Uint32(payload) & (1<<31 - 1)
			a.Code = binary.BigEndian.Uint32(payload[4:])
			a.Debug = string(payload[8:])
			stop.Store(true)
		case FramePing:
			if hdr[4]&FlagAck != 0 && bytes.Equal(payload, endPing) {
				return a, nil
			}
		}
	}
}

// Expect sends flood on c and fails t unless the server answered it as the
// guard does: GOAWAY ENHANCE_YOUR_CALM naming the flood's reason, and the
// connection closed before the server read the whole flood.
func Expect(t testing.TB, c net.Conn, flood Flood) Answer {
	t.Helper()
	a, err := Send(c, flood.Frames)
	if err != nil {
		t.Fatalf("%s: %v", flood.Name, err)
	}
	if !a.GoAway || a.Code != CodeEnhanceYourCalm || a.Debug != string(flood.Reason)+" flood" || !a.Closed {
		t.Errorf("%s: %+v; want GOAWAY ENHANCE_YOUR_CALM (%q flood) and the connection closed before the flood's end", flood.Name, a, flood.Reason)
	}
	return a
}
