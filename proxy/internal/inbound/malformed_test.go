package inbound

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/linkerd-go/linkerd-go/proxy/internal/h1test"
	"github.com/linkerd-go/linkerd-go/proxy/internal/meshtlstest"
	"github.com/linkerd-go/linkerd-go/proxy/internal/metrics"
)

// malformedFixture is the inbound proxy in front of a recording
// application, for plain HTTP/1 from outside the mesh.
func malformedFixture(t *testing.T) (proxy string, app *h1test.App, m *metrics.Metrics) {
	t.Helper()
	app = h1test.StartApp(t)
	m = metrics.New()
	p := New(Config{
		DetectTimeout: time.Second, ConnectTimeout: time.Second,
		OrigDst: func(net.Conn) (netip.AddrPort, error) { return app.Addr, nil },
	}, meshtlstest.NewCA(t).Store(t, serverID), m, logr.Discard())
	return h1test.Serve(t, p.Serve), app, m
}

// Malformed chunked bodies get the proxy's own 400 and a closed
// connection, counted as the client's error; the application sees no byte
// past the bad chunk and never a complete body.
func TestMalformedChunkedBodiesRefused(t *testing.T) {
	proxy, app, m := malformedFixture(t)
	h1test.CheckMalformedBodies(t, proxy, app)
	h1test.CheckClientErrors(t, m, "inbound", len(h1test.MalformedBodies))
}

// Methods are answered by their shape: a lower-case method is a valid
// (unknown) method and is forwarded like any extension method; a method
// outside the token characters gets the proxy's 400 and a closed
// connection, counted as the client's error.
func TestMethodsAnsweredByShape(t *testing.T) {
	proxy, app, m := malformedFixture(t)
	refused := h1test.CheckMethods(t, proxy, app)
	h1test.CheckClientErrors(t, m, "inbound", refused)
}

// A well-formed request pipelined before a malformed one gets the
// application's answer; the malformed one gets the proxy's 400.
func TestPipelinedBeforeMalformed(t *testing.T) {
	proxy, app, _ := malformedFixture(t)
	all := h1test.Exchange(t, proxy, "POST /first HTTP/1.1\r\nHost: web\r\nContent-Length: 2\r\n\r\nok"+
		"POST /second HTTP/1.1\r\nHost: web\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n"+h1test.Smuggled)
	br := bufio.NewReader(strings.NewReader(all))
	first, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("%q: %v", all, err)
	}
	body, _ := io.ReadAll(first.Body)
	rest, _ := io.ReadAll(br)
	if first.StatusCode != 200 || string(body) != "app saw POST /first" {
		t.Errorf("first: %d %q", first.StatusCode, body)
	}
	if err := h1test.Refusal(string(rest)); err != nil {
		t.Errorf("second: %v", err)
	}
	seen := app.Stop(t)
	if got := seen["/first"]; got != `POST body="ok" err=<nil>` {
		t.Errorf("first reached the application as %q", got)
	}
	if got, ok := seen["/smuggled"]; ok {
		t.Errorf("smuggled: %s", got)
	}
}

// When the application has answered before the bad chunk arrives, the
// proxy may not be able to answer 400 any more: the application's response
// may already be on its way (then it is cut short) or taken in (then it is
// dropped). Whichever happens, the connection is closed and the client
// never gets a complete answer it could take for a success. (Go's HTTP/1
// server sends a response's headers only once the request's body is read,
// so the client sees nothing before it sends the bad chunk.)
func TestMalformedChunkAfterTheApplicationAnswered(t *testing.T) {
	proxy, app, _ := malformedFixture(t)
	c, err := net.Dial("tcp", proxy)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprint(c, "POST /stream HTTP/1.1\r\nHost: web\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
	<-app.Answered
	fmt.Fprint(c, "5\nworld\r\n0\r\n\r\n"+h1test.Smuggled)
	all, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("the proxy did not close the connection: %v (read %q)", err, all)
	}
	if len(all) > 0 && h1test.Refusal(string(all)) != nil {
		resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(string(all))), nil)
		if err != nil || resp.StatusCode != 200 || !resp.Close {
			t.Fatalf("neither the proxy's 400 nor the application's answer cut short: %q", all)
		}
		if rest, err := io.ReadAll(resp.Body); err == nil {
			t.Errorf("the application's answer ended cleanly after a malformed chunk: %q", rest)
		}
	}
	seen := app.Stop(t)
	// The first chunk may or may not have gone out before the connection
	// to the application was dropped; nothing after it did.
	if got := seen["/stream"]; got != "POST body=5 bytes err=unexpected EOF" && got != "POST body=0 bytes err=unexpected EOF" {
		t.Errorf("the application saw %q", got)
	}
	if got, ok := seen["/smuggled"]; ok {
		t.Errorf("smuggled: %s", got)
	}
}
