//go:build integration

package cli

// Test fixtures for the integration tests: network namespaces made by the
// test (never the host's own), a veth pair between a pod-like namespace and
// a peer, TCP servers that say who answered, and a helper process that dials
// under another uid and gid. Everything is removed when the test ends, pass
// or fail.

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/linkerd-go/linkerd-go/proxy-init/internal/nft"
)

// helperEnv, when set, makes the test binary a helper that dials the address
// in it (see runDialHelper) instead of running tests.
const helperEnv = "PROXY_INIT_TEST_DIAL"

func TestMain(m *testing.M) {
	if spec := os.Getenv(helperEnv); spec != "" {
		os.Exit(runDialHelper(spec))
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "the integration tests make network namespaces and nftables rules: run them as root")
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// runDialHelper takes "uid gid address", drops to that uid and gid (on every
// thread of the process), dials the address and prints what the server said.
func runDialHelper(spec string) int {
	var uid, gid int
	var addr string
	if _, err := fmt.Sscan(spec, &uid, &gid, &addr); err != nil {
		fmt.Fprintln(os.Stderr, "bad helper spec:", err)
		return 2
	}
	if err := unix.Setgroups(nil); err != nil {
		fmt.Fprintln(os.Stderr, "setgroups:", err)
		return 1
	}
	if err := unix.Setgid(gid); err != nil {
		fmt.Fprintln(os.Stderr, "setgid:", err)
		return 1
	}
	if err := unix.Setuid(uid); err != nil {
		fmt.Fprintln(os.Stderr, "setuid:", err)
		return 1
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "dial:", err)
		return 1
	}
	defer func() { _ = c.Close() }()
	if _, err := io.Copy(os.Stdout, c); err != nil {
		fmt.Fprintln(os.Stderr, "read:", err)
		return 1
	}
	return 0
}

// onDisposableThread runs fn on an OS thread of its own, which ends with it:
// whatever namespace fn moves the thread to never leaks to other goroutines.
func onDisposableThread(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		// Not unlocked on purpose: the runtime ends the thread when the
		// goroutine returns.
		runtime.LockOSThread()
		errc <- fn()
	}()
	return <-errc
}

// inNetns runs fn in the network namespace ns. Sockets fn opens stay in ns.
func inNetns(t *testing.T, ns *os.File, fn func() error) {
	t.Helper()
	err := onDisposableThread(func() error {
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("setns: %w", err)
		}
		return fn()
	})
	if err != nil {
		t.Fatal(err)
	}
}

// newNetns returns a new, empty network namespace with its loopback up. It
// has no name: it lives while the returned file (or a socket in it) is open,
// and the test closes the file when it ends.
func newNetns(t *testing.T) *os.File {
	t.Helper()
	var f *os.File
	err := onDisposableThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("unshare: %w", err)
		}
		var err error
		f, err = os.Open("/proc/thread-self/ns/net")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	h := handle(t, f)
	lo, err := h.LinkByName("lo")
	if err == nil {
		err = h.LinkSetUp(lo)
	}
	if err != nil {
		t.Fatalf("bringing lo up: %v", err)
	}
	return f
}

// nsPath is a path for the namespace, as --netns takes it.
func nsPath(ns *os.File) string { return fmt.Sprintf("/proc/self/fd/%d", ns.Fd()) }

// handle returns a netlink handle working in ns.
func handle(t *testing.T, ns *os.File) *netlink.Handle {
	t.Helper()
	h, err := netlink.NewHandleAt(netns.NsHandle(ns.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// Addresses of the test network: only the benchmarking ranges 198.18.0.0/15
// and 2001:2::/48, inside namespaces this test made.
var (
	podIP4      = netip.MustParseAddr("198.18.0.2")
	podIP6      = netip.MustParseAddr("2001:2::2")
	peerIP4     = netip.MustParseAddr("198.18.0.1")
	peerIP6     = netip.MustParseAddr("2001:2::1")
	skippedIP4  = netip.MustParseAddr("198.18.1.1") // the peer's, in a subnet to ignore
	skippedIP6  = netip.MustParseAddr("2001:2:0:1::1")
	skippedNets = "198.18.1.0/24,2001:2:0:1::/64"
)

// testNet is a pod-like namespace joined by a veth pair to a peer namespace
// standing for the rest of the network.
type testNet struct {
	pod, peer *os.File
}

func newTestNet(t *testing.T) *testNet {
	t.Helper()
	n := &testNet{pod: newNetns(t), peer: newNetns(t)}
	podLinks, peerLinks := handle(t, n.pod), handle(t, n.peer)
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: "eth0"},
		PeerName:      "eth0",
		PeerNamespace: netlink.NsFd(n.peer.Fd()),
	}
	if err := podLinks.LinkAdd(veth); err != nil {
		t.Fatalf("adding the veth pair: %v", err)
	}
	t.Cleanup(func() {
		// Deleting one end deletes both; the namespaces go when closed.
		if link, err := podLinks.LinkByName("eth0"); err == nil {
			_ = podLinks.LinkDel(link)
		}
	})
	setUp(t, podLinks, "198.18.0.2/24", "2001:2::2/64")
	setUp(t, peerLinks, "198.18.0.1/24", "198.18.1.1/24", "2001:2::1/64", "2001:2:0:1::1/64")
	for _, gw := range []netip.Addr{peerIP4, peerIP6} {
		if err := podLinks.RouteAdd(&netlink.Route{Gw: gw.AsSlice()}); err != nil {
			t.Fatalf("adding the default route via %v: %v", gw, err)
		}
	}
	return n
}

// setUp gives eth0 its addresses (IPv6 ones usable at once, without duplicate
// address detection) and brings it up.
func setUp(t *testing.T, h *netlink.Handle, addrs ...string) {
	t.Helper()
	link, err := h.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		p := netip.MustParsePrefix(a)
		addr := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
		if p.Addr().Is6() {
			addr.Flags = unix.IFA_F_NODAD
		}
		if err := h.AddrAdd(link, addr); err != nil {
			t.Fatalf("adding %s: %v", a, err)
		}
	}
	if err := h.LinkSetUp(link); err != nil {
		t.Fatal(err)
	}
}

// serve listens on addr in ns and answers each connection with one line,
// "<name> <address>", then closes it. The address is the connection's
// original destination (SO_ORIGINAL_DST) when origDst is set, as a proxy
// reads it, and the address the connection reached otherwise.
func serve(t *testing.T, ns *os.File, network, addr, name string, origDst bool) {
	t.Helper()
	var ln net.Listener
	inNetns(t, ns, func() (err error) {
		ln, err = net.Listen(network, addr)
		return err
	})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			answer := c.LocalAddr().String()
			if origDst {
				if dst, err := originalDst(c.(*net.TCPConn)); err != nil {
					answer = "error: " + err.Error()
				} else {
					answer = dst.String()
				}
			}
			_, _ = fmt.Fprintf(c, "%s %s\n", name, answer)
			_ = c.Close()
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
	})
}

// ip6tSoOriginalDst is IP6T_SO_ORIGINAL_DST (linux/netfilter_ipv6/ip6_tables.h).
const ip6tSoOriginalDst = 80

// originalDst reads the destination a redirected connection had before
// nftables rewrote it.
func originalDst(c *net.TCPConn) (netip.AddrPort, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return netip.AddrPort{}, err
	}
	var dst netip.AddrPort
	var sockErr error
	err = raw.Control(func(fd uintptr) {
		if netip.MustParseAddrPort(c.LocalAddr().String()).Addr().Is4() {
			var sa unix.RawSockaddrInet4
			sockErr = getsockopt(fd, unix.SOL_IP, unix.SO_ORIGINAL_DST, unsafe.Pointer(&sa), unsafe.Sizeof(sa))
			dst = netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), ntohs(sa.Port))
		} else {
			var sa unix.RawSockaddrInet6
			sockErr = getsockopt(fd, unix.SOL_IPV6, ip6tSoOriginalDst, unsafe.Pointer(&sa), unsafe.Sizeof(sa))
			dst = netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), ntohs(sa.Port))
		}
	})
	if err == nil {
		err = sockErr
	}
	return dst, err
}

func getsockopt(fd uintptr, level, name int, p unsafe.Pointer, size uintptr) error {
	n := uint32(size)
	_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, fd, uintptr(level), uintptr(name), uintptr(p), uintptr(unsafe.Pointer(&n)), 0)
	if errno != 0 {
		return fmt.Errorf("getsockopt SO_ORIGINAL_DST: %w", errno)
	}
	return nil
}

// ntohs reads a port as the kernel stores it in a sockaddr.
func ntohs(port uint16) uint16 {
	return binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&port))[:])
}

// ask connects from ns (from local, when valid) to remote and returns the
// server's answer.
func ask(t *testing.T, ns *os.File, local netip.Addr, remote netip.AddrPort) string {
	t.Helper()
	var c net.Conn
	inNetns(t, ns, func() (err error) {
		d := net.Dialer{}
		if local.IsValid() {
			d.LocalAddr = &net.TCPAddr{IP: local.AsSlice()}
		}
		c, err = d.Dial("tcp", remote.String())
		return err
	})
	defer func() { _ = c.Close() }()
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading the answer of %v: %v", remote, err)
	}
	return strings.TrimSpace(string(b))
}

// askAs connects from ns to remote in a helper process running as uid and
// gid, and returns the server's answer.
func askAs(t *testing.T, ns *os.File, uid, gid int, remote netip.AddrPort) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d %d %s", helperEnv, uid, gid, remote),
		// A binary built with -race otherwise waits a second when it exits.
		"GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// A process starts in the network namespace of the thread that forks it.
	inNetns(t, ns, cmd.Start)
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper dialing %v as %d:%d: %v\n%s", remote, uid, gid, err, stderr.String())
	}
	return strings.TrimSpace(stdout.String())
}

// proxyInit runs the command, like the init container, on the namespace.
func proxyInit(t *testing.T, ns *os.File, args ...string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if code := Run(context.Background(), append([]string{"--netns", nsPath(ns)}, args...), &stdout, &stderr); code != 0 {
		t.Fatalf("proxy-init %q: exit %d\n%s", args, code, stderr.String())
	}
}

// ruleset lists every table of ns, with its chains and their rules, as the
// kernel holds them (without handles, which change on every run).
func ruleset(t *testing.T, ns *os.File) string {
	t.Helper()
	conn, err := nft.Open(nsPath(ns))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	c := conn.NFTables()
	tables, err := c.ListTables()
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(tables, func(a, b *nftables.Table) int {
		return strings.Compare(fmt.Sprint(a.Family, a.Name), fmt.Sprint(b.Family, b.Name))
	})
	chains, err := c.ListChains()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, table := range tables {
		fmt.Fprintf(&b, "table family=%d name=%s flags=%d\n", table.Family, table.Name, table.Flags)
		for _, chain := range chains {
			if chain.Table.Name != table.Name || chain.Table.Family != table.Family {
				continue
			}
			fmt.Fprintf(&b, "  chain %s type=%q hook=%s priority=%s policy=%s\n", chain.Name, chain.Type,
				deref(chain.Hooknum), deref(chain.Priority), deref(chain.Policy))
			rules, err := c.GetRules(table, chain)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rules {
				fmt.Fprintf(&b, "    rule userdata=%q%s\n", r.UserData, formatExprs(r.Exprs))
			}
		}
	}
	return b.String()
}

func formatExprs(es []expr.Any) string {
	var b strings.Builder
	for _, e := range es {
		fmt.Fprintf(&b, " %T%+v", e, e)
	}
	return b.String()
}

func deref[T any](p *T) string {
	if p == nil {
		return "none"
	}
	return fmt.Sprint(*p)
}

// addrPort joins an address and a port.
func addrPort(a netip.Addr, port uint16) netip.AddrPort { return netip.AddrPortFrom(a, port) }

// itoa is strconv.Itoa for ports.
func itoa(port uint16) string { return strconv.Itoa(int(port)) }
