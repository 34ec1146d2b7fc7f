package detect

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Protocol
	}{
		{"GET / HTTP/1.1\r\n", HTTP1},
		{"POST /x HTTP/1.0\r\n", HTTP1},
		{"OPTIONS * HTTP/1.1\r\n", HTTP1},
		{"CONNECT example:443 HTTP/1.1\r\n", HTTP1},
		// Any method, by the shape of the line: extension methods, a
		// lower-case one (methods are case-sensitive: "get" is not GET,
		// but it is HTTP), and methods outside the token characters,
		// which the HTTP/1 guard answers with 400.
		{"get / HTTP/1.1\r\n", HTTP1},
		{"GETX / HTTP/1.1\r\n", HTTP1},
		{"M-SEARCH * HTTP/1.1\r\n", HTTP1},
		{"PROPFIND /dav HTTP/1.1\r\n", HTTP1},
		{"PRI * HTTP/1.1\r\n", HTTP1},
		{"G@T / HTTP/1.1\r\n", HTTP1},
		{"GET /\x00 HTTP/1.1\r\n", HTTP1},
		{"GET  /  HTTP/1.1\r\n", HTTP1},
		{"GET / HTTP/1.1\nHost: a\n\n", HTTP1}, // bare LF: HTTP, refused by the guard
		{"GET / HTTP/1.9\r\n", HTTP1},
		{Preface + "\x00\x00", HTTP2},
		{"\x16\x03\x01\x02\x00", TLS},
		{"\x16\x03\x03", TLS},
		{"\x16\x02\x00", Opaque},
		{"\x16\x03\x09", Opaque},
		{"SSH-2.0-OpenSSH\r\n", Opaque},
		{"*1\r\n$4\r\nPING\r\n", Opaque}, // redis
		{"GET key\r\n", Opaque},          // redis inline command
		{"PING\r\n", Opaque},
		{"get key\r\n", Opaque},                 // memcached
		{"set key 0 0 5\r\nhello\r\n", Opaque},  // memcached
		{"EHLO client.example.com\r\n", Opaque}, // SMTP
		{"a1 LOGIN user pass\r\n", Opaque},      // IMAP
		{"GET / HTTP/2.0\r\n", Opaque},          // not HTTP/1
		{"GET / http/1.1\r\n", Opaque},          // versions are upper-case
		{"GET / HTTP/1.x\r\n", Opaque},
		{"GET /\r\n", Opaque}, // HTTP/0.9
		{" GET / HTTP/1.1\r\n", Opaque},
		{"\x00\x00\x00\x08\x04\xd2\x16/", Opaque}, // PostgreSQL SSLRequest
		{"\x00\x00\x00", Opaque},
		{strings.Repeat("M", maxMethod+1) + " / HTTP/1.1\r\n", Opaque},
	} {
		got, done := classifyAll([]byte(tc.in))
		if !done || got != tc.want {
			t.Errorf("classify(%q) = %v (done %v), want %v", tc.in, got, done, tc.want)
		}
	}
}

// A request line longer than the detection buffer is HTTP/1 when it
// starts with a registered method and a target; anything else that long
// without a line end is opaque.
func TestClassifyLongLines(t *testing.T) {
	long := strings.Repeat("a", bufferSize)
	for _, tc := range []struct {
		in   string
		want Protocol
	}{
		{"GET /" + long, HTTP1},
		{"POST http://web.default/" + long, HTTP1},
		{"get /" + long, Opaque},
		{"GET " + long, Opaque},
		{"SOMETHING /" + long, Opaque},
		{"X " + long, Opaque},
	} {
		b := []byte(tc.in)[:bufferSize]
		if got, done := classify(b); !done || got != tc.want {
			t.Errorf("classify(%q…) = %v (done %v), want %v", b[:16], got, done, tc.want)
		}
		if _, done := classify(b[:bufferSize-1]); done {
			t.Errorf("classify(%q…) decided before the buffer was full", b[:16])
		}
	}
}

// classifyAll feeds b one byte at a time as Detect does.
func classifyAll(b []byte) (Protocol, bool) {
	for n := 1; n <= len(b); n++ {
		if p, done := classify(b[:n]); done {
			return p, true
		}
	}
	return Opaque, false
}

func TestDetectReplaysBytes(t *testing.T) {
	for _, tc := range []struct {
		send string
		want Protocol
	}{
		{"GET / HTTP/1.1\r\nHost: x\r\n\r\n", HTTP1},
		{Preface + "rest", HTTP2},
		{"hello opaque world", Opaque},
	} {
		client, server := net.Pipe()
		go func() {
			client.Write([]byte(tc.send))
			client.Close()
		}()
		p, c, err := Detect(server, time.Minute)
		if err != nil {
			t.Fatalf("%q: %v", tc.send, err)
		}
		if p != tc.want {
			t.Errorf("%q: detected %v, want %v", tc.send, p, tc.want)
		}
		all, err := io.ReadAll(c)
		if err != nil || string(all) != tc.send {
			t.Errorf("%q: replayed %q, %v", tc.send, all, err)
		}
		server.Close()
	}
}

// A client that says nothing (server speaks first) is opaque once the
// timeout passes, and the connection is still usable.
func TestDetectSilentClientIsOpaque(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	p, c, err := Detect(server, time.Millisecond)
	if err != nil || p != Opaque {
		t.Fatalf("silent client: %v, %v", p, err)
	}
	go client.Write([]byte("late"))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "late" {
		t.Errorf("read after detection: %q, %v", buf, err)
	}
}

// A partial prefix followed by silence is opaque, bytes kept.
func TestDetectPartialPrefix(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	go client.Write([]byte("GE"))
	p, c, err := Detect(server, 50*time.Millisecond)
	if err != nil || p != Opaque {
		t.Fatalf("partial prefix: %v, %v", p, err)
	}
	if got := string(c.Peeked()); got != "GE" {
		t.Errorf("peeked %q", got)
	}
}

func TestDetectClosedBeforeData(t *testing.T) {
	client, server := net.Pipe()
	client.Close()
	if _, _, err := Detect(server, time.Minute); err == nil {
		t.Error("no error for a connection closed before sending anything")
	}
}

func FuzzDetect(f *testing.F) {
	for _, s := range []string{"GET / HTTP/1.1\r\n\r\n", Preface, "\x16\x03\x01", "PRI", "", "\x00", "get / HTTP/1.1\r\n", "G@T / HTTP/1.1\r\n", "GET key\r\n", "EHLO x\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, done := classifyAll(data)
		if p != Opaque && !done {
			t.Fatalf("undecided but not opaque: %v", p)
		}
		// The decision does not depend on how many bytes have arrived
		// past the point where it was made.
		if whole, wdone := classify(data[:min(len(data), bufferSize)]); done && (!wdone || whole != p) {
			t.Fatalf("decided %v byte by byte, %v (done %v) on all %q", p, whole, wdone, data)
		}
		client, server := net.Pipe()
		go func() {
			client.Write(data)
			client.Close()
		}()
		_, c, _ := Detect(server, time.Second)
		all, _ := io.ReadAll(c)
		if string(all) != string(data) {
			t.Fatalf("replayed %q, want %q", all, data)
		}
		server.Close()
	})
}
