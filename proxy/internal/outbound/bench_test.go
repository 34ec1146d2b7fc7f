package outbound

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/linkerd-go/linkerd-go/proxy/internal/discovery"
	"github.com/linkerd-go/linkerd-go/proxy/internal/inbound"
	"github.com/linkerd-go/linkerd-go/proxy/internal/meshtlstest"
	"github.com/linkerd-go/linkerd-go/proxy/internal/metrics"
)

// benchBody is the size of every benchmark answer.
const benchBody = 1024

// benchServe runs a proxy side (or app) on a loopback listener until the
// benchmark ends.
func benchServe(b *testing.B, run func(context.Context, net.Listener, time.Duration) error) netip.AddrPort {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, ln, 100*time.Millisecond) }()
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("Serve: %v", err)
		}
	})
	return netip.MustParseAddrPort(ln.Addr().String())
}

// benchApp answers every request with benchBody bytes, over HTTP/1.1 and
// h2c.
func benchApp(b *testing.B) netip.AddrPort {
	body := make([]byte, benchBody)
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{Protocols: &protocols, ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	})}
	return benchServe(b, func(ctx context.Context, ln net.Listener, _ time.Duration) error {
		go func() { <-ctx.Done(); srv.Close() }()
		if err := srv.Serve(ln); err != http.ErrServerClosed {
			return err
		}
		return nil
	})
}

// benchMesh is an outbound proxy whose every connection goes to a service
// of one meshed endpoint: an inbound proxy in front of the app, reached
// with mesh TLS and HTTP/2. It returns the outbound proxy and the app.
func benchMesh(b *testing.B) (proxy, app netip.AddrPort) {
	ca := meshtlstest.NewCA(b)
	app = benchApp(b)
	in := inbound.New(inbound.Config{
		DetectTimeout: time.Second, ConnectTimeout: time.Second,
		OrigDst: func(net.Conn) (netip.AddrPort, error) { return app, nil },
	}, ca.Store(b, serverID), metrics.New(), logr.Discard())
	inAddr := benchServe(b, in.Serve)
	watch := newFakeWatch(discovery.Snapshot{
		State:     discovery.Endpoints,
		Endpoints: []discovery.Endpoint{{Addr: inAddr, Weight: 10000, Identity: serverID, HTTP2: true, Labels: map[string]string{"pod": "web-0"}}},
		Labels:    map[string]string{"service": "web", "namespace": "default"},
	})
	svc := netip.MustParseAddrPort("198.19.0.100:80")
	out := New(Config{
		DetectTimeout: time.Second, ConnectTimeout: time.Second, DiscoveryTimeout: time.Second, IdleTimeout: time.Minute,
		OrigDst: func(net.Conn) (netip.AddrPort, error) { return svc, nil },
	}, ca.Store(b, clientID), func(string) Watch { return watch }, metrics.New(), logr.Discard())
	return benchServe(b, out.Serve), app
}

// BenchmarkHTTPThroughMesh is one request at a time with a 1 KiB answer:
// "direct" to the app, "mesh" through the outbound proxy, mesh TLS and
// HTTP/2 between the proxies, and the inbound proxy. The difference is
// what the two proxies add to a request (ns/op) and allocate for it
// (allocs/op count the whole process: client, proxies and app).
func BenchmarkHTTPThroughMesh(b *testing.B) {
	proxy, app := benchMesh(b)
	for _, proto := range []string{"http1", "h2c"} {
		for _, route := range []struct {
			name string
			addr netip.AddrPort
		}{{"direct", app}, {"mesh", proxy}} {
			b.Run(fmt.Sprintf("%s/%s", proto, route.name), func(b *testing.B) {
				tr := &http.Transport{DisableCompression: true}
				if proto == "h2c" {
					var p http.Protocols
					p.SetUnencryptedHTTP2(true)
					tr.Protocols = &p
				}
				defer tr.CloseIdleConnections()
				client := &http.Client{Transport: tr}
				url := "http://" + route.addr.String() + "/"
				get := func() {
					resp, err := client.Get(url)
					if err != nil {
						b.Fatal(err)
					}
					n, err := io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err != nil || resp.StatusCode != 200 || n != benchBody {
						b.Fatalf("%d, %d bytes, %v", resp.StatusCode, n, err)
					}
				}
				get() // connect outside the measurement
				b.SetBytes(benchBody)
				b.ReportAllocs()
				for b.Loop() {
					get()
				}
			})
		}
	}
}

// BenchmarkRoute is the per-request routing of an HTTP request on the
// outbound side before it is forwarded: the destination's state by
// original address (lookup), then its current discovery snapshot and the
// balancer's pick (resolve), as serveHTTP does them.
func BenchmarkRoute(b *testing.B) {
	var eps []discovery.Endpoint
	for i := range 3 {
		eps = append(eps, discovery.Endpoint{Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(21 + i)}), 8080), Weight: 10000, Identity: serverID, HTTP2: true})
	}
	watch := newFakeWatch(discovery.Snapshot{State: discovery.Endpoints, Endpoints: eps, Labels: map[string]string{"service": "web"}})
	p := New(Config{DiscoveryTimeout: time.Second, IdleTimeout: time.Minute}, nil, func(string) Watch { return watch }, metrics.New(), logr.Discard())
	// Other destinations the proxy knows, so the lookup is not in a map
	// of one.
	for i := range 100 {
		p.dest(netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 19, 1, byte(i)}), 80))
	}
	dst := netip.MustParseAddrPort("198.19.0.100:80")
	p.dest(dst)
	ctx := context.Background()
	b.Run("lookup", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if p.dest(dst) == nil {
					b.Fatal("no destination")
				}
			}
		})
	})
	b.Run("resolve", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				d := p.dest(dst)
				d.inUse.Add(1)
				if snap := d.current(ctx, time.Second); snap.State != discovery.Endpoints {
					b.Fatal(snap.State)
				}
				_, done, ok := d.bal.Pick()
				if !ok {
					b.Fatal("no endpoint")
				}
				done(time.Millisecond)
				d.inUse.Add(-1)
			}
		})
	})
}
