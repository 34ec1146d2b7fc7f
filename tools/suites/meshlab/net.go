package meshlab

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math/big"
	"net"
	"strings"
)

// Network is a pod network: a bridge in the root namespace and pod-like
// network namespaces attached to it with veth pairs, all in a /24 of
// 198.19.128.0/17 (inside 198.18.0.0/15, clear of kubetest's Service range
// 198.19.0.0/20 and of the dev cluster's pods in 198.18.0.0/16).
type Network struct {
	Prefix string // "198.19.X."
	Bridge string
	tag    string // interface and namespace name prefix, e.g. "l5dmt"
	suffix string // random hex, unique per network
}

// Gateway is the bridge's address: the "node", where identity and
// destination listen.
func (n *Network) Gateway() string { return n.Prefix + "1" }

// IP returns the address ending in host.
func (n *Network) IP(host int) string { return fmt.Sprintf("%s%d", n.Prefix, host) }

// NetnsName returns the name of the namespace called role.
func (n *Network) NetnsName(role string) string { return n.tag + "-" + n.suffix + "-" + role }

// NewNetwork creates the bridge (named tag + 6 hex digits; tag at most 8
// characters) in a /24 no interface or route of the host uses yet, and
// registers its removal on c.
func NewNetwork(c *Cleanup, tag string) (*Network, error) {
	if len(tag) > 8 {
		return nil, fmt.Errorf("network tag %q longer than 8 characters", tag)
	}
	var sfx [3]byte
	if _, err := rand.Read(sfx[:]); err != nil {
		return nil, err
	}
	n := &Network{tag: tag, suffix: hex.EncodeToString(sfx[:])}
	n.Bridge = tag + n.suffix
	routes, err := Run("ip", "-4", "route", "show", "table", "all")
	if err != nil {
		return nil, err
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	for attempt := 0; n.Prefix == ""; attempt++ {
		if attempt == 50 {
			return nil, fmt.Errorf("no free /24 in 198.19.128.0/17")
		}
		x, err := rand.Int(rand.Reader, big.NewInt(120))
		if err != nil {
			return nil, err
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
			n.Prefix = prefix
		}
	}
	c.Add(func() error {
		if _, err := Run("ip", "link", "del", n.Bridge); err != nil {
			return fmt.Errorf("removing the bridge: %w", err)
		}
		return nil
	})
	for _, argv := range [][]string{
		{"ip", "link", "add", n.Bridge, "type", "bridge"},
		{"ip", "addr", "add", n.Gateway() + "/24", "dev", n.Bridge},
		{"ip", "link", "set", n.Bridge, "up"},
	} {
		if _, err := Run(argv...); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// AddNetns creates the namespace called role with eth0 on the bridge
// holding the given host addresses, loopback up and a default route via the
// gateway, and registers its removal on c (after the processes in it, which
// are started later, have been stopped). Roles must differ in their first
// letter.
func (n *Network) AddNetns(c *Cleanup, role string, hosts ...int) (string, error) {
	ns := n.NetnsName(role)
	veth := n.Bridge + role[:1]
	c.Add(func() error {
		var errs []string
		if _, err := Run("ip", "netns", "del", ns); err != nil {
			errs = append(errs, "removing netns: "+err.Error())
		}
		// Gone with the namespace, which the kernel finishes
		// asynchronously; removed by name in case something still held the
		// namespace open. Deleting it may race the kernel: what counts is
		// that it is gone.
		if out, err := Run("ip", "link", "show", veth); err == nil && out != "" {
			if _, err := Run("ip", "link", "del", veth); err != nil {
				if out, serr := Run("ip", "link", "show", veth); serr == nil && out != "" {
					errs = append(errs, "removing veth: "+err.Error())
				}
			}
		}
		if len(errs) > 0 {
			return fmt.Errorf("%s", strings.Join(errs, "; "))
		}
		return nil
	})
	cmds := [][]string{
		{"ip", "netns", "add", ns},
		{"ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns},
		{"ip", "link", "set", veth, "master", n.Bridge, "up"},
		{"ip", "-n", ns, "link", "set", "lo", "up"},
	}
	for _, h := range hosts {
		cmds = append(cmds, []string{"ip", "-n", ns, "addr", "add", n.IP(h) + "/24", "dev", "eth0"})
	}
	cmds = append(cmds,
		[]string{"ip", "-n", ns, "link", "set", "eth0", "up"},
		[]string{"ip", "-n", ns, "route", "add", "default", "via", n.Gateway()},
	)
	for _, argv := range cmds {
		if _, err := Run(argv...); err != nil {
			return ns, err
		}
	}
	return ns, nil
}
