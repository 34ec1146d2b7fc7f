package inbound

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/linkerd-go/linkerd-go/proxy/internal/forward"
)

// With MaxConnections connections open, the next one is reset as soon as
// it is accepted, and counted; the open ones keep working.
func TestMaxConnectionsRefuses(t *testing.T) {
	const limit = 2
	f := newFixture(t, forward.Limits{MaxConnections: limit})
	f.toEcho.Store(true)
	echo := func(c net.Conn, r *bufio.Reader, msg string) error {
		if _, err := fmt.Fprint(c, msg); err != nil {
			return err
		}
		line, err := r.ReadString('\n')
		if err == nil && line != msg {
			err = fmt.Errorf("echo = %q", line)
		}
		return err
	}
	var held []net.Conn
	var readers []*bufio.Reader
	for i := range limit {
		c, err := net.Dial("tcp", f.proxy)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		r := bufio.NewReader(c)
		// An answered echo means the proxy accepted the connection and
		// holds its slot.
		if err := echo(c, r, fmt.Sprintf("\x00held %d\n", i)); err != nil {
			t.Fatal(err)
		}
		held, readers = append(held, c), append(readers, r)
	}

	// The reset may come before the dial returns.
	c, err := net.Dial("tcp", f.proxy)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatal(err)
	}
	if err == nil {
		defer c.Close()
		fmt.Fprint(c, "\x00one too many\n")
		if b, err := io.ReadAll(c); err == nil && len(b) > 0 {
			t.Fatalf("connection past the limit was served: %q", b)
		}
	}
	shed := map[string]string{"direction": "inbound", "kind": "connection"}
	if got := f.m.Sample("load_shed_total", shed); got != 1 {
		t.Errorf("load_shed_total{kind=connection} = %v, want 1", got)
	}
	if got := f.m.Sample("accepted_connections_open", map[string]string{"direction": "inbound"}); got != limit {
		t.Errorf("accepted_connections_open = %v, want %d", got, limit)
	}
	for i, c := range held {
		if err := echo(c, readers[i], "\x00still here\n"); err != nil {
			t.Errorf("held connection %d: %v", i, err)
		}
	}
}
