package outbound

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/linkerd-go/linkerd-go/proxy/internal/discovery"
	"github.com/linkerd-go/linkerd-go/proxy/internal/h2guard/h2test"
)

// The application floods its h2c connection to the outbound listener
// (100,000 HEADERS+RST_STREAM pairs, then each other flood): it gets GOAWAY
// ENHANCE_YOUR_CALM and a closed connection before the proxy has read it
// all, the connection is counted, and the application's other
// connections are served. The guard is set as the side's wiring does, to
// the default bursts without refill (h2test.Limits).
func TestHTTP2FloodsFromTheApplication(t *testing.T) {
	f := newFixture(t, discovery.Snapshot{})
	app := startApp(t, "a")
	f.watch.set(discovery.Snapshot{State: discovery.Endpoints, Endpoints: []discovery.Endpoint{{Addr: startInbound(t, f.ca, serverID, app), Identity: serverID, HTTP2: true}}})
	p := New(Config{
		DetectTimeout: time.Second, ConnectTimeout: time.Second, DiscoveryTimeout: time.Second, IdleTimeout: time.Minute,
		OrigDst: func(net.Conn) (netip.AddrPort, error) { return *f.service.Load(), nil },
	}, f.ca.Store(t, clientID), func(string) Watch { return f.watch }, f.m, logr.Discard())
	p.http.GuardHTTP2(h2test.Limits(), f.m.HTTP2Floods("outbound"))
	proxy := serve(t, p.Serve).String()
	client := h2cClient(t)
	for _, flood := range h2test.Floods(100_000, "/slow") {
		c, err := net.Dial("tcp", proxy)
		if err != nil {
			t.Fatal(err)
		}
		h2test.Expect(t, c, flood)
		if n := f.m.Sample("http2_flood_goaway_total", map[string]string{"direction": "outbound", "reason": string(flood.Reason)}); n != 1 {
			t.Errorf("%s: counted %v times", flood.Name, n)
		}
		resp, b := body(t, client, "http://"+proxy+"/")
		if resp.StatusCode != 200 || !strings.HasPrefix(b, "app=a ") {
			t.Fatalf("after the %s flood, another connection got %d %q", flood.Name, resp.StatusCode, b)
		}
	}
}
