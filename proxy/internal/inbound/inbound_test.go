package inbound

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"go.uber.org/goleak"

	transportv1 "github.com/linkerd-go/linkerd-go/api/linkerd/transport/v1"
	"github.com/linkerd-go/linkerd-go/proxy/internal/authz"
	"github.com/linkerd-go/linkerd-go/proxy/internal/forward"
	"github.com/linkerd-go/linkerd-go/proxy/internal/h1test"
	"github.com/linkerd-go/linkerd-go/proxy/internal/h2guard/h2test"
	"github.com/linkerd-go/linkerd-go/proxy/internal/meshtlstest"
	"github.com/linkerd-go/linkerd-go/proxy/internal/metrics"
	"github.com/linkerd-go/linkerd-go/proxy/internal/origdst"
	"github.com/linkerd-go/linkerd-go/proxy/internal/selfaddr"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	serverID = "web.default.serviceaccount.identity.linkerd.cluster.local"
	clientID = "client.default.serviceaccount.identity.linkerd.cluster.local"
)

// fixture runs an application (HTTP on one port, a TCP echo on another)
// and the inbound proxy in front of them. The proxy believes every
// connection was redirected to appAddr, except when direct is set.
type fixture struct {
	ca     *meshtlstest.CA
	app    netip.AddrPort // HTTP application
	echo   netip.AddrPort // TCP echo application
	proxy  string         // the proxy's listener
	direct atomic.Bool
	toEcho atomic.Bool
	toSelf atomic.Bool                    // the original destination is the proxy's own listener
	toDead atomic.Bool                    // the original destination refuses connections
	target atomic.Pointer[netip.AddrPort] // when set, the original destination
	m      *metrics.Metrics
}

func newFixture(t testing.TB, limits ...forward.Limits) *fixture {
	t.Helper()
	var lim forward.Limits
	if len(limits) > 0 {
		lim = limits[0]
	}
	return newFixtureWith(t, lim, nil)
}

// newFixtureWith is newFixture with the side's limits and authorizer (nil:
// every client allowed).
func newFixtureWith(t testing.TB, lim forward.Limits, az *authz.Authorizer) *fixture {
	t.Helper()
	f := &fixture{ca: meshtlstest.NewCA(t), m: metrics.New()}

	appLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	app := &http.Server{Protocols: &protocols, ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/claims-not-sent" {
			w.Header().Set("l5d-proxy-not-sent", "true")
		}
		w.Header().Set("Trailer", "X-Done")
		fmt.Fprintf(w, "proto=%s client-id=%s host=%s", r.Proto, r.Header.Get("l5d-client-id"), r.Host)
		w.Header().Set("X-Done", "yes")
	})}
	go app.Serve(appLn)
	t.Cleanup(func() { app.Close() })
	f.app = netip.MustParseAddrPort(appLn.Addr().String())

	echoLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := echoLn.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	t.Cleanup(func() { echoLn.Close() })
	f.echo = netip.MustParseAddrPort(echoLn.Addr().String())

	store := f.ca.Store(t, serverID)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.proxy = ln.Addr().String()
	self := netip.MustParseAddrPort(f.proxy)
	dead := h1test.DeadAddr(t)
	p := New(Config{
		DetectTimeout:  time.Second,
		ConnectTimeout: time.Second,
		Limits:         lim,
		Authz:          az,
		Self:           selfaddr.New([]netip.AddrPort{self}, nil),
		OrigDst: func(net.Conn) (netip.AddrPort, error) {
			if f.direct.Load() {
				return netip.AddrPort{}, origdst.ErrNotRedirected
			}
			if t := f.target.Load(); t != nil {
				return *t, nil
			}
			if f.toSelf.Load() {
				return self, nil
			}
			if f.toDead.Load() {
				return dead, nil
			}
			if f.toEcho.Load() {
				return f.echo, nil
			}
			return f.app, nil
		},
	}, store, f.m, logr.Discard())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Serve(ctx, ln, time.Second) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return f
}

func get(t *testing.T, client *http.Client, url string, hdr map[string]string) (string, *http.Response) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body), resp
}

// Plain HTTP from outside the mesh reaches the app; a forged l5d-client-id
// is removed.
func TestPlainHTTPStripsClientID(t *testing.T) {
	f := newFixture(t)
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	body, resp := get(t, client, "http://"+f.proxy+"/", map[string]string{"l5d-client-id": "forged"})
	if resp.StatusCode != 200 || !strings.Contains(body, "client-id= ") || !strings.Contains(body, "proto=HTTP/1.1") {
		t.Errorf("got %d %q", resp.StatusCode, body)
	}
	if resp.Trailer.Get("X-Done") != "yes" {
		t.Errorf("trailer lost: %v", resp.Trailer)
	}
}

// meshClient is a peer proxy's HTTP/2 client with mesh TLS.
func (f *fixture) meshClient(t *testing.T, alpn string) *http.Client {
	cli := f.ca.Store(t, clientID)
	cfg := cli.ClientConfig(serverID, []string{alpn})
	var protocols http.Protocols
	if alpn == "h2" {
		protocols.SetHTTP2(true)
	} else {
		protocols.SetHTTP1(true)
	}
	tr := &http.Transport{TLSClientConfig: cfg, Protocols: &protocols}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// Mesh TLS from a peer proxy: the app sees the client's identity; an
// HTTP/1 request carried over HTTP/2 with l5d-orig-proto reaches the app as
// HTTP/1.1.
func TestMeshTLSClientIdentityAndOrigProto(t *testing.T) {
	f := newFixture(t)
	client := f.meshClient(t, "h2")
	body, resp := get(t, client, "https://"+f.proxy+"/", nil)
	if resp.StatusCode != 200 || !strings.Contains(body, "client-id="+clientID) || !strings.Contains(body, "proto=HTTP/2.0") {
		t.Errorf("h2: %d %q", resp.StatusCode, body)
	}
	body, resp = get(t, client, "https://"+f.proxy+"/", map[string]string{"l5d-orig-proto": "HTTP/1.1", "l5d-client-id": "forged"})
	if resp.StatusCode != 200 || !strings.Contains(body, "proto=HTTP/1.1") || !strings.Contains(body, "client-id="+clientID+" ") {
		t.Errorf("orig-proto: %d %q", resp.StatusCode, body)
	}
	if resp.Header.Get("l5d-orig-proto") != "HTTP/1.1" {
		t.Errorf("response not marked for downgrade: %v", resp.Header)
	}
}

// A client certificate from another trust anchor is refused.
func TestForeignClientRefused(t *testing.T) {
	f := newFixture(t)
	foreign := meshtlstest.NewCA(t).Store(t, clientID)
	cfg := foreign.ClientConfig(serverID, []string{"h2"})
	cfg.VerifyPeerCertificate = nil
	cfg.InsecureSkipVerify = true
	c, err := tls.Dial("tcp", f.proxy, cfg)
	if err == nil {
		// TLS 1.3: the client learns of the refusal on its first read.
		_, err = c.Read(make([]byte, 1))
		c.Close()
	}
	if err == nil {
		t.Fatal("foreign client certificate accepted")
	}
}

// dialEcho connects a plaintext client to the proxy, its connections
// redirected to the echo application; t's cleanup closes it.
func (f *fixture) dialEcho(t *testing.T) net.Conn {
	t.Helper()
	f.toEcho.Store(true)
	c, err := net.Dial("tcp", f.proxy)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Opaque bytes pass through both ways.
func TestOpaqueTCP(t *testing.T) {
	f := newFixture(t)
	c := f.dialEcho(t)
	fmt.Fprint(c, "\x00binary hello\n")
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "\x00binary hello\n" {
		t.Errorf("echo = %q, %v", line, err)
	}
}

// A peer proxy connecting directly with the transport header reaches the
// port the header names, with mesh TLS.
func TestTransportHeader(t *testing.T) {
	f := newFixture(t)
	c := f.dialTransport(t, f.echo.Port())
	fmt.Fprint(c, "over the mesh\n")
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "over the mesh\n" {
		t.Errorf("echo = %q, %v", line, err)
	}
}

// dialTransport connects as a peer proxy does for an opaque port: straight
// to the proxy, mesh TLS, and the transport header naming port.
func (f *fixture) dialTransport(t *testing.T, port uint16) *tls.Conn {
	t.Helper()
	f.direct.Store(true)
	cli := f.ca.Store(t, clientID)
	c, err := tls.Dial("tcp", f.proxy, cli.ClientConfig(serverID, []string{transportv1.ALPN}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := transportv1.WriteHeader(c, &transportv1.TransportHeader{Port: uint32(port)}); err != nil {
		t.Fatal(err)
	}
	return c
}

// A direct connection without mesh TLS is closed.
func TestDirectPlaintextRefused(t *testing.T) {
	f := newFixture(t)
	f.direct.Store(true)
	c, err := net.Dial("tcp", f.proxy)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if n, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatalf("read %d bytes from a refused connection", n)
	}
}

// Request smuggling attempts get 400 and a closed connection; the request
// hidden behind them never reaches the application.
func TestAmbiguousFramingRefused(t *testing.T) {
	f := newFixture(t)
	for name, req := range map[string]string{
		"CL and TE": "POST / HTTP/1.1\r\nHost: web\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"obs-fold":  "GET / HTTP/1.1\r\nHost: web\r\nX: a\r\n b\r\n\r\n",
		"bare LF":   "GET / HTTP/1.1\nHost: web\n\n",
	} {
		c, err := net.Dial("tcp", f.proxy)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprint(c, req+"GET /smuggled HTTP/1.1\r\nHost: web\r\n\r\n")
		all, err := io.ReadAll(c) // ends only when the proxy closes
		c.Close()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !strings.HasPrefix(string(all), "HTTP/1.1 400 ") || strings.Count(string(all), "HTTP/1.1 ") != 1 {
			t.Errorf("%s: got %q", name, all)
		}
	}
}

// When the application cannot be reached (its container has exited while
// the pod terminates), a peer proxy is told that the request reached no
// application, so that it can send it to another endpoint; a client
// outside the mesh just gets the 502. The application cannot claim it.
func TestUnreachableApplicationMarkedNotSent(t *testing.T) {
	f := newFixture(t)
	mesh := f.meshClient(t, "h2")
	plain := &http.Client{Transport: &http.Transport{}}
	defer plain.CloseIdleConnections()

	body, resp := get(t, mesh, "https://"+f.proxy+"/claims-not-sent", nil)
	if resp.StatusCode != 200 || resp.Header.Get("l5d-proxy-not-sent") != "" {
		t.Errorf("the application's own l5d-proxy-not-sent reached the peer: %d %v %q", resp.StatusCode, resp.Header, body)
	}

	f.toDead.Store(true) // read per connection: new clients from here
	mesh = f.meshClient(t, "h2")
	plain = &http.Client{Transport: &http.Transport{}}
	defer plain.CloseIdleConnections()
	body, resp = get(t, mesh, "https://"+f.proxy+"/", nil)
	if resp.StatusCode != http.StatusBadGateway || resp.Header.Get("l5d-proxy-not-sent") != "true" || resp.Header.Get("l5d-proxy-error") != "connect failed" {
		t.Errorf("peer proxy: %d %v %q, want 502 marked not sent", resp.StatusCode, resp.Header, body)
	}
	body, resp = get(t, plain, "http://"+f.proxy+"/", nil)
	if resp.StatusCode != http.StatusBadGateway || resp.Header.Get("l5d-proxy-not-sent") != "" {
		t.Errorf("plain client: %d %v %q, want 502 without l5d-proxy-not-sent", resp.StatusCode, resp.Header, body)
	}
}

// An application shutting down refuses, with GOAWAY, a request it never
// processed: the proxy sends it again, body and all, on a new connection,
// and the client gets the application's answer.
func TestRequestRefusedByApplicationSentAgain(t *testing.T) {
	f := newFixture(t)
	app := h2test.StartRefusing(t)
	f.target.Store(&app.Addr)
	app.CheckSentAgain(t, f.meshClient(t, "h2"), "https://"+f.proxy+"/")
}
