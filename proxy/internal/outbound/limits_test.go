package outbound

import (
	"io"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/linkerd-go/linkerd-go/api/mesh"
	"github.com/linkerd-go/linkerd-go/proxy/internal/discovery"
	"github.com/linkerd-go/linkerd-go/proxy/internal/forward"
	"github.com/linkerd-go/linkerd-go/proxy/internal/meshtlstest"
	"github.com/linkerd-go/linkerd-go/proxy/internal/metrics"
)

// With MaxInFlight requests waiting for their responses, the next one is
// answered 503 at once, marked and counted; once the waiting ones are
// answered, requests go through again.
func TestMaxInFlightSheds(t *testing.T) {
	const limit = 3
	arrived := make(chan struct{}, limit)
	release := make(chan struct{})
	appLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	app := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			arrived <- struct{}{}
			<-release
		}
		io.WriteString(w, "done")
	})}
	go app.Serve(appLn)
	t.Cleanup(func() { app.Close() })

	f := &fixture{ca: meshtlstest.NewCA(t), m: metrics.New()}
	inAddr := startInbound(t, f.ca, serverID, netip.MustParseAddrPort(appLn.Addr().String()))
	watch := newFakeWatch(discovery.Snapshot{State: discovery.Endpoints, Endpoints: []discovery.Endpoint{{Addr: inAddr, Identity: serverID, HTTP2: true}}})
	svc := netip.MustParseAddrPort("198.19.0.100:80")
	p := New(Config{
		DetectTimeout: time.Second, ConnectTimeout: time.Second, DiscoveryTimeout: time.Second, IdleTimeout: time.Minute,
		Limits:  forward.Limits{MaxInFlight: limit},
		OrigDst: func(net.Conn) (netip.AddrPort, error) { return svc, nil },
	}, f.ca.Store(t, clientID), func(string) Watch { return watch }, f.m, logr.Discard())
	proxy := serve(t, p.Serve)
	url := "http://" + proxy.String()
	client := h1Client(t) // one connection per concurrent request

	held := make(chan error, limit)
	for range limit {
		go func() {
			resp, err := client.Get(url + "/hold")
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					err = &statusError{resp.StatusCode}
				}
			}
			held <- err
		}()
	}
	for range limit {
		<-arrived
	}
	outbound := map[string]string{"direction": "outbound"}
	if got := f.m.Sample("http_requests_pending", outbound); got != limit {
		t.Errorf("pending = %v, want %d", got, limit)
	}

	resp, b := body(t, client, url+"/")
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get(mesh.ProxyErrorHeader) != forward.ErrOverloaded {
		t.Fatalf("request past the limit: %d %q %q", resp.StatusCode, resp.Header.Get(mesh.ProxyErrorHeader), b)
	}
	shed := map[string]string{"direction": "outbound", "kind": "request"}
	if got := f.m.Sample("load_shed_total", shed); got != 1 {
		t.Errorf("load_shed_total{kind=request} = %v, want 1", got)
	}

	close(release)
	for range limit {
		if err := <-held; err != nil {
			t.Errorf("held request: %v", err)
		}
	}
	if got := f.m.Sample("http_requests_pending", outbound); got != 0 {
		t.Errorf("pending after the answers = %v, want 0", got)
	}
	if resp, b := body(t, client, url+"/"); resp.StatusCode != 200 || b != "done" {
		t.Errorf("request after the answers: %d %q", resp.StatusCode, b)
	}
	if got := f.m.Sample("load_shed_total", shed); got != 1 {
		t.Errorf("load_shed_total{kind=request} = %v, want still 1", got)
	}
}

type statusError struct{ code int }

func (e *statusError) Error() string { return http.StatusText(e.code) }
