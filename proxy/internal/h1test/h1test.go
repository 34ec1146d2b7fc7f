// Package h1test drives the proxy with raw HTTP/1 bytes in tests: an
// application that records what each request brought it, exchanges of raw
// bytes on a connection, and checks of the proxy's answers to malformed
// requests; and an address that refuses connections, for the application
// that is gone.
package h1test

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
	"testing"
	"time"

	"github.com/linkerd-go/linkerd-go/proxy/internal/metrics"
)

// App is an application that reads each request's body whole and notes
// what it got, by path. Its /stream path answers before reading the body
// (signalling Answered once the headers are out), then echoes the body.
type App struct {
	Addr netip.AddrPort
	// Answered is signalled when /stream has sent its response's headers.
	Answered chan struct{}

	srv  *http.Server
	mu   sync.Mutex
	seen map[string]string // path → "method body=… err=…"
}

// StartApp runs an App until the test ends.
func StartApp(t testing.TB) *App {
	t.Helper()
	a := &App{seen: map[string]string{}, Answered: make(chan struct{}, 1)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	a.srv = &http.Server{Protocols: &protocols, ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/stream" {
			rc := http.NewResponseController(w)
			_ = rc.EnableFullDuplex()
			w.WriteHeader(200)
			_ = rc.Flush()
			a.Answered <- struct{}{}
			n, err := io.Copy(w, r.Body)
			a.note(r, fmt.Sprintf("%d bytes", n), err)
			return
		}
		b, err := io.ReadAll(r.Body)
		a.note(r, fmt.Sprintf("%q", b), err)
		fmt.Fprintf(w, "app saw %s %s", r.Method, r.URL.Path)
	})}
	go a.srv.Serve(ln)
	t.Cleanup(func() { a.srv.Close() })
	a.Addr = netip.MustParseAddrPort(ln.Addr().String())
	return a
}

func (a *App) note(r *http.Request, body string, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.seen[r.URL.Path] = fmt.Sprintf("%s body=%s err=%v", r.Method, body, err)
}

// Stop waits until every request the application received is done, and
// returns what it saw, by path.
func (a *App) Stop(t testing.TB) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.srv.Shutdown(ctx); err != nil {
		t.Fatalf("application did not finish its requests: %v", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.seen
}

// Serve runs a side's Serve on a loopback listener until the test ends,
// and returns the listener's address.
func Serve(t testing.TB, serve func(context.Context, net.Listener, time.Duration) error) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, ln, time.Second) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// Exchange sends raw on a new connection to addr and returns everything
// that came back before the connection was closed.
func Exchange(t testing.TB, addr, raw string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	all, err := io.ReadAll(c) // ends only when the proxy closes
	if err != nil {
		t.Fatalf("%q: the proxy did not close the connection: %v (read %q)", raw, err, all)
	}
	return string(all)
}

// Refusal reports whether all, what came back on a connection, is the
// proxy's own 400 of a refused request, alone on a connection it closed.
func Refusal(all string) error {
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(all)), nil)
	if err != nil {
		return fmt.Errorf("no response: %v in %q", err, all)
	}
	if resp.StatusCode != 400 || !strings.HasPrefix(resp.Header.Get("L5d-Proxy-Error"), "malformed request") || !resp.Close || strings.Count(all, "HTTP/1.1 ") != 1 {
		return fmt.Errorf("not the proxy's own 400 and close: %q", all)
	}
	return nil
}

// MalformedBodies are chunked bodies the proxy refuses (the four of issue
// 17 item 6, then their kin), each beginning with a valid 5-byte chunk
// "hello" where there is one.
var MalformedBodies = []struct{ Name, Body string }{
	{"chunk size too large", "5\r\nhello\r\n1000000000000000000000000\r\nx\r\n0\r\n\r\n"},
	{"64-bit overflow", "5\r\nhello\r\n10000000000000005\r\nhello\r\n0\r\n\r\n"},
	{"LF-only chunk lines", "5\nhello\n0\n\n"},
	{"bad chunk extension", "5;a b\r\nhello\r\n0\r\n\r\n"},
	{"LF-only after data", "5\r\nhello\n0\r\n\r\n"},
	{"unterminated quoted extension", "5;a=\"x\r\nhello\r\n0\r\n\r\n"},
	{"framing field in trailers", "5\r\nhello\r\n0\r\nContent-Length: 5\r\n\r\n"},
}

// Smuggled follows a malformed request on the wire; it must never reach
// the application.
const Smuggled = "GET /smuggled HTTP/1.1\r\nHost: web\r\n\r\n"

// CheckMalformedBodies sends each of MalformedBodies to addr as
// POST /caseN and checks the proxy's answers and what app saw: at most
// the first chunk and a failed body (the head may have gone out before the
// bad chunk arrived), never a complete body, never the smuggled request.
func CheckMalformedBodies(t *testing.T, addr string, app *App) {
	t.Helper()
	for i, tc := range MalformedBodies {
		all := Exchange(t, addr, fmt.Sprintf("POST /case%d HTTP/1.1\r\nHost: web\r\nTransfer-Encoding: chunked\r\n\r\n", i)+tc.Body+Smuggled)
		if err := Refusal(all); err != nil {
			t.Errorf("%s: %v", tc.Name, err)
		}
	}
	seen := app.Stop(t)
	for i, tc := range MalformedBodies {
		got, ok := seen[fmt.Sprintf("/case%d", i)]
		if ok && (!strings.HasPrefix(got, `POST body="hello" err=`) && !strings.HasPrefix(got, `POST body="" err=`) || strings.HasSuffix(got, "err=<nil>")) {
			t.Errorf("%s: the application saw %s", tc.Name, got)
		}
	}
	if got, ok := seen["/smuggled"]; ok {
		t.Errorf("the request behind a malformed body reached the application: %s", got)
	}
}

// CheckMethods sends requests with valid methods the proxy does not know
// (they must be forwarded) and with methods outside the token characters
// (they must get the proxy's 400), and checks what app saw. It returns
// how many were refused.
func CheckMethods(t *testing.T, addr string, app *App) int {
	t.Helper()
	for _, method := range []string{"get", "M-SEARCH", "PROPFIND"} {
		all := Exchange(t, addr, method+" /"+method+" HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n")
		if !strings.HasPrefix(all, "HTTP/1.1 200 ") || !strings.Contains(all, "app saw "+method+" /"+method) {
			t.Errorf("%s: %q", method, all)
		}
	}
	refused := []string{"G@T", "G(T", "GE[T"}
	for _, method := range refused {
		if err := Refusal(Exchange(t, addr, method+" /refused HTTP/1.1\r\nHost: web\r\n\r\n"+Smuggled)); err != nil {
			t.Errorf("%q: %v", method, err)
		}
	}
	seen := app.Stop(t)
	for _, path := range []string{"/refused", "/smuggled"} {
		if got, ok := seen[path]; ok {
			t.Errorf("%s reached the application: %s", path, got)
		}
	}
	return len(refused)
}

// CheckClientErrors checks that n responses of a direction were the
// proxy's 400s counted as the client's error, and none as a failure.
func CheckClientErrors(t *testing.T, m *metrics.Metrics, direction string, n int) {
	t.Helper()
	if got := m.Sample("response_total", map[string]string{"direction": direction, "status_code": "400", "classification": "success", "error": "malformed request"}); got != float64(n) {
		t.Errorf("response_total{direction=%s,status_code=400,classification=success,error=malformed request} = %v, want %d", direction, got, n)
	}
	if got := m.Sample("response_total", map[string]string{"direction": direction, "classification": "failure"}); got != 0 {
		t.Errorf("response_total{direction=%s,classification=failure} = %v, want 0", direction, got)
	}
}

// DeadAddr is a loopback address nothing listens on: connects to it are
// refused.
func DeadAddr(t testing.TB) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := netip.MustParseAddrPort(ln.Addr().String())
	ln.Close()
	return a
}
