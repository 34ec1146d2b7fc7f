package selfaddr

import (
	"net/netip"
	"testing"
)

func TestContains(t *testing.T) {
	s := New([]netip.AddrPort{
		netip.MustParseAddrPort("0.0.0.0:4143"),
		netip.MustParseAddrPort("127.0.0.1:4140"),
		netip.MustParseAddrPort("[::]:4191"),
	}, []netip.Addr{netip.MustParseAddr("198.18.0.7"), netip.MustParseAddr("fd00::7")})
	for _, tc := range []struct {
		dst  string
		want bool
	}{
		{"198.18.0.7:4143", true},  // the pod's address, inbound port
		{"127.0.0.1:4143", true},   // loopback reaches 0.0.0.0
		{"127.0.0.2:4143", true},   // any loopback address
		{"0.0.0.0:4143", true},     // connecting to 0.0.0.0 reaches the host
		{"198.18.0.8:4143", false}, // another pod's proxy
		{"198.18.0.7:8080", false}, // the application
		{"127.0.0.1:4140", true},   // outbound listener, exact address
		{"198.18.0.7:4140", false}, // nothing listens there
		{"[fd00::7]:4191", true},
		{"[::1]:4191", true},
		{"[::ffff:198.18.0.7]:4143", true}, // IPv4-mapped
		{"[fd00::8]:4191", false},
	} {
		if got := s.Contains(netip.MustParseAddrPort(tc.dst)); got != tc.want {
			t.Errorf("Contains(%s) = %v, want %v", tc.dst, got, tc.want)
		}
	}
	var none *Set
	if none.Contains(netip.MustParseAddrPort("127.0.0.1:4143")) {
		t.Error("a nil Set contains an address")
	}
}

func TestFromInterfaces(t *testing.T) {
	s, err := FromInterfaces([]netip.AddrPort{netip.MustParseAddrPort("0.0.0.0:4143")})
	if err != nil {
		t.Fatal(err)
	}
	if !s.Contains(netip.MustParseAddrPort("127.0.0.1:4143")) {
		t.Error("loopback is not one of the host's addresses")
	}
}
