package inbound

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
)

// A connection whose target is the proxy's own listener (a TLS ClientHello
// without the proxy's name, plaintext HTTP, opaque bytes) is closed without
// being forwarded: forwarding it would bring it back to the proxy, which
// would forward it again, until the process runs out of descriptors. Each
// refusal is counted, nothing stays open, and the proxy keeps serving.
func TestOwnListenerNeverForwarded(t *testing.T) {
	f := newFixture(t)
	f.toSelf.Store(true)
	for name, send := range map[string]func(net.Conn) error{
		"TLS without SNI": func(c net.Conn) error {
			tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true}) // dialled by address: no SNI
			return tc.Handshake()
		},
		"plaintext HTTP": func(c net.Conn) error {
			_, err := fmt.Fprint(c, "GET / HTTP/1.1\r\nHost: web\r\n\r\n")
			return err
		},
		"opaque": func(c net.Conn) error {
			_, err := fmt.Fprint(c, "\x00hello\n")
			return err
		},
	} {
		c, err := net.Dial("tcp", f.proxy)
		if err != nil {
			t.Fatal(err)
		}
		_ = send(c)
		all, _ := io.ReadAll(c) // ends when the proxy closes
		c.Close()
		if len(all) > 0 && !strings.HasPrefix(name, "TLS") {
			t.Errorf("%s: the proxy answered %q", name, all)
		}
	}
	if got := f.m.Sample("connections_refused_total", map[string]string{"direction": "inbound", "reason": "loop"}); got != 3 {
		t.Errorf("connections_refused_total{reason=loop} = %v, want 3", got)
	}
	if got := f.m.Sample("tcp_open_total", map[string]string{"direction": "inbound"}); got != 0 {
		t.Errorf("tcp_open_total = %v: a connection was forwarded", got)
	}
	if got := f.m.Sample("request_total", map[string]string{"direction": "inbound"}); got != 0 {
		t.Errorf("request_total = %v: a request was forwarded", got)
	}

	f.toSelf.Store(false)
	client := f.meshClient(t, "h2")
	if _, resp := get(t, client, "https://"+f.proxy+"/", nil); resp.StatusCode != 200 {
		t.Errorf("after the refusals: %d", resp.StatusCode)
	}
}

// A peer proxy's transport header may not name one of the proxy's own
// ports either.
func TestTransportHeaderToOwnListenerRefused(t *testing.T) {
	f := newFixture(t)
	c := f.dialTransport(t, netip.MustParseAddrPort(f.proxy).Port())
	fmt.Fprint(c, "loop?\n")
	if b, _ := io.ReadAll(c); len(b) > 0 {
		t.Errorf("the proxy answered %q", b)
	}
	if got := f.m.Sample("connections_refused_total", map[string]string{"direction": "inbound", "reason": "loop"}); got != 1 {
		t.Errorf("connections_refused_total{reason=loop} = %v, want 1", got)
	}
}
