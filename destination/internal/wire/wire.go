// Package wire translates the index's discovery values into the
// destination API's protobuf messages. It is the only place that knows
// both: the index computes state, the server streams messages.
package wire

import (
	"slices"

	destinationv1 "github.com/linkerd-go/linkerd-go/api/linkerd/destination/v1"
	"github.com/linkerd-go/linkerd-go/destination/internal/discovery"
	"github.com/linkerd-go/linkerd-go/destination/internal/profile"
)

// MaxEndpointsPerMessage bounds the endpoints of one add message, so that
// a large Service does not make one huge message.
const MaxEndpointsPerMessage = 1000

// Endpoints returns the messages of one update: one, or for a large add
// several of at most MaxEndpointsPerMessage endpoints each.
func Endpoints(u *discovery.EndpointUpdate) []*destinationv1.GetResponse {
	switch u.Kind {
	case discovery.Add:
		var msgs []*destinationv1.GetResponse
		for chunk := range slices.Chunk(u.Endpoints, MaxEndpointsPerMessage) {
			eps := make([]*destinationv1.Endpoint, len(chunk))
			for i, e := range chunk {
				eps[i] = Endpoint(e)
			}
			msgs = append(msgs, &destinationv1.GetResponse{Update: &destinationv1.GetResponse_Add{Add: &destinationv1.EndpointsAdded{
				Endpoints:    eps,
				MetricLabels: u.Labels,
			}}})
		}
		return msgs
	case discovery.Remove:
		addrs := make([]*destinationv1.SocketAddress, len(u.Removed))
		for i, a := range u.Removed {
			addrs[i] = destinationv1.NewSocketAddress(a)
		}
		return []*destinationv1.GetResponse{{Update: &destinationv1.GetResponse_Remove{Remove: &destinationv1.EndpointsRemoved{Addresses: addrs}}}}
	case discovery.NoEndpoints:
		return []*destinationv1.GetResponse{{Update: &destinationv1.GetResponse_NoEndpoints{NoEndpoints: &destinationv1.NoEndpoints{}}}}
	case discovery.DoesNotExist:
		return []*destinationv1.GetResponse{{Update: &destinationv1.GetResponse_DoesNotExist{DoesNotExist: &destinationv1.DoesNotExist{}}}}
	}
	return nil
}

// Endpoint returns the API form of one endpoint (nil for nil).
func Endpoint(e *discovery.Endpoint) *destinationv1.Endpoint {
	if e == nil {
		return nil
	}
	ep := &destinationv1.Endpoint{
		Address:      destinationv1.NewSocketAddress(e.Addr),
		Weight:       destinationv1.DefaultEndpointWeight,
		MetricLabels: e.Labels,
	}
	if e.Identity != "" {
		ep.TlsIdentity = destinationv1.NewTlsIdentity(e.Identity)
	}
	switch e.Protocol {
	case discovery.ProtocolOpaque:
		ep.ProtocolHint = &destinationv1.ProtocolHint{Protocol: &destinationv1.ProtocolHint_Opaque{Opaque: &destinationv1.ProtocolHint_OpaqueOptions{InboundPort: uint32(e.OpaqueInboundPort)}}}
	case discovery.ProtocolHTTP2:
		ep.ProtocolHint = &destinationv1.ProtocolHint{Protocol: &destinationv1.ProtocolHint_Http2{Http2: &destinationv1.ProtocolHint_Http2Options{}}}
	}
	return ep
}

// Profile returns the API form of a profile: the ServiceProfile's routes,
// retry budget and traffic split (or the defaults without one), the
// opaque flag and the direct endpoint.
func Profile(p *discovery.Profile) *destinationv1.GetProfileResponse {
	out := profile.Default(p.FQDN)
	if p.Spec != nil {
		// A servable spec translates without problems.
		out, _ = profile.Translate(p.FQDN, p.Spec)
	}
	out.OpaqueProtocol = p.Opaque
	out.Endpoint = Endpoint(p.Endpoint)
	return &destinationv1.GetProfileResponse{Profile: out}
}
