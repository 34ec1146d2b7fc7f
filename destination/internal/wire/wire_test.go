package wire

import (
	"net/netip"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/linkerd-go/linkerd-go/destination/internal/discovery"
	"github.com/linkerd-go/linkerd-go/destination/internal/profile"
	"github.com/linkerd-go/linkerd-go/destination/internal/updatetest"
)

const webID = "web.emojivoto.serviceaccount.identity.linkerd.cluster.local"

func describe(t *testing.T, u *discovery.EndpointUpdate) string {
	t.Helper()
	var b strings.Builder
	for _, m := range Endpoints(u) {
		b.WriteString(updatetest.Describe(m))
	}
	return strings.TrimSpace(b.String())
}

func TestEndpoints(t *testing.T) {
	ap := netip.MustParseAddrPort
	for _, tc := range []struct {
		name string
		u    *discovery.EndpointUpdate
		want string
	}{
		{"does not exist", &discovery.EndpointUpdate{Kind: discovery.DoesNotExist}, "does_not_exist"},
		{"no endpoints", &discovery.EndpointUpdate{Kind: discovery.NoEndpoints}, "no_endpoints"},
		{"remove", &discovery.EndpointUpdate{Kind: discovery.Remove, Removed: []netip.AddrPort{ap("198.18.0.1:80"), ap("198.18.0.2:80")}}, "remove 198.18.0.1:80 198.18.0.2:80"},
		{"add with hints", &discovery.EndpointUpdate{Kind: discovery.Add, Labels: map[string]string{"namespace": "emojivoto", "service": "web"}, Endpoints: []*discovery.Endpoint{
			{Addr: ap("198.18.0.1:8080"), Identity: webID, Protocol: discovery.ProtocolHTTP2, Labels: map[string]string{"pod": "web-1"}},
			{Addr: ap("198.18.0.2:5432"), Identity: webID, Protocol: discovery.ProtocolOpaque, OpaqueInboundPort: 4143},
			{Addr: ap("198.18.0.3:80")},
		}}, `add {namespace=emojivoto,service=web}
  198.18.0.1:8080 id=` + webID + ` h2 {pod=web-1}
  198.18.0.2:5432 id=` + webID + ` opaque(4143)
  198.18.0.3:80`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := describe(t, tc.u); got != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

// A large add is split into messages of at most MaxEndpointsPerMessage,
// in address order, each with the set's labels.
func TestLargeAddIsSplit(t *testing.T) {
	u := &discovery.EndpointUpdate{Kind: discovery.Add, Labels: map[string]string{"service": "big"}}
	for i := range MaxEndpointsPerMessage + 5 {
		u.Endpoints = append(u.Endpoints, &discovery.Endpoint{Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}), 80)})
	}
	msgs := Endpoints(u)
	if len(msgs) != 2 || len(msgs[0].GetAdd().GetEndpoints()) != MaxEndpointsPerMessage || len(msgs[1].GetAdd().GetEndpoints()) != 5 {
		t.Fatalf("got %d messages", len(msgs))
	}
	for _, m := range msgs {
		if m.GetAdd().GetMetricLabels()["service"] != "big" {
			t.Errorf("a part lacks the set's labels: %v", m.GetAdd().GetMetricLabels())
		}
	}
	got, err := msgs[1].GetAdd().GetEndpoints()[0].GetAddress().AddrPort()
	if want := u.Endpoints[MaxEndpointsPerMessage].Addr; err != nil || got != want {
		t.Errorf("second part starts at %v, want %v", got, want)
	}
}

func TestProfile(t *testing.T) {
	spec := &profile.Spec{
		Routes:       []profile.Route{{Name: "GET /api", Condition: &profile.RequestMatch{Method: "GET", PathRegex: "/api"}, Timeout: "300ms", IsRetryable: true}},
		RetryBudget:  &profile.RetryBudget{RetryRatio: 0.3, MinRetriesPerSecond: 5, TTL: "20s"},
		DstOverrides: []profile.DstOverride{{Authority: "web-v2.emojivoto.svc.cluster.local:80", Weight: resource.MustParse("1")}},
	}
	for _, tc := range []struct {
		name string
		p    *discovery.Profile
		want string
	}{
		{"defaults", &discovery.Profile{FQDN: "misc.emojivoto.svc.cluster.local"}, `profile "misc.emojivoto.svc.cluster.local" opaque=false budget=0.2/10/10s`},
		{"from a ServiceProfile", &discovery.Profile{FQDN: "web.emojivoto.svc.cluster.local", Spec: spec}, `profile "web.emojivoto.svc.cluster.local" opaque=false budget=0.3/5/20s
  route "GET /api" retryable=true timeout=300ms classes=0
  split web-v2.emojivoto.svc.cluster.local:80 10000`},
		{"opaque with an endpoint", &discovery.Profile{Opaque: true, Endpoint: &discovery.Endpoint{Addr: netip.MustParseAddrPort("198.18.1.1:5432"), Protocol: discovery.ProtocolOpaque}}, `profile "" opaque=true budget=0.2/10/10s
  endpoint 198.18.1.1:5432 opaque(0)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := strings.TrimSpace(updatetest.Describe(Profile(tc.p))); got != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}
