package destinationv1

import (
	"errors"
	"fmt"
	"net/netip"
)

// DefaultEndpointWeight is the weight of an ordinary endpoint. A weight of 0 on
// the wire is read as this.
const DefaultEndpointWeight = 10000

// ErrMalformedAddress is wrapped by the errors SocketAddress.AddrPort returns.
var ErrMalformedAddress = errors.New("malformed socket address")

// NewSocketAddress returns the wire form of ap. An IPv4 address mapped into
// IPv6 (::ffff:a.b.c.d) is sent as plain IPv4, so that one endpoint has one
// form.
func NewSocketAddress(ap netip.AddrPort) *SocketAddress {
	return &SocketAddress{Ip: ap.Addr().Unmap().AsSlice(), Port: uint32(ap.Port())}
}

// AddrPort returns the address as a netip.AddrPort. It fails unless the IP is
// 4 or 16 bytes and the port is between 1 and 65535.
func (a *SocketAddress) AddrPort() (netip.AddrPort, error) {
	if a == nil {
		return netip.AddrPort{}, fmt.Errorf("%w: missing", ErrMalformedAddress)
	}
	ip, ok := netip.AddrFromSlice(a.GetIp())
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("%w: IP of %d bytes", ErrMalformedAddress, len(a.GetIp()))
	}
	if a.GetPort() == 0 || a.GetPort() > 65535 {
		return netip.AddrPort{}, fmt.Errorf("%w: port %d out of range 1-65535", ErrMalformedAddress, a.GetPort())
	}
	return netip.AddrPortFrom(ip.Unmap(), uint16(a.GetPort())), nil
}

// EffectiveWeight returns the endpoint's weight, reading 0 as
// DefaultEndpointWeight.
func (e *Endpoint) EffectiveWeight() uint32 {
	if w := e.GetWeight(); w != 0 {
		return w
	}
	return DefaultEndpointWeight
}
