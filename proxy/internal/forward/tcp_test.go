package forward

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/linkerd-go/linkerd-go/proxy/internal/detect"
	"github.com/linkerd-go/linkerd-go/proxy/internal/metrics"
)

// pair returns the two ends of a loopback TCP connection.
func pair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	return a, b
}

// Bytes read for detection are sent first, then the rest; each side's end
// of stream reaches the other as a half-close; counts are recorded.
func TestTCPHalfCloseAndDetectedBytes(t *testing.T) {
	client, proxyIn := pair(t)
	proxyOut, server := pair(t)
	_, dc, err := func() (detect.Protocol, *detect.Conn, error) {
		go client.Write([]byte("hello "))
		return detect.Detect(proxyIn, time.Second)
	}()
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New()
	h := m.For(metrics.Labels{Direction: "outbound"})
	done := make(chan error, 1)
	go func() { done <- TCP(dc, proxyOut, h) }()
	client.Write([]byte("world"))
	client.(*net.TCPConn).CloseWrite()
	got, err := io.ReadAll(server)
	if err != nil || string(got) != "hello world" {
		t.Fatalf("server read %q, %v", got, err)
	}
	server.Write([]byte("bye"))
	server.Close()
	back, err := io.ReadAll(client)
	if err != nil || string(back) != "bye" {
		t.Fatalf("client read %q, %v", back, err)
	}
	if err := <-done; err != nil {
		t.Fatalf("TCP: %v", err)
	}
	client.Close()
}
