package outbound

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"go.uber.org/goleak"

	"github.com/linkerd-go/linkerd-go/proxy/internal/discovery"
	"github.com/linkerd-go/linkerd-go/proxy/internal/inbound"
	"github.com/linkerd-go/linkerd-go/proxy/internal/meshtlstest"
	"github.com/linkerd-go/linkerd-go/proxy/internal/metrics"
	"github.com/linkerd-go/linkerd-go/proxy/internal/origdst"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	serverID = "web.default.serviceaccount.identity.linkerd.cluster.local"
	clientID = "client.default.serviceaccount.identity.linkerd.cluster.local"
)

// fakeWatch is a discovery watch the test drives.
type fakeWatch struct {
	mu      sync.Mutex
	snap    discovery.Snapshot
	changed chan struct{}
}

func newFakeWatch(s discovery.Snapshot) *fakeWatch {
	return &fakeWatch{snap: s, changed: make(chan struct{})}
}

func (w *fakeWatch) Snapshot() discovery.Snapshot {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.snap
}

func (w *fakeWatch) Changed() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.changed
}

func (w *fakeWatch) Release() {}

func (w *fakeWatch) set(s discovery.Snapshot) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.snap = s
	close(w.changed)
	w.changed = make(chan struct{})
}

// app is a server pod's application: it says who it is, how it was
// called, and who the client was.
func startApp(t *testing.T, name string) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{Protocols: &protocols, ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "Grpc-Status")
		fmt.Fprintf(w, "app=%s proto=%s client-id=%s", name, r.Proto, r.Header.Get("l5d-client-id"))
		w.Header().Set("Grpc-Status", "0")
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return netip.MustParseAddrPort(ln.Addr().String())
}

// startInbound runs a server pod's inbound proxy in front of app and
// returns its address (what discovery hands out as the endpoint).
func startInbound(t *testing.T, ca *meshtlstest.CA, id string, app netip.AddrPort) netip.AddrPort {
	t.Helper()
	p := inbound.New(inbound.Config{
		DetectTimeout: time.Second, ConnectTimeout: time.Second,
		OrigDst: func(net.Conn) (netip.AddrPort, error) { return app, nil },
	}, ca.Store(t, id), metrics.New(), logr.Discard())
	return serve(t, p.Serve)
}

func serve(t *testing.T, run func(context.Context, net.Listener, time.Duration) error) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, ln, 100*time.Millisecond) }() // short grace: teardown only
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return netip.MustParseAddrPort(ln.Addr().String())
}

// fixture: an outbound proxy whose every connection was "redirected" to
// service, a target the test's fake discovery describes.
type fixture struct {
	ca      *meshtlstest.CA
	watch   *fakeWatch
	service atomic.Pointer[netip.AddrPort] // the original destination the app dialled
	proxy   netip.AddrPort
	m       *metrics.Metrics
}

func newFixture(t *testing.T, snap discovery.Snapshot) *fixture {
	t.Helper()
	f := &fixture{ca: meshtlstest.NewCA(t), watch: newFakeWatch(snap), m: metrics.New()}
	svc := netip.MustParseAddrPort("198.19.0.100:80")
	f.service.Store(&svc)
	p := New(Config{
		DetectTimeout: time.Second, ConnectTimeout: time.Second, DiscoveryTimeout: time.Second, IdleTimeout: time.Minute,
		OrigDst: func(net.Conn) (netip.AddrPort, error) { return *f.service.Load(), nil },
	}, f.ca.Store(t, clientID), func(string) Watch { return f.watch }, f.m, logr.Discard())
	f.proxy = serve(t, p.Serve)
	return f
}

func body(t *testing.T, client *http.Client, url string) (*http.Response, string) {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func h1Client(t *testing.T) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func h2cClient(t *testing.T) *http.Client {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &p}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// HTTP/1 from the application travels to three meshed replicas over mesh
// TLS and HTTP/2, reaches each application as HTTP/1.1 with the client's
// identity, and is spread over all of them.
func TestMeshedHTTPSpreadsOverReplicas(t *testing.T) {
	f := newFixture(t, discovery.Snapshot{})
	var eps []discovery.Endpoint
	for i := range 3 {
		app := startApp(t, fmt.Sprint("web-", i))
		eps = append(eps, discovery.Endpoint{Addr: startInbound(t, f.ca, serverID, app), Weight: 10000, Identity: serverID, HTTP2: true})
	}
	f.watch.set(discovery.Snapshot{State: discovery.Endpoints, Endpoints: eps, Labels: map[string]string{"service": "web", "namespace": "default"}})
	client := h1Client(t)
	seen := map[string]int{}
	for range 60 {
		resp, b := body(t, client, "http://"+f.proxy.String()+"/")
		if resp.StatusCode != 200 || !strings.Contains(b, "proto=HTTP/1.1") || !strings.Contains(b, "client-id="+clientID) {
			t.Fatalf("%d %q", resp.StatusCode, b)
		}
		if resp.Header.Get("l5d-orig-proto") != "" {
			t.Error("l5d-orig-proto leaked to the application's client")
		}
		seen[strings.Fields(b)[0]]++
	}
	if len(seen) != 3 {
		t.Errorf("requests reached %d replicas: %v", len(seen), seen)
	}
}

// h2c (gRPC-style) requests keep HTTP/2 end to end, with trailers.
func TestMeshedHTTP2WithTrailers(t *testing.T) {
	f := newFixture(t, discovery.Snapshot{})
	app := startApp(t, "grpc")
	f.watch.set(discovery.Snapshot{State: discovery.Endpoints, Endpoints: []discovery.Endpoint{{Addr: startInbound(t, f.ca, serverID, app), Identity: serverID, HTTP2: true}}})
	resp, b := body(t, h2cClient(t), "http://"+f.proxy.String()+"/")
	if resp.StatusCode != 200 || resp.ProtoMajor != 2 || !strings.Contains(b, "proto=HTTP/2.0") {
		t.Fatalf("%d %s %q", resp.StatusCode, resp.Proto, b)
	}
	if resp.Trailer.Get("Grpc-Status") != "0" {
		t.Errorf("trailers = %v", resp.Trailer)
	}
}

// An endpoint that presents another identity than discovery promised is
// refused: the request fails with a marked 502 and never reaches it.
func TestWrongIdentityRefused(t *testing.T) {
	f := newFixture(t, discovery.Snapshot{})
	app := startApp(t, "impostor")
	f.watch.set(discovery.Snapshot{State: discovery.Endpoints, Endpoints: []discovery.Endpoint{{
		Addr: startInbound(t, f.ca, "impostor.default.serviceaccount.identity.linkerd.cluster.local", app), Identity: serverID, HTTP2: true,
	}}})
	resp, b := body(t, h1Client(t), "http://"+f.proxy.String()+"/")
	if resp.StatusCode != http.StatusBadGateway || resp.Header.Get("l5d-proxy-error") == "" || strings.Contains(b, "app=") {
		t.Fatalf("%d %v %q", resp.StatusCode, resp.Header, b)
	}
}

// A service without endpoints fails fast with 503 and l5d-proxy-error.
func TestNoEndpoints(t *testing.T) {
	f := newFixture(t, discovery.Snapshot{State: discovery.NoEndpoints})
	resp, _ := body(t, h1Client(t), "http://"+f.proxy.String()+"/")
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("l5d-proxy-error") != "no endpoints" {
		t.Fatalf("%d %v", resp.StatusCode, resp.Header)
	}
}

// A destination discovery does not know is reached at its original
// address, in plaintext.
func TestUnknownGoesToOriginalDestination(t *testing.T) {
	f := newFixture(t, discovery.Snapshot{State: discovery.DoesNotExist})
	ext := startApp(t, "external")
	f.service.Store(&ext)
	resp, b := body(t, h1Client(t), "http://"+f.proxy.String()+"/")
	if resp.StatusCode != 200 || !strings.Contains(b, "app=external") || !strings.HasSuffix(b, "client-id=") {
		t.Fatalf("%d %q", resp.StatusCode, b)
	}
}

// Endpoints removed while requests flow: later requests go to the
// remaining endpoint only.
func TestEndpointRemoved(t *testing.T) {
	f := newFixture(t, discovery.Snapshot{})
	a := discovery.Endpoint{Addr: startInbound(t, f.ca, serverID, startApp(t, "a")), Identity: serverID, HTTP2: true}
	b := discovery.Endpoint{Addr: startInbound(t, f.ca, serverID, startApp(t, "b")), Identity: serverID, HTTP2: true}
	f.watch.set(discovery.Snapshot{State: discovery.Endpoints, Endpoints: []discovery.Endpoint{a, b}})
	client := h1Client(t)
	body(t, client, "http://"+f.proxy.String()+"/")
	f.watch.set(discovery.Snapshot{State: discovery.Endpoints, Endpoints: []discovery.Endpoint{b}})
	for range 20 {
		_, got := body(t, client, "http://"+f.proxy.String()+"/")
		if !strings.HasPrefix(got, "app=b ") {
			t.Fatalf("request after removal reached %q", got)
		}
	}
}

// Opaque TCP to a meshed endpoint with an inbound port travels with mesh
// TLS and the transport header.
func TestOpaqueOverTransportHeader(t *testing.T) {
	f := newFixture(t, discovery.Snapshot{})
	echoLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echoLn.Close()
	go func() {
		for {
			c, err := echoLn.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	echo := netip.MustParseAddrPort(echoLn.Addr().String())
	in := inbound.New(inbound.Config{
		DetectTimeout: time.Second, ConnectTimeout: time.Second,
		OrigDst: func(net.Conn) (netip.AddrPort, error) { return netip.AddrPort{}, origdst.ErrNotRedirected },
	}, f.ca.Store(t, serverID), metrics.New(), logr.Discard())
	inAddr := serve(t, in.Serve)
	f.watch.set(discovery.Snapshot{State: discovery.Endpoints, Endpoints: []discovery.Endpoint{{
		Addr: echo, Identity: serverID, Opaque: true, OpaqueInboundPort: inAddr.Port(),
	}}})
	c, err := net.Dial("tcp", f.proxy.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "\x00\x01 opaque\n")
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "\x00\x01 opaque\n" {
		t.Fatalf("echo %q, %v", line, err)
	}
}

// An endpoint removed while a request to it is in flight: that request
// completes on it, and the next ones go elsewhere.
func TestEndpointRemovedWithRequestInFlight(t *testing.T) {
	f := newFixture(t, discovery.Snapshot{})
	arrived, release := make(chan struct{}), make(chan struct{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	slow := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-release
		fmt.Fprint(w, "app=slow")
	})}
	go slow.Serve(ln)
	defer slow.Close()
	a := discovery.Endpoint{Addr: startInbound(t, f.ca, serverID, netip.MustParseAddrPort(ln.Addr().String())), Identity: serverID, HTTP2: true}
	b := discovery.Endpoint{Addr: startInbound(t, f.ca, serverID, startApp(t, "b")), Identity: serverID, HTTP2: true}
	f.watch.set(discovery.Snapshot{State: discovery.Endpoints, Endpoints: []discovery.Endpoint{a}})
	client := h1Client(t)
	type result struct {
		status int
		body   string
	}
	inflight := make(chan result, 1)
	go func() {
		resp, err := client.Get("http://" + f.proxy.String() + "/")
		if err != nil {
			inflight <- result{body: err.Error()}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		inflight <- result{resp.StatusCode, string(b)}
	}()
	<-arrived
	f.watch.set(discovery.Snapshot{State: discovery.Endpoints, Endpoints: []discovery.Endpoint{b}})
	// Requests after the removal go to b while the first one is held.
	if _, got := body(t, h1Client(t), "http://"+f.proxy.String()+"/"); !strings.HasPrefix(got, "app=b ") {
		t.Fatalf("request after removal reached %q", got)
	}
	close(release)
	if r := <-inflight; r.status != 200 || r.body != "app=slow" {
		t.Fatalf("in-flight request: %d %q", r.status, r.body)
	}
}
