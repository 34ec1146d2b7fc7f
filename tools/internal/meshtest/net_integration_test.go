//go:build integration

package meshtest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math/big"
	"net"
	"strings"
	"testing"
)

// network is the pod network of one test: a bridge in the root namespace
// and pod-like network namespaces attached to it with veth pairs, all in a
// /24 of 198.19.128.0/17 (inside 198.18.0.0/15, clear of kubetest's Service
// range 198.19.0.0/20 and of the dev cluster's pods in 198.18.0.0/16).
type network struct {
	prefix string // "198.19.X."
	bridge string
	suffix string
}

// gateway is the bridge's address: the "node", where identity and
// destination listen.
func (n *network) gateway() string { return n.prefix + "1" }

// ip returns the address ending in host.
func (n *network) ip(host int) string { return fmt.Sprintf("%s%d", n.prefix, host) }

// netnsName returns the name of the namespace called role.
func (n *network) netnsName(role string) string { return "l5dmt-" + n.suffix + "-" + role }

// newNetwork creates the bridge in a /24 no interface or route of the host
// uses yet, and removes it in t.Cleanup.
func newNetwork(t testing.TB) *network {
	t.Helper()
	var sfx [3]byte
	if _, err := rand.Read(sfx[:]); err != nil {
		t.Fatal(err)
	}
	n := &network{suffix: hex.EncodeToString(sfx[:])}
	n.bridge = "l5dmt" + n.suffix
	routes, err := run("ip", "-4", "route", "show", "table", "all")
	if err != nil {
		t.Fatal(err)
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for attempt := 0; n.prefix == ""; attempt++ {
		if attempt == 50 {
			t.Fatal("no free /24 in 198.19.128.0/17")
		}
		x, err := rand.Int(rand.Reader, big.NewInt(120))
		if err != nil {
			t.Fatal(err)
		}
		prefix := fmt.Sprintf("198.19.%d.", 130+x.Int64())
		used := strings.Contains(routes, prefix)
		_, subnet, _ := net.ParseCIDR(prefix + "0/24")
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && subnet.Contains(ipn.IP) {
				used = true
			}
		}
		if !used {
			n.prefix = prefix
		}
	}
	t.Cleanup(func() {
		if _, err := run("ip", "link", "del", n.bridge); err != nil {
			t.Errorf("removing the bridge: %v", err)
		}
	})
	for _, argv := range [][]string{
		{"ip", "link", "add", n.bridge, "type", "bridge"},
		{"ip", "addr", "add", n.gateway() + "/24", "dev", n.bridge},
		{"ip", "link", "set", n.bridge, "up"},
	} {
		if _, err := run(argv...); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

// addNetns creates the namespace called role with eth0 on the bridge holding
// the given host addresses, loopback up and a default route via the
// gateway, and deletes it in t.Cleanup (after the processes in it, which
// were started later, have been stopped).
func (n *network) addNetns(t testing.TB, role string, hosts ...int) string {
	t.Helper()
	ns := n.netnsName(role)
	veth := "l5dmt" + n.suffix + role[:1]
	t.Cleanup(func() {
		if _, err := run("ip", "netns", "del", ns); err != nil {
			t.Errorf("removing netns: %v", err)
		}
		// Gone with the namespace; removed by name in case something
		// still held the namespace open.
		if out, err := run("ip", "link", "show", veth); err == nil && out != "" {
			if _, err := run("ip", "link", "del", veth); err != nil {
				t.Errorf("removing veth: %v", err)
			}
		}
	})
	cmds := [][]string{
		{"ip", "netns", "add", ns},
		{"ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns},
		{"ip", "link", "set", veth, "master", n.bridge, "up"},
		{"ip", "-n", ns, "link", "set", "lo", "up"},
	}
	for _, h := range hosts {
		cmds = append(cmds, []string{"ip", "-n", ns, "addr", "add", n.ip(h) + "/24", "dev", "eth0"})
	}
	cmds = append(cmds,
		[]string{"ip", "-n", ns, "link", "set", "eth0", "up"},
		[]string{"ip", "-n", ns, "route", "add", "default", "via", n.gateway()},
	)
	for _, argv := range cmds {
		if _, err := run(argv...); err != nil {
			t.Fatal(err)
		}
	}
	return ns
}
