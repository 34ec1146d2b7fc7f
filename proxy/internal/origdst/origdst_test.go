package origdst

import (
	"errors"
	"net"
	"testing"
)

// A connection that was not redirected has no original destination, whether
// or not the host tracks connections (both cases, and a redirected
// connection, are tested hermetically in origdst_integration_test.go).
func TestNotRedirected(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := Get(s); !errors.Is(err, ErrNotRedirected) {
		t.Errorf("Get on a direct connection: %v, want ErrNotRedirected", err)
	}
}

func TestNotASocket(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if _, err := Get(a); err == nil {
		t.Error("Get on a pipe succeeded")
	}
}
