package inbound

import (
	"context"
	"crypto/tls"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/linkerd-go/linkerd-go/proxy/internal/h2guard/h2test"
	"github.com/linkerd-go/linkerd-go/proxy/internal/metrics"
)

// guardedProxy runs an inbound side in front of f's application with the
// HTTP/2 guard set as the side's wiring does, to the default bursts
// without refill (h2test.Limits), and returns its address and metrics.
func guardedProxy(t *testing.T, f *fixture) (string, *metrics.Metrics) {
	t.Helper()
	m := metrics.New()
	p := New(Config{
		DetectTimeout: time.Second, ConnectTimeout: time.Second,
		OrigDst: func(net.Conn) (netip.AddrPort, error) { return f.app, nil },
	}, f.ca.Store(t, serverID), m, logr.Discard())
	p.http.GuardHTTP2(h2test.Limits(), m.HTTP2Floods("inbound"))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Serve(ctx, ln, time.Second) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String(), m
}

// A peer with a mesh identity floods its HTTP/2 connection to the inbound
// port (100,000 HEADERS+RST_STREAM pairs, then each other flood): it gets
// GOAWAY ENHANCE_YOUR_CALM and a closed connection before the proxy has
// read it all, the connection is counted, and another peer's requests are
// served.
func TestHTTP2FloodsOverMeshTLS(t *testing.T) {
	f := newFixture(t)
	proxy, m := guardedProxy(t, f)
	peer := f.meshClient(t, "h2")
	cfg := f.ca.Store(t, clientID).ClientConfig(serverID, []string{"h2"})
	for _, flood := range h2test.Floods(100_000, "/slow") {
		c, err := tls.Dial("tcp", proxy, cfg)
		if err != nil {
			t.Fatal(err)
		}
		h2test.Expect(t, c, flood)
		if n := m.Sample("http2_flood_goaway_total", map[string]string{"direction": "inbound", "reason": string(flood.Reason)}); n != 1 {
			t.Errorf("%s: counted %v times", flood.Name, n)
		}
		body, resp := get(t, peer, "https://"+proxy+"/", nil)
		if resp.StatusCode != 200 || !strings.Contains(body, "client-id="+clientID) {
			t.Fatalf("after the %s flood, another peer got %d %q", flood.Name, resp.StatusCode, body)
		}
	}
}
