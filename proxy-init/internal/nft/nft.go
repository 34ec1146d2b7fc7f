// Package nft applies a plan to the kernel through nftables' netlink
// interface, in pure Go: no nft or iptables binary is needed.
//
// The whole plan goes in one netlink batch, which the kernel commits as one
// transaction: the batch first makes sure the table exists, deletes it, and
// creates it anew with its chains and rules. Running it again replaces the
// table with the same content; if the kernel refuses any part of the batch,
// nothing changes and the previous table (or its absence) stays as it was.
package nft

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/linkerd-go/linkerd-go/proxy-init/internal/plan"
)

// Conn is a connection to nftables in one network namespace.
type Conn struct {
	nft  *nftables.Conn
	file *os.File // the namespace, kept open while the Conn is used
}

// socketBuffer is the size of the netlink socket's send and receive buffers.
// The batch goes in one message, and the kernel acknowledges each command in
// it: with the default buffers, a large rule set could be committed while
// its acknowledgements overflow the receive buffer, leaving the outcome
// unknown. The plan's limits keep the largest batch and its
// acknowledgements well below this size.
const socketBuffer = 4 << 20

// Open connects to nftables in the network namespace at netnsPath (for
// example /proc/<pid>/ns/net or /run/netns/<name>), or in the namespace of
// the caller when netnsPath is empty. Close releases it.
func Open(netnsPath string) (*Conn, error) {
	opts := []nftables.ConnOption{nftables.WithSockOptions(setBuffers)}
	var f *os.File
	if netnsPath != "" {
		var err error
		if f, err = os.Open(netnsPath); err != nil {
			return nil, fmt.Errorf("opening network namespace: %w", err)
		}
		typ, err := unix.IoctlRetInt(int(f.Fd()), unix.NS_GET_NSTYPE)
		if err != nil || typ != unix.CLONE_NEWNET {
			_ = f.Close()
			if err == nil {
				err = errors.New("a namespace of another kind")
			}
			return nil, fmt.Errorf("%s is not a network namespace: %w", netnsPath, err)
		}
		opts = append(opts, nftables.WithNetNSFd(int(f.Fd())))
	}
	c, err := nftables.New(opts...)
	if err != nil {
		if f != nil {
			_ = f.Close()
		}
		return nil, fmt.Errorf("connecting to nftables: %w", err)
	}
	return &Conn{nft: c, file: f}, nil
}

// setBuffers sets the socket's buffers to socketBuffer, past the system's
// maximum (which needs CAP_NET_ADMIN, as nftables itself does).
func setBuffers(c *netlink.Conn) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var sockErr error
	err = raw.Control(func(fd uintptr) {
		for _, opt := range []int{unix.SO_SNDBUFFORCE, unix.SO_RCVBUFFORCE} {
			if err := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, opt, socketBuffer); err != nil {
				sockErr = fmt.Errorf("setting the netlink socket's buffers (needs CAP_NET_ADMIN): %w", err)
				return
			}
		}
	})
	return errors.Join(err, sockErr)
}

// Close releases the connection's namespace.
func (c *Conn) Close() error {
	if c.file == nil {
		return nil
	}
	return c.file.Close()
}

// NFTables returns the underlying connection, to read the rule set back.
func (c *Conn) NFTables() *nftables.Conn { return c.nft }

// Apply replaces the plan's table with the plan, in one transaction.
func (c *Conn) Apply(p *plan.Plan) error {
	t := &nftables.Table{Name: p.Table, Family: nftables.TableFamilyINet}
	c.nft.AddTable(t)
	c.nft.DelTable(t)
	c.nft.AddTable(t)
	// Every chain exists before the first rule, so jumps find their target.
	chains := make([]*nftables.Chain, len(p.Chains))
	for i, pc := range p.Chains {
		chains[i] = c.nft.AddChain(Chain(t, pc))
	}
	for i, pc := range p.Chains {
		for _, r := range pc.Rules {
			c.nft.AddRule(&nftables.Rule{
				Table:    t,
				Chain:    chains[i],
				Exprs:    Exprs(r),
				UserData: UserData(r),
			})
		}
	}
	if err := c.nft.Flush(); err != nil {
		return fmt.Errorf("applying the rule set of table inet %s (nothing was changed): %w", p.Table, err)
	}
	return nil
}

// Chain returns the nftables chain of pc in table t.
func Chain(t *nftables.Table, pc plan.Chain) *nftables.Chain {
	c := &nftables.Chain{Name: pc.Name, Table: t}
	var hook *nftables.ChainHook
	switch pc.Hook {
	case plan.HookPrerouting:
		hook = nftables.ChainHookPrerouting
	case plan.HookOutput:
		hook = nftables.ChainHookOutput
	default:
		return c
	}
	accept := nftables.ChainPolicyAccept
	c.Type = nftables.ChainTypeNAT
	c.Hooknum = hook
	c.Priority = nftables.ChainPriorityRef(plan.NATPriority)
	c.Policy = &accept
	return c
}

// UserData returns the rule's comment as nft stores it.
func UserData(r plan.Rule) []byte {
	if r.Comment == "" {
		return nil
	}
	return userdata.AppendString(nil, userdata.TypeComment, r.Comment)
}

// Exprs returns the expressions of r as nft itself encodes the same rule, so
// that `nft list ruleset` shows it as r.String() reads.
func Exprs(r plan.Rule) []expr.Any {
	var es []expr.Any
	match := func(load expr.Any, data []byte) {
		es = append(es, load, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: data})
	}
	meta := func(key expr.MetaKey) *expr.Meta { return &expr.Meta{Key: key, Register: 1} }

	family := r.Family
	for _, p := range []netip.Prefix{r.SAddr, r.DAddr} {
		if p.IsValid() {
			family = familyOf(p)
		}
	}
	switch family {
	case plan.IPv4:
		match(meta(expr.MetaKeyNFPROTO), []byte{unix.NFPROTO_IPV4})
	case plan.IPv6:
		match(meta(expr.MetaKeyNFPROTO), []byte{unix.NFPROTO_IPV6})
	}
	if r.TCP || r.DPort != nil {
		match(meta(expr.MetaKeyL4PROTO), []byte{unix.IPPROTO_TCP})
	}
	if r.SkUID != nil {
		match(meta(expr.MetaKeySKUID), binary.NativeEndian.AppendUint32(nil, *r.SkUID))
	}
	if r.SkGID != nil {
		match(meta(expr.MetaKeySKGID), binary.NativeEndian.AppendUint32(nil, *r.SkGID))
	}
	if r.OIfName != "" {
		name := make([]byte, unix.IFNAMSIZ)
		copy(name, r.OIfName)
		match(meta(expr.MetaKeyOIFNAME), name)
	}
	if r.SAddr.IsValid() {
		es = append(es, prefixMatch(r.SAddr, true)...)
	}
	if r.DAddr.IsValid() {
		es = append(es, prefixMatch(r.DAddr, false)...)
	}
	if r.DPort != nil {
		es = append(es, &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2})
		first := binary.BigEndian.AppendUint16(nil, r.DPort.First)
		if r.DPort.First == r.DPort.Last {
			es = append(es, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: first})
		} else {
			es = append(es,
				&expr.Cmp{Op: expr.CmpOpGte, Register: 1, Data: first},
				&expr.Cmp{Op: expr.CmpOpLte, Register: 1, Data: binary.BigEndian.AppendUint16(nil, r.DPort.Last)})
		}
	}
	switch r.Verdict.Kind {
	case plan.Return:
		es = append(es, &expr.Verdict{Kind: expr.VerdictReturn})
	case plan.Jump:
		es = append(es, &expr.Verdict{Kind: expr.VerdictJump, Chain: r.Verdict.Chain})
	case plan.Redirect:
		es = append(es,
			&expr.Immediate{Register: 1, Data: binary.BigEndian.AppendUint16(nil, r.Verdict.Port)},
			&expr.Redir{RegisterProtoMin: 1, RegisterProtoMax: 1, Flags: unix.NF_NAT_RANGE_PROTO_SPECIFIED})
	}
	return es
}

func familyOf(p netip.Prefix) plan.Family {
	if p.Addr().Is4() {
		return plan.IPv4
	}
	return plan.IPv6
}

// prefixMatch compares the source or destination address with a network
// whose family the caller has matched, as nft does: a prefix on a byte
// boundary compares just its bytes, any other (and /0) loads the whole
// address and masks it.
func prefixMatch(p netip.Prefix, source bool) []expr.Any {
	// Where the addresses sit in the IPv4 and IPv6 headers.
	var offset uint32
	switch {
	case p.Addr().Is4() && source:
		offset = 12
	case p.Addr().Is4():
		offset = 16
	case source:
		offset = 8
	default:
		offset = 24
	}
	addr := p.Masked().Addr().AsSlice()
	if p.Bits() > 0 && p.Bits()%8 == 0 {
		n := uint32(p.Bits() / 8)
		return []expr.Any{
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: n},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: addr[:n]},
		}
	}
	n := uint32(len(addr))
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: n},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: n, Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen()), Xor: make([]byte, n)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: addr},
	}
}
