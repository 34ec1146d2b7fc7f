package balance_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"

	"github.com/linkerd-go/linkerd-go/proxy/internal/balance"
	"github.com/linkerd-go/linkerd-go/proxy/internal/discovery"
)

// connector is a stub endpoint layer: the first fails endpoints refuse, the
// others get one end of a pipe.
type connector struct {
	fails int
	err   error
	tried []netip.AddrPort
}

func (c *connector) Connect(_ context.Context, e discovery.Endpoint) (net.Conn, error) {
	c.tried = append(c.tried, e.Addr)
	if len(c.tried) <= c.fails {
		return nil, c.err
	}
	a, b := net.Pipe()
	b.Close()
	return a, nil
}

// A connection whose connect fails goes to another endpoint; the one that
// failed is taken out.
func TestTCPConnectFailsOver(t *testing.T) {
	b := endpoints(3, "")
	c := &connector{fails: 1, err: refused}
	up, e, release, err := balance.NewTCP(balance.LayerConfig{Attempts: 3}, b, c).Connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	up.Close()
	if len(c.tried) != 2 || c.tried[0] == c.tried[1] || e.Addr != c.tried[1] {
		t.Fatalf("tried %v, got %v", c.tried, e.Addr)
	}
	for range 20 {
		ep, done, ok := b.Pick()
		if !ok || ep.Addr == c.tried[0] {
			t.Fatalf("picked the failed endpoint %v", c.tried[0])
		}
		done(0)
	}
}

// Attempts bound the endpoints tried; errors other than a failed connect
// are not tried again; an empty balancer says so.
func TestTCPConnectBounded(t *testing.T) {
	c := &connector{fails: 10, err: refused}
	_, e, _, err := balance.NewTCP(balance.LayerConfig{Attempts: 3}, endpoints(5, ""), c).Connect(context.Background())
	if !errors.Is(err, refused) || len(c.tried) != 3 || e.Addr != c.tried[2] {
		t.Errorf("error %v after %v, last endpoint %v", err, c.tried, e.Addr)
	}
	other := errors.New("handshake failed")
	c = &connector{fails: 10, err: other}
	if _, _, _, err := balance.NewTCP(balance.LayerConfig{Attempts: 3}, endpoints(5, ""), c).Connect(context.Background()); !errors.Is(err, other) || len(c.tried) != 1 {
		t.Errorf("error %v after %d attempts, want %v after 1", err, len(c.tried), other)
	}
	if _, _, _, err := balance.NewTCP(balance.LayerConfig{}, balance.New[discovery.Endpoint](), c).Connect(context.Background()); !errors.Is(err, balance.ErrNoEndpoints) {
		t.Errorf("empty balancer: %v", err)
	}
}
