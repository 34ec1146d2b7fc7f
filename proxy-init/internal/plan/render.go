package plan

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// String returns the plan as an nft script, in the syntax `nft list table`
// prints: fed to `nft -f` it makes the same change proxy-init makes, in one
// transaction. The first two lines make sure the table exists and then delete
// it, so that the table is replaced whole, or not at all.
func (p *Plan) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "add table inet %s\n", p.Table)
	fmt.Fprintf(&b, "delete table inet %s\n", p.Table)
	fmt.Fprintf(&b, "table inet %s {\n", p.Table)
	for i, c := range p.Chains {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "\tchain %s {\n", c.Name)
		switch c.Hook {
		case HookPrerouting:
			b.WriteString("\t\ttype nat hook prerouting priority dstnat; policy accept;\n")
		case HookOutput:
			fmt.Fprintf(&b, "\t\ttype nat hook output priority %d; policy accept;\n", NATPriority)
		}
		for _, r := range c.Rules {
			fmt.Fprintf(&b, "\t\t%s\n", r)
		}
		b.WriteString("\t}\n")
	}
	b.WriteString("}\n")
	return b.String()
}

// String returns the rule in nft syntax.
func (r Rule) String() string {
	var parts []string
	add := func(s ...string) { parts = append(parts, s...) }
	if r.Family != AnyFamily && !r.SAddr.IsValid() && !r.DAddr.IsValid() {
		add("meta nfproto", r.Family.String())
	}
	if r.TCP && r.DPort == nil {
		add("meta l4proto tcp")
	}
	if r.SkUID != nil {
		add("meta skuid", strconv.FormatUint(uint64(*r.SkUID), 10))
	}
	if r.SkGID != nil {
		add("meta skgid", strconv.FormatUint(uint64(*r.SkGID), 10))
	}
	if r.OIfName != "" {
		add("oifname", strconv.Quote(r.OIfName))
	}
	if r.SAddr.IsValid() {
		add(addrMatch("saddr", r.SAddr))
	}
	if r.DAddr.IsValid() {
		add(addrMatch("daddr", r.DAddr))
	}
	if r.DPort != nil {
		add("tcp dport", r.DPort.String())
	}
	switch r.Verdict.Kind {
	case Return:
		add("return")
	case Jump:
		add("jump", r.Verdict.Chain)
	case Redirect:
		add(fmt.Sprintf("redirect to :%d", r.Verdict.Port))
	}
	if r.Comment != "" {
		add("comment", strconv.Quote(r.Comment))
	}
	return strings.Join(parts, " ")
}

// addrMatch renders a match of the source or destination network as nft
// lists it: a whole-address prefix as the bare address.
func addrMatch(field string, p netip.Prefix) string {
	proto := "ip"
	if p.Addr().Is6() {
		proto = "ip6"
	}
	if p.IsSingleIP() {
		return fmt.Sprintf("%s %s %s", proto, field, p.Addr())
	}
	return fmt.Sprintf("%s %s %s", proto, field, p)
}

// String returns the family as nft's "meta nfproto" names it.
func (f Family) String() string {
	switch f {
	case IPv4:
		return "ipv4"
	case IPv6:
		return "ipv6"
	default:
		return "any"
	}
}
