package apppool_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"

	"github.com/linkerd-go/linkerd-go/proxy/internal/apppool"
	"github.com/linkerd-go/linkerd-go/proxy/internal/forward"
	"github.com/linkerd-go/linkerd-go/proxy/internal/layertest"
)

// Requests go to the connection's original destination, in their own
// protocol; a request without connection metadata is the proxy's bug, and
// answered 500.
func TestToTheOriginalDestination(t *testing.T) {
	var dialed []string
	pool := apppool.New(apppool.Config{Dial: func(_ context.Context, _, addr string) (net.Conn, error) {
		dialed = append(dialed, addr)
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	}})
	dst := netip.MustParseAddrPort("198.18.0.9:7000")
	for _, major := range []int{1, 2} {
		r, _ := layertest.Request("GET", "http://svc.test/x", "")
		r.ProtoMajor = major
		r = r.WithContext(forward.WithMeta(r.Context(), &forward.ConnMeta{Dst: dst}))
		if _, err := pool.RoundTrip(r); !forward.IsConnectError(err) {
			t.Fatalf("HTTP/%d: error %v, want the refused connect", major, err)
		}
		if r.URL.Scheme != "http" || r.URL.Host != dst.String() {
			t.Errorf("HTTP/%d: URL %v", major, r.URL)
		}
	}
	if len(dialed) != 2 || dialed[0] != dst.String() || dialed[1] != dst.String() {
		t.Errorf("dialed %v", dialed)
	}
	r, _ := layertest.Request("GET", "http://svc.test/x", "")
	var fe *forward.FailureError
	if _, err := pool.RoundTrip(r); !errors.As(err, &fe) || fe.Failure != forward.FailNoMeta {
		t.Errorf("no metadata: %v", err)
	}
}
