package nft

import (
	"fmt"
	"net/netip"
	"reflect"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"

	"github.com/linkerd-go/linkerd-go/api/mesh"

	"github.com/linkerd-go/linkerd-go/proxy-init/internal/plan"
)

// The expected expressions below are what `nft --debug=netlink` shows for
// the same rule written in nft syntax (r.String()), so that `nft list`
// prints our rules as the plan reads.
var (
	meta = func(k expr.MetaKey) *expr.Meta { return &expr.Meta{Key: k, Register: 1} }
	eq   = func(b ...byte) *expr.Cmp { return &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: b} }
	ret  = &expr.Verdict{Kind: expr.VerdictReturn}
	tcp  = []expr.Any{meta(expr.MetaKeyL4PROTO), eq(6)}
	ipv4 = []expr.Any{meta(expr.MetaKeyNFPROTO), eq(2)}
	ipv6 = []expr.Any{meta(expr.MetaKeyNFPROTO), eq(10)}
)

func network(offset, n uint32) *expr.Payload {
	return &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: n}
}

func cat(parts ...any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		switch p := p.(type) {
		case []expr.Any:
			out = append(out, p...)
		case expr.Any:
			out = append(out, p)
		}
	}
	return out
}

func TestExprs(t *testing.T) {
	uid, port := uint32(2102), mesh.PortRange{First: 4190, Last: 4191}
	single := mesh.PortRange{First: 80, Last: 80}
	dport := &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2}
	for _, tc := range []struct {
		rule plan.Rule
		want []expr.Any
	}{{
		rule: plan.Rule{TCP: true, Verdict: plan.Verdict{Kind: plan.Jump, Chain: "PROXY_INIT_REDIRECT"}},
		want: cat(tcp, &expr.Verdict{Kind: expr.VerdictJump, Chain: "PROXY_INIT_REDIRECT"}),
	}, {
		rule: plan.Rule{Family: plan.IPv4, TCP: true, Verdict: plan.Verdict{Kind: plan.Jump, Chain: "PROXY_INIT_OUTPUT"}},
		want: cat(ipv4, tcp, &expr.Verdict{Kind: expr.VerdictJump, Chain: "PROXY_INIT_OUTPUT"}),
	}, {
		rule: plan.Rule{DPort: &port, Verdict: plan.Verdict{Kind: plan.Return}},
		want: cat(tcp, dport,
			&expr.Cmp{Op: expr.CmpOpGte, Register: 1, Data: []byte{0x10, 0x5e}},
			&expr.Cmp{Op: expr.CmpOpLte, Register: 1, Data: []byte{0x10, 0x5f}}, ret),
	}, {
		rule: plan.Rule{DPort: &single, Verdict: plan.Verdict{Kind: plan.Redirect, Port: 4143}},
		want: cat(tcp, dport, eq(0, 80),
			&expr.Immediate{Register: 1, Data: []byte{0x10, 0x2f}},
			&expr.Redir{RegisterProtoMin: 1, RegisterProtoMax: 1, Flags: unix.NF_NAT_RANGE_PROTO_SPECIFIED}),
	}, {
		rule: plan.Rule{TCP: true, Verdict: plan.Verdict{Kind: plan.Redirect, Port: 4140}},
		want: cat(tcp,
			&expr.Immediate{Register: 1, Data: []byte{0x10, 0x2c}},
			&expr.Redir{RegisterProtoMin: 1, RegisterProtoMax: 1, Flags: unix.NF_NAT_RANGE_PROTO_SPECIFIED}),
	}, {
		// Socket owners are compared in host byte order.
		rule: plan.Rule{SkUID: &uid, Verdict: plan.Verdict{Kind: plan.Return}},
		want: cat(meta(expr.MetaKeySKUID), eq(0x36, 0x08, 0, 0), ret),
	}, {
		rule: plan.Rule{SkGID: &uid, Verdict: plan.Verdict{Kind: plan.Return}},
		want: cat(meta(expr.MetaKeySKGID), eq(0x36, 0x08, 0, 0), ret),
	}, {
		rule: plan.Rule{OIfName: "lo", Verdict: plan.Verdict{Kind: plan.Return}},
		want: cat(meta(expr.MetaKeyOIFNAME), eq('l', 'o', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), ret),
	}, {
		rule: plan.Rule{SAddr: netip.MustParsePrefix("10.0.0.0/8"), Verdict: plan.Verdict{Kind: plan.Return}},
		want: cat(ipv4, network(12, 1), eq(10), ret),
	}, {
		rule: plan.Rule{DAddr: netip.MustParsePrefix("192.168.1.7/32"), Verdict: plan.Verdict{Kind: plan.Return}},
		want: cat(ipv4, network(16, 4), eq(192, 168, 1, 7), ret),
	}, {
		rule: plan.Rule{SAddr: netip.MustParsePrefix("10.16.0.0/12"), Verdict: plan.Verdict{Kind: plan.Return}},
		want: cat(ipv4, network(12, 4),
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: []byte{0xff, 0xf0, 0, 0}, Xor: []byte{0, 0, 0, 0}},
			eq(10, 16, 0, 0), ret),
	}, {
		rule: plan.Rule{SAddr: netip.MustParsePrefix("fd00::/8"), Verdict: plan.Verdict{Kind: plan.Return}},
		want: cat(ipv6, network(8, 1), eq(0xfd), ret),
	}, {
		rule: plan.Rule{DAddr: netip.MustParsePrefix("::/0"), Verdict: plan.Verdict{Kind: plan.Return}},
		want: cat(ipv6, network(24, 16),
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 16, Mask: make([]byte, 16), Xor: make([]byte, 16)},
			eq(make([]byte, 16)...), ret),
	}} {
		got := Exprs(tc.rule)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Exprs(%s):\n got %s\nwant %s", tc.rule, dump(got), dump(tc.want))
		}
	}
}

func dump(es []expr.Any) string {
	var s string
	for _, e := range es {
		s += fmt.Sprintf("\n\t%T %+v", e, e)
	}
	return s
}

func TestChain(t *testing.T) {
	table := &nftables.Table{Name: plan.Table, Family: nftables.TableFamilyINet}
	pre := Chain(table, plan.Chain{Name: "prerouting", Hook: plan.HookPrerouting})
	if pre.Type != nftables.ChainTypeNAT || *pre.Hooknum != *nftables.ChainHookPrerouting ||
		*pre.Priority != *nftables.ChainPriorityNATDest || *pre.Policy != nftables.ChainPolicyAccept {
		t.Errorf("prerouting chain %+v", pre)
	}
	out := Chain(table, plan.Chain{Name: "output", Hook: plan.HookOutput})
	if out.Type != nftables.ChainTypeNAT || *out.Hooknum != *nftables.ChainHookOutput || *out.Priority != -100 {
		t.Errorf("output chain %+v", out)
	}
	regular := Chain(table, plan.Chain{Name: plan.RedirectChain})
	if regular.Hooknum != nil || regular.Type != "" || regular.Policy != nil {
		t.Errorf("regular chain %+v", regular)
	}
}

func TestUserData(t *testing.T) {
	if UserData(plan.Rule{}) != nil {
		t.Error("a rule without comment has user data")
	}
	got, ok := userdata.GetString(UserData(plan.Rule{Comment: "ignore-loopback"}), userdata.TypeComment)
	if !ok || got != "ignore-loopback" {
		t.Errorf("comment %q, %v", got, ok)
	}
}

func TestOpenRefusesWhatIsNotANetworkNamespace(t *testing.T) {
	for _, path := range []string{t.TempDir() + "/missing", t.TempDir(), "/proc/self/ns/uts"} {
		if c, err := Open(path); err == nil {
			_ = c.Close()
			t.Errorf("Open(%q) succeeded", path)
		}
	}
}
