package endpoint_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"

	"github.com/linkerd-go/linkerd-go/api/mesh"
	"github.com/linkerd-go/linkerd-go/proxy/internal/discovery"
	"github.com/linkerd-go/linkerd-go/proxy/internal/endpoint"
	"github.com/linkerd-go/linkerd-go/proxy/internal/forward"
	"github.com/linkerd-go/linkerd-go/proxy/internal/layertest"
)

// dials records where the clients connect; every connect is refused, so
// no socket is opened.
type dials struct {
	mu    sync.Mutex
	addrs []string
}

func (d *dials) dial(_ context.Context, _, addr string) (net.Conn, error) {
	d.mu.Lock()
	d.addrs = append(d.addrs, addr)
	d.mu.Unlock()
	return nil, &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
}

const peer = "web.emojivoto.serviceaccount.identity.linkerd.cluster.local"

func TestPickedEndpoint(t *testing.T) {
	addr := netip.MustParseAddrPort("198.18.0.7:8080")
	for _, tc := range []struct {
		name       string
		e          discovery.Endpoint
		proto      int
		upgrade    bool
		wantScheme string
		wantTLS    string
		wantOrig   string
	}{
		{"unmeshed", discovery.Endpoint{Addr: addr}, 1, false, "http", "no_identity", ""},
		{"meshed, HTTP/1 over HTTP/2", discovery.Endpoint{Addr: addr, Identity: peer, HTTP2: true}, 1, false, "https", "true", mesh.OrigProtoHTTP11},
		{"meshed, HTTP/2", discovery.Endpoint{Addr: addr, Identity: peer, HTTP2: true}, 2, false, "https", "true", ""},
		{"meshed without the HTTP/2 hint", discovery.Endpoint{Addr: addr, Identity: peer}, 1, false, "https", "true", ""},
		{"meshed, upgrade", discovery.Endpoint{Addr: addr, Identity: peer, HTTP2: true}, 1, true, "https", "true", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &dials{}
			c := endpoint.NewClients(endpoint.Config{Dial: d.dial}, nil)
			r, ex := layertest.Request("GET", "http://svc.test/", "")
			r.ProtoMajor, r.ProtoMinor = tc.proto, 1
			if tc.proto == 2 {
				r.ProtoMinor = 0
			}
			if tc.upgrade {
				r.Header.Set("Connection", "Upgrade")
				r.Header.Set("Upgrade", "websocket")
			}
			r.Header.Set(mesh.OrigProtoHeader, "stale")
			ex.Endpoint, ex.Picked = tc.e, true
			ex.Labels.Dst.Service = "logical"
			if _, err := endpoint.NewPicked(c).RoundTrip(r); !forward.IsConnectError(err) {
				t.Fatalf("error %v, want the refused connect", err)
			}
			if len(d.addrs) == 0 || d.addrs[0] != addr.String() {
				t.Errorf("dialed %v, want %v", d.addrs, addr)
			}
			if r.URL.Scheme != tc.wantScheme || r.URL.Host != addr.String() {
				t.Errorf("URL %v, want %s://%v", r.URL, tc.wantScheme, addr)
			}
			if got := r.Header.Get(mesh.OrigProtoHeader); got != tc.wantOrig {
				t.Errorf("l5d-orig-proto %q, want %q", got, tc.wantOrig)
			}
			wantID := ""
			if tc.wantTLS == "true" {
				wantID = peer
			}
			if ex.Labels.TLS != tc.wantTLS || ex.Labels.ServerID != wantID || ex.Labels.TargetAddr != addr.String() || ex.Labels.Dst.Service != "" {
				t.Errorf("labels %+v", ex.Labels)
			}
		})
	}
}

func TestNothingPicked(t *testing.T) {
	c := endpoint.NewClients(endpoint.Config{Dial: (&dials{}).dial}, nil)
	r, _ := layertest.Request("GET", "http://svc.test/", "")
	var fe *forward.FailureError
	if _, err := endpoint.NewPicked(c).RoundTrip(r); !errors.As(err, &fe) || fe.Failure != forward.FailNoEndpoints {
		t.Errorf("error %v, want the no-endpoints failure", err)
	}
}

// A target discovery does not know goes to its original address in
// plaintext, counted under the target's labels.
func TestOriginal(t *testing.T) {
	d := &dials{}
	c := endpoint.NewClients(endpoint.Config{Dial: d.dial}, nil)
	orig := netip.MustParseAddrPort("198.18.5.5:80")
	r, ex := layertest.Request("GET", "http://svc.test/", "")
	ex.Labels.TargetAddr = orig.String()
	before := ex.Labels
	if _, err := endpoint.NewOriginal(c, orig).RoundTrip(r); !forward.IsConnectError(err) {
		t.Fatalf("error %v", err)
	}
	if len(d.addrs) != 1 || d.addrs[0] != orig.String() || r.URL.Scheme != "http" || ex.Labels != before {
		t.Errorf("dialed %v, URL %v, labels %+v", d.addrs, r.URL, ex.Labels)
	}
}

// Opaque connections go to the endpoint itself, or, for a meshed endpoint
// whose proxy takes the transport header, to that proxy's inbound port.
func TestConnectOpaque(t *testing.T) {
	addr := netip.MustParseAddrPort("198.18.0.7:6379")
	for _, tc := range []struct {
		name string
		e    discovery.Endpoint
		want string
	}{
		{"unmeshed", discovery.Endpoint{Addr: addr}, "198.18.0.7:6379"},
		{"meshed", discovery.Endpoint{Addr: addr, Identity: peer}, "198.18.0.7:6379"},
		{"meshed, transport header", discovery.Endpoint{Addr: addr, Identity: peer, Opaque: true, OpaqueInboundPort: 4143}, "198.18.0.7:4143"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &dials{}
			c := endpoint.NewClients(endpoint.Config{Dial: d.dial}, nil)
			if _, err := c.Connect(context.Background(), tc.e); !forward.IsConnectError(err) {
				t.Fatalf("error %v", err)
			}
			if len(d.addrs) != 1 || d.addrs[0] != tc.want {
				t.Errorf("dialed %v, want %s", d.addrs, tc.want)
			}
		})
	}
}
