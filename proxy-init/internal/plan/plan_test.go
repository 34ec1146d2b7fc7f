package plan

import (
	"errors"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/linkerd-go/linkerd-go/api/mesh"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func ports(t *testing.T, s string) []mesh.PortRange {
	t.Helper()
	rs, err := mesh.ParsePortRanges(s)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func prefixes(t *testing.T, ss ...string) []netip.Prefix {
	t.Helper()
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

// TestBuildGolden checks the rule set of each flag combination against
// testdata/<name>.nft. Run with -update to rewrite the files, then read the
// diff.
func TestBuildGolden(t *testing.T) {
	for name, edit := range map[string]func(*Config){
		"default": func(*Config) {},
		"ipv4-only": func(c *Config) {
			c.IPv6 = false
		},
		"ports-to-redirect": func(c *Config) {
			c.PortsToRedirect = ports(t, "8080,80,8081-8090")
		},
		"gid-only": func(c *Config) {
			c.ProxyUID, c.ProxyGID = NoID, 2102
		},
		"nothing-ignored": func(c *Config) {
			c.InboundPortsToIgnore = nil
		},
		"other-proxy-ports": func(c *Config) {
			c.IncomingProxyPort, c.OutgoingProxyPort = 5143, 5140
		},
		"everything": func(c *Config) {
			c.ProxyGID = 2103
			c.InboundPortsToIgnore = ports(t, "4191,4190,25,1-10,9-12,65535")
			c.OutboundPortsToIgnore = ports(t, "443,8000-8100,3306")
			c.PortsToRedirect = ports(t, "80,8080-8081")
			c.SubnetsToIgnore = prefixes(t,
				"10.0.0.0/8", "fd00::/8", "10.16.0.0/12", "192.168.1.7/32", "2001:db8::/33",
				"0.0.0.0/0", "::/0", "::ffff:198.18.0.0/111", "10.0.0.1/8", "10.0.0.0/8")
		},
	} {
		t.Run(name, func(t *testing.T) {
			c := Default()
			edit(&c)
			p, err := Build(c)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join("testdata", name+".nft"), p.String())
		})
	}
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("plan differs from %s (run with -update to accept):\n--- got\n%s--- want\n%s", path, got, want)
	}
}

func TestBuildDefault(t *testing.T) {
	p, err := Build(Default())
	if err != nil {
		t.Fatal(err)
	}
	if p.Table != "linkerd-proxy-init" || len(p.Chains) != 4 {
		t.Fatalf("plan %+v", p)
	}
	redirect, output := p.Chains[2], p.Chains[3]
	last := func(c Chain) Verdict { return c.Rules[len(c.Rules)-1].Verdict }
	if v := last(redirect); v.Kind != Redirect || v.Port != mesh.InboundPort {
		t.Errorf("inbound ends with %+v, want a redirect to %d", v, mesh.InboundPort)
	}
	if v := last(output); v.Kind != Redirect || v.Port != mesh.OutboundPort {
		t.Errorf("outbound ends with %+v, want a redirect to %d", v, mesh.OutboundPort)
	}
	if r := output.Rules[0]; r.SkUID == nil || *r.SkUID != mesh.DefaultProxyUID || r.Verdict.Kind != Return {
		t.Errorf("outbound starts with %v, want the proxy uid exempted", r)
	}
	for _, port := range []uint16{mesh.ControlPort, mesh.AdminPort} {
		if !slices.ContainsFunc(redirect.Rules, func(r Rule) bool {
			return r.DPort != nil && r.DPort.Contains(port) && r.Verdict.Kind == Return
		}) {
			t.Errorf("inbound port %d is not ignored", port)
		}
	}
}

// TestBuildOrderIndependent checks that lists written in another order, with
// duplicates, overlaps or host bits, give the same rule set.
func TestBuildOrderIndependent(t *testing.T) {
	a, b := Default(), Default()
	a.InboundPortsToIgnore = ports(t, "4190,4191,8000-8100,25")
	b.InboundPortsToIgnore = ports(t, "25,8050-8100,4191,8000-8049,4190,25")
	a.SubnetsToIgnore = prefixes(t, "10.0.0.0/8", "fd00::/8")
	b.SubnetsToIgnore = prefixes(t, "fd00::1/8", "10.1.2.3/8", "::ffff:10.0.0.0/104")
	pa, err := Build(a)
	if err != nil {
		t.Fatal(err)
	}
	pb, err := Build(b)
	if err != nil {
		t.Fatal(err)
	}
	if pa.String() != pb.String() {
		t.Errorf("different plans:\n%s\n%s", pa, pb)
	}
}

func TestValidateRejects(t *testing.T) {
	for name, tc := range map[string]struct {
		edit func(*Config)
		want string
	}{
		"incoming port 0":     {func(c *Config) { c.IncomingProxyPort = 0 }, "incoming proxy port 0 is out of range"},
		"outgoing port 0":     {func(c *Config) { c.OutgoingProxyPort = 0 }, "outgoing proxy port 0 is out of range"},
		"same proxy ports":    {func(c *Config) { c.OutgoingProxyPort = c.IncomingProxyPort }, "both 4143"},
		"uid too big":         {func(c *Config) { c.ProxyUID = 1 << 32 }, "proxy uid 4294967296 is out of range"},
		"uid is no-id":        {func(c *Config) { c.ProxyUID = 1<<32 - 1 }, "proxy uid 4294967295 is out of range"},
		"gid negative":        {func(c *Config) { c.ProxyGID = -2 }, "proxy gid -2 is out of range"},
		"no uid nor gid":      {func(c *Config) { c.ProxyUID = NoID }, "neither a proxy uid nor a proxy gid"},
		"reversed range":      {func(c *Config) { c.OutboundPortsToIgnore = []mesh.PortRange{{First: 90, Last: 80}} }, "outbound ports to ignore: 90-80 is not a range"},
		"port 0 in range":     {func(c *Config) { c.PortsToRedirect = []mesh.PortRange{{First: 0, Last: 80}} }, "ports to redirect: 0-80 is not a range"},
		"invalid prefix":      {func(c *Config) { c.SubnetsToIgnore = []netip.Prefix{{}} }, "invalid prefix"},
		"too many port lists": {func(c *Config) { c.InboundPortsToIgnore = spread(MaxPortRanges + 1) }, "101 separate ranges, more than 100"},
		"too many subnets":    {func(c *Config) { c.SubnetsToIgnore = subnets(MaxSubnets + 1) }, "101 subnets, more than 100"},
	} {
		t.Run(name, func(t *testing.T) {
			c := Default()
			tc.edit(&c)
			p, err := Build(c)
			if err == nil {
				t.Fatalf("Build = %v, want an error", p)
			}
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want ErrInvalidConfig saying %q", err, tc.want)
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	c := Default()
	c.IncomingProxyPort, c.OutgoingProxyPort, c.ProxyUID = 0, 0, NoID
	err := c.Validate()
	for _, want := range []string{"incoming proxy port 0", "outgoing proxy port 0", "neither a proxy uid"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not say %q", err, want)
		}
	}
}

func TestLimitsAreInclusive(t *testing.T) {
	c := Default()
	c.ProxyGID = 2103
	c.InboundPortsToIgnore = spread(MaxPortRanges)
	c.OutboundPortsToIgnore = spread(MaxPortRanges)
	c.PortsToRedirect = spread(MaxPortRanges)
	c.SubnetsToIgnore = subnets(MaxSubnets)
	p, err := Build(c)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(p.Chains[2].Rules) + len(p.Chains[3].Rules); n != 3*MaxPortRanges+2*MaxSubnets+4 {
		t.Errorf("%d rules in the regular chains", n)
	}
}

// spread returns n single ports that do not merge.
func spread(n int) []mesh.PortRange {
	var rs []mesh.PortRange
	for i := range n {
		p := uint16(1000 + 2*i)
		rs = append(rs, mesh.PortRange{First: p, Last: p})
	}
	return rs
}

// subnets returns n distinct IPv6 networks that are not on a byte boundary,
// the largest rules there are.
func subnets(n int) []netip.Prefix {
	var ps []netip.Prefix
	for i := range n {
		a := [16]byte{0x20, 0x01, 0x0d, 0xb8, byte(i >> 7), byte(i << 1)}
		ps = append(ps, netip.PrefixFrom(netip.AddrFrom16(a), 47))
	}
	return ps
}
