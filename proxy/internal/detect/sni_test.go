package detect

import (
	"crypto/tls"
	"net"
	"testing"
	"time"
)

// clientHello captures the first bytes a real crypto/tls client sends.
func clientHello(t testing.TB, serverName string) []byte {
	t.Helper()
	client, server := net.Pipe()
	defer server.Close()
	go func() {
		c := tls.Client(client, &tls.Config{ServerName: serverName, InsecureSkipVerify: true, NextProtos: []string{"h2"}})
		_ = c.Handshake() // fails when the pipe closes
		client.Close()
	}()
	buf := make([]byte, 4096)
	server.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := server.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return buf[:n]
}

func TestServerName(t *testing.T) {
	hello := clientHello(t, "web.default.serviceaccount.identity.linkerd.cluster.local")
	client, server := net.Pipe()
	defer client.Close()
	go client.Write(hello)
	p, c, err := Detect(server, time.Minute)
	if err != nil || p != TLS {
		t.Fatalf("detect: %v %v", p, err)
	}
	name, err := c.ServerName()
	if err != nil || name != "web.default.serviceaccount.identity.linkerd.cluster.local" {
		t.Fatalf("ServerName = %q, %v", name, err)
	}
	// Nothing consumed: the whole ClientHello is still there.
	if got := len(c.Peeked()); got != len(hello) {
		t.Errorf("peeked %d bytes, want %d", got, len(hello))
	}
}

func TestServerNameMalformed(t *testing.T) {
	hello := clientHello(t, "a.b")
	body := hello[5:]
	// Every truncation of a valid ClientHello is refused without a panic.
	for i := range body {
		if name, err := parseServerName(body[:i]); err == nil {
			t.Fatalf("truncated at %d: parsed %q", i, name)
		}
	}
	if name, err := parseServerName(body); err != nil || name != "a.b" {
		t.Fatalf("full body: %q, %v", name, err)
	}
}

func FuzzServerName(f *testing.F) {
	f.Add(clientHello(f, "x.y.z")[5:])
	f.Add([]byte{1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = parseServerName(b)
	})
}
