//go:build integration

package cli

import (
	"io"
	"net/netip"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/google/nftables"

	"github.com/linkerd-go/linkerd-go/api/mesh"

	"github.com/linkerd-go/linkerd-go/proxy-init/internal/nft"
	"github.com/linkerd-go/linkerd-go/proxy-init/internal/plan"
)

const (
	appPort            = 8080 // the application's port
	otherAppPort       = 8081 // another port of the application
	ignoredInboundPort = 9090
	remotePort         = 80
	ignoredRemotePort  = 443
	proxyGID           = 2103
	otherUser          = 3000
)

// newMeshedPod returns a test network whose pod runs an application and a
// stand-in proxy (listeners on 4143 and 4140 that answer with the original
// destination), whose peer runs a remote server, and whose pod has been set
// up by proxy-init with args.
func newMeshedPod(t *testing.T, args ...string) *testNet {
	t.Helper()
	n := newTestNet(t)
	inbound, outbound := itoa(mesh.InboundPort), itoa(mesh.OutboundPort)
	serve(t, n.pod, "tcp4", "0.0.0.0:"+inbound, "proxy-inbound", true)
	serve(t, n.pod, "tcp6", "[::]:"+inbound, "proxy-inbound", true)
	serve(t, n.pod, "tcp4", "127.0.0.1:"+outbound, "proxy-outbound", true)
	serve(t, n.pod, "tcp6", "[::1]:"+outbound, "proxy-outbound", true)
	serve(t, n.pod, "tcp", ":"+itoa(mesh.AdminPort), "admin", false)
	for _, port := range []uint16{appPort, otherAppPort, ignoredInboundPort} {
		serve(t, n.pod, "tcp", ":"+itoa(port), "app", false)
	}
	for _, port := range []uint16{remotePort, ignoredRemotePort} {
		serve(t, n.peer, "tcp", ":"+itoa(port), "remote", false)
	}
	proxyInit(t, n.pod, args...)
	return n
}

func TestRedirection(t *testing.T) {
	t.Parallel()
	n := newMeshedPod(t,
		"--inbound-ports-to-ignore", "4190,4191,"+itoa(ignoredInboundPort),
		"--outbound-ports-to-ignore", itoa(ignoredRemotePort),
		"--subnets-to-ignore", skippedNets,
		"--proxy-gid", itoa(proxyGID))
	none := netip.Addr{}
	for _, tc := range []struct {
		name     string
		from     *os.File
		fromAddr netip.Addr
		to       netip.AddrPort
		answer   string
	}{
		{"inbound IPv4 to the proxy", n.peer, none, addrPort(podIP4, appPort), "proxy-inbound 198.18.0.2:8080"},
		{"inbound IPv6 to the proxy", n.peer, none, addrPort(podIP6, appPort), "proxy-inbound [2001:2::2]:8080"},
		{"inbound to an ignored port", n.peer, none, addrPort(podIP4, ignoredInboundPort), "app 198.18.0.2:9090"},
		{"inbound IPv6 to an ignored port", n.peer, none, addrPort(podIP6, ignoredInboundPort), "app [2001:2::2]:9090"},
		{"inbound to the admin port", n.peer, none, addrPort(podIP4, mesh.AdminPort), "admin 198.18.0.2:4191"},
		{"inbound from a subnet to ignore", n.peer, skippedIP4, addrPort(podIP4, appPort), "app 198.18.0.2:8080"},
		{"inbound IPv6 from a subnet to ignore", n.peer, skippedIP6, addrPort(podIP6, appPort), "app [2001:2::2]:8080"},
		{"outbound IPv4 to the proxy", n.pod, none, addrPort(peerIP4, remotePort), "proxy-outbound 198.18.0.1:80"},
		{"outbound IPv6 to the proxy", n.pod, none, addrPort(peerIP6, remotePort), "proxy-outbound [2001:2::1]:80"},
		{"outbound to an ignored port", n.pod, none, addrPort(peerIP4, ignoredRemotePort), "remote 198.18.0.1:443"},
		{"outbound to a subnet to ignore", n.pod, none, addrPort(skippedIP4, remotePort), "remote 198.18.1.1:80"},
		{"outbound IPv6 to a subnet to ignore", n.pod, none, addrPort(skippedIP6, remotePort), "remote [2001:2:0:1::1]:80"},
		{"loopback", n.pod, none, addrPort(netip.MustParseAddr("127.0.0.1"), appPort), "app 127.0.0.1:8080"},
		{"IPv6 loopback", n.pod, none, addrPort(netip.IPv6Loopback(), appPort), "app [::1]:8080"},
		{"to the pod's own address", n.pod, none, addrPort(podIP4, appPort), "app 198.18.0.2:8080"},
	} {
		if got := ask(t, tc.from, tc.fromAddr, tc.to); got != tc.answer {
			t.Errorf("%s: connection to %v answered %q, want %q", tc.name, tc.to, got, tc.answer)
		}
	}

	for _, tc := range []struct {
		name     string
		uid, gid int
		answer   string
	}{
		{"the proxy's uid", mesh.DefaultProxyUID, mesh.DefaultProxyUID, "remote 198.18.0.1:80"},
		{"the proxy's gid", otherUser, proxyGID, "remote 198.18.0.1:80"},
		{"another user", otherUser, otherUser, "proxy-outbound 198.18.0.1:80"},
	} {
		if got := askAs(t, n.pod, tc.uid, tc.gid, addrPort(peerIP4, remotePort)); got != tc.answer {
			t.Errorf("connection of %s (%d:%d) answered %q, want %q", tc.name, tc.uid, tc.gid, got, tc.answer)
		}
	}
}

func TestRedirectionIPv4Only(t *testing.T) {
	t.Parallel()
	n := newMeshedPod(t, "--ipv6=false")
	for _, tc := range []struct {
		ns     string
		to     netip.AddrPort
		answer string
	}{
		{"peer", addrPort(podIP4, appPort), "proxy-inbound 198.18.0.2:8080"},
		{"peer", addrPort(podIP6, appPort), "app [2001:2::2]:8080"},
		{"pod", addrPort(peerIP4, remotePort), "proxy-outbound 198.18.0.1:80"},
		{"pod", addrPort(peerIP6, remotePort), "remote [2001:2::1]:80"},
	} {
		from := n.peer
		if tc.ns == "pod" {
			from = n.pod
		}
		if got := ask(t, from, netip.Addr{}, tc.to); got != tc.answer {
			t.Errorf("%s -> %v answered %q, want %q", tc.ns, tc.to, got, tc.answer)
		}
	}
}

func TestPortsToRedirect(t *testing.T) {
	t.Parallel()
	// The admin port is listed, but ignoring a port wins over redirecting it.
	n := newMeshedPod(t, "--ports-to-redirect", itoa(appPort)+","+itoa(mesh.AdminPort))
	for _, tc := range []struct {
		to     netip.AddrPort
		answer string
	}{
		{addrPort(podIP4, appPort), "proxy-inbound 198.18.0.2:8080"},
		{addrPort(podIP6, appPort), "proxy-inbound [2001:2::2]:8080"},
		{addrPort(podIP4, otherAppPort), "app 198.18.0.2:8081"},
		{addrPort(podIP6, otherAppPort), "app [2001:2::2]:8081"},
		{addrPort(podIP4, mesh.AdminPort), "admin 198.18.0.2:4191"},
	} {
		if got := ask(t, n.peer, netip.Addr{}, tc.to); got != tc.answer {
			t.Errorf("peer -> %v answered %q, want %q", tc.to, got, tc.answer)
		}
	}
	// Outbound redirection does not depend on the ports to redirect.
	if got, want := ask(t, n.pod, netip.Addr{}, addrPort(peerIP4, remotePort)), "proxy-outbound 198.18.0.1:80"; got != want {
		t.Errorf("pod -> remote answered %q, want %q", got, want)
	}
}

// TestKernelHoldsThePlan checks that the rules the kernel lists are exactly
// the plan's, and that running proxy-init again changes nothing, leaving
// other tables in the namespace alone.
func TestKernelHoldsThePlan(t *testing.T) {
	t.Parallel()
	ns := newNetns(t)
	other := &nftables.Table{Name: "someone-else", Family: nftables.TableFamilyIPv4}
	conn, err := nft.Open(nsPath(ns))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	conn.NFTables().AddTable(other)
	conn.NFTables().AddChain(&nftables.Chain{Name: "theirs", Table: other})
	if err := conn.NFTables().Flush(); err != nil {
		t.Fatal(err)
	}

	args := []string{"--subnets-to-ignore", "10.0.0.0/8,fd00::/8,10.16.0.0/12," + skippedNets, "--proxy-gid", "2103",
		"--outbound-ports-to-ignore", "443,8000-8100", "--ports-to-redirect", "80,8080-8081"}
	proxyInit(t, ns, args...)
	first := ruleset(t, ns)
	proxyInit(t, ns, args...)
	if again := ruleset(t, ns); again != first {
		t.Errorf("a second run changed the rule set:\n--- first\n%s--- second\n%s", first, again)
	}
	if !strings.Contains(first, "name=someone-else") || !strings.Contains(first, "chain theirs") {
		t.Errorf("the other table is gone:\n%s", first)
	}

	o, err := parseArgs(args, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	p, err := plan.Build(o.config)
	if err != nil {
		t.Fatal(err)
	}
	table := &nftables.Table{Name: plan.Table, Family: nftables.TableFamilyINet}
	for _, pc := range p.Chains {
		chain, err := conn.NFTables().ListChain(table, pc.Name)
		if err != nil {
			t.Fatalf("chain %s: %v", pc.Name, err)
		}
		if want := nft.Chain(table, pc); chain.Type != want.Type || deref(chain.Hooknum) != deref(want.Hooknum) ||
			deref(chain.Priority) != deref(want.Priority) || deref(chain.Policy) != deref(want.Policy) {
			t.Errorf("chain %s is %+v, want %+v", pc.Name, chain, want)
		}
		rules, err := conn.NFTables().GetRules(table, chain)
		if err != nil {
			t.Fatal(err)
		}
		if len(rules) != len(pc.Rules) {
			t.Errorf("chain %s has %d rules, want %d", pc.Name, len(rules), len(pc.Rules))
			continue
		}
		for i, r := range rules {
			if want := nft.Exprs(pc.Rules[i]); !reflect.DeepEqual(r.Exprs, want) || string(r.UserData) != string(nft.UserData(pc.Rules[i])) {
				t.Errorf("chain %s rule %d (%s) reads back as %s %q", pc.Name, i, pc.Rules[i], formatExprs(r.Exprs), r.UserData)
			}
		}
	}
}

// TestRerunReplaces checks that running with other flags leaves exactly the
// rules a first run with those flags leaves, not a mix.
func TestRerunReplaces(t *testing.T) {
	t.Parallel()
	before := []string{"--inbound-ports-to-ignore", "1-100,4190,4191", "--subnets-to-ignore", "10.0.0.0/8", "--proxy-gid", "7"}
	after := []string{"--outbound-ports-to-ignore", "443", "--ipv6=false"}
	rerun, fresh := newNetns(t), newNetns(t)
	proxyInit(t, rerun, before...)
	proxyInit(t, rerun, after...)
	proxyInit(t, fresh, after...)
	if got, want := ruleset(t, rerun), ruleset(t, fresh); got != want {
		t.Errorf("after a rerun:\n%s\nwant, as from a first run:\n%s", got, want)
	}
}

// TestFailedApplyChangesNothing has the kernel refuse a rule set (a jump to
// a chain that does not exist) and checks that the previous rules, or their
// absence, stay as they were.
func TestFailedApplyChangesNothing(t *testing.T) {
	t.Parallel()
	ns := newNetns(t)
	conn, err := nft.Open(nsPath(ns))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	broken, err := plan.Build(plan.Default())
	if err != nil {
		t.Fatal(err)
	}
	broken.Chains[3].Rules = append(broken.Chains[3].Rules[:1],
		append([]plan.Rule{{Verdict: plan.Verdict{Kind: plan.Jump, Chain: "MISSING"}}}, broken.Chains[3].Rules[1:]...)...)

	empty := ruleset(t, ns)
	err = conn.Apply(broken)
	if err == nil || !strings.Contains(err.Error(), "nothing was changed") {
		t.Fatalf("applying a broken rule set: %v", err)
	}
	t.Logf("refused as expected: %v", err)
	if got := ruleset(t, ns); got != empty {
		t.Errorf("a refused first rule set left:\n%s", got)
	}

	proxyInit(t, ns, "--outbound-ports-to-ignore", "443")
	applied := ruleset(t, ns)
	if err := conn.Apply(broken); err == nil {
		t.Fatal("the broken rule set was accepted")
	}
	if got := ruleset(t, ns); got != applied {
		t.Errorf("a refused rule set changed the previous one:\n--- before\n%s--- after\n%s", applied, got)
	}
}

// TestLargestRuleSet applies the largest rule set the limits allow, in one
// batch, and checks that the kernel holds all of it.
func TestLargestRuleSet(t *testing.T) {
	t.Parallel()
	ns := newNetns(t)
	var ports, subnets []string
	for i := range plan.MaxPortRanges {
		ports = append(ports, itoa(uint16(1000+2*i)))
	}
	for i := range plan.MaxSubnets {
		subnets = append(subnets, netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, byte(i >> 7), byte(i << 1)}), 47).String())
	}
	list := strings.Join(ports, ",")
	proxyInit(t, ns, "--proxy-gid", "1", "--inbound-ports-to-ignore", list, "--outbound-ports-to-ignore", list,
		"--ports-to-redirect", list, "--subnets-to-ignore", strings.Join(subnets, ","))
	if got, want := strings.Count(ruleset(t, ns), "\n    rule "), 3*plan.MaxPortRanges+2*plan.MaxSubnets+6; got != want {
		t.Errorf("%d rules in the kernel, want %d", got, want)
	}
}

func TestSimulateChangesNothing(t *testing.T) {
	t.Parallel()
	ns := newNetns(t)
	empty := ruleset(t, ns)
	proxyInit(t, ns, "--simulate")
	if got := ruleset(t, ns); got != empty {
		t.Errorf("--simulate left rules:\n%s", got)
	}
}
