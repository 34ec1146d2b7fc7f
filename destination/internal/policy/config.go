// Package policy computes the inbound policy of each (pod, port) from the
// policy.linkerd.io resources — Server, ServerAuthorization,
// AuthorizationPolicy, MeshTLSAuthentication, NetworkAuthentication and
// HTTPRoute — and the pod's default inbound policy, and keeps every watcher
// of a port current as those objects change.
//
// An object that cannot be used is left out and logged; leaving it out never
// lets in a client it would not have let in: authorizations only grant, a
// broken Server still takes its ports (and permits nothing on them), and a
// broken HTTPRoute still keeps its Server from the catch-all default route.
package policy

import (
	"fmt"
	"net/netip"
	"strings"

	identityv1 "github.com/linkerd-go/linkerd-go/api/linkerd/identity/v1"
	"github.com/linkerd-go/linkerd-go/api/mesh"
	"k8s.io/apimachinery/pkg/runtime"
)

// DefaultPolicy is the policy of a port that no Server describes, or what a
// Server's accessPolicy adds.
type DefaultPolicy string

// The default policies.
const (
	AllUnauthenticated     DefaultPolicy = "all-unauthenticated"
	AllAuthenticated       DefaultPolicy = "all-authenticated"
	ClusterUnauthenticated DefaultPolicy = "cluster-unauthenticated"
	ClusterAuthenticated   DefaultPolicy = "cluster-authenticated"
	Deny                   DefaultPolicy = "deny"
	Audit                  DefaultPolicy = "audit"
)

// ParseDefaultPolicy reads a default policy name.
func ParseDefaultPolicy(s string) (DefaultPolicy, error) {
	switch p := DefaultPolicy(strings.TrimSpace(s)); p {
	case AllUnauthenticated, AllAuthenticated, ClusterUnauthenticated, ClusterAuthenticated, Deny, Audit:
		return p, nil
	}
	return "", fmt.Errorf("%q: want all-unauthenticated, all-authenticated, cluster-unauthenticated, cluster-authenticated, deny or audit", s)
}

// authenticated returns the policy that also requires a mesh identity.
func (p DefaultPolicy) authenticated() DefaultPolicy {
	switch p {
	case AllUnauthenticated:
		return AllAuthenticated
	case ClusterUnauthenticated:
		return ClusterAuthenticated
	}
	return p
}

// authz returns the authorization the policy grants, if any.
func (p DefaultPolicy) authz(cfg Config) (authz, bool) {
	a := authz{kind: "default", name: string(p), networks: allNetworks()}
	switch p {
	case AllUnauthenticated, Audit:
		// Audit lets everyone in; the proxy knows it by the name and
		// reports what it would have denied.
		a.clients.anyone = true
	case AllAuthenticated:
		a.clients.suffixes = []string{""}
	case ClusterUnauthenticated:
		a.clients.anyone = true
		a.networks = networksOf(cfg.ClusterNetworks)
	case ClusterAuthenticated:
		a.clients.suffixes = []string{""}
		a.networks = networksOf(cfg.ClusterNetworks)
	default:
		return authz{}, false
	}
	return a, true
}

// Config is what the policy computation needs to know about the mesh.
type Config struct {
	// ControlPlaneNamespace and TrustDomain form identity names.
	ControlPlaneNamespace string
	TrustDomain           string
	// DefaultPolicy applies where neither the pod nor its namespace says.
	DefaultPolicy DefaultPolicy
	// ClusterNetworks are the pod and node networks, for the cluster-*
	// policies and for ServerAuthorizations without networks.
	ClusterNetworks []netip.Prefix
	// ProbeNetworks are where the kubelet's probes come from: they may
	// reach the pod's probe paths without authentication.
	ProbeNetworks []netip.Prefix
	// DefaultOpaquePorts apply where no opaque-ports annotation says.
	DefaultOpaquePorts []mesh.PortRange
	// QueueSize is each stream's queue length after its first message.
	QueueSize int
	// Events, when set, gets a Warning Event on each policy object left out
	// as unusable, once per change of the object, saying why.
	Events Recorder
}

// Recorder records Kubernetes Events: client-go's record.EventRecorder,
// or a fake in tests.
type Recorder interface {
	Eventf(object runtime.Object, eventtype, reason, messageFmt string, args ...any)
}

// ReasonInvalid is the reason of the Events on unusable policy objects.
const ReasonInvalid = "InvalidPolicy"

// ParseNetworks reads a comma-separated list of CIDRs.
func ParseNetworks(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for part := range strings.SplitSeq(s, ",") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		p, err := ParseCIDR(part)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func (c Config) serviceAccountIdentity(ns, sa string) string {
	return identityv1.Name{ServiceAccount: sa, Namespace: ns, ControlPlaneNamespace: c.ControlPlaneNamespace, TrustDomain: c.TrustDomain}.String()
}

// namespaceSuffix matches the identities of every ServiceAccount of ns.
func (c Config) namespaceSuffix(ns string) string {
	return ns + ".serviceaccount.identity." + c.ControlPlaneNamespace + "." + c.TrustDomain
}
