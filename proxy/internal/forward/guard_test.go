package forward

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/linkerd-go/linkerd-go/proxy/internal/metrics"
)

// run feeds input through a guard in pieces of size step (0: all at once)
// and returns what the server would read, the guard, and the error that
// ended the server's reads.
func run(input []byte, step int) ([]byte, *h1Guard, error) {
	client, server := net.Pipe()
	go func() {
		if step == 0 {
			client.Write(input)
		} else {
			for i := 0; i < len(input); i += step {
				client.Write(input[i:min(i+step, len(input))])
			}
		}
		client.Close()
	}()
	// A guard that stops making progress fails the test instead of
	// hanging it.
	_ = server.SetReadDeadline(time.Now().Add(10 * time.Second))
	g := GuardHTTP1(server).(*h1Guard)
	out, err := io.ReadAll(g)
	server.Close() // the writer may be blocked on what the guard did not read
	if errors.Is(err, os.ErrDeadlineExceeded) {
		panic(fmt.Sprintf("guard stuck after %q on %q", out, input))
	}
	return out, g, err
}

const chunkedHead = "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"

func TestGuardPassesWellFramedRequests(t *testing.T) {
	in := []byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n" +
		"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello" +
		chunkedHead + "5;ext=1\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n" +
		// Extensions of every shape the grammar allows, sizes with
		// leading zeros and in both cases, a last chunk of zeros with an
		// extension.
		chunkedHead + "5 ; a = b ;c;d=\"q \\\"x\\\\ \tz\"\r\nhello\r\n000A\r\n0123456789\r\na;x=\"\"\r\n0123456789\r\n00;last\r\n\r\n" +
		"get /lower-case-method HTTP/1.1\r\nHost: a\r\n\r\n" +
		"M-SEARCH * HTTP/1.1\r\nHost: a\r\n\r\n" +
		"GET /%7e?q=%C3%A9&r=\xc3\xa9 HTTP/1.0\r\nX-Empty:\r\nX-Obs-Text: caf\xe9\r\n\r\n" +
		"GET /z HTTP/1.1\r\nHost: a\r\n\r\n")
	for _, step := range []int{0, 1, 3, 7} {
		got, g, err := run(in, step)
		if !bytes.Equal(got, in) || err != nil || g.refusal.Load() != nil {
			t.Errorf("step %d: guard changed a well-framed stream (%v, refusal %v):\n%q", step, err, g.refusal.Load(), got)
		}
	}
}

// A request refused in its head never reaches the server: the server
// reads the requests before it, then the replacement, then nothing (what
// the client sends after is dropped until it closes).
func TestGuardRefusesHeads(t *testing.T) {
	prefix := "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
	big := "GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("a", maxHeadBytes) + "\r\n\r\n"
	for name, tc := range map[string]struct {
		req    string
		status int
	}{
		"CL and TE":                {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		"TE not chunked":           {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", 400},
		"two TE":                   {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		"TE in HTTP/1.0":           {"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		"differing CL":             {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400},
		"negative CL":              {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400},
		"signed CL":                {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\na", 400},
		"CL list":                  {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 1\r\n\r\na", 400},
		"obs-fold":                 {"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", 400},
		"bare LF":                  {"GET / HTTP/1.1\nHost: a\n\n", 400},
		"bare LF in a field":       {"GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", 400},
		"bare CR":                  {"GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", 400},
		"NUL":                      {"GET / HTTP/1.1\r\nHost: a\x00\r\n\r\n", 400},
		"control in a field":       {"GET / HTTP/1.1\r\nHost: a\x01\r\n\r\n", 400},
		"header without colon":     {"GET / HTTP/1.1\r\nHost a\r\n\r\n", 400},
		"space before colon":       {"GET / HTTP/1.1\r\nHost: a\r\nContent-Length : 1\r\n\r\na", 400},
		"method outside tchar":     {"G@T / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		"method with a slash":      {"GET/ / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		"two spaces":               {"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		"space in target":          {"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		"NUL in target":            {"GET /\x00 HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		"HTTP/2.0 line":            {"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 400},
		"lower-case version":       {"GET / http/1.1\r\nHost: a\r\n\r\n", 400},
		"no version":               {"GET /\r\nHost: a\r\n\r\n", 400},
		"empty request line":       {"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		"the replacement's marker": {"GET / HTTP/1.1\r\nHost: a\r\n" + refusedHeader + ": 1\r\n\r\n", 400},
		"head too large":           {big, 431},
	} {
		checkRefused(t, name, prefix+tc.req, prefix+string(replacementRequest), nil, false, tc.status)
	}
}

// A request refused after its head: the server reads the head and what
// was valid before the bad bytes, then its reads fail.
func TestGuardRefusesBodies(t *testing.T) {
	for name, tc := range map[string]struct{ body, valid string }{
		"bad chunk size":             {"zz\r\n", ""},
		"empty chunk size":           {";a\r\n", ""},
		"chunk size too large":       {"5\r\nhello\r\n1000000000000000000000000\r\nx\r\n0\r\n\r\n", "5\r\nhello\r\n1000000000000000"},
		"64-bit overflow":            {"10000000000000000\r\nx\r\n0\r\n\r\n", "1000000000000000"},
		"63-bit overflow":            {"8000000000000000\r\nx\r\n", "800000000000000"},
		"17 digits":                  {"00000000000000001\r\nx\r\n0\r\n\r\n", "0000000000000000"},
		"0x prefix":                  {"0x5\r\nhello\r\n0\r\n\r\n", "0"},
		"LF-only chunk line":         {"5\nhello\r\n0\r\n\r\n", "5"},
		"LF-only lines":              {"5\nhello\n0\n\n", "5"},
		"LF-only after data":         {"5\r\nhello\n0\r\n\r\n", "5\r\nhello"},
		"LF-only last chunk":         {"5\r\nhello\r\n0\n\r\n", "5\r\nhello\r\n0"},
		"CR without LF":              {"5\rhello\r\n", "5\r"},
		"chunk without CRLF":         {"1\r\nxY\r\n0\r\n\r\n", "1\r\nx"},
		"trailing space after size":  {"5 \r\nhello\r\n0\r\n\r\n", "5 "},
		"extension without name":     {"5;\r\nhello\r\n", "5;"},
		"extension name with space":  {"5;a b\r\nhello\r\n", "5;a "},
		"extension without value":    {"5;a=\r\nhello\r\n", "5;a="},
		"extension name not a token": {"5;a@b\r\nhello\r\n", "5;a"},
		"unterminated quoted value":  {"5;a=\"x\r\nhello\r\n", "5;a=\"x"},
		"control in quoted value":    {"5;a=\"x\x01\"\r\nhello\r\n", "5;a=\"x"},
		"trailing space after ext":   {"5;a=b \r\nhello\r\n", "5;a=b "},
		"two extension values":       {"5;a=b=c\r\nhello\r\n", "5;a=b"},
		"NUL in extension":           {"5;a\x00\r\nhello\r\n", "5;a"},
		"chunk line too long":        {"5;a=" + strings.Repeat("b", maxChunkLine) + "\r\nhello\r\n", "5;a=" + strings.Repeat("b", maxChunkLine-4)},
		"trailer without colon":      {"0\r\nX-Trailer\r\n\r\n", "0\r\nX-Trailer"},
		"trailer obs-fold":           {"0\r\nX: a\r\n b\r\n\r\n", "0\r\nX: a\r\n"},
		"trailer bare LF":            {"0\r\nX: a\n\r\n", "0\r\nX: a"},
		"trailer ends with bare LF":  {"0\r\nX: a\r\n\n", "0\r\nX: a\r\n"},
		"trailer with NUL":           {"0\r\nX: a\x00\r\n\r\n", "0\r\nX: a"},
		"trailer Content-Length":     {"0\r\nContent-Length: 5\r\n\r\n", "0\r\nContent-Length"},
		"trailer Transfer-Encoding":  {"0\r\ntransfer-ENCODING: chunked\r\n\r\n", "0\r\ntransfer-ENCODING"},
		"trailer Host":               {"0\r\nHost: b\r\n\r\n", "0\r\nHost"},
		"trailer section too large":  {"0\r\nX: " + strings.Repeat("a", maxTrailerBytes) + "\r\n\r\n", "0\r\nX: " + strings.Repeat("a", maxTrailerBytes-3)},
	} {
		checkRefused(t, name, chunkedHead+tc.body, chunkedHead+tc.valid, errRefusedRequest, true, 400)
	}
}

// checkRefused feeds in, followed by a request that must not be read, in
// a few ways of splitting it, and checks what the server reads, the error
// that ends its reads and the refusal.
func checkRefused(t *testing.T, name, in, read string, end error, inRequest bool, status int) {
	t.Helper()
	for _, step := range []int{0, 1, 5} {
		got, g, err := run([]byte(in+"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"), step)
		ref := g.refusal.Load()
		if string(got) != read || !errors.Is(err, end) || ref == nil || ref.inRequest != inRequest || ref.status != status {
			t.Errorf("%s, step %d: server read %q, %v; refusal %+v", name, step, got, err, ref)
		}
	}
}

// Chunk-size lines and trailer sections at the limits: the largest valid
// ones pass, one byte more is refused.
func TestGuardChunkLimits(t *testing.T) {
	line := "1;" + strings.Repeat("e", maxChunkLine-4) + "\r\n" // maxChunkLine bytes
	trailer := "X: " + strings.Repeat("a", maxTrailerBytes-7) + "\r\n\r\n"
	for name, tc := range map[string]struct {
		body string
		ok   bool
	}{
		"longest chunk line":       {line + "x\r\n0\r\n\r\n", true},
		"chunk line one too long":  {"1;e" + line[2:] + "x\r\n0\r\n\r\n", false},
		"largest trailer section":  {"0\r\n" + trailer, true},
		"trailer one byte too big": {"0\r\nX: a" + trailer[3:], false},
		"largest chunk size":       {"7fffffffffffffff\r\nabc", true},
		"16 digits":                {"0000000000000001\r\nx\r\n0\r\n\r\n", true},
		// One byte per chunk is legitimate streaming.
		"many one-byte chunks": {strings.Repeat("1\r\nx\r\n", 20000) + "0\r\n\r\n", true},
		// Long extensions on tiny chunks are framing without data.
		"framing without data": {strings.Repeat("1;"+strings.Repeat("e", 500)+"\r\nx\r\n", 100) + "0\r\n\r\n", false},
	} {
		in := chunkedHead + tc.body
		got, g, err := run([]byte(in), 0)
		if tc.ok && (string(got) != in || err != nil || g.refusal.Load() != nil) {
			t.Errorf("%s: refused (%v, %+v)", name, err, g.refusal.Load())
		}
		if !tc.ok && (!errors.Is(err, errRefusedRequest) || g.refusal.Load() == nil) {
			t.Errorf("%s: not refused (%v)", name, err)
		}
	}
}

// A request that asks to switch protocols has its body followed first: a
// body that looks like requests is not taken for them, and what follows
// the body is checked once the switch is refused.
func TestGuardFollowsTheBodyOfASwitchRequest(t *testing.T) {
	body := "POST /inner HTTP/1.1\r\nContent-Length: 100\r\n\r\n"
	in := "POST / HTTP/1.1\r\nHost: a\r\nUpgrade: x\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body +
		"POST /next HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
	client, server := net.Pipe()
	defer client.Close()
	g := GuardHTTP1(server).(*h1Guard)
	go client.Write([]byte(in))
	buf := make([]byte, 4096)
	n, err := g.Read(buf)
	if err != nil || string(buf[:n]) != in[:strings.Index(in, "POST /next")] {
		t.Fatalf("first read %q, %v", buf[:n], err)
	}
	// The application refuses the switch; what the client sent next is
	// checked, without waiting for more bytes from it.
	go io.Copy(io.Discard, client)
	if _, err := g.Write([]byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	rest := make([]byte, len(replacementRequest))
	if _, err := io.ReadFull(g, rest); err != nil || string(rest) != string(replacementRequest) {
		t.Errorf("after the refused switch the server read %q, %v", rest, err)
	}
}

// Each read gives the server at most one request, so that a failure in a
// pipelined request's body is never returned to a read the server makes
// while it still handles an earlier one.
func TestGuardReadsOneRequestAtATime(t *testing.T) {
	reqs := []string{
		"GET /1 HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc",
		chunkedHead + "3\r\nabc\r\n0\r\n\r\n",
		chunkedHead + "3\r\nabc\r\nzz\r\n",
	}
	client, server := net.Pipe()
	g := GuardHTTP1(server)
	go func() {
		client.Write([]byte(strings.Join(reqs, "")))
		client.Close()
	}()
	buf := make([]byte, 4096)
	var got []string
	for {
		n, err := g.Read(buf)
		if err != nil {
			if !errors.Is(err, errRefusedRequest) {
				t.Errorf("last read: %v", err)
			}
			break
		}
		got = append(got, string(buf[:n]))
	}
	want := append(reqs[:3:3], chunkedHead+"3\r\nabc\r\n")
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("reads:\n%q\nwant\n%q", got, want)
	}
}

// After a refused head, what the client sends is dropped and the reads end
// only when the client closes.
func TestGuardDropsBytesAfterARefusedHead(t *testing.T) {
	client, server := net.Pipe()
	g := GuardHTTP1(server)
	go client.Write([]byte("G@T / HTTP/1.1\r\nHost: a\r\n\r\n"))
	buf := make([]byte, len(replacementRequest))
	if _, err := io.ReadFull(g, buf); err != nil || string(buf) != string(replacementRequest) {
		t.Fatalf("replacement %q, %v", buf, err)
	}
	done := make(chan error, 1)
	go func() {
		n, err := g.Read(buf)
		if n != 0 {
			err = errors.New("read " + string(buf[:n]))
		}
		done <- err
	}()
	client.Write([]byte("GET /after HTTP/1.1\r\nHost: a\r\n\r\n"))
	client.Close()
	if err := <-done; err != io.EOF {
		t.Errorf("read after the refusal: %v, want EOF once the client closed", err)
	}
}

// The replacement request is answered by RefuseMalformed: 400 with
// l5d-proxy-error, Connection: close, counted as the client's error.
func TestRefuseMalformedAnswersAndCounts(t *testing.T) {
	g := GuardHTTP1(nil).(*h1Guard)
	g.refuseHead(http.StatusBadRequest, "invalid method")
	m := metrics.New()
	h := m.For(metrics.Labels{Direction: "inbound"})

	// An ordinary request on the connection is left alone.
	plain := httptest.NewRequest("GET", "/", nil).WithContext(guardContext(t.Context(), g))
	if RefuseMalformed(httptest.NewRecorder(), plain, h) {
		t.Fatal("refused a request without the marker")
	}
	// The marker means nothing on a connection without a guard.
	forged := httptest.NewRequest("GET", "/", nil)
	forged.Header.Set(refusedHeader, "1")
	if RefuseMalformed(httptest.NewRecorder(), forged, h) {
		t.Fatal("refused a request of an unguarded connection")
	}

	r := httptest.NewRequest("GET", "/", nil).WithContext(guardContext(t.Context(), g))
	r.Header.Set(refusedHeader, "1")
	w := httptest.NewRecorder()
	if !RefuseMalformed(w, r, h) {
		t.Fatal("replacement not answered")
	}
	if w.Code != 400 || w.Header().Get("L5d-Proxy-Error") != "malformed request: invalid method" || w.Header().Get("Connection") != "close" {
		t.Errorf("answer %d %v", w.Code, w.Header())
	}
	assertCounted(t, m, "400")
}

// A body refused while it was being forwarded makes the round trip fail;
// the reverse proxy's error handler answers the client's 400 instead of a
// 502, counted as the client's error.
func TestRefusedBodyIsTheClientsError(t *testing.T) {
	g := GuardHTTP1(nil).(*h1Guard)
	rp := NewReverseProxy(roundTripFunc(func(*http.Request) (*http.Response, error) {
		g.fail("invalid chunk size") // the body failed while being sent
		return nil, errors.New("body read failed")
	}), func(*httputil.ProxyRequest) {})
	m := metrics.New()
	h := m.For(metrics.Labels{Direction: "outbound"})
	r := httptest.NewRequest("POST", "http://web/", strings.NewReader("x")).WithContext(guardContext(t.Context(), g))
	w := httptest.NewRecorder()
	h.Requests.Inc() // as the sides do
	rec := NewRecorder(w)
	rp.ServeHTTP(rec, r)
	rec.Done(h)
	if w.Code != 400 || !strings.HasPrefix(w.Header().Get("L5d-Proxy-Error"), ErrMalformedRequest) || w.Header().Get("Connection") != "close" {
		t.Errorf("answer %d %v", w.Code, w.Header())
	}
	assertCounted(t, m, "400")

	// Without a refusal, a failed round trip is still the upstream's.
	ok := GuardHTTP1(nil).(*h1Guard)
	rp = NewReverseProxy(roundTripFunc(func(*http.Request) (*http.Response, error) {
		return nil, errors.New("upstream gone")
	}), func(*httputil.ProxyRequest) {})
	w = httptest.NewRecorder()
	rp.ServeHTTP(w, httptest.NewRequest("GET", "http://web/", nil).WithContext(guardContext(t.Context(), ok)))
	if w.Code != http.StatusBadGateway {
		t.Errorf("upstream failure answered %d", w.Code)
	}
}

func assertCounted(t *testing.T, m *metrics.Metrics, status string) {
	t.Helper()
	if got := m.Sample("request_total", nil); got != 1 {
		t.Errorf("request_total = %v", got)
	}
	if got := m.Sample("response_total", map[string]string{"status_code": status, "classification": "success", "error": ErrMalformedRequest}); got != 1 {
		t.Errorf("response_total{status_code=%s,classification=success,error=malformed request} = %v", status, got)
	}
	if got := m.Sample("response_total", map[string]string{"classification": "failure"}); got != 0 {
		t.Errorf("counted as a failure: %v", got)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func FuzzGuardSplitIndependence(f *testing.F) {
	f.Add([]byte("POST /y HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n"), 3)
	f.Add([]byte("GET / HTTP/1.1\r\nContent-Length: 2\r\n\r\nabGET"), 1)
	f.Fuzz(func(t *testing.T, in []byte, step int) {
		if step < 1 || step > 64 || len(in) > 8<<10 {
			return
		}
		whole, wg, werr := run(in, 0)
		pieces, pg, perr := run(in, step)
		if !bytes.Equal(whole, pieces) || (werr == nil) != (perr == nil) || (wg.refusal.Load() == nil) != (pg.refusal.Load() == nil) {
			t.Fatalf("output depends on how bytes arrive:\nwhole  %q %v\npieces %q %v", whole, werr, pieces, perr)
		}
	})
}
