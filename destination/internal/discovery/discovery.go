// Package discovery holds the values the destination index publishes: the
// discovery state in the index's own terms, with no wire format. Package
// watch computes them from the cluster; package wire turns them into the
// destination API's protobuf messages, which the server sends. A value is
// shared by every subscriber of its watcher and never changed once
// published.
package discovery

import (
	"maps"
	"net/netip"
	"reflect"

	"github.com/linkerd-go/linkerd-go/destination/internal/profile"
)

// Protocol is what an endpoint is known to speak to other proxies.
type Protocol uint8

const (
	// ProtocolUnknown: the client proxy detects the protocol itself.
	ProtocolUnknown Protocol = iota
	// ProtocolHTTP2: a meshed endpoint that takes HTTP/1 upgraded to
	// HTTP/2 between proxies.
	ProtocolHTTP2
	// ProtocolOpaque: the port is opaque; the traffic is not inspected.
	ProtocolOpaque
)

// Endpoint is one address of a destination and what a proxy needs to reach
// it.
type Endpoint struct {
	Addr netip.AddrPort
	// Identity is the endpoint's mesh TLS identity; empty when the
	// endpoint is not meshed (or the port skips the proxy).
	Identity string
	Protocol Protocol
	// OpaqueInboundPort is, for an opaque meshed endpoint, the port of its
	// proxy that takes opaque traffic with the transport header; 0
	// otherwise.
	OpaqueInboundPort uint16
	// Labels are the endpoint's metric labels (pod, serviceaccount, zone,
	// the owner's kind and name); nil when it has none.
	Labels map[string]string
}

// Equal reports whether e and o describe the same endpoint.
func (e *Endpoint) Equal(o *Endpoint) bool {
	if e == nil || o == nil {
		return e == o
	}
	return e.Addr == o.Addr && e.Identity == o.Identity && e.Protocol == o.Protocol &&
		e.OpaqueInboundPort == o.OpaqueInboundPort && maps.Equal(e.Labels, o.Labels)
}

// UpdateKind says what an EndpointUpdate does to a client's endpoint set.
type UpdateKind uint8

const (
	// Add adds (or replaces) Endpoints, with the set-wide metric Labels.
	Add UpdateKind = iota + 1
	// Remove removes the endpoints at Removed.
	Remove
	// NoEndpoints: the destination exists and has no endpoints now.
	NoEndpoints
	// DoesNotExist: there is no such destination.
	DoesNotExist
)

// EndpointUpdate is one change to the endpoint set of a Get stream.
type EndpointUpdate struct {
	Kind UpdateKind
	// Endpoints (Add) are sorted by address.
	Endpoints []*Endpoint
	// Labels (Add) are the metric labels of the whole set: namespace and
	// service, or namespace for a pod.
	Labels map[string]string
	// Removed (Remove) are sorted by address.
	Removed []netip.AddrPort
}

// Profile is what a GetProfile stream serves for a target.
type Profile struct {
	// FQDN is the Service's fully qualified name; empty for a target that
	// is not a Service.
	FQDN string
	// Spec is the ServiceProfile that applies, with the parts that cannot
	// be served removed (profile.Servable); nil when none does. Its routes
	// are dropped when the port is opaque.
	Spec *profile.Spec
	// Opaque: the target's port is opaque.
	Opaque bool
	// Endpoint is the single endpoint of a pod target or a Service
	// hostname target (a StatefulSet pod), so that the proxy may connect
	// to it directly; nil otherwise.
	Endpoint *Endpoint
}

// Equal reports whether p and o serve the same profile.
func (p *Profile) Equal(o *Profile) bool {
	if p == nil || o == nil {
		return p == o
	}
	// Spec is decoded afresh from the ServiceProfile on each computation,
	// so equal objects decode to deeply equal values.
	return p.FQDN == o.FQDN && p.Opaque == o.Opaque && p.Endpoint.Equal(o.Endpoint) &&
		reflect.DeepEqual(p.Spec, o.Spec)
}
