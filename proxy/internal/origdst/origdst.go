// Package origdst recovers the destination a connection was addressed to
// before proxy-init's nftables rules redirected it to the proxy
// (SO_ORIGINAL_DST, from the kernel's connection tracking).
package origdst

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// soOriginalDst is SO_ORIGINAL_DST (IPv4) and IP6T_SO_ORIGINAL_DST (IPv6):
// both are 80, at levels SOL_IP and SOL_IPV6.
const soOriginalDst = 80

// ErrNotRedirected is returned for a connection that reached the listener
// directly: conntrack has no record of it, or its record says it was
// addressed to the listener itself.
var ErrNotRedirected = errors.New("connection was not redirected")

// Get returns the original destination of a TCP connection accepted on a
// redirected listener.
//
// Where connection tracking is active in the network namespace (any
// Kubernetes node, any pod with nftables rules), SO_ORIGINAL_DST answers
// for every tracked connection, redirected or not: for one made straight to
// the listener it returns the connection's own destination. That is not a
// redirection, and taking it for one would make the proxy forward the
// connection to its own listener, so it is reported as ErrNotRedirected.
func Get(conn net.Conn) (netip.AddrPort, error) {
	tc, ok := conn.(syscall.Conn)
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("%T is not a socket", conn)
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return netip.AddrPort{}, err
	}
	local, _ := conn.LocalAddr().(*net.TCPAddr)
	v6 := local != nil && local.IP.To4() == nil
	var dst netip.AddrPort
	var sockErr error
	err = raw.Control(func(fd uintptr) {
		if v6 {
			dst, sockErr = original6(int(fd))
		} else {
			dst, sockErr = original4(int(fd))
		}
	})
	if err != nil {
		return netip.AddrPort{}, err
	}
	if errors.Is(sockErr, unix.ENOENT) {
		return netip.AddrPort{}, ErrNotRedirected
	}
	if sockErr != nil {
		return netip.AddrPort{}, sockErr
	}
	if local != nil && dst == unmapped(local.AddrPort()) {
		return netip.AddrPort{}, ErrNotRedirected
	}
	return dst, nil
}

// unmapped returns a with an IPv4-mapped IPv6 address as plain IPv4 (how
// net reports IPv4 addresses it stored in 16 bytes).
func unmapped(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}

func original4(fd int) (netip.AddrPort, error) {
	var sa unix.RawSockaddrInet4
	size := uint32(unsafe.Sizeof(sa))
	if err := getsockopt(fd, unix.SOL_IP, soOriginalDst, unsafe.Pointer(&sa), &size); err != nil {
		return netip.AddrPort{}, err
	}
	port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:])
	return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), port), nil
}

func original6(fd int) (netip.AddrPort, error) {
	var sa unix.RawSockaddrInet6
	size := uint32(unsafe.Sizeof(sa))
	if err := getsockopt(fd, unix.SOL_IPV6, soOriginalDst, unsafe.Pointer(&sa), &size); err != nil {
		return netip.AddrPort{}, err
	}
	port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:])
	return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), port), nil
}

func getsockopt(fd, level, name int, val unsafe.Pointer, size *uint32) error {
	_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), uintptr(level), uintptr(name), uintptr(val), uintptr(unsafe.Pointer(size)), 0)
	if errno != 0 {
		return errno
	}
	return nil
}
