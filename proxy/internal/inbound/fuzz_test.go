package inbound

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// FuzzHTTPThroughProxy sends arbitrary bytes, seeded with HTTP/1 requests,
// to the inbound proxy in front of a real application. Whatever arrives,
// the proxy must not crash, must end the exchange within a bounded time,
// and must go on serving a well-formed request afterwards.
func FuzzHTTPThroughProxy(f *testing.F) {
	for _, seed := range []string{
		"GET / HTTP/1.1\r\nHost: web\r\n\r\n",
		"POST /x HTTP/1.1\r\nHost: web\r\nContent-Length: 5\r\n\r\nhello",
		"POST /x HTTP/1.1\r\nHost: web\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"POST /x HTTP/1.1\r\nHost: web\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: web\r\nX: a\r\n b\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: web\r\nl5d-client-id: forged\r\n\r\n",
		"GET / HTTP/1.0\r\n\r\n",
		"GET /\x00 HTTP/1.1\r\nHost: web\r\n\r\n",
		"GET / HTTP/1.1\nHost: web\n\n",
		"CONNECT web:443 HTTP/1.1\r\nHost: web:443\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
	fx := newFixture(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := net.Dial("tcp", fx.proxy)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		_, _ = c.Write(data)
		_ = c.(*net.TCPConn).CloseWrite()
		// Whatever comes back, the connection must end: the proxy bounds
		// header reads and closes after a bad request.
		if _, err := io.Copy(io.Discard, c); err != nil {
			t.Fatalf("exchange did not end: %v", err)
		}
		c.Close()

		// The proxy still serves.
		ok, err := net.Dial("tcp", fx.proxy)
		if err != nil {
			t.Fatal(err)
		}
		defer ok.Close()
		_ = ok.SetDeadline(time.Now().Add(30 * time.Second))
		if _, err := ok.Write([]byte("GET /health HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(ok), nil)
		if err != nil {
			t.Fatalf("proxy stopped serving after %q: %v", data, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), "proto=HTTP/1.1") {
			t.Fatalf("after %q: %d %q", data, resp.StatusCode, body)
		}
	})
}
