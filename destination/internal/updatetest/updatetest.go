// Package updatetest renders destination and policy API messages as short,
// deterministic text, so that tests can state the exact updates they expect.
package updatetest

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	destinationv1 "github.com/linkerd-go/linkerd-go/api/linkerd/destination/v1"
	policyv1 "github.com/linkerd-go/linkerd-go/api/linkerd/policy/v1"
)

// Describe renders a destination API message (GetResponse or
// GetProfileResponse) or a policy one (WatchPortResponse, Server) in a
// short, deterministic text form, for tests and debugging output.
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
	case *policyv1.WatchPortResponse:
		describeServer(&b, m.GetServer())
	case *policyv1.Server:
		describeServer(&b, m)
	}
	return b.String()
}

// describeServer writes a policy: the server line, its authorizations, then
// each route with its rules and authorizations.
func describeServer(b *strings.Builder, s *policyv1.Server) {
	fmt.Fprintf(b, "server %s %s\n", kindName(s.GetLabels()), protocolName(s.GetProtocol()))
	for _, a := range s.GetAuthorizations() {
		b.WriteString("  authz " + describeAuthz(a) + "\n")
	}
	for _, r := range s.GetHttpRoutes() {
		b.WriteString("  route " + kindName(r.GetLabels()))
		if len(r.GetHostnames()) > 0 {
			b.WriteString(" hosts=" + strings.Join(r.GetHostnames(), ","))
		}
		b.WriteString("\n")
		for _, rule := range r.GetRules() {
			var ms []string
			for _, m := range rule.GetMatches() {
				ms = append(ms, describeMatch(m))
			}
			line := "    rule " + strings.Join(ms, " | ")
			for _, f := range rule.GetFilters() {
				if h := f.GetRequestHeaderModifier(); h != nil {
					line += fmt.Sprintf(" +headers(set=%d,add=%d,remove=%d)", len(h.GetSet()), len(h.GetAdd()), len(h.GetRemove()))
				}
			}
			b.WriteString(line + "\n")
		}
		for _, a := range r.GetAuthorizations() {
			b.WriteString("    authz " + describeAuthz(a) + "\n")
		}
	}
}

func kindName(l map[string]string) string { return l["kind"] + "/" + l["name"] }

func protocolName(p *policyv1.ProxyProtocol) string {
	switch p.GetKind().(type) {
	case *policyv1.ProxyProtocol_Detect:
		return "detect"
	case *policyv1.ProxyProtocol_Opaque:
		return "opaque"
	case *policyv1.ProxyProtocol_Tls:
		return "tls"
	case *policyv1.ProxyProtocol_Http1:
		return "http1"
	case *policyv1.ProxyProtocol_Http2:
		return "http2"
	case *policyv1.ProxyProtocol_Grpc:
		return "grpc"
	}
	return "?"
}

// describeAuthz writes "<kind>/<name> <clients> from <networks>", clients
// being "any" or the identities and "*."-suffixes ("*" for every identity).
func describeAuthz(a *policyv1.Authorization) string {
	var who []string
	switch {
	case a.GetAuthentication().GetUnauthenticated() != nil:
		who = []string{"any"}
	case a.GetAuthentication().GetMeshTls() != nil:
		m := a.GetAuthentication().GetMeshTls()
		who = append(who, m.GetIdentities()...)
		for _, s := range m.GetSuffixes() {
			if s == "" {
				who = append(who, "*")
			} else {
				who = append(who, "*."+s)
			}
		}
	default:
		who = []string{"nobody"}
	}
	var nets []string
	for _, n := range a.GetNetworks() {
		s := prefixString(n.GetNet())
		for _, e := range n.GetExcept() {
			s += "-" + prefixString(e)
		}
		nets = append(nets, s)
	}
	return kindName(a.GetLabels()) + " " + strings.Join(who, ",") + " from " + strings.Join(nets, ",")
}

func prefixString(n *policyv1.IpNetwork) string {
	p, err := n.Prefix()
	if err != nil {
		return "<" + err.Error() + ">"
	}
	return p.String()
}

func describeMatch(m *policyv1.HttpRouteMatch) string {
	var parts []string
	if m.GetMethod() != "" {
		parts = append(parts, m.GetMethod())
	}
	switch p := m.GetPath(); {
	case p == nil:
	case p.GetExact() != "":
		parts = append(parts, "="+p.GetExact())
	case p.GetPrefix() != "":
		parts = append(parts, p.GetPrefix()+"*")
	case p.GetRegex() != "":
		parts = append(parts, "~"+p.GetRegex())
	}
	for _, h := range m.GetHeaders() {
		parts = append(parts, "h:"+h.GetName()+valueString(h.GetExact(), h.GetRegex()))
	}
	for _, q := range m.GetQueryParams() {
		parts = append(parts, "q:"+q.GetName()+valueString(q.GetExact(), q.GetRegex()))
	}
	if len(parts) == 0 {
		return "any"
	}
	return strings.Join(parts, " ")
}

func valueString(exact, regex string) string {
	if regex != "" {
		return "~" + regex
	}
	return "=" + exact
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
