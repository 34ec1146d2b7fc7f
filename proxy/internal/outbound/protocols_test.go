package outbound

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/linkerd-go/linkerd-go/proxy/internal/discovery"
)

// protocolApp exercises what HTTP can do: upgrades, full-duplex streams,
// large bodies and Expect: 100-continue.
func protocolApp(t *testing.T) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/upgrade", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "echo" {
			http.Error(w, "want Upgrade: echo", 400)
			return
		}
		c, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		fmt.Fprint(rw, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		rw.Flush()
		io.Copy(c, rw)
	})
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		// Echo each line as soon as it arrives: the client only sends the
		// next line after reading the previous echo.
		rc := http.NewResponseController(w)
		_ = rc.EnableFullDuplex()
		w.WriteHeader(200)
		rc.Flush()
		s := bufio.NewScanner(r.Body)
		for s.Scan() {
			fmt.Fprintln(w, "echo:"+s.Text())
			rc.Flush()
		}
	})
	mux.HandleFunc("/digest", func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, _ := io.Copy(h, r.Body)
		fmt.Fprintf(w, "%d %s", n, hex.EncodeToString(h.Sum(nil)))
	})
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: mux, Protocols: &protocols, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return netip.MustParseAddrPort(ln.Addr().String())
}

func meshedFixture(t *testing.T) *fixture {
	f := newFixture(t, discovery.Snapshot{})
	app := protocolApp(t)
	f.watch.set(discovery.Snapshot{State: discovery.Endpoints, Endpoints: []discovery.Endpoint{{Addr: startInbound(t, f.ca, serverID, app), Identity: serverID, HTTP2: true}}})
	return f
}

// An upgrade (WebSocket-style) passes through both proxies and then
// carries bytes both ways.
func TestUpgradeThroughMesh(t *testing.T) {
	f := meshedFixture(t)
	c, err := net.Dial("tcp", f.proxy.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "GET /upgrade HTTP/1.1\r\nHost: web\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade response: %v %v", resp, err)
	}
	for _, msg := range []string{"ping\n", "pong\n"} {
		fmt.Fprint(c, msg)
		got, err := br.ReadString('\n')
		if err != nil || got != msg {
			t.Fatalf("after upgrade: %q, %v", got, err)
		}
	}
}

// A full-duplex HTTP/2 stream (gRPC bidirectional streaming) works through
// both proxies: each echo arrives before the next message is sent.
func TestBidirectionalStreamThroughMesh(t *testing.T) {
	f := meshedFixture(t)
	pr, pw := io.Pipe()
	req, _ := http.NewRequest(http.MethodPost, "http://"+f.proxy.String()+"/stream", pr)
	resp, err := h2cClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	for i := range 5 {
		fmt.Fprintf(pw, "msg%d\n", i)
		line, err := br.ReadString('\n')
		if err != nil || line != fmt.Sprintf("echo:msg%d\n", i) {
			t.Fatalf("message %d: %q, %v", i, line, err)
		}
	}
	pw.Close()
}

// Large chunked request bodies arrive intact, with 100-continue honoured.
func TestLargeChunkedBodyWithExpectContinue(t *testing.T) {
	f := meshedFixture(t)
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<18) // 4 MiB
	want := sha256.Sum256(data)
	req, _ := http.NewRequest(http.MethodPost, "http://"+f.proxy.String()+"/digest", io.NopCloser(bytes.NewReader(data)))
	req.ContentLength = -1 // chunked
	req.Header.Set("Expect", "100-continue")
	tr := &http.Transport{ExpectContinueTimeout: time.Minute}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if exp := fmt.Sprintf("%d %s", len(data), hex.EncodeToString(want[:])); string(b) != exp {
		t.Fatalf("digest %q, want %q", b, exp)
	}
}

// Pipelined HTTP/1 requests on one connection get their responses in
// order.
func TestPipelining(t *testing.T) {
	f := meshedFixture(t)
	c, err := net.Dial("tcp", f.proxy.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "POST /digest HTTP/1.1\r\nHost: web\r\nContent-Length: 1\r\n\r\na"+
		"POST /digest HTTP/1.1\r\nHost: web\r\nContent-Length: 2\r\n\r\nbb")
	br := bufio.NewReader(c)
	for _, want := range []string{"1 ", "2 "} {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.HasPrefix(string(b), want) {
			t.Fatalf("pipelined response %q, want prefix %q", b, want)
		}
	}
}
