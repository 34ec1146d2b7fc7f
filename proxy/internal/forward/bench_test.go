package forward

import (
	"bytes"
	"io"
	"net"
	"testing"
)

// loopbackPair returns the two ends of a loopback TCP connection.
func loopbackPair(b *testing.B) (net.Conn, net.Conn) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	c, err := ln.Accept()
	if err != nil {
		b.Fatal(err)
	}
	return a, c
}

// forwarded returns the two ends of a loopback connection spliced by TCP:
// what is written to client reaches server and back.
func forwarded(b *testing.B) (client, server net.Conn) {
	client, proxyIn := loopbackPair(b)
	proxyOut, server := loopbackPair(b)
	done := make(chan error, 1)
	go func() { done <- TCP(proxyIn, proxyOut, nil) }()
	b.Cleanup(func() {
		client.Close()
		server.Close()
		if err := <-done; err != nil {
			b.Errorf("TCP: %v", err)
		}
	})
	return client, server
}

// BenchmarkTCPStream is the throughput of TCP, the opaque-traffic copy
// (splice between two sockets), one way, in 64 KiB writes.
func BenchmarkTCPStream(b *testing.B) {
	client, server := forwarded(b)
	chunk := make([]byte, 64<<10)
	drained := make(chan int64, 1)
	go func() {
		n, _ := io.Copy(io.Discard, server)
		drained <- n
	}()
	b.SetBytes(int64(len(chunk)))
	b.ReportAllocs()
	var sent int64
	for b.Loop() {
		n, err := client.Write(chunk)
		if err != nil {
			b.Fatal(err)
		}
		sent += int64(n)
	}
	client.(*net.TCPConn).CloseWrite()
	if got := <-drained; got != sent {
		b.Fatalf("sent %d, received %d", sent, got)
	}
}

// BenchmarkTCPRoundTrip is a 1 KiB request and a 1 KiB answer through
// TCP: the latency one opaque exchange pays for the copy.
func BenchmarkTCPRoundTrip(b *testing.B) {
	client, server := forwarded(b)
	go func() { io.Copy(server, server) }() // echo
	msg := bytes.Repeat([]byte("x"), 1024)
	buf := make([]byte, len(msg))
	b.SetBytes(int64(2 * len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := client.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(client, buf); err != nil {
			b.Fatal(err)
		}
	}
}

// cycleConn serves the same bytes forever, one copy per Read.
type cycleConn struct {
	net.Conn // nil: only Read is used
	data     []byte
}

func (c *cycleConn) Read(p []byte) (int, error) { return copy(p, c.data), nil }

// BenchmarkGuardHTTP1 is what checking the framing of HTTP/1 requests
// costs per request, for a typical GET and a POST with a chunked body.
func BenchmarkGuardHTTP1(b *testing.B) {
	for name, req := range map[string]string{
		"get":          "GET /api/v1/books?page=2 HTTP/1.1\r\nHost: web.app.svc.cluster.local\r\nUser-Agent: bench/1.0\r\nAccept: */*\r\nX-Request-Id: 0f8e7d6c\r\n\r\n",
		"post-chunked": "POST /api/v1/books HTTP/1.1\r\nHost: web.app.svc.cluster.local\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{\"title\":\"bench\"\r\n1\r\n}\r\n0\r\n\r\n",
	} {
		b.Run(name, func(b *testing.B) {
			g := GuardHTTP1(&cycleConn{data: []byte(req)})
			buf := make([]byte, 4096)
			b.SetBytes(int64(len(req)))
			b.ReportAllocs()
			for b.Loop() {
				for n := 0; n < len(req); {
					m, err := g.Read(buf)
					if err != nil {
						b.Fatal(err)
					}
					n += m
				}
			}
		})
	}
}
