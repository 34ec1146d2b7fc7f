package policyv1

import (
	"errors"
	"net/netip"
	"testing"
)

func TestIpNetworkRoundTrip(t *testing.T) {
	for _, s := range []string{"198.18.0.0/15", "0.0.0.0/0", "198.18.0.1/32", "2001:db8::/32", "::/0"} {
		p := netip.MustParsePrefix(s)
		got, err := NewIpNetwork(p).Prefix()
		if err != nil || got != p {
			t.Errorf("round trip of %s = %s, %v", p, got, err)
		}
	}
}

func TestIpNetworkMasksAndUnmaps(t *testing.T) {
	for in, want := range map[string]string{
		"198.18.7.9/15":         "198.18.0.0/15",
		"::ffff:198.18.0.0/111": "198.18.0.0/15",
		"2001:db8::1/64":        "2001:db8::/64",
	} {
		got, err := NewIpNetwork(netip.MustParsePrefix(in)).Prefix()
		if err != nil || got != netip.MustParsePrefix(want) {
			t.Errorf("%s: got %s, %v; want %s", in, got, err, want)
		}
	}
}

func TestIpNetworkReadsMappedIPv4(t *testing.T) {
	n := &IpNetwork{Ip: netip.MustParseAddr("::ffff:10.0.0.0").AsSlice(), PrefixLength: 104}
	got, err := n.Prefix()
	if err != nil || got != netip.MustParsePrefix("10.0.0.0/8") {
		t.Fatalf("Prefix() = %s, %v; want 10.0.0.0/8", got, err)
	}
	// Shorter than /96, the network is not all IPv4, so it stays IPv6.
	n = &IpNetwork{Ip: make([]byte, 16), PrefixLength: 80}
	if got, err := n.Prefix(); err != nil || got != netip.MustParsePrefix("::/80") {
		t.Fatalf("Prefix() = %s, %v; want ::/80", got, err)
	}
}

func TestNewIpNetworkInvalid(t *testing.T) {
	if _, err := NewIpNetwork(netip.Prefix{}).Prefix(); !errors.Is(err, ErrMalformedNetwork) {
		t.Fatalf("the zero prefix round-tripped: %v", err)
	}
}

func network(net string, except ...string) *Network {
	n := &Network{Net: NewIpNetwork(netip.MustParsePrefix(net))}
	for _, e := range except {
		n.Except = append(n.Except, NewIpNetwork(netip.MustParsePrefix(e)))
	}
	return n
}

func TestNetworkContains(t *testing.T) {
	n := network("198.18.0.0/15", "198.18.1.0/24", "198.19.255.255/32", "2001:db8::/32", "10.0.0.0/8")
	for addr, want := range map[string]bool{
		"198.18.0.1":          true,
		"198.19.255.254":      true,
		"198.18.1.7":          false, // excepted
		"198.19.255.255":      false, // excepted
		"::ffff:198.18.1.7":   false, // excepted, as IPv4
		"::ffff:198.18.0.1":   true,
		"198.20.0.1":          false,
		"10.1.2.3":            false,
		"2001:db8::1":         false,
		"::ffff:198.17.255.1": false,
	} {
		got, err := n.Contains(netip.MustParseAddr(addr))
		if err != nil || got != want {
			t.Errorf("Contains(%s) = %v, %v; want %v", addr, got, err, want)
		}
	}
	// An exception written as mapped IPv4 still applies to IPv4 clients.
	n = &Network{
		Net:    NewIpNetwork(netip.MustParsePrefix("0.0.0.0/0")),
		Except: []*IpNetwork{{Ip: netip.MustParseAddr("::ffff:10.0.0.0").AsSlice(), PrefixLength: 104}},
	}
	if got, err := n.Contains(netip.MustParseAddr("10.1.2.3")); err != nil || got {
		t.Errorf("mapped exception did not apply: %v, %v", got, err)
	}
}

func TestNetworkContainsMalformed(t *testing.T) {
	addr := netip.MustParseAddr("198.18.0.1")
	for name, n := range map[string]*Network{
		"nil":              nil,
		"no net":           {},
		"bad net":          {Net: &IpNetwork{Ip: []byte{1, 2}}},
		"bad except":       {Net: NewIpNetwork(netip.MustParsePrefix("0.0.0.0/0")), Except: []*IpNetwork{{Ip: []byte{1}}}},
		"bad except, miss": {Net: NewIpNetwork(netip.MustParsePrefix("10.0.0.0/8")), Except: []*IpNetwork{{Ip: make([]byte, 4), PrefixLength: 40}}},
	} {
		if got, err := n.Contains(addr); !errors.Is(err, ErrMalformedNetwork) || got {
			t.Errorf("%s: Contains = %v, %v; want false, ErrMalformedNetwork", name, got, err)
		}
	}
}

func TestIpNetworkRejects(t *testing.T) {
	for name, n := range map[string]*IpNetwork{
		"nil":         nil,
		"empty":       {},
		"short IP":    {Ip: []byte{10, 0}, PrefixLength: 8},
		"IPv4 /33":    {Ip: []byte{198, 18, 0, 0}, PrefixLength: 33},
		"IPv6 /129":   {Ip: make([]byte, 16), PrefixLength: 129},
		"huge prefix": {Ip: make([]byte, 16), PrefixLength: 1<<32 - 1},
	} {
		if p, err := n.Prefix(); !errors.Is(err, ErrMalformedNetwork) {
			t.Errorf("%s: Prefix() = %s, %v; want ErrMalformedNetwork", name, p, err)
		}
	}
}
