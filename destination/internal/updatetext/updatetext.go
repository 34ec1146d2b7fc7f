// Package updatetext renders destination API messages as short,
// deterministic text, so that tests can state the exact updates they expect.
package updatetext

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	destinationv1 "github.com/linkerd-go/linkerd-go/api/linkerd/destination/v1"
)

// Describe renders a destination API message (GetResponse or
// GetProfileResponse) in a short, deterministic text form, for tests and
// debugging output.
func Describe(m any) string {
	var b strings.Builder
	switch m := m.(type) {
	case *destinationv1.GetResponse:
		switch {
		case m.GetAdd() != nil:
			fmt.Fprintf(&b, "add %s\n", labelString(m.GetAdd().GetMetricLabels()))
			for _, ep := range m.GetAdd().GetEndpoints() {
				b.WriteString("  " + describeEndpoint(ep) + "\n")
			}
		case m.GetRemove() != nil:
			var addrs []string
			for _, a := range m.GetRemove().GetAddresses() {
				addrs = append(addrs, addrString(a))
			}
			fmt.Fprintf(&b, "remove %s\n", strings.Join(addrs, " "))
		case m.GetNoEndpoints() != nil:
			b.WriteString("no_endpoints\n")
		case m.GetDoesNotExist() != nil:
			b.WriteString("does_not_exist\n")
		}
	case *destinationv1.GetProfileResponse:
		p := m.GetProfile()
		fmt.Fprintf(&b, "profile %q opaque=%v budget=%v/%d/%v\n", p.GetFullyQualifiedName(), p.GetOpaqueProtocol(),
			p.GetRetryBudget().GetRetryRatio(), p.GetRetryBudget().GetMinRetriesPerSecond(), p.GetRetryBudget().GetTtl().AsDuration())
		for _, r := range p.GetRoutes() {
			fmt.Fprintf(&b, "  route %q retryable=%v timeout=%v classes=%d\n", r.GetName(), r.GetIsRetryable(), r.GetTimeout().AsDuration(), len(r.GetResponseClasses()))
		}
		for _, d := range p.GetDstOverrides() {
			fmt.Fprintf(&b, "  split %s %d\n", d.GetAuthority(), d.GetWeight())
		}
		if ep := p.GetEndpoint(); ep != nil {
			b.WriteString("  endpoint " + describeEndpoint(ep) + "\n")
		}
	}
	return b.String()
}

func describeEndpoint(ep *destinationv1.Endpoint) string {
	s := addrString(ep.GetAddress())
	if ep.GetWeight() != destinationv1.DefaultEndpointWeight {
		s += fmt.Sprintf(" weight=%d", ep.GetWeight())
	}
	if name := ep.GetTlsIdentity().GetDnsLike().GetName(); name != "" {
		s += " id=" + name
	}
	switch h := ep.GetProtocolHint(); {
	case h.GetHttp2() != nil:
		s += " h2"
	case h.GetOpaque() != nil:
		s += fmt.Sprintf(" opaque(%d)", h.GetOpaque().GetInboundPort())
	}
	if l := ep.GetMetricLabels(); len(l) > 0 {
		s += " " + labelString(l)
	}
	return s
}

func labelString(l map[string]string) string {
	keys := slices.Sorted(maps.Keys(l))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + l[k]
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func addrString(a *destinationv1.SocketAddress) string {
	ap, err := a.AddrPort()
	if err != nil {
		return "<" + err.Error() + ">"
	}
	return netip.AddrPortFrom(ap.Addr(), ap.Port()).String()
}
