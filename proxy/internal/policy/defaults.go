package policy

import (
	"fmt"
	"net/netip"
)

// DefaultName is a default inbound policy: what applies to a port that no
// Server describes, and to every port until destination has answered.
type DefaultName string

// The default policies, by the names of config.linkerd.io/default-inbound-policy
// and LINKERD2_PROXY_INBOUND_DEFAULT_POLICY.
const (
	DefaultAllUnauthenticated     DefaultName = "all-unauthenticated"
	DefaultAllAuthenticated       DefaultName = "all-authenticated"
	DefaultClusterUnauthenticated DefaultName = "cluster-unauthenticated"
	DefaultClusterAuthenticated   DefaultName = "cluster-authenticated"
	DefaultDeny                   DefaultName = "deny"
	DefaultAudit                  DefaultName = "audit"
)

// Default returns the policy name stands for: authorizations like those
// destination serves for it (labelled kind "default" and the policy's
// name), one route that matches every request, and detection. The cluster
// policies admit clusterNetworks only.
func Default(name DefaultName, clusterNetworks []netip.Prefix) (*Port, error) {
	var nets []network
	for _, n := range clusterNetworks {
		nets = append(nets, network{net: n.Masked()})
	}
	authz := &Authorization{Labels: Labels{Kind: "default", Name: string(name)}}
	switch name {
	case DefaultAllUnauthenticated, DefaultAudit:
		authz.anyClient = true
	case DefaultAllAuthenticated:
		authz.suffixes = []string{""}
	case DefaultClusterUnauthenticated:
		authz.anyClient, authz.networks = true, nets
	case DefaultClusterAuthenticated:
		authz.suffixes, authz.networks = []string{""}, nets
	case DefaultDeny:
		authz = nil
	default:
		return nil, fmt.Errorf("unknown default inbound policy %q (want all-unauthenticated, all-authenticated, cluster-unauthenticated, cluster-authenticated, deny or audit)", name)
	}
	if (name == DefaultClusterUnauthenticated || name == DefaultClusterAuthenticated) && len(nets) == 0 {
		return nil, fmt.Errorf("default inbound policy %s needs the cluster networks", name)
	}
	p := &Port{
		Server: Labels{Kind: "default", Name: string(name)},
		Routes: []*Route{{Labels: Labels{Kind: "default", Name: "default"}, Rules: []*Rule{{}}}},
	}
	if authz != nil {
		p.Authorizations = []*Authorization{authz}
	}
	return p, nil
}
