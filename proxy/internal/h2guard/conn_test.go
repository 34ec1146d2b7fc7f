package h2guard

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// pipe is a guarded connection over net.Pipe: the test plays the client on
// one end and the HTTP/2 server (a reader goroutine and writes) on the
// guarded other end.
type pipe struct {
	client  net.Conn
	guard   *Conn
	tripped chan Reason // what the guard reported
	readErr chan error  // what the server's reader ended with
	got     chan []byte // everything the client received, at EOF

	mu   sync.Mutex
	cond *sync.Cond
	fed  bytes.Buffer // what the server read
}

func newPipe(t *testing.T, l Limits) *pipe {
	t.Helper()
	c, s := net.Pipe()
	p := &pipe{client: c, tripped: make(chan Reason, 10), readErr: make(chan error, 1), got: make(chan []byte, 1)}
	p.cond = sync.NewCond(&p.mu)
	p.guard = Wrap(s, l, func(r Reason) { p.tripped <- r })
	go func() {
		buf := make([]byte, 512)
		for {
			n, err := p.guard.Read(buf)
			p.mu.Lock()
			p.fed.Write(buf[:n])
			p.cond.Broadcast()
			p.mu.Unlock()
			if err != nil {
				p.guard.Close()
				p.readErr <- err
				return
			}
		}
	}()
	go func() {
		b, _ := io.ReadAll(c)
		p.got <- b
	}()
	t.Cleanup(func() { c.Close(); s.Close() })
	return p
}

// send writes b as the client, in the background: the guard stops
// reading once it trips, and lingering drains the rest.
func (p *pipe) send(b []byte) {
	go func() { _, _ = p.client.Write(b) }()
}

// waitFed waits until the server has read n bytes.
func (p *pipe) waitFed(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.fed.Len() < n {
		p.cond.Wait()
	}
}

// trips returns what the guard reported, once the connection is done.
func (p *pipe) trips() []Reason {
	var r []Reason
	for {
		select {
		case x := <-p.tripped:
			r = append(r, x)
		default:
			return r
		}
	}
}

// lastGoAway checks that b ends with a GOAWAY ENHANCE_YOUR_CALM and
// returns what came before it and its last stream id.
func lastGoAway(t *testing.T, b []byte) (before []byte, lastID uint32) {
	t.Helper()
	p := newServerParser()
	off, start := 0, -1
	var last frame
	for off < len(b) {
		if p.atBoundary() {
			start = off
		}
		n, got, _ := p.step(b[off:])
		off += n
		if got {
			last = p.f
		}
	}
	if last.typ != frameGoAway || !p.atBoundary() {
		t.Fatalf("the client's last frame is %+v, not a whole GOAWAY", last)
	}
	payload := b[start+frameHeaderLen:]
	if code := binary.BigEndian.Uint32(payload[4:8]); code != codeEnhanceYourCalm {
		t.Fatalf("GOAWAY code %#x", code)
	}
	return b[:start], binary.BigEndian.Uint32(payload[:4])
}

// The server was writing a frame when the client flooded: the client gets
// the whole frame, then the GOAWAY, then the end of the connection, and
// the server reads nothing of the flood past the budget.
func TestConnGoAwayAfterTheServersFrame(t *testing.T) {
	p := newPipe(t, Limits{Settings: Budget{Burst: 10, PerSecond: 1}})
	settings := fr(frameSettings, 0, 0, nil)
	data := dataFrame(1, flagEndStream, bytes.Repeat([]byte("x"), 1000))
	if _, err := p.guard.Write(cat(settings, data[:300])); err != nil {
		t.Fatal(err)
	}
	p.send(cat([]byte(Preface), headers(1), repeat(settings, 50)))
	// The reader trips and waits for the rest of the frame to go out,
	// then the GOAWAY.
	if r := <-p.tripped; r != Settings {
		t.Fatalf("tripped %q", r)
	}
	if _, err := p.guard.Write(data[300:]); err != nil {
		t.Fatal(err)
	}
	if err := <-p.readErr; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("the server read %v", err)
	}
	var fe *FloodError
	got := <-p.got
	before, last := lastGoAway(t, got)
	if !bytes.Equal(before, cat(settings, data)) {
		t.Errorf("before the GOAWAY the client got %d bytes, want the server's %d", len(before), len(settings)+len(data))
	}
	if last != 1 {
		t.Errorf("last stream %d, want 1", last)
	}
	if r := p.trips(); len(r) != 0 {
		t.Errorf("reported again: %v", r)
	}
	if want := cat([]byte(Preface), headers(1), repeat(settings, 10)); !bytes.Equal(p.fed.Bytes(), want) {
		t.Errorf("the server read %d bytes, want %d", p.fed.Len(), len(want))
	}
	if n, err := p.guard.Write(data); n != len(data) || err != nil {
		t.Errorf("a write after the GOAWAY: %d, %v", n, err)
	}
	if _, err := p.guard.Read(make([]byte, 10)); !errors.As(err, &fe) || fe.Reason != Settings {
		t.Errorf("a read after the GOAWAY: %v", err)
	}
}

// Stream errors are seen in what the server writes; the GOAWAY follows
// the RST_STREAM over budget, and the reader, waiting for the client,
// ends.
func TestConnGoAwayOnTheServersStreamErrors(t *testing.T) {
	p := newPipe(t, Limits{StreamErrors: Budget{Burst: 3, PerSecond: 1}})
	in := cat([]byte(Preface), headers(1), headers(3), headers(5), headers(7))
	p.send(in)
	p.waitFed(len(in))
	var out []byte
	for _, id := range []uint32{1, 3, 5, 7} {
		b := rst(id, 0x1)
		out = append(out, b...)
		if _, err := p.guard.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-p.readErr; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("the server read %v", err)
	}
	before, last := lastGoAway(t, <-p.got)
	if !bytes.Equal(before, out) {
		t.Errorf("before the GOAWAY: %x, want %x", before, out)
	}
	if last != 7 {
		t.Errorf("last stream %d, want 7", last)
	}
	if r := p.trips(); len(r) != 1 || r[0] != StreamErrors {
		t.Errorf("reported %v", r)
	}
}

// A client that stops reading cannot hold the guarded connection open:
// the GOAWAY is given up on and the connection closed.
func TestConnClosesWhenTheClientDoesNotRead(t *testing.T) {
	c, s := net.Pipe()
	defer c.Close()
	g := Wrap(s, Limits{Pings: Budget{Burst: 1, PerSecond: 1}}, nil)
	go func() { _, _ = c.Write(cat([]byte(Preface), repeat(fr(framePing, 0, 0, make([]byte, 8)), 3))) }()
	wrote := make(chan struct{})
	go func() {
		// Never read by the client: the server's write blocks, until the
		// guard gives up.
		_, _ = g.Write(dataFrame(1, 0, make([]byte, 100)))
		close(wrote)
	}()
	var err error
	for err == nil {
		_, err = g.Read(make([]byte, 64))
	}
	if !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read %v", err)
	}
	<-wrote
}

// A connection that negotiated h2 but does not send the preface is not
// served at all.
func TestConnRefusesAClientThatIsNotHTTP2(t *testing.T) {
	c, s := net.Pipe()
	defer c.Close()
	g := Wrap(s, Limits{}, nil)
	defer g.Close()
	go func() { _, _ = c.Write([]byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n")) }()
	if _, err := g.Read(make([]byte, 64)); !errors.Is(err, errNotHTTP2) {
		t.Fatalf("read %v", err)
	}
	if _, err := g.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n")); err == nil {
		t.Error("wrote to a client that is not HTTP/2")
	}
}
