package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"

	"github.com/linkerd-go/linkerd-go/api/mesh"

	"github.com/linkerd-go/linkerd-go/proxy-init/internal/plan"
)

// options is the parsed command line.
type options struct {
	config    plan.Config
	netns     string
	simulate  bool
	logLevel  string
	logFormat string
}

// parseArgs parses the command line. Help, and what is wrong with the command
// line, are written to w.
func parseArgs(args []string, w io.Writer) (options, error) {
	o := options{config: plan.Default()}
	c := &o.config
	fs := flag.NewFlagSet("proxy-init", flag.ContinueOnError)
	fs.SetOutput(w)
	fs.Usage = func() {
		fmt.Fprintln(w, "Usage: proxy-init [flags]")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "Sets up the nftables rules that redirect the pod's TCP traffic through its proxy, then exits.")
		fmt.Fprintln(w, "Port lists are comma-separated ports and a-b ranges; list flags may be repeated.")
		fmt.Fprintln(w)
		fs.PrintDefaults()
	}
	fs.Var((*portFlag)(&c.IncomingProxyPort), "incoming-proxy-port", "`port` of the proxy's inbound listener, where inbound TCP is redirected")
	fs.Var((*portFlag)(&c.OutgoingProxyPort), "outgoing-proxy-port", "`port` of the proxy's outbound listener, where outbound TCP is redirected")
	fs.Int64Var(&c.ProxyUID, "proxy-uid", c.ProxyUID, "`uid` of the proxy, whose own connections are not redirected (-1: none)")
	fs.Int64Var(&c.ProxyGID, "proxy-gid", c.ProxyGID, "`gid` of the proxy, whose own connections are not redirected (-1: none)")
	fs.Var(portList(&c.InboundPortsToIgnore), "inbound-ports-to-ignore", "inbound destination `ports` that go straight to the application")
	fs.Var(portList(&c.OutboundPortsToIgnore), "outbound-ports-to-ignore", "outbound destination `ports` that go straight out")
	fs.Var(portList(&c.PortsToRedirect), "ports-to-redirect", "inbound `ports` to redirect to the proxy (default: every port not ignored)")
	fs.Var(subnetList(&c.SubnetsToIgnore), "subnets-to-ignore", "comma-separated `CIDRs`: inbound connections from them and outbound connections to them bypass the proxy")
	fs.BoolVar(&c.IPv6, "ipv6", c.IPv6, "redirect IPv6 traffic as well as IPv4")
	fs.StringVar(&o.netns, "netns", "", "`path` of the network namespace to set up (for example /proc/<pid>/ns/net); default: the current one")
	fs.BoolVar(&o.simulate, "simulate", false, "print the rule set as an nft script and change nothing")
	fs.StringVar(&o.logLevel, "log-level", "info", "log `level`: debug, info, warn or error")
	fs.StringVar(&o.logFormat, "log-format", "plain", "log `format`: plain or json")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		err := fmt.Errorf("unexpected argument %q", fs.Arg(0))
		fmt.Fprintf(w, "proxy-init: %v\n", err)
		fs.Usage()
		return o, err
	}
	return o, nil
}

// portFlag is a flag holding one TCP port.
type portFlag uint16

func (p *portFlag) String() string { return strconv.Itoa(int(*p)) }

func (p *portFlag) Set(s string) error {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return fmt.Errorf("%q is not a TCP port (1-65535)", s)
	}
	*p = portFlag(n)
	return nil
}

// listFlag is a flag holding a list: port lists in the syntax of the mesh's
// annotations, or subnets. As with Linkerd's proxy-init, it may be given
// several times: the first use replaces the default, later ones add to it.
type listFlag[T any] struct {
	items  *[]T
	parse  func(string) ([]T, error)
	format func([]T) string
	set    bool
}

func portList(items *[]mesh.PortRange) *listFlag[mesh.PortRange] {
	return &listFlag[mesh.PortRange]{items: items, parse: mesh.ParsePortRanges, format: mesh.FormatPortRanges}
}

func subnetList(items *[]netip.Prefix) *listFlag[netip.Prefix] {
	return &listFlag[netip.Prefix]{items: items, parse: parseSubnets, format: formatSubnets}
}

func (f *listFlag[T]) String() string {
	if f.items == nil {
		return ""
	}
	return f.format(*f.items)
}

func (f *listFlag[T]) Set(s string) error {
	items, err := f.parse(s)
	if err != nil {
		return err
	}
	if !f.set {
		*f.items, f.set = nil, true
	}
	*f.items = append(*f.items, items...)
	return nil
}

// maxSubnetListLength bounds one use of --subnets-to-ignore.
const maxSubnetListLength = 16 << 10

// errMalformedSubnetList is wrapped by every error parseSubnets returns.
var errMalformedSubnetList = errors.New("malformed subnet list")

// parseSubnets parses comma-separated networks in CIDR notation, blanks
// around items allowed; the empty string is the empty list.
func parseSubnets(s string) ([]netip.Prefix, error) {
	if len(s) > maxSubnetListLength {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", errMalformedSubnetList, len(s), maxSubnetListLength)
	}
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []netip.Prefix
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			return nil, fmt.Errorf("%w: empty item", errMalformedSubnetList)
		}
		p, err := netip.ParsePrefix(item)
		if err != nil {
			return nil, fmt.Errorf("%w: %q is not a network in CIDR notation (like 10.0.0.0/8 or fd00::/8)", errMalformedSubnetList, item)
		}
		out = append(out, p)
	}
	return out, nil
}

// formatSubnets returns the list form of ps, which parseSubnets reads back
// as ps.
func formatSubnets(ps []netip.Prefix) string {
	parts := make([]string, len(ps))
	for i, p := range ps {
		parts[i] = p.String()
	}
	return strings.Join(parts, ",")
}
