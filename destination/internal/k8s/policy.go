package k8s

import (
	"context"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"
)

// The policy.linkerd.io resources the inbound policy is computed from, at
// the versions the CRDs store (every served version reads the same object).
var (
	ServerGVR                = schema.GroupVersionResource{Group: "policy.linkerd.io", Version: "v1beta3", Resource: "servers"}
	ServerAuthorizationGVR   = schema.GroupVersionResource{Group: "policy.linkerd.io", Version: "v1beta1", Resource: "serverauthorizations"}
	AuthorizationPolicyGVR   = schema.GroupVersionResource{Group: "policy.linkerd.io", Version: "v1alpha1", Resource: "authorizationpolicies"}
	MeshTLSAuthenticationGVR = schema.GroupVersionResource{Group: "policy.linkerd.io", Version: "v1alpha1", Resource: "meshtlsauthentications"}
	NetworkAuthenticationGVR = schema.GroupVersionResource{Group: "policy.linkerd.io", Version: "v1alpha1", Resource: "networkauthentications"}
	HTTPRouteGVR             = schema.GroupVersionResource{Group: "policy.linkerd.io", Version: "v1beta3", Resource: "httproutes"}
)

// PolicyGVRs lists them with their list kinds (for fake dynamic clients).
var PolicyGVRs = map[schema.GroupVersionResource]string{
	ServerGVR:                "ServerList",
	ServerAuthorizationGVR:   "ServerAuthorizationList",
	AuthorizationPolicyGVR:   "AuthorizationPolicyList",
	MeshTLSAuthenticationGVR: "MeshTLSAuthenticationList",
	NetworkAuthenticationGVR: "NetworkAuthenticationList",
	HTTPRouteGVR:             "HTTPRouteList",
}

// Policy is the set of informers on the policy.linkerd.io resources (pods
// and namespaces are the Cluster's).
type Policy struct {
	Servers                cache.SharedIndexInformer
	ServerAuthorizations   cache.SharedIndexInformer
	AuthorizationPolicies  cache.SharedIndexInformer
	MeshTLSAuthentications cache.SharedIndexInformer
	NetworkAuthentications cache.SharedIndexInformer
	HTTPRoutes             cache.SharedIndexInformer

	dyn dynamicinformer.DynamicSharedInformerFactory
}

// NewPolicy builds the policy informers; nothing runs until Start. Their
// caches are indexed by namespace.
func NewPolicy(dynClient dynamic.Interface) (*Policy, error) {
	p := &Policy{dyn: dynamicinformer.NewDynamicSharedInformerFactory(dynClient, 0)}
	p.Servers = p.dyn.ForResource(ServerGVR).Informer()
	p.ServerAuthorizations = p.dyn.ForResource(ServerAuthorizationGVR).Informer()
	p.AuthorizationPolicies = p.dyn.ForResource(AuthorizationPolicyGVR).Informer()
	p.MeshTLSAuthentications = p.dyn.ForResource(MeshTLSAuthenticationGVR).Informer()
	p.NetworkAuthentications = p.dyn.ForResource(NetworkAuthenticationGVR).Informer()
	p.HTTPRoutes = p.dyn.ForResource(HTTPRouteGVR).Informer()
	for _, inf := range p.informers() {
		if err := inf.SetTransform(stripManagedFields); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// Start runs the informers until ctx is done.
func (p *Policy) Start(ctx context.Context) { p.dyn.Start(ctx.Done()) }

// Shutdown waits for the informers to stop (their context must be done).
func (p *Policy) Shutdown() { p.dyn.Shutdown() }

// HasSynced reports whether every policy informer has listed once.
func (p *Policy) HasSynced() bool { return hasSynced(p.informers()) }

// WaitForSync blocks until every policy informer has synced or ctx is done.
func (p *Policy) WaitForSync(ctx context.Context) error { return waitForSync(ctx, p.informers()) }

func (p *Policy) informers() []cache.SharedIndexInformer {
	return []cache.SharedIndexInformer{p.Servers, p.ServerAuthorizations, p.AuthorizationPolicies, p.MeshTLSAuthentications, p.NetworkAuthentications, p.HTTPRoutes}
}
