package discovery

import (
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	destinationv1 "github.com/linkerd-go/linkerd-go/api/linkerd/destination/v1"
)

// FuzzGetResponse feeds arbitrary GetResponse messages to an endpoint set,
// before and across a resync, and checks that the snapshots stay well formed.
// The seed corpus is in testdata/fuzz/FuzzGetResponse.
func FuzzGetResponse(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		var m destinationv1.GetResponse
		if err := proto.Unmarshal(data, &m); err != nil {
			return
		}
		set := newEndpointSet(8)
		set.apply(addMsg(map[string]string{"namespace": "ns"}, pbEndpoint("10.0.0.1:80"), pbEndpoint("10.0.0.2:80", withIdentity(idA, ""))))
		set.apply(&m)
		checkSnapshot(t, set.snapshot(false))
		set.beginResync()
		set.apply(&m)
		checkSnapshot(t, set.snapshot(false))
		set.apply(&m)
		set.endResync()
		checkSnapshot(t, set.snapshot(false))
	})
}

func checkSnapshot(t *testing.T, s *Snapshot) {
	t.Helper()
	if (s.State == Endpoints) != (len(s.Endpoints) > 0) {
		t.Fatalf("state %v with %d endpoints", s.State, len(s.Endpoints))
	}
	if len(s.Endpoints) > 16 {
		t.Fatalf("%d endpoints held beyond the limit", len(s.Endpoints))
	}
	if !slices.IsSortedFunc(s.Endpoints, func(a, b Endpoint) int { return a.Addr.Compare(b.Addr) }) {
		t.Fatal("endpoints not sorted")
	}
	for i, e := range s.Endpoints {
		if i > 0 && s.Endpoints[i-1].Addr == e.Addr {
			t.Fatalf("address %v twice", e.Addr)
		}
		checkEndpoint(t, e)
	}
	for k := range s.Labels {
		if !validLabelName(k) {
			t.Fatalf("label %q", k)
		}
	}
}

func checkEndpoint(t *testing.T, e Endpoint) {
	t.Helper()
	if !e.Addr.IsValid() || e.Addr.Port() == 0 || e.Addr.Addr().Is4In6() {
		t.Fatalf("address %v", e.Addr)
	}
	if e.Weight == 0 {
		t.Fatalf("weight 0 for %v", e.Addr)
	}
	if e.Identity == "" && (e.ServerName != "" || e.OpaqueInboundPort != 0) {
		t.Fatalf("unmeshed endpoint with TLS details: %+v", e)
	}
	if e.OpaqueInboundPort != 0 && !e.Opaque {
		t.Fatalf("inbound port without the opaque hint: %+v", e)
	}
	if len(e.Labels) > 2*maxLabels {
		t.Fatalf("%d labels", len(e.Labels))
	}
	for k := range e.Labels {
		if !validLabelName(k) {
			t.Fatalf("label %q", k)
		}
	}
}

// FuzzProfile converts arbitrary Profile messages and matches requests and
// statuses against them. The seed corpus is in testdata/fuzz/FuzzProfile.
func FuzzProfile(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte, method, path string, status int) {
		var m destinationv1.Profile
		if err := proto.Unmarshal(data, &m); err != nil {
			return
		}
		p, cache, _ := profileFromProto(&m, nil)
		if len(p.Routes) > maxRoutes {
			t.Fatalf("%d routes", len(p.Routes))
		}
		r := p.Route(method, path)
		if r != nil && !r.Matches(method, path) {
			t.Fatal("Route returned a route that does not match")
		}
		r.IsFailure(status)
		for _, r := range p.Routes {
			r.IsFailure(status)
			if r.Timeout < 0 {
				t.Fatalf("negative timeout %v", r.Timeout)
			}
		}
		if b := p.RetryBudget; b.TTL <= 0 || b.RetryRatio < 0 {
			t.Fatalf("retry budget %+v", b)
		}
		for _, d := range p.DstOverrides {
			if d.Weight == 0 || validAuthority(d.Authority) != nil {
				t.Fatalf("split branch %+v", d)
			}
		}
		if p.Endpoint != nil {
			checkEndpoint(t, *p.Endpoint)
		}
		// An update from the same message reuses every regex.
		p2, _, _ := profileFromProto(&m, cache)
		if len(p2.Routes) != len(p.Routes) {
			t.Fatalf("update with the cache kept %d routes, first conversion %d", len(p2.Routes), len(p.Routes))
		}
	})
}
