package detect

import (
	"io"
	"net"
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
		{Preface + "\x00\x00", HTTP2},
		{"\x16\x03\x01\x02\x00", TLS},
		{"\x16\x03\x03", TLS},
		{"\x16\x02\x00", Opaque},
		{"\x16\x03\x09", Opaque},
		{"SSH-2.0-OpenSSH\r\n", Opaque},
		{"*1\r\n$4\r\nPING\r\n", Opaque}, // redis
		{"GETX / HTTP/1.1", Opaque},
		{"get / HTTP/1.1", Opaque},
		{"PRI * HTTP/1.1\r\n", Opaque},
		{"\x00\x00\x00", Opaque},
	} {
		got, done := classifyAll([]byte(tc.in))
		if !done || got != tc.want {
			t.Errorf("classify(%q) = %v (done %v), want %v", tc.in, got, done, tc.want)
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
	for _, s := range []string{"GET / HTTP/1.1\r\n\r\n", Preface, "\x16\x03\x01", "PRI", "", "\x00"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, done := classifyAll(data)
		if p != Opaque && !done {
			t.Fatalf("undecided but not opaque: %v", p)
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
