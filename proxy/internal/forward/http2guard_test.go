package forward

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/linkerd-go/linkerd-go/proxy/internal/detect"
	"github.com/linkerd-go/linkerd-go/proxy/internal/h2guard"
	"github.com/linkerd-go/linkerd-go/proxy/internal/h2guard/h2test"
	"github.com/linkerd-go/linkerd-go/proxy/internal/meshtlstest"
	"github.com/linkerd-go/linkerd-go/proxy/internal/metrics"
)

const (
	h2ServerID = "web.default.serviceaccount.identity.linkerd.cluster.local"
	h2ClientID = "client.default.serviceaccount.identity.linkerd.cluster.local"
)

// h2Fixture serves a handler through an HTTPServer on loopback, the way
// the inbound and outbound sides do: connections detected as h2c, or mesh
// TLS terminated with h2 by ALPN.
type h2Fixture struct {
	addr   string
	client *tls.Config // nil: h2c
	m      *metrics.Metrics
}

// newH2Fixture serves handler under limits (zero: the defaults).
func newH2Fixture(t *testing.T, handler http.Handler, meshTLS bool, limits h2guard.Limits) *h2Fixture {
	t.Helper()
	f := &h2Fixture{m: metrics.New()}
	srv := NewHTTPServer(handler, DefaultLimits, nil, logr.Discard())
	srv.GuardHTTP2(limits, f.m.HTTP2Floods("inbound"))
	var serverTLS *tls.Config
	if meshTLS {
		ca := meshtlstest.NewCA(t)
		serverTLS = ca.Store(t, h2ServerID).ServerConfig([]string{"h2"})
		f.client = ca.Store(t, h2ClientID).ClientConfig(h2ServerID, []string{"h2"})
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = ln.Addr().String()
	handle := func(c net.Conn, slot *Slot) {
		if serverTLS != nil {
			tc := tls.Server(c, serverTLS)
			if err := tc.Handshake(); err != nil {
				tc.Close()
				return
			}
			if err := srv.Serve(tc, &ConnMeta{TLS: true, Slot: slot}); err != nil {
				tc.Close()
			}
			return
		}
		proto, dc, err := detect.Detect(c, time.Second)
		if err != nil || proto != detect.HTTP2 {
			c.Close()
			return
		}
		if err := srv.Serve(dc, &ConnMeta{Slot: slot}); err != nil {
			c.Close()
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, time.Second, srv, &Conns{}, nil, handle) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return f
}

// dial opens a raw HTTP/2 connection (TLS done, h2 negotiated).
func (f *h2Fixture) dial(t *testing.T) net.Conn {
	t.Helper()
	if f.client == nil {
		c, err := net.Dial("tcp", f.addr)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c, err := tls.Dial("tcp", f.addr, f.client)
	if err != nil {
		t.Fatal(err)
	}
	if p := c.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Fatalf("negotiated %q", p)
	}
	return c
}

// httpClient is a well-behaved HTTP/2 client: net/http's.
func (f *h2Fixture) httpClient(t *testing.T) (*http.Client, string) {
	var protocols http.Protocols
	tr := &http.Transport{Protocols: &protocols, TLSClientConfig: f.client}
	scheme := "https"
	if f.client == nil {
		protocols.SetUnencryptedHTTP2(true)
		scheme = "http"
	} else {
		protocols.SetHTTP2(true)
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}, scheme + "://" + f.addr
}

func (f *h2Fixture) floods(reason h2guard.Reason) float64 {
	return f.m.Sample("http2_flood_goaway_total", map[string]string{"direction": "inbound", "reason": string(reason)})
}

func (f *h2Fixture) allFloods() float64 {
	var n float64
	for _, r := range h2guard.Reasons {
		n += f.floods(r)
	}
	return n
}

// testHandler answers /ok at once, holds /slow until the client gives up
// on it, sends /big?n bytes, and counts what is posted to /upload.
func testHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		var n int
		fmt.Sscan(r.URL.RawQuery, &n)
		chunk := make([]byte, 32<<10)
		for ; n > 0; n -= len(chunk) {
			if _, err := w.Write(chunk[:min(n, len(chunk))]); err != nil {
				return
			}
		}
	})
	mux.HandleFunc("/upload", func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprint(w, n)
	})
	return mux
}

func getOK(t *testing.T, client *http.Client, base string) {
	t.Helper()
	resp, err := client.Get(base + "/ok")
	if err != nil {
		t.Fatalf("a well-behaved client: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "ok" {
		t.Fatalf("a well-behaved client: %d %q", resp.StatusCode, body)
	}
}

// 100,000 frames of each flood on one connection, h2c and mesh TLS: the
// client gets GOAWAY ENHANCE_YOUR_CALM and the connection is closed before
// the server has read the flood, the closed connection is counted by
// reason, and a well-behaved client on another connection is served
// throughout. (The budgets are the defaults' bursts without their refill
// over time, so that the outcome does not depend on how fast the machine
// serves the flood.)
func TestHTTP2FloodsGetGoAway(t *testing.T) {
	for _, meshTLS := range []bool{false, true} {
		t.Run(map[bool]string{false: "h2c", true: "tls"}[meshTLS], func(t *testing.T) {
			f := newH2Fixture(t, testHandler(), meshTLS, h2test.Limits())
			client, base := f.httpClient(t)
			getOK(t, client, base)
			for _, flood := range h2test.Floods(100_000, "/slow") {
				a := h2test.Expect(t, f.dial(t), flood)
				if burst := uint32(h2guard.DefaultLimits.RapidResets.Burst); flood.Reason == h2guard.RapidReset && (a.LastStream <= 2*burst || a.LastStream >= 2*100_000-1) {
					// The server got the budget's worth of streams, not all.
					t.Errorf("rapid reset: GOAWAY's last stream %d; want past the burst of %d, short of the flood's last", a.LastStream, burst)
				}
				if got := f.floods(flood.Reason); got != 1 {
					t.Errorf("%s: http2_flood_goaway_total{reason=%q} = %v, want 1", flood.Name, flood.Reason, got)
				}
				getOK(t, client, base)
			}
			if got := f.allFloods(); got != float64(len(h2test.Floods(1, "/"))) {
				t.Errorf("%v connections counted in all", got)
			}
		})
	}
}

// A well-behaved HTTP/2 client's heaviest use: large downloads and uploads
// (window updates all along), and thousands of requests, a hundred at a
// time, on one connection, with h2c and mesh TLS. Nothing is counted as a
// flood.
func TestHTTP2HeavyLegitimateUseIsNotAFlood(t *testing.T) {
	for _, meshTLS := range []bool{false, true} {
		t.Run(map[bool]string{false: "h2c", true: "tls"}[meshTLS], func(t *testing.T) {
			f := newH2Fixture(t, testHandler(), meshTLS, h2guard.Limits{})
			client, base := f.httpClient(t)
			const size = 32 << 20
			resp, err := client.Get(fmt.Sprintf("%s/big?%d", base, size))
			if err != nil {
				t.Fatal(err)
			}
			n, err := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err != nil || n != size {
				t.Fatalf("download: %d bytes, %v", n, err)
			}
			resp, err = client.Post(base+"/upload", "application/octet-stream", io.LimitReader(zeros{}, size))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(body) != fmt.Sprint(size) {
				t.Fatalf("upload: the server read %s bytes", body)
			}
			var wg sync.WaitGroup
			errs := make(chan error, 100)
			for range 100 {
				wg.Go(func() {
					for range 30 {
						resp, err := client.Get(base + "/ok")
						if err != nil {
							errs <- err
							return
						}
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			if got := f.allFloods(); got != 0 {
				t.Errorf("%v connections closed as floods", got)
			}
		})
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// The guard hides the *tls.Conn: h2 over mesh TLS is still served as
// HTTP/2, with the connection's facts in ConnMeta, and HTTP/1.1 over TLS
// is left alone.
func TestHTTP2OverTLSStillServed(t *testing.T) {
	var mu sync.Mutex
	var protos []string
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		protos = append(protos, fmt.Sprintf("%s tls=%v", r.Proto, Meta(r.Context()).TLS))
		mu.Unlock()
	})
	f := newH2Fixture(t, handler, true, h2guard.Limits{})
	client, base := f.httpClient(t)
	resp, err := client.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h1 := f.client.Clone()
	h1.NextProtos = []string{"http/1.1"}
	var p1 http.Protocols
	p1.SetHTTP1(true)
	tr := &http.Transport{TLSClientConfig: h1, Protocols: &p1}
	defer tr.CloseIdleConnections()
	resp, err = (&http.Client{Transport: tr}).Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	mu.Lock()
	defer mu.Unlock()
	if got := strings.Join(protos, ", "); got != "HTTP/2.0 tls=true, HTTP/1.1 tls=true" {
		t.Errorf("served %s", got)
	}
}
