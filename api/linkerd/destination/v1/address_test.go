package destinationv1

import (
	"errors"
	"net/netip"
	"testing"
)

func TestSocketAddressRoundTrip(t *testing.T) {
	for _, s := range []string{"198.18.0.10:8080", "[2001:db8::1]:443", "0.0.0.0:1", "[::]:65535"} {
		ap := netip.MustParseAddrPort(s)
		got, err := NewSocketAddress(ap).AddrPort()
		if err != nil || got != ap {
			t.Errorf("round trip of %s = %s, %v", ap, got, err)
		}
	}
}

func TestSocketAddressUnmapsIPv4(t *testing.T) {
	a := NewSocketAddress(netip.MustParseAddrPort("[::ffff:198.18.0.10]:80"))
	if len(a.GetIp()) != 4 {
		t.Fatalf("mapped IPv4 sent as %d bytes, want 4", len(a.GetIp()))
	}
	got, err := (&SocketAddress{Ip: netip.MustParseAddr("::ffff:198.18.0.10").AsSlice(), Port: 80}).AddrPort()
	if err != nil || got != netip.MustParseAddrPort("198.18.0.10:80") {
		t.Fatalf("mapped address read as %s, %v", got, err)
	}
}

func TestNewSocketAddressInvalid(t *testing.T) {
	if ap, err := NewSocketAddress(netip.AddrPort{}).AddrPort(); !errors.Is(err, ErrMalformedAddress) {
		t.Fatalf("the zero AddrPort round-tripped as %s, %v", ap, err)
	}
}

func TestSocketAddressRejects(t *testing.T) {
	for name, a := range map[string]*SocketAddress{
		"nil":         nil,
		"empty":       {},
		"short IP":    {Ip: []byte{198, 18, 0}, Port: 80},
		"long IP":     {Ip: make([]byte, 17), Port: 80},
		"port 0":      {Ip: []byte{198, 18, 0, 1}},
		"port 65536":  {Ip: []byte{198, 18, 0, 1}, Port: 65536},
		"port 2^32-1": {Ip: []byte{198, 18, 0, 1}, Port: 1<<32 - 1},
	} {
		if ap, err := a.AddrPort(); !errors.Is(err, ErrMalformedAddress) {
			t.Errorf("%s: AddrPort() = %s, %v; want ErrMalformedAddress", name, ap, err)
		}
	}
}

func TestEffectiveWeight(t *testing.T) {
	if w := (&Endpoint{}).EffectiveWeight(); w != DefaultEndpointWeight {
		t.Errorf("unset weight read as %d", w)
	}
	if w := (&Endpoint{Weight: 7}).EffectiveWeight(); w != 7 {
		t.Errorf("weight 7 read as %d", w)
	}
}
