package detect

import (
	"bytes"
	"net"
	"testing"
	"time"
)

// replayConn replays bytes as a connection's first reads.
type replayConn struct {
	net.Conn // nil: only the methods below are used
	r        bytes.Reader
}

func (c *replayConn) Read(p []byte) (int, error)      { return c.r.Read(p) }
func (c *replayConn) SetReadDeadline(time.Time) error { return nil }

// BenchmarkDetect is the per-connection cost of protocol detection on each
// kind of first bytes (the buffer it allocates included).
func BenchmarkDetect(b *testing.B) {
	inputs := []struct {
		name string
		in   []byte
		want Protocol
	}{
		{"http1", []byte("GET /api/v1/books HTTP/1.1\r\nHost: web.app.svc.cluster.local\r\nUser-Agent: bench\r\n\r\n"), HTTP1},
		{"h2", append([]byte(Preface), 0, 0, 0, 4, 0, 0, 0, 0, 0), HTTP2},
		{"tls", clientHello(b, "web.app.serviceaccount.identity.linkerd.cluster.local"), TLS},
		{"opaque", []byte("\x00\x00\x00\x2cSTARTUP binary protocol"), Opaque},
	}
	for _, in := range inputs {
		b.Run(in.name, func(b *testing.B) {
			c := &replayConn{}
			b.ReportAllocs()
			for b.Loop() {
				c.r.Reset(in.in)
				p, _, err := Detect(c, time.Second)
				if err != nil || p != in.want {
					b.Fatalf("%v, %v", p, err)
				}
			}
		})
	}
}

// BenchmarkServerName is the cost of reading the SNI of a detected
// ClientHello (the inbound side's choice between terminating mesh TLS and
// passing TLS through).
func BenchmarkServerName(b *testing.B) {
	hello := clientHello(b, "web.app.serviceaccount.identity.linkerd.cluster.local")
	c := &replayConn{}
	c.r.Reset(hello)
	_, dc, err := Detect(c, time.Second)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if name, err := dc.ServerName(); err != nil || name == "" {
			b.Fatalf("%q, %v", name, err)
		}
	}
}
