package h2test

import (
	"encoding/binary"
	"errors"
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
)

// Refusing is an h2c (and HTTP/1) application that does what a real
// server only does in a race while it shuts down (a gRPC server's graceful
// stop, http.Server.Shutdown): refuse a stream it never processed. Its
// first connection answers the first request on it with a GOAWAY whose
// last stream ID 0 says that nothing was processed; every later
// connection is served by a real server that answers with the request
// body it read.
type Refusing struct {
	Addr netip.AddrPort
	// Refused counts the streams refused.
	Refused atomic.Int32

	ln    net.Listener
	later chan net.Conn
	mu    sync.Mutex
	conns []net.Conn
}

// StartRefusing starts the application on loopback; it stops at the end
// of the test.
func StartRefusing(t testing.TB) *Refusing {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := &Refusing{Addr: netip.MustParseAddrPort(ln.Addr().String()), ln: ln, later: make(chan net.Conn)}
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		fmt.Fprintf(w, "got %q %v", b, err)
	})
	srv := &http.Server{Protocols: &protocols, Handler: h, ReadHeaderTimeout: 5 * time.Second}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); a.accept() }()
	go func() { defer wg.Done(); _ = srv.Serve(laterListener{a}) }()
	t.Cleanup(func() {
		ln.Close()
		srv.Close()
		a.mu.Lock()
		for _, c := range a.conns {
			c.Close()
		}
		a.mu.Unlock()
		wg.Wait()
	})
	return a
}

// CheckSentAgain posts a body to url, where a proxy forwards it to the
// application, and fails t unless the client got the application's answer
// to the whole body after the application refused it once.
func (a *Refusing) CheckSentAgain(t testing.TB, client *http.Client, url string) {
	t.Helper()
	resp, err := client.Post(url, "application/octet-stream", strings.NewReader("payload"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(b) != `got "payload" <nil>` {
		t.Errorf("got %d %v %q, want the application's answer to the whole body", resp.StatusCode, resp.Header, b)
	}
	if n := a.Refused.Load(); n != 1 {
		t.Errorf("the application refused %d streams, want 1", n)
	}
}

func (a *Refusing) accept() {
	defer close(a.later)
	var refusers sync.WaitGroup
	defer refusers.Wait()
	for first := true; ; first = false {
		c, err := a.ln.Accept()
		if err != nil {
			return
		}
		a.mu.Lock()
		a.conns = append(a.conns, c)
		a.mu.Unlock()
		if first {
			refusers.Add(1)
			go func() { defer refusers.Done(); a.refuse(c) }()
			continue
		}
		a.later <- c
	}
}

// refuse speaks just enough HTTP/2 to take a request and refuse it. After
// the GOAWAY it stops writing and reads until the client closes, so that
// the GOAWAY is read before the connection ends.
func (a *Refusing) refuse(c net.Conn) {
	defer c.Close()
	preface := make([]byte, len(Preface))
	if _, err := io.ReadFull(c, preface); err != nil || string(preface) != Preface {
		return
	}
	if _, err := c.Write(Frame(FrameSettings, 0, 0, nil)); err != nil {
		return
	}
	hdr := make([]byte, 9)
	for {
		if _, err := io.ReadFull(c, hdr); err != nil {
			return
		}
		n := int(hdr[0])<<16 | int(hdr[1])<<8 | int(hdr[2])
		if _, err := io.CopyN(io.Discard, c, int64(n)); err != nil {
			return
		}
		switch {
		case hdr[3] == FrameSettings && hdr[4]&FlagAck == 0:
			if _, err := c.Write(Frame(FrameSettings, FlagAck, 0, nil)); err != nil {
				return
			}
		case hdr[3] == FrameHeaders:
			a.Refused.Add(1)
			payload := binary.BigEndian.AppendUint32(make([]byte, 4), 0) // last stream 0, NO_ERROR
			if _, err := c.Write(Frame(FrameGoAway, 0, 0, payload)); err != nil {
				return
			}
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.CloseWrite()
			}
			_, _ = io.Copy(io.Discard, c)
			return
		}
	}
}

// laterListener hands the real server the connections after the first.
type laterListener struct{ a *Refusing }

func (l laterListener) Accept() (net.Conn, error) {
	c, ok := <-l.a.later
	if !ok {
		return nil, errors.New("listener closed")
	}
	return c, nil
}
func (l laterListener) Close() error   { return nil }
func (l laterListener) Addr() net.Addr { return l.a.ln.Addr() }
