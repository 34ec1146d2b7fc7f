package discovery

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"

	destinationv1 "github.com/linkerd-go/linkerd-go/api/linkerd/destination/v1"
)

// Endpoint is one address a target's traffic may be sent to.
type Endpoint struct {
	Addr   netip.AddrPort
	Weight uint32 // effective weight (a 0 on the wire is read as destinationv1.DefaultEndpointWeight)
	// Identity is the TLS identity the endpoint presents: the exact DNS name
	// its certificate must carry. "" means the endpoint is not meshed and is
	// reached in plaintext.
	Identity string
	// ServerName is the SNI to send when Identity is set (the identity itself
	// unless the control plane says otherwise).
	ServerName string
	// HTTP2 is the protocol hint: the endpoint's proxy accepts HTTP/2 from
	// other proxies, so HTTP/1 requests may be carried over HTTP/2.
	HTTP2 bool
	// Opaque is the protocol hint that the port carries opaque TCP: forward
	// bytes without protocol detection.
	Opaque bool
	// OpaqueInboundPort, when not 0 (Opaque is then true), is the port of the
	// endpoint proxy's inbound listener: dial it with mesh TLS and the
	// transport header naming Addr's port.
	OpaqueInboundPort uint16
	// Labels are the endpoint's metric labels merged over the target's
	// (Snapshot.Labels); the endpoint's own win.
	Labels map[string]string
}

// State is what the control plane said about a target.
type State int

const (
	// Pending: nothing heard yet.
	Pending State = iota
	// Endpoints: the target has the endpoints in Snapshot.Endpoints.
	Endpoints
	// NoEndpoints: the target exists but has no endpoints; fail requests fast.
	NoEndpoints
	// DoesNotExist: the control plane does not know the target; send the
	// traffic to the original destination address.
	DoesNotExist
)

func (s State) String() string {
	switch s {
	case Pending:
		return "Pending"
	case Endpoints:
		return "Endpoints"
	case NoEndpoints:
		return "NoEndpoints"
	case DoesNotExist:
		return "DoesNotExist"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Snapshot is the state of a target at one moment. It is immutable and shared.
type Snapshot struct {
	State State
	// Endpoints are sorted by Addr; each address appears once. Empty unless
	// State is Endpoints.
	Endpoints []Endpoint
	// Labels are the target's metric labels (from EndpointsAdded.metric_labels:
	// "namespace", "service").
	Labels map[string]string
	// Stale is true while the control plane is unreachable: this is the last
	// state it sent (State is Pending if it never answered).
	Stale bool
	// Err says why a watch was refused (ErrTooManyTargets, ErrInvalidTarget,
	// ErrClosed); such a watch stays DoesNotExist and never changes.
	Err error
}

// Limits on what one message may make the client hold.
const (
	maxIdentityLength = 253 // a DNS name
	maxLabels         = 64
	maxLabelKey       = 128
	maxLabelValue     = 1024
)

var (
	errTooManyEndpoints = errors.New("endpoint limit of the target reached")
	errIdentityTooLong  = errors.New("TLS identity longer than 253 bytes")
	errOpaquePort       = errors.New("opaque inbound port out of range 1-65535")
)

// endpointFromProto converts one wire endpoint; its labels are merged over
// setLabels. An endpoint whose TLS identity is present but unusable is an
// error: it must never be reached in plaintext.
func endpointFromProto(e *destinationv1.Endpoint, setLabels map[string]string) (Endpoint, error) {
	addr, err := e.GetAddress().AddrPort()
	if err != nil {
		return Endpoint{}, err
	}
	ep := Endpoint{Addr: addr, Weight: e.EffectiveWeight()}
	if id := e.GetTlsIdentity(); id != nil {
		name, sni, err := id.DnsLikeName()
		if err != nil {
			return Endpoint{}, fmt.Errorf("endpoint %s: %w", addr, err)
		}
		if len(name) > maxIdentityLength || len(sni) > maxIdentityLength {
			return Endpoint{}, fmt.Errorf("endpoint %s: %w", addr, errIdentityTooLong)
		}
		ep.Identity, ep.ServerName = name, sni
	}
	switch h := e.GetProtocolHint().GetProtocol().(type) {
	case *destinationv1.ProtocolHint_Http2:
		ep.HTTP2 = true
	case *destinationv1.ProtocolHint_Opaque:
		ep.Opaque = true
		if p := h.Opaque.GetInboundPort(); p != 0 && ep.Identity != "" {
			if p > 65535 {
				return Endpoint{}, fmt.Errorf("endpoint %s: %w: %d", addr, errOpaquePort, p)
			}
			ep.OpaqueInboundPort = uint16(p)
		}
	}
	ep.Labels = mergeLabels(setLabels, cleanLabels(e.GetMetricLabels()))
	return ep, nil
}

// cleanLabels returns the labels that may become Prometheus labels, bounded in
// number and size; it returns nil for none. What it drops is not worth failing
// an endpoint for.
func cleanLabels(in map[string]string) map[string]string {
	if len(in) == 0 {
		return nil
	}
	out := make(map[string]string, min(len(in), maxLabels))
	for _, k := range slices.Sorted(maps.Keys(in)) {
		v := in[k]
		if len(out) == maxLabels {
			break
		}
		if !validLabelName(k) || len(v) > maxLabelValue {
			continue
		}
		out[k] = v
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// validLabelName reports whether k is a Prometheus label name of bounded size.
func validLabelName(k string) bool {
	if k == "" || len(k) > maxLabelKey {
		return false
	}
	for i := range len(k) {
		c := k[i]
		switch {
		case c == '_', 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// mergeLabels returns own over base, sharing whichever map suffices.
func mergeLabels(base, own map[string]string) map[string]string {
	switch {
	case len(own) == 0:
		return base
	case len(base) == 0:
		return own
	}
	m := maps.Clone(base)
	maps.Copy(m, own)
	return m
}

// record is an endpoint as held: the converted endpoint and its own labels,
// kept so that a change of the target's labels can be merged again.
type record struct {
	ep  Endpoint
	own map[string]string
}

// endpointSet is the endpoint state of one target, built from GetResponse
// messages. It is not safe for concurrent use.
type endpointSet struct {
	maxEndpoints int

	state  State
	labels map[string]string
	eps    map[netip.AddrPort]record
	// unconfirmed holds, during a resync, the endpoints of the previous
	// stream that the new one has not sent again yet. They stay in snapshots
	// until endResync.
	unconfirmed map[netip.AddrPort]record
}

func newEndpointSet(maxEndpoints int) *endpointSet {
	return &endpointSet{maxEndpoints: maxEndpoints, eps: map[netip.AddrPort]record{}}
}

// beginResync starts a new stream: whatever is held becomes unconfirmed.
func (s *endpointSet) beginResync() {
	if len(s.eps) == 0 {
		return
	}
	if s.unconfirmed == nil {
		s.unconfirmed = s.eps
	} else {
		maps.Copy(s.unconfirmed, s.eps)
	}
	s.eps = map[netip.AddrPort]record{}
}

// resyncing reports whether unconfirmed endpoints are held.
func (s *endpointSet) resyncing() bool { return len(s.unconfirmed) > 0 }

// endResync drops the endpoints the new stream did not confirm. It reports
// whether the snapshot changed.
func (s *endpointSet) endResync() bool {
	if len(s.unconfirmed) == 0 {
		return false
	}
	s.unconfirmed = nil
	s.settleState()
	return true
}

// size is the number of endpoints in snapshots.
func (s *endpointSet) size() int {
	n := len(s.eps)
	for a := range s.unconfirmed {
		if _, ok := s.eps[a]; !ok {
			n++
		}
	}
	return n
}

// settleState derives Endpoints/NoEndpoints from what is held, after adds and
// removes.
func (s *endpointSet) settleState() {
	if s.size() > 0 {
		s.state = Endpoints
	} else if s.state == Endpoints {
		s.state = NoEndpoints
	}
}

// apply applies one message. It returns the problems it skipped over (the
// rest of the message applies) and whether the snapshot changed. A message
// other than an add ends a resync.
func (s *endpointSet) apply(m *destinationv1.GetResponse) (changed bool, problems []error) {
	switch u := m.GetUpdate().(type) {
	case *destinationv1.GetResponse_Add:
		return s.add(u.Add)
	case *destinationv1.GetResponse_Remove:
		s.unconfirmed = nil
		for _, a := range u.Remove.GetAddresses() {
			addr, err := a.AddrPort()
			if err != nil {
				problems = append(problems, err)
				continue
			}
			delete(s.eps, addr)
		}
		s.settleState()
		return true, problems
	case *destinationv1.GetResponse_NoEndpoints:
		s.unconfirmed = nil
		clear(s.eps)
		s.state = NoEndpoints
		return true, nil
	case *destinationv1.GetResponse_DoesNotExist:
		s.unconfirmed = nil
		clear(s.eps)
		s.labels = nil
		s.state = DoesNotExist
		return true, nil
	default:
		return false, []error{errors.New("update of unknown kind or empty")}
	}
}

func (s *endpointSet) add(a *destinationv1.EndpointsAdded) (bool, []error) {
	var problems []error
	if l := cleanLabels(a.GetMetricLabels()); l != nil && !maps.Equal(l, s.labels) {
		s.labels = l
		for addr, r := range s.eps {
			r.ep.Labels = mergeLabels(l, r.own)
			s.eps[addr] = r
		}
		for addr, r := range s.unconfirmed {
			r.ep.Labels = mergeLabels(l, r.own)
			s.unconfirmed[addr] = r
		}
	}
	for _, pe := range a.GetEndpoints() {
		own := cleanLabels(pe.GetMetricLabels())
		ep, err := endpointFromProto(pe, s.labels)
		if err != nil {
			problems = append(problems, err)
			continue
		}
		if _, held := s.eps[ep.Addr]; !held && len(s.eps) >= s.maxEndpoints {
			problems = append(problems, fmt.Errorf("endpoint %s: %w (%d)", ep.Addr, errTooManyEndpoints, s.maxEndpoints))
			continue
		}
		s.eps[ep.Addr] = record{ep: ep, own: own}
		delete(s.unconfirmed, ep.Addr)
	}
	s.settleState()
	if s.state == Pending || s.state == DoesNotExist {
		// An add whose endpoints were all invalid: the target exists but
		// has nothing usable.
		s.state = NoEndpoints
	}
	return true, problems
}

// snapshot builds the immutable view of the set.
func (s *endpointSet) snapshot(stale bool) *Snapshot {
	snap := &Snapshot{State: s.state, Labels: s.labels, Stale: stale}
	if s.state != Endpoints {
		return snap
	}
	eps := make([]Endpoint, 0, s.size())
	for _, r := range s.eps {
		eps = append(eps, r.ep)
	}
	for a, r := range s.unconfirmed {
		if _, ok := s.eps[a]; !ok {
			eps = append(eps, r.ep)
		}
	}
	slices.SortFunc(eps, func(a, b Endpoint) int { return a.Addr.Compare(b.Addr) })
	snap.Endpoints = eps
	return snap
}
