// Package plan turns proxy-init's configuration into the nftables rule set
// that redirects a pod's TCP traffic through its proxy. Building the plan is a
// pure function: nothing here touches the kernel, so every combination of
// flags can be checked in unit tests, printed by --simulate, and then applied
// as it is by package nft.
package plan

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/linkerd-go/linkerd-go/api/mesh"
)

// Names in the rule set. The regular chains keep the names of Linkerd's
// iptables chains, so that people who know those find their way here.
const (
	// Table is the nftables table proxy-init owns. It is of the inet family:
	// one table, one set of rules for IPv4 and IPv6.
	Table = "linkerd-proxy-init"
	// PreroutingChain and OutputChain are the base chains hooked into NAT.
	PreroutingChain = "prerouting"
	OutputChain     = "output"
	// RedirectChain holds the inbound rules and OutboundChain the outbound
	// ones; the base chains jump to them.
	RedirectChain  = "PROXY_INIT_REDIRECT"
	OutboundChain  = "PROXY_INIT_OUTPUT"
	loopbackDevice = "lo"
)

// NoID disables the proxy uid or gid exemption.
const NoID = -1

// Limits that keep the largest rule set, sent as one netlink batch, and the
// kernel's acknowledgements of it well within the socket buffers package nft
// sets.
const (
	// MaxPortRanges bounds each port list after merging overlapping and
	// adjacent ranges.
	MaxPortRanges = 100
	// MaxSubnets bounds the subnets to ignore.
	MaxSubnets = 100
)

// Config is what proxy-init is asked to do. The zero value is not valid;
// start from Default.
type Config struct {
	// IncomingProxyPort and OutgoingProxyPort are the proxy's listeners that
	// inbound and outbound TCP connections are redirected to.
	IncomingProxyPort uint16
	OutgoingProxyPort uint16
	// ProxyUID and ProxyGID identify the proxy's own traffic, which goes out
	// as it is. NoID disables one of them; at least one must be set, or the
	// proxy's connections would loop back to itself.
	ProxyUID int64
	ProxyGID int64
	// InboundPortsToIgnore are destination ports of inbound connections that
	// go straight to the application.
	InboundPortsToIgnore []mesh.PortRange
	// OutboundPortsToIgnore are destination ports of outbound connections that
	// go straight out.
	OutboundPortsToIgnore []mesh.PortRange
	// PortsToRedirect, when not empty, limits inbound redirection to these
	// destination ports; empty redirects every inbound port not ignored.
	PortsToRedirect []mesh.PortRange
	// SubnetsToIgnore are networks whose traffic bypasses the proxy: inbound
	// connections from them and outbound connections to them.
	SubnetsToIgnore []netip.Prefix
	// IPv6 redirects IPv6 traffic too; when false only IPv4 is redirected.
	IPv6 bool
}

// Default returns the configuration of a meshed pod with no overrides: the
// proxy's well-known ports and uid, and its control and admin ports ignored.
func Default() Config {
	return Config{
		IncomingProxyPort:    mesh.InboundPort,
		OutgoingProxyPort:    mesh.OutboundPort,
		ProxyUID:             mesh.DefaultProxyUID,
		ProxyGID:             NoID,
		InboundPortsToIgnore: mesh.DefaultInboundPortsToIgnore(),
		IPv6:                 true,
	}
}

// ErrInvalidConfig is wrapped by every error Validate returns.
var ErrInvalidConfig = errors.New("invalid configuration")

// Validate reports every problem with c at once.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...))
	}
	if c.IncomingProxyPort == 0 {
		bad("incoming proxy port 0 is out of range 1-65535")
	}
	if c.OutgoingProxyPort == 0 {
		bad("outgoing proxy port 0 is out of range 1-65535")
	}
	if c.IncomingProxyPort != 0 && c.IncomingProxyPort == c.OutgoingProxyPort {
		bad("incoming and outgoing proxy ports are both %d", c.IncomingProxyPort)
	}
	for _, id := range []struct {
		name  string
		value int64
	}{{"uid", c.ProxyUID}, {"gid", c.ProxyGID}} {
		// 2^32-1 is the kernel's "no id".
		if id.value != NoID && (id.value < 0 || id.value >= 1<<32-1) {
			bad("proxy %s %d is out of range 0-%d (or %d for none)", id.name, id.value, uint32(1<<32-2), NoID)
		}
	}
	if c.ProxyUID == NoID && c.ProxyGID == NoID {
		bad("neither a proxy uid nor a proxy gid is set: the proxy's own connections would be redirected back to it")
	}
	for _, l := range []struct {
		name string
		rs   []mesh.PortRange
	}{
		{"inbound ports to ignore", c.InboundPortsToIgnore},
		{"outbound ports to ignore", c.OutboundPortsToIgnore},
		{"ports to redirect", c.PortsToRedirect},
	} {
		for _, r := range l.rs {
			if r.First == 0 || r.First > r.Last {
				bad("%s: %d-%d is not a range of ports 1-65535", l.name, r.First, r.Last)
			}
		}
		if n := len(mesh.NormalizePortRanges(l.rs)); n > MaxPortRanges {
			bad("%s: %d separate ranges, more than %d (merge them into a-b ranges)", l.name, n, MaxPortRanges)
		}
	}
	for _, p := range c.SubnetsToIgnore {
		if !p.IsValid() {
			bad("subnets to ignore: invalid prefix %v", p)
		}
	}
	if n := len(normalizeSubnets(c.SubnetsToIgnore)); n > MaxSubnets {
		bad("subnets to ignore: %d subnets, more than %d", n, MaxSubnets)
	}
	return errors.Join(errs...)
}

// Plan is the complete rule set: one inet table whose chains are listed in
// the order they are created.
type Plan struct {
	Table  string
	Chains []Chain
}

// Hook says where a base chain is attached; HookNone marks a regular chain,
// reached only by jumps.
type Hook int

// The hooks the plan uses. Both are NAT base chains at priority -100
// (dstnat), with policy accept.
const (
	HookNone Hook = iota
	HookPrerouting
	HookOutput
)

// NATPriority is the priority of both base chains (nftables' "dstnat").
const NATPriority = -100

// Chain is one chain of the table with its rules, in order.
type Chain struct {
	Name  string
	Hook  Hook
	Rules []Rule
}

// Family is an IP address family of the inet table.
type Family int

// The families nftables' "meta nfproto" matches.
const (
	AnyFamily Family = iota
	IPv4
	IPv6
)

// Rule is one rule: all its set matches must hold for the verdict to apply.
// Matches are rendered and encoded in the order of the fields.
type Rule struct {
	// Family restricts the rule to IPv4 or IPv6 packets.
	Family Family
	// TCP restricts the rule to TCP. DPort implies it.
	TCP bool
	// SkUID and SkGID match the owner of the local socket that sent the
	// packet; nil when unset.
	SkUID, SkGID *uint32
	// OIfName matches the name of the outgoing interface.
	OIfName string
	// SAddr and DAddr match the source or destination network; the zero
	// Prefix when unset. They imply the family of their address.
	SAddr, DAddr netip.Prefix
	// DPort matches the destination TCP port range; nil when unset.
	DPort *mesh.PortRange
	// Verdict is what happens to a matching packet.
	Verdict Verdict
	// Comment is stored with the rule in the kernel and shown when the rule
	// set is listed.
	Comment string
}

// VerdictKind is what a rule does.
type VerdictKind int

// The verdicts the plan uses.
const (
	// Return leaves the chain: the packet is not redirected.
	Return VerdictKind = iota
	// Jump continues in another chain.
	Jump
	// Redirect sends the connection to a port on this host (the proxy),
	// keeping its original destination for SO_ORIGINAL_DST.
	Redirect
)

// Verdict is a rule's action with its argument.
type Verdict struct {
	Kind VerdictKind
	// Chain is the target of a Jump.
	Chain string
	// Port is the target of a Redirect.
	Port uint16
}

// Build returns the rule set for c, or the errors of c.Validate.
//
// Inbound TCP (prerouting) goes through RedirectChain: ignored ports first,
// then ignored source subnets, then the redirect to the incoming proxy port
// (of every port, or of the ports to redirect). Outbound TCP (output) goes
// through OutboundChain: the proxy's own uid and gid, loopback, ignored ports
// and ignored destination subnets first, then the redirect to the outgoing
// proxy port. Port lists are merged and sorted and subnets masked and sorted,
// so the plan does not depend on how the lists were written.
func Build(c Config) (*Plan, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	subnets := normalizeSubnets(c.SubnetsToIgnore)
	entryFamily := AnyFamily
	if !c.IPv6 {
		entryFamily = IPv4
	}

	var inbound []Rule
	for _, r := range mesh.NormalizePortRanges(c.InboundPortsToIgnore) {
		inbound = append(inbound, Rule{DPort: &r, Verdict: Verdict{Kind: Return}, Comment: "ignore-inbound-ports"})
	}
	for _, p := range subnets {
		inbound = append(inbound, Rule{SAddr: p, Verdict: Verdict{Kind: Return}, Comment: "ignore-subnet"})
	}
	toIncoming := Verdict{Kind: Redirect, Port: c.IncomingProxyPort}
	if len(c.PortsToRedirect) == 0 {
		inbound = append(inbound, Rule{TCP: true, Verdict: toIncoming, Comment: "redirect-all-incoming-to-proxy-port"})
	}
	for _, r := range mesh.NormalizePortRanges(c.PortsToRedirect) {
		inbound = append(inbound, Rule{DPort: &r, Verdict: toIncoming, Comment: "redirect-listed-incoming-to-proxy-port"})
	}

	var outbound []Rule
	if c.ProxyUID != NoID {
		uid := uint32(c.ProxyUID)
		outbound = append(outbound, Rule{SkUID: &uid, Verdict: Verdict{Kind: Return}, Comment: "ignore-proxy-user-id"})
	}
	if c.ProxyGID != NoID {
		gid := uint32(c.ProxyGID)
		outbound = append(outbound, Rule{SkGID: &gid, Verdict: Verdict{Kind: Return}, Comment: "ignore-proxy-group-id"})
	}
	outbound = append(outbound, Rule{OIfName: loopbackDevice, Verdict: Verdict{Kind: Return}, Comment: "ignore-loopback"})
	for _, r := range mesh.NormalizePortRanges(c.OutboundPortsToIgnore) {
		outbound = append(outbound, Rule{DPort: &r, Verdict: Verdict{Kind: Return}, Comment: "ignore-outbound-ports"})
	}
	for _, p := range subnets {
		outbound = append(outbound, Rule{DAddr: p, Verdict: Verdict{Kind: Return}, Comment: "ignore-subnet"})
	}
	outbound = append(outbound, Rule{TCP: true, Verdict: Verdict{Kind: Redirect, Port: c.OutgoingProxyPort}, Comment: "redirect-all-outgoing-to-proxy-port"})

	return &Plan{
		Table: Table,
		Chains: []Chain{
			{Name: PreroutingChain, Hook: HookPrerouting, Rules: []Rule{
				{Family: entryFamily, TCP: true, Verdict: Verdict{Kind: Jump, Chain: RedirectChain}, Comment: "install-proxy-init-prerouting"},
			}},
			{Name: OutputChain, Hook: HookOutput, Rules: []Rule{
				{Family: entryFamily, TCP: true, Verdict: Verdict{Kind: Jump, Chain: OutboundChain}, Comment: "install-proxy-init-output"},
			}},
			{Name: RedirectChain, Rules: inbound},
			{Name: OutboundChain, Rules: outbound},
		},
	}, nil
}

// normalizeSubnets returns ps masked to their prefix length, IPv4-mapped IPv6
// networks read as IPv4, sorted (IPv4 first) and without duplicates.
func normalizeSubnets(ps []netip.Prefix) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range ps {
		if !p.IsValid() {
			continue
		}
		addr, bits := p.Addr(), p.Bits()
		if addr.Is4In6() && bits >= 96 {
			addr, bits = addr.Unmap(), bits-96
		}
		out = append(out, netip.PrefixFrom(addr, bits).Masked())
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	return slices.Compact(out)
}
