package balance_test

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/go-logr/logr"

	"github.com/linkerd-go/linkerd-go/api/mesh"
	"github.com/linkerd-go/linkerd-go/proxy/internal/balance"
	"github.com/linkerd-go/linkerd-go/proxy/internal/discovery"
	"github.com/linkerd-go/linkerd-go/proxy/internal/forward"
	"github.com/linkerd-go/linkerd-go/proxy/internal/layertest"
	"github.com/linkerd-go/linkerd-go/proxy/internal/stack"
)

func endpoints(n int, identity string) *balance.Balancer[discovery.Endpoint] {
	b := balance.New[discovery.Endpoint]()
	var ts []balance.Target[discovery.Endpoint]
	for i := range n {
		addr := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 0, byte(i + 1)}), 8080)
		ts = append(ts, balance.Target[discovery.Endpoint]{Addr: addr, Value: discovery.Endpoint{Addr: addr, Identity: identity}})
	}
	b.Update(ts)
	return b
}

var refused = &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}

// The pick reaches the layer beneath in the exchange, with a release the
// server side calls at the end.
func TestPickInExchange(t *testing.T) {
	b := endpoints(1, "")
	next := &layertest.Next{}
	r, ex := layertest.Request("GET", "http://svc.test/", "")
	if _, err := balance.NewHTTP(balance.LayerConfig{Attempts: 3, Log: logr.Discard()}, b, next).RoundTrip(r); err != nil {
		t.Fatal(err)
	}
	if !ex.Picked || ex.Endpoint.Addr.String() != "198.18.0.1:8080" || ex.Release == nil {
		t.Fatalf("exchange %+v", ex)
	}
	ex.End(0)
}

// A request that was not sent (connect failed, or a meshed endpoint's
// proxy says its application is unreachable) goes to another endpoint with
// its whole body; the endpoint that failed is taken out.
func TestNotSentGoesElsewhere(t *testing.T) {
	for _, tc := range []struct {
		name     string
		identity string
		fail     func(r *http.Request) (*http.Response, error)
	}{
		{"connect failed", "", func(*http.Request) (*http.Response, error) { return nil, refused }},
		{"application unreachable", "web.ns.serviceaccount.identity.linkerd.cluster.local", func(r *http.Request) (*http.Response, error) {
			resp := layertest.Response(r, http.StatusBadGateway, "connect failed")
			resp.Header.Set(mesh.NotSentHeader, "true")
			return resp, nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := endpoints(2, tc.identity)
			var bodies []string
			var addrs []netip.AddrPort
			next := &layertest.Next{}
			next.Answer = func(r *http.Request) (*http.Response, error) {
				body, _ := io.ReadAll(r.Body)
				bodies = append(bodies, string(body))
				addrs = append(addrs, stack.From(r).Endpoint.Addr)
				if len(addrs) == 1 {
					return tc.fail(r)
				}
				return layertest.OK(r), nil
			}
			r, _ := layertest.Request("POST", "http://svc.test/", "payload")
			resp, err := balance.NewHTTP(balance.LayerConfig{Attempts: 3, Log: logr.Discard()}, b, next).RoundTrip(r)
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("got %v, %v", resp, err)
			}
			if resp.Header.Get(mesh.NotSentHeader) != "" {
				t.Error("the not-sent mark reached the client")
			}
			if len(addrs) != 2 || addrs[0] == addrs[1] {
				t.Fatalf("attempts went to %v, want two endpoints", addrs)
			}
			if bodies[1] != "payload" {
				t.Errorf("second attempt's body %q, want the whole body", bodies[1])
			}
			// The failed endpoint is out: every pick is the other one.
			for range 20 {
				e, done, ok := b.Pick()
				if !ok || e.Addr == addrs[0] {
					t.Fatalf("picked the failed endpoint %v (ok %v)", addrs[0], ok)
				}
				done(0)
			}
		})
	}
}

// An unmeshed endpoint's "not sent" mark is the application's own header:
// it is not trusted.
func TestNotSentFromAnApplicationIsAnswer(t *testing.T) {
	b := endpoints(2, "")
	next := &layertest.Next{Answer: func(r *http.Request) (*http.Response, error) {
		resp := layertest.Response(r, http.StatusBadGateway, "mine")
		resp.Header.Set(mesh.NotSentHeader, "true")
		return resp, nil
	}}
	r, _ := layertest.Request("GET", "http://svc.test/", "")
	resp, err := balance.NewHTTP(balance.LayerConfig{Attempts: 3}, b, next).RoundTrip(r)
	if err != nil || resp.StatusCode != http.StatusBadGateway || len(next.Calls()) != 1 {
		t.Fatalf("got %v, %v after %d attempts", resp, err, len(next.Calls()))
	}
}

// Attempts bound the endpoints tried; the last failure is the answer. Other
// errors are not tried again.
func TestAttemptsBounded(t *testing.T) {
	b := endpoints(5, "")
	next := &layertest.Next{Answer: func(*http.Request) (*http.Response, error) { return nil, refused }}
	r, _ := layertest.Request("GET", "http://svc.test/", "")
	if _, err := balance.NewHTTP(balance.LayerConfig{Attempts: 3}, b, next).RoundTrip(r); !forward.IsConnectError(err) {
		t.Fatalf("error %v, want the connect error", err)
	}
	if n := len(next.Calls()); n != 3 {
		t.Errorf("%d attempts, want 3", n)
	}
	other := errors.New("reset")
	next = &layertest.Next{Answer: func(*http.Request) (*http.Response, error) { return nil, other }}
	if _, err := balance.NewHTTP(balance.LayerConfig{Attempts: 3}, endpoints(5, ""), next).RoundTrip(r); !errors.Is(err, other) || len(next.Calls()) != 1 {
		t.Errorf("error %v after %d attempts, want %v after 1", err, len(next.Calls()), other)
	}
}

// A body longer than what is kept is not sent again.
func TestLongBodyNotReplayed(t *testing.T) {
	b := endpoints(2, "")
	next := &layertest.Next{Answer: func(r *http.Request) (*http.Response, error) {
		_, _ = io.Copy(io.Discard, r.Body)
		return nil, refused
	}}
	r, _ := layertest.Request("POST", "http://svc.test/", strings.Repeat("x", 1<<20))
	if _, err := balance.NewHTTP(balance.LayerConfig{Attempts: 3}, b, next).RoundTrip(r); err == nil {
		t.Fatal("no error")
	}
	if n := len(next.Calls()); n != 1 {
		t.Errorf("sent %d times, want once", n)
	}
}

// No endpoint: 503 "no endpoints".
func TestNoEndpoints(t *testing.T) {
	r, _ := layertest.Request("GET", "http://svc.test/", "")
	var fe *forward.FailureError
	_, err := balance.NewHTTP(balance.LayerConfig{}, balance.New[discovery.Endpoint](), &layertest.Next{}).RoundTrip(r)
	if !errors.As(err, &fe) || fe.Failure != forward.FailNoEndpoints {
		t.Errorf("error %v, want the no-endpoints failure", err)
	}
}
