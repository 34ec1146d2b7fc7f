package policyv1

import (
	"errors"
	"fmt"
	"net/netip"
)

// ErrMalformedNetwork is wrapped by the errors IpNetwork.Prefix and
// Network.Contains return.
var ErrMalformedNetwork = errors.New("malformed IP network")

// NewIpNetwork returns the wire form of p, masked to its prefix length. An
// IPv4 prefix mapped into IPv6 is sent as plain IPv4. The zero (invalid)
// prefix gives an empty IpNetwork, which Prefix rejects.
func NewIpNetwork(p netip.Prefix) *IpNetwork {
	if !p.IsValid() {
		return &IpNetwork{}
	}
	addr, bits := p.Addr(), p.Bits()
	if addr.Is4In6() && bits >= 96 {
		addr, bits = addr.Unmap(), bits-96
	}
	p = netip.PrefixFrom(addr, bits).Masked()
	return &IpNetwork{Ip: p.Addr().AsSlice(), PrefixLength: uint32(p.Bits())}
}

// Prefix returns the network as a masked netip.Prefix, with an IPv4 network
// mapped into IPv6 (::ffff:0:0/96 and longer) read as IPv4. It fails unless the
// IP is 4 or 16 bytes and the prefix length fits the address.
func (n *IpNetwork) Prefix() (netip.Prefix, error) {
	if n == nil {
		return netip.Prefix{}, fmt.Errorf("%w: missing", ErrMalformedNetwork)
	}
	ip, ok := netip.AddrFromSlice(n.GetIp())
	if !ok {
		return netip.Prefix{}, fmt.Errorf("%w: IP of %d bytes", ErrMalformedNetwork, len(n.GetIp()))
	}
	if n.GetPrefixLength() > uint32(ip.BitLen()) {
		return netip.Prefix{}, fmt.Errorf("%w: prefix length %d longer than the %d-bit address", ErrMalformedNetwork, n.GetPrefixLength(), ip.BitLen())
	}
	bits := int(n.GetPrefixLength())
	if ip.Is4In6() && bits >= 96 {
		ip, bits = ip.Unmap(), bits-96
	}
	return netip.PrefixFrom(ip, bits).Masked(), nil
}

// Contains reports whether addr is in the network and in none of its
// exceptions, reading IPv4-mapped IPv6 addresses as IPv4. A malformed network
// or exception is an error: callers must then treat the Authorization that
// holds it as permitting no one.
func (n *Network) Contains(addr netip.Addr) (bool, error) {
	net, err := n.GetNet().Prefix()
	if err != nil {
		return false, err
	}
	addr = addr.Unmap()
	in := net.Contains(addr)
	for _, e := range n.GetExcept() {
		except, err := e.Prefix()
		if err != nil {
			return false, err
		}
		if except.Contains(addr) {
			in = false
		}
	}
	return in, nil
}
