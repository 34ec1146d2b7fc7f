//go:build integration

package origdst

// Original destinations in network namespaces of the test's own, so that
// the result does not depend on whether the host tracks connections (a
// Kubernetes node does; a laptop may not): without rules, with a rule that
// turns connection tracking on, and with the redirect rule proxy-init
// writes. Needs root and the nft binary.

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// netns is a named network namespace that the test removes when it ends.
type netns struct {
	name string
	file *os.File
}

func newNetns(t *testing.T) *netns {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the integration tests make network namespaces: run them as root")
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	ns := &netns{name: "l5d-origdst-" + hex.EncodeToString(b)}
	run(t, "ip", "netns", "add", ns.name)
	t.Cleanup(func() {
		if ns.file != nil {
			ns.file.Close()
		}
		if out, err := exec.Command("ip", "netns", "del", ns.name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", ns.name, err, out)
		}
	})
	run(t, "ip", "-n", ns.name, "link", "set", "lo", "up")
	f, err := os.Open("/run/netns/" + ns.name)
	if err != nil {
		t.Fatal(err)
	}
	ns.file = f
	return ns
}

// nft loads a ruleset into the namespace.
func (ns *netns) nft(t *testing.T, rules string) {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns.name, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft -f: %v: %s\n%s", err, out, rules)
	}
}

// do runs fn on a thread of its own inside the namespace; sockets fn opens
// stay in it. The thread ends with fn, so the namespace never leaks to
// other goroutines.
func (ns *netns) do(t *testing.T, fn func() error) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // not unlocked: the thread ends with the goroutine
		if err := unix.Setns(int(ns.file.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns: %w", err)
			return
		}
		errc <- fn()
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

// connect opens a listener on 127.0.0.1 and a connection straight to it
// inside ns, and returns the accepted side.
func connect(t *testing.T, ns *netns) (accepted net.Conn, listener netip.AddrPort) {
	t.Helper()
	var ln net.Listener
	ns.do(t, func() error {
		var err error
		ln, err = net.Listen("tcp4", "127.0.0.1:0")
		return err
	})
	t.Cleanup(func() { ln.Close() })
	listener = netip.MustParseAddrPort(ln.Addr().String())
	var c net.Conn
	ns.do(t, func() error {
		var err error
		c, err = net.Dial("tcp4", listener.String())
		return err
	})
	t.Cleanup(func() { c.Close() })
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, listener
}

// rawOriginal is what the kernel answers, before Get interprets it.
func rawOriginal(t *testing.T, c net.Conn) (netip.AddrPort, error) {
	t.Helper()
	raw, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var dst netip.AddrPort
	var sockErr error
	if err := raw.Control(func(fd uintptr) { dst, sockErr = original4(int(fd)) }); err != nil {
		t.Fatal(err)
	}
	return dst, sockErr
}

// Without connection tracking the kernel has no record: ENOENT.
func TestDirectWithoutConntrack(t *testing.T) {
	ns := newNetns(t)
	s, _ := connect(t, ns)
	if _, err := rawOriginal(t, s); !errors.Is(err, unix.ENOENT) {
		t.Fatalf("SO_ORIGINAL_DST without conntrack: %v, want ENOENT", err)
	}
	if dst, err := Get(s); !errors.Is(err, ErrNotRedirected) {
		t.Errorf("Get = %v, %v; want ErrNotRedirected", dst, err)
	}
}

// With connection tracking on (any rule that uses it), the kernel answers
// with the connection's own destination for a direct connection: still not
// a redirection.
func TestDirectWithConntrack(t *testing.T) {
	ns := newNetns(t)
	ns.nft(t, `table inet l5dtest {
	chain out {
		type filter hook output priority 0; policy accept;
		ct state new counter accept
	}
}
`)
	s, listener := connect(t, ns)
	raw, err := rawOriginal(t, s)
	if err != nil || raw != listener {
		t.Fatalf("SO_ORIGINAL_DST with conntrack = %v, %v; want the listener's own address %v (is conntrack active?)", raw, err, listener)
	}
	if dst, err := Get(s); !errors.Is(err, ErrNotRedirected) {
		t.Errorf("Get = %v, %v; want ErrNotRedirected", dst, err)
	}
}

// A connection redirected the way proxy-init redirects (a nat redirect to
// the listener's port) has the address it was made to.
func TestRedirected(t *testing.T) {
	ns := newNetns(t)
	// The listener's port is only known once it listens: redirect a fixed
	// port to a port the test picks and then listens on.
	var probe net.Listener
	ns.do(t, func() error {
		var err error
		probe, err = net.Listen("tcp4", "127.0.0.1:0")
		return err
	})
	port := netip.MustParseAddrPort(probe.Addr().String()).Port()
	probe.Close()
	ns.nft(t, fmt.Sprintf(`table ip l5dtest {
	chain out {
		type nat hook output priority -100; policy accept;
		tcp dport 9 redirect to :%d
	}
}
`, port))
	var ln net.Listener
	ns.do(t, func() error {
		var err error
		ln, err = net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", port))
		return err
	})
	defer ln.Close()
	var c net.Conn
	ns.do(t, func() error {
		var err error
		c, err = net.Dial("tcp4", "127.0.0.1:9")
		return err
	})
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	dst, err := Get(s)
	if err != nil || dst != netip.MustParseAddrPort("127.0.0.1:9") {
		t.Errorf("Get = %v, %v; want 127.0.0.1:9", dst, err)
	}
}
