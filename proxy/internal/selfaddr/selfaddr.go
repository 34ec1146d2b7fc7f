// Package selfaddr knows the addresses the proxy itself listens on, so that
// no connection is ever forwarded to one of them. A connection that the
// proxy sends back into its own listener is accepted as a new connection,
// which the proxy would forward again, and again: one client connection
// becomes thousands until the process runs out of file descriptors. The
// proxy's own traffic is exempt from redirection, so nothing else breaks
// such a loop.
package selfaddr

import (
	"fmt"
	"net"
	"net/netip"
)

// Set is the proxy's listening addresses. The zero Set (or a nil *Set)
// holds nothing.
type Set struct {
	listeners []netip.AddrPort
	local     map[netip.Addr]bool // this host's addresses, for listeners on 0.0.0.0 or ::
}

// New returns the set of listeners. local lists the host's own addresses:
// a listener on an unspecified address (0.0.0.0, ::) is reached at any of
// them, and at any loopback address.
func New(listeners []netip.AddrPort, local []netip.Addr) *Set {
	s := &Set{local: map[netip.Addr]bool{}}
	for _, l := range listeners {
		s.listeners = append(s.listeners, netip.AddrPortFrom(l.Addr().Unmap(), l.Port()))
	}
	for _, a := range local {
		s.local[a.Unmap()] = true
	}
	return s
}

// FromInterfaces returns the set of listeners with the host's addresses
// read from its network interfaces (a pod's addresses do not change while
// it runs).
func FromInterfaces(listeners []netip.AddrPort) (*Set, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("reading the interfaces' addresses: %w", err)
	}
	var local []netip.Addr
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			local = append(local, p.Addr())
		}
	}
	return New(listeners, local), nil
}

// Contains reports whether a connection to dst would reach one of the
// proxy's own listeners.
func (s *Set) Contains(dst netip.AddrPort) bool {
	if s == nil {
		return false
	}
	addr := dst.Addr().Unmap()
	for _, l := range s.listeners {
		if l.Port() != dst.Port() {
			continue
		}
		if l.Addr() == addr {
			return true
		}
		if l.Addr().IsUnspecified() && (addr.IsLoopback() || addr.IsUnspecified() || s.local[addr]) {
			return true
		}
	}
	return false
}
