package outbound

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linkerd-go/linkerd-go/proxy/internal/discovery"
	"github.com/linkerd-go/linkerd-go/proxy/internal/h1test"
	"github.com/linkerd-go/linkerd-go/proxy/internal/h2guard/h2test"
)

// echoApp answers each request (HTTP/1 or h2c) with its method and body.
func echoApp(t *testing.T, name string, ln net.Listener) netip.AddrPort {
	t.Helper()
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{Protocols: &protocols, ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "app=%s %s %s", name, r.Method, b)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return netip.MustParseAddrPort(ln.Addr().String())
}

// A request whose connect fails was not sent: it goes to another endpoint,
// body and all, and the endpoint that refused leaves the balancer, so that
// while discovery still lists a pod that is gone no request fails. Once
// the endpoint accepts connects again, a probe brings it back.
func TestConnectFailureGoesToAnotherEndpoint(t *testing.T) {
	f := newFixture(t, discovery.Snapshot{})
	dead := h1test.DeadAddr(t)
	for _, meshed := range []bool{false, true} {
		live := startApp(t, "live")
		ep := discovery.Endpoint{Addr: live, Weight: 1}
		gone := discovery.Endpoint{Addr: dead, Weight: 1}
		if meshed {
			ep = discovery.Endpoint{Addr: startInbound(t, f.ca, serverID, live), Weight: 1, Identity: serverID, HTTP2: true}
			gone.Identity, gone.HTTP2 = serverID, true
		}
		f.watch.set(discovery.Snapshot{State: discovery.Endpoints, Endpoints: []discovery.Endpoint{gone, ep}})
		client := h1Client(t)
		for i := range 40 {
			var resp *http.Response
			var err error
			if i%2 == 0 {
				resp, err = client.Get("http://" + f.proxy.String() + "/")
			} else {
				resp, err = client.Post("http://"+f.proxy.String()+"/", "text/plain", strings.NewReader("payload"))
			}
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.HasPrefix(string(b), "app=live") {
				t.Fatalf("meshed=%v request %d: %d %q", meshed, i, resp.StatusCode, b)
			}
		}
	}
	if got := f.m.Sample("response_total", map[string]string{"direction": "outbound", "classification": "failure"}); got != 0 {
		t.Errorf("response_total{classification=failure} = %v, want 0", got)
	}
	if got := f.m.Sample("request_total", map[string]string{"direction": "outbound", "target_addr": dead.String()}); got != 0 {
		t.Errorf("request_total{target_addr=%s} = %v: a request was counted on the endpoint that refused", dead, got)
	}

	// The endpoint answers again: a probe returns it to the balancer.
	ln, err := net.Listen("tcp", dead.String())
	if err != nil {
		t.Fatal(err)
	}
	echoApp(t, "back", ln)
	f.watch.set(discovery.Snapshot{State: discovery.Endpoints, Endpoints: []discovery.Endpoint{{Addr: dead, Weight: 1}}})
	client := h1Client(t)
	deadline := time.Now().Add(30 * time.Second) // against a hang: probes start at 0.5s
	for {
		_, b := body(t, client, "http://"+f.proxy.String()+"/")
		if strings.HasPrefix(b, "app=back") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the endpoint did not come back: %q", b)
		}
	}
}

// An opaque connection whose connect fails goes to another endpoint too.
func TestOpaqueConnectFailureGoesToAnotherEndpoint(t *testing.T) {
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
	live := netip.MustParseAddrPort(echoLn.Addr().String())
	f.watch.set(discovery.Snapshot{State: discovery.Endpoints, Endpoints: []discovery.Endpoint{{Addr: h1test.DeadAddr(t), Weight: 1}, {Addr: live, Weight: 1}}})
	for i := range 20 {
		c, err := net.Dial("tcp", f.proxy.String())
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "\x00opaque %d\n", i)
		line, err := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if err != nil || line != fmt.Sprintf("\x00opaque %d\n", i) {
			t.Fatalf("connection %d: %q, %v", i, line, err)
		}
	}
}

// A meshed endpoint whose application is gone (its container exited while
// the pod terminates, and discovery has not said so yet) answers that the
// request reached no application: it goes to another endpoint, body and
// all, and no client sees the failure or the marker.
func TestUnreachableApplicationGoesToAnotherEndpoint(t *testing.T) {
	f := newFixture(t, discovery.Snapshot{})
	liveLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	live := discovery.Endpoint{Addr: startInbound(t, f.ca, serverID, echoApp(t, "live", liveLn)), Weight: 1, Identity: serverID, HTTP2: true}
	appGone := discovery.Endpoint{Addr: startInbound(t, f.ca, serverID, h1test.DeadAddr(t)), Weight: 1, Identity: serverID, HTTP2: true}
	f.watch.set(discovery.Snapshot{State: discovery.Endpoints, Endpoints: []discovery.Endpoint{appGone, live}})
	clients := map[string]*http.Client{"http1": h1Client(t), "h2c": h2cClient(t)}
	for name, client := range clients {
		for i := range 30 {
			want := "app=live GET "
			var resp *http.Response
			var err error
			if i%2 == 0 {
				resp, err = client.Get("http://" + f.proxy.String() + "/")
			} else {
				payload := fmt.Sprintf("payload %d", i)
				want = "app=live POST " + payload
				resp, err = client.Post("http://"+f.proxy.String()+"/", "text/plain", strings.NewReader(payload))
			}
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(b) != want {
				t.Fatalf("%s request %d: %d %q, want 200 %q", name, i, resp.StatusCode, b, want)
			}
			if v := resp.Header.Get("l5d-proxy-not-sent"); v != "" {
				t.Fatalf("%s request %d: l5d-proxy-not-sent %q reached the client", name, i, v)
			}
		}
	}
	if got := f.m.Sample("response_total", map[string]string{"direction": "outbound", "classification": "failure"}); got != 0 {
		t.Errorf("response_total{classification=failure} = %v, want 0", got)
	}
}

// Only a meshed endpoint's proxy can say a request was not sent: an
// application that claims it (behind its proxy, or unmeshed) gets its
// answer passed on, once, without the marker.
func TestNotSentClaimedByAnApplicationIsIgnored(t *testing.T) {
	for _, meshed := range []bool{false, true} {
		f := newFixture(t, discovery.Snapshot{})
		var hits atomic.Int32
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits.Add(1)
			w.Header().Set("l5d-proxy-not-sent", "true")
			w.WriteHeader(http.StatusServiceUnavailable)
		})}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
		ep := discovery.Endpoint{Addr: netip.MustParseAddrPort(ln.Addr().String()), Weight: 1}
		if meshed {
			ep = discovery.Endpoint{Addr: startInbound(t, f.ca, serverID, ep.Addr), Weight: 1, Identity: serverID, HTTP2: true}
		}
		f.watch.set(discovery.Snapshot{State: discovery.Endpoints, Endpoints: []discovery.Endpoint{ep}})
		resp, err := h1Client(t).Post("http://"+f.proxy.String()+"/", "text/plain", strings.NewReader("once"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("l5d-proxy-not-sent") != "" {
			t.Errorf("meshed=%v: %d %v, want the application's 503 without the marker", meshed, resp.StatusCode, resp.Header)
		}
		if n := hits.Load(); n != 1 {
			t.Errorf("meshed=%v: the application got the request %d times, want 1", meshed, n)
		}
	}
}

// An endpoint shutting down refuses, with GOAWAY, a request it never
// processed: the request goes again on a new connection, body and all,
// and the client gets the answer.
func TestRequestRefusedByEndpointSentAgain(t *testing.T) {
	app := h2test.StartRefusing(t)
	f := newFixture(t, discovery.Snapshot{State: discovery.Endpoints, Endpoints: []discovery.Endpoint{{Addr: app.Addr, Weight: 1}}})
	app.CheckSentAgain(t, h2cClient(t), "http://"+f.proxy.String()+"/")
}
