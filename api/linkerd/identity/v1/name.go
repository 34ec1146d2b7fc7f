package identityv1

import (
	"errors"
	"fmt"
	"strings"

	"github.com/linkerd-go/linkerd-go/api/internal/dnsname"
)

const (
	// TokenAudience is the audience of the ServiceAccount tokens that proxies
	// present to Certify. Identity asks the Kubernetes API to accept only tokens
	// minted for it.
	TokenAudience = "identity.l5d.io"

	// DefaultTrustDomain is the trust domain when none is configured.
	DefaultTrustDomain = "cluster.local"

	// nameInfix separates a workload's part of an identity name from the
	// control plane's part.
	nameInfix = ".serviceaccount.identity."

	// usernamePrefix starts the Kubernetes username of a ServiceAccount.
	usernamePrefix = "system:serviceaccount:"
)

// Name is a workload identity: the ServiceAccount a proxy runs as, under one
// control plane and trust domain. Its string form is the DNS name that
// certificates carry:
//
//	<serviceaccount>.<namespace>.serviceaccount.identity.<control-plane-namespace>.<trust-domain>
//
// Kubernetes lets a ServiceAccount name contain dots (it is a DNS subdomain),
// but such a name would make identity names ambiguous, so the mesh accepts
// only ServiceAccount names that are single labels. Workloads running as
// other ServiceAccounts cannot be given an identity; the injector says so
// instead of meshing them.
type Name struct {
	// ServiceAccount is the workload's ServiceAccount name (an RFC 1123 label).
	ServiceAccount string
	// Namespace is the workload's namespace (an RFC 1123 label).
	Namespace string
	// ControlPlaneNamespace is the namespace of the control plane that issued
	// the identity (an RFC 1123 label), "linkerd" by default.
	ControlPlaneNamespace string
	// TrustDomain is the mesh's trust domain (an RFC 1123 subdomain),
	// "cluster.local" by default.
	TrustDomain string
}

// ErrMalformedName is wrapped by every error ParseName and Validate return.
var ErrMalformedName = errors.New("malformed identity name")

// String returns the identity name. It does not validate; call Validate for that.
func (n Name) String() string {
	return n.ServiceAccount + "." + n.Namespace + nameInfix + n.ControlPlaneNamespace + "." + n.TrustDomain
}

// IssuerName returns the name of the issuer of this control plane and trust
// domain, "identity.<control-plane-namespace>.<trust-domain>".
func (n Name) IssuerName() string {
	return "identity." + n.ControlPlaneNamespace + "." + n.TrustDomain
}

// Validate reports whether every part of the name is well formed and the whole
// fits in a DNS name.
func (n Name) Validate() error {
	for _, p := range []struct{ what, v string }{
		{"serviceaccount", n.ServiceAccount},
		{"namespace", n.Namespace},
		{"control-plane namespace", n.ControlPlaneNamespace},
	} {
		if !dnsname.IsLabel(p.v) {
			return fmt.Errorf("%w: %s %q is not an RFC 1123 label", ErrMalformedName, p.what, p.v)
		}
	}
	if !dnsname.IsSubdomain(n.TrustDomain) {
		return fmt.Errorf("%w: trust domain %q is not an RFC 1123 subdomain", ErrMalformedName, n.TrustDomain)
	}
	if l := len(n.String()); l > dnsname.MaxSubdomainLength {
		return fmt.Errorf("%w: %d characters, more than a DNS name may have (%d)", ErrMalformedName, l, dnsname.MaxSubdomainLength)
	}
	return nil
}

// ParseName parses an identity name of the form
// "<serviceaccount>.<namespace>.serviceaccount.identity.<control-plane-namespace>.<trust-domain>".
func ParseName(s string) (Name, error) {
	if len(s) > dnsname.MaxSubdomainLength {
		return Name{}, fmt.Errorf("%w: %d characters, more than a DNS name may have (%d)", ErrMalformedName, len(s), dnsname.MaxSubdomainLength)
	}
	workload, controlPlane, ok := strings.Cut(s, nameInfix)
	if !ok {
		return Name{}, fmt.Errorf("%w: %q does not contain %q", ErrMalformedName, s, nameInfix)
	}
	sa, ns, ok := strings.Cut(workload, ".")
	if !ok {
		return Name{}, fmt.Errorf("%w: %q has no namespace before %q", ErrMalformedName, s, nameInfix)
	}
	cpns, td, ok := strings.Cut(controlPlane, ".")
	if !ok {
		return Name{}, fmt.Errorf("%w: %q has no trust domain", ErrMalformedName, s)
	}
	n := Name{ServiceAccount: sa, Namespace: ns, ControlPlaneNamespace: cpns, TrustDomain: td}
	if err := n.Validate(); err != nil {
		return Name{}, err
	}
	return n, nil
}

// ServiceAccountUsername returns the Kubernetes username of a ServiceAccount,
// "system:serviceaccount:<namespace>:<serviceaccount>", as a TokenReview reports it.
func ServiceAccountUsername(namespace, serviceAccount string) string {
	return usernamePrefix + namespace + ":" + serviceAccount
}

// ParseServiceAccountUsername parses the username a TokenReview returns for a
// ServiceAccount token, "system:serviceaccount:<namespace>:<serviceaccount>".
// Both parts must be RFC 1123 labels so that they can form an identity name.
func ParseServiceAccountUsername(username string) (namespace, serviceAccount string, err error) {
	rest, ok := strings.CutPrefix(username, usernamePrefix)
	if !ok {
		return "", "", fmt.Errorf("username %q is not a ServiceAccount's (no %q prefix)", username, usernamePrefix)
	}
	namespace, serviceAccount, ok = strings.Cut(rest, ":")
	if !ok {
		return "", "", fmt.Errorf("username %q has no ServiceAccount name", username)
	}
	if !dnsname.IsLabel(namespace) {
		return "", "", fmt.Errorf("username %q: namespace %q is not an RFC 1123 label", username, namespace)
	}
	if !dnsname.IsLabel(serviceAccount) {
		return "", "", fmt.Errorf("username %q: ServiceAccount %q is not an RFC 1123 label", username, serviceAccount)
	}
	return namespace, serviceAccount, nil
}
