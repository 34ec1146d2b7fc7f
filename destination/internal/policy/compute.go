package policy

import (
	"cmp"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/go-logr/logr"
	"google.golang.org/protobuf/proto"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/tools/cache"

	policyv1 "github.com/linkerd-go/linkerd-go/api/linkerd/policy/v1"
	"github.com/linkerd-go/linkerd-go/api/mesh"
)

// Store is where the computation reads the cluster: caches keyed by
// namespace/name, the policy ones indexed by namespace (cache.NamespaceIndex).
// In destination they are the informers' caches.
type Store struct {
	Pods                   cache.Indexer
	Namespaces             cache.Indexer
	Servers                cache.Indexer
	ServerAuthorizations   cache.Indexer
	AuthorizationPolicies  cache.Indexer
	MeshTLSAuthentications cache.Indexer
	NetworkAuthentications cache.Indexer
	HTTPRoutes             cache.Indexer
}

// Computer computes ports' policies from a Store.
type Computer struct {
	log   logr.Logger
	cfg   Config
	store Store
	// parsed is nil for a Computer without informers to keep it current.
	parsed *parseCache
}

// NewComputer returns a Computer over store.
func NewComputer(log logr.Logger, cfg Config, store Store) *Computer {
	return &Computer{log: log, cfg: cfg, store: store}
}

func get[T any](ix cache.Indexer, key string) T {
	var zero T
	obj, ok, err := ix.GetByKey(key)
	if err != nil || !ok {
		return zero
	}
	t, _ := obj.(T)
	return t
}

func inNamespace(ix cache.Indexer, ns string) []*unstructured.Unstructured {
	objs, err := ix.ByIndex(cache.NamespaceIndex, ns)
	if err != nil {
		return nil
	}
	out := make([]*unstructured.Unstructured, 0, len(objs))
	for _, o := range objs {
		if u, ok := o.(*unstructured.Unstructured); ok {
			out = append(out, u)
		}
	}
	return out
}

func (c *Computer) parseServerAuthorization(obj *unstructured.Unstructured) (*serverAuthorization, error) {
	return parseServerAuthorization(obj, c.cfg)
}

func (c *Computer) parseMeshTLS(obj *unstructured.Unstructured) (*clients, error) {
	return parseMeshTLS(obj, c.cfg)
}

// Pod returns a pod from the store, or nil.
func (c *Computer) Pod(ns, name string) *corev1.Pod {
	return get[*corev1.Pod](c.store.Pods, ns+"/"+name)
}

// Compute returns the policy of port on pod.
func (c *Computer) Compute(pod *corev1.Pod, port uint16) *policyv1.Server {
	ns := pod.Namespace
	srvName, srv := c.matchServer(pod, port)
	probes := probePaths(pod, port)
	if srv == nil {
		return c.defaultServer(pod, port, probes)
	}
	out := &policyv1.Server{
		Protocol: srv.protocol,
		Labels:   map[string]string{"group": groupPolicy, "kind": "server", "name": srvName},
	}
	if srv.broken != "" {
		out.HttpRoutes = c.defaultRoutes(probes)
		return out
	}
	var authzs []authz
	for _, obj := range inNamespace(c.store.ServerAuthorizations, ns) {
		saz, err := cached(c.parsed, KindServerAuthorization, obj, c.parseServerAuthorization)
		if err == nil && saz.selects(srvName, srv.labels) {
			authzs = append(authzs, saz.authz)
		}
	}
	aps := c.policies(ns)
	for _, ap := range aps {
		if ap.target == targetNamespace || (ap.target == targetServer && ap.targetName == srvName) {
			if a, ok := c.resolve(ap); ok {
				authzs = append(authzs, a)
			}
		}
	}
	if a, ok := srv.access.authz(c.cfg); ok {
		authzs = append(authzs, a)
	}
	out.Authorizations = authorizations(authzs)
	out.HttpRoutes = c.routes(ns, srvName, aps, probes)
	return out
}

// matchServer returns the Server that takes port on pod: the oldest (then
// first by name) of those that select it.
func (c *Computer) matchServer(pod *corev1.Pod, port uint16) (string, *server) {
	var best *server
	podLabels := labels.Set(pod.Labels)
	for _, obj := range inNamespace(c.store.Servers, pod.Namespace) {
		s, err := cached(c.parsed, KindServer, obj, parseServer)
		if err != nil || s.pods == nil || !s.pods.Matches(podLabels) || !selectsPort(pod, s.port, port) {
			continue
		}
		if best == nil || s.compare(best.created) < 0 {
			if best != nil {
				c.log.V(1).Info("port selected by two Servers; the older one applies", "namespace", pod.Namespace, "pod", pod.Name, "port", port, "server", s.name, "ignored", best.name)
			}
			best = s
		}
	}
	if best == nil {
		return "", nil
	}
	return best.name, best
}

func selectsPort(pod *corev1.Pod, ref intstr.IntOrString, port uint16) bool {
	if ref.Type == intstr.Int {
		return ref.IntVal == int32(port)
	}
	for _, ct := range containers(pod) {
		for _, p := range ct.Ports {
			if p.Name == ref.StrVal && p.ContainerPort == int32(port) && (p.Protocol == "" || p.Protocol == corev1.ProtocolTCP) {
				return true
			}
		}
	}
	return false
}

func containers(pod *corev1.Pod) []corev1.Container {
	return slices.Concat(pod.Spec.InitContainers, pod.Spec.Containers)
}

// defaultServer is the policy of a port no Server takes.
func (c *Computer) defaultServer(pod *corev1.Pod, port uint16, probes []probe) *policyv1.Server {
	policy := c.defaultPolicy(pod)
	if requiresIdentity(c.log, pod, port) {
		policy = policy.authenticated()
	}
	protocol := detect()
	if c.opaque(pod, port) {
		protocol = opaque()
	}
	var authzs []authz
	if a, ok := policy.authz(c.cfg); ok {
		authzs = append(authzs, a)
	}
	return &policyv1.Server{
		Protocol:       protocol,
		Authorizations: authorizations(authzs),
		Labels:         map[string]string{"group": "", "kind": "default", "name": string(policy)},
		HttpRoutes:     c.defaultRoutes(probes),
	}
}

// defaultPolicy reads the pod's annotation, else its namespace's, else the
// configured default. A malformed annotation means deny: a typo must not
// open a port that its author meant to close.
func (c *Computer) defaultPolicy(pod *corev1.Pod) DefaultPolicy {
	if v, ok := pod.Annotations[mesh.AnnotationDefaultInboundPolicy]; ok {
		p, err := ParseDefaultPolicy(v)
		if err != nil {
			c.log.V(1).Info("malformed default policy annotation; denying", "namespace", pod.Namespace, "pod", pod.Name, "err", err)
			return Deny
		}
		return p
	}
	if ns := get[*corev1.Namespace](c.store.Namespaces, pod.Namespace); ns != nil {
		if v, ok := ns.Annotations[mesh.AnnotationDefaultInboundPolicy]; ok {
			p, err := ParseDefaultPolicy(v)
			if err != nil {
				c.log.V(1).Info("malformed default policy annotation; denying", "namespace", pod.Namespace, "err", err)
				return Deny
			}
			return p
		}
	}
	return c.cfg.DefaultPolicy
}

// requiresIdentity reports whether the pod's annotations require a mesh
// identity on port. A malformed list requires it on every port.
func requiresIdentity(log logr.Logger, pod *corev1.Pod, port uint16) bool {
	for _, key := range []string{mesh.AnnotationRequireIdentityPorts, mesh.AnnotationRequireIdentityPortsShort} {
		v, ok := pod.Annotations[key]
		if !ok {
			continue
		}
		rs, err := mesh.ParsePortRanges(v)
		if err != nil {
			log.V(1).Info("malformed port list; requiring identity on every port", "namespace", pod.Namespace, "pod", pod.Name, "annotation", key, "err", err)
			return true
		}
		if mesh.PortsContain(rs, port) {
			return true
		}
	}
	return false
}

// opaque follows discovery's rule: the pod's annotation, else the
// namespace's, else the configured default; a malformed one is skipped.
func (c *Computer) opaque(pod *corev1.Pod, port uint16) bool {
	lists := []map[string]string{pod.Annotations}
	if ns := get[*corev1.Namespace](c.store.Namespaces, pod.Namespace); ns != nil {
		lists = append(lists, ns.Annotations)
	}
	for _, anns := range lists {
		if v, ok := anns[mesh.AnnotationOpaquePorts]; ok {
			if rs, err := mesh.ParsePortRanges(v); err == nil {
				return mesh.PortsContain(rs, port)
			}
		}
	}
	return mesh.PortsContain(c.cfg.DefaultOpaquePorts, port)
}

func (c *Computer) policies(ns string) []*authorizationPolicy {
	var out []*authorizationPolicy
	for _, obj := range inNamespace(c.store.AuthorizationPolicies, ns) {
		if ap, err := cached(c.parsed, KindAuthorizationPolicy, obj, parseAuthorizationPolicy); err == nil {
			out = append(out, ap)
		}
	}
	return out
}

// resolve looks up what an AuthorizationPolicy requires. A policy that
// requires an authentication that does not exist (or cannot be used)
// grants nothing.
func (c *Computer) resolve(ap *authorizationPolicy) (authz, bool) {
	a := authz{kind: "authorizationpolicy", name: ap.name, networks: allNetworks(), clients: clients{anyone: true}}
	fail := func(err error) (authz, bool) {
		c.log.V(1).Info("AuthorizationPolicy left out", "namespace", ap.namespace, "authorizationpolicy", ap.name, "err", err)
		return authz{}, false
	}
	switch {
	case ap.meshTLS != nil:
		obj := get[*unstructured.Unstructured](c.store.MeshTLSAuthentications, ap.meshTLS.Namespace+"/"+ap.meshTLS.Name)
		if obj == nil {
			return fail(fmt.Errorf("no MeshTLSAuthentication %s/%s", ap.meshTLS.Namespace, ap.meshTLS.Name))
		}
		cl, err := cached(c.parsed, KindMeshTLSAuthentication, obj, c.parseMeshTLS)
		if err != nil {
			return fail(fmt.Errorf("MeshTLSAuthentication %s/%s: %w", ap.meshTLS.Namespace, ap.meshTLS.Name, err))
		}
		a.clients = *cl
	case ap.serviceAccount != "":
		ns, name, _ := strings.Cut(ap.serviceAccount, "/")
		a.clients = clients{identities: []string{c.cfg.serviceAccountIdentity(ns, name)}}
	}
	if ap.network != nil {
		obj := get[*unstructured.Unstructured](c.store.NetworkAuthentications, ap.network.Namespace+"/"+ap.network.Name)
		if obj == nil {
			return fail(fmt.Errorf("no NetworkAuthentication %s/%s", ap.network.Namespace, ap.network.Name))
		}
		nets, err := cached(c.parsed, KindNetworkAuthentication, obj, parseNetworkAuthentication)
		if err != nil {
			return fail(fmt.Errorf("NetworkAuthentication %s/%s: %w", ap.network.Namespace, ap.network.Name, err))
		}
		a.networks = nets
	}
	return a, true
}

// routes returns the HTTP routes of a Server: its HTTPRoutes, oldest
// first, each with the AuthorizationPolicies that target it; without any,
// the default routes. An HTTPRoute that cannot be used still counts as
// one, so that the Server never falls back to the catch-all default route.
func (c *Computer) routes(ns, srvName string, aps []*authorizationPolicy, probes []probe) []*policyv1.HttpRoute {
	type entry struct {
		created
		route *policyv1.HttpRoute
	}
	var found []entry
	attached := false
	for _, obj := range inNamespace(c.store.HTTPRoutes, ns) {
		r, err := cached(c.parsed, KindHTTPRoute, obj, parseHTTPRoute)
		if err != nil {
			attached = attached || mentionsServer(obj, srvName)
			continue
		}
		if !slices.Contains(r.servers, srvName) {
			continue
		}
		var authzs []authz
		for _, ap := range aps {
			if ap.target == targetHTTPRoute && ap.targetName == obj.GetName() {
				if a, ok := c.resolve(ap); ok {
					authzs = append(authzs, a)
				}
			}
		}
		// A copy: the parsed route is shared with other computations.
		route := proto.Clone(r.route).(*policyv1.HttpRoute)
		route.Authorizations = authorizations(authzs)
		found = append(found, entry{r.created, route})
	}
	if len(found) == 0 && !attached {
		return c.defaultRoutes(probes)
	}
	slices.SortFunc(found, func(a, b entry) int { return a.compare(b.created) })
	out := make([]*policyv1.HttpRoute, 0, len(found))
	for _, e := range found {
		out = append(out, e.route)
	}
	return out
}

// mentionsServer reports whether an HTTPRoute that cannot be parsed names
// the Server among its parents, as far as can be read.
func mentionsServer(obj *unstructured.Unstructured, srvName string) bool {
	parents, _, _ := unstructured.NestedSlice(obj.Object, "spec", "parentRefs")
	for _, p := range parents {
		m, ok := p.(map[string]any)
		if !ok {
			continue
		}
		if name, _ := m["name"].(string); name == srvName {
			return true
		}
	}
	return false
}

// defaultRoutes is one route for every request (the Server's
// authorizations apply) and, when the pod has HTTP probes on the port, one
// for the probe paths that the probe networks may use unauthenticated.
func (c *Computer) defaultRoutes(probes []probe) []*policyv1.HttpRoute {
	routes := []*policyv1.HttpRoute{{
		Labels: map[string]string{"group": "", "kind": "default", "name": "default"},
		Rules:  []*policyv1.HttpRoute_Rule{everyRequest()},
	}}
	if len(probes) == 0 || len(c.cfg.ProbeNetworks) == 0 {
		return routes
	}
	rule := &policyv1.HttpRoute_Rule{}
	for _, p := range probes {
		rule.Matches = append(rule.Matches, &policyv1.HttpRouteMatch{Method: p.method, Path: &policyv1.HttpPathMatch{Kind: &policyv1.HttpPathMatch_Exact{Exact: p.path}}})
	}
	probe := authz{kind: "default", name: "probe", networks: networksOf(c.cfg.ProbeNetworks), clients: clients{anyone: true}}
	return append(routes, &policyv1.HttpRoute{
		Labels:         map[string]string{"group": "", "kind": "default", "name": "probe"},
		Rules:          []*policyv1.HttpRoute_Rule{rule},
		Authorizations: authorizations([]authz{probe}),
	})
}

// probe is a request the kubelet makes to check a container: GET of an
// HTTP probe's path, or the gRPC health check.
type probe struct{ method, path string }

// grpcHealthCheck is the call of a gRPC probe (grpc.health.v1.Health).
var grpcHealthCheck = probe{method: "POST", path: "/grpc.health.v1.Health/Check"}

// probePaths returns the pod's probes on port, sorted: its HTTP probes'
// paths and, for a gRPC probe, the health check call.
func probePaths(pod *corev1.Pod, port uint16) []probe {
	var out []probe
	for _, ct := range containers(pod) {
		for _, p := range []*corev1.Probe{ct.LivenessProbe, ct.ReadinessProbe, ct.StartupProbe} {
			switch {
			case p == nil:
				continue
			case p.GRPC != nil && p.GRPC.Port == int32(port):
				if !slices.Contains(out, grpcHealthCheck) {
					out = append(out, grpcHealthCheck)
				}
				continue
			case p.HTTPGet == nil || !probePort(ct, p.HTTPGet.Port, port):
				continue
			}
			path := p.HTTPGet.Path
			if path == "" {
				path = "/"
			}
			u, err := url.Parse(path)
			if err != nil || !strings.HasPrefix(u.Path, "/") {
				continue
			}
			if pr := (probe{method: "GET", path: u.Path}); !slices.Contains(out, pr) {
				out = append(out, pr)
			}
		}
	}
	slices.SortFunc(out, func(a, b probe) int { return cmp.Or(cmp.Compare(a.path, b.path), cmp.Compare(a.method, b.method)) })
	return out
}

func probePort(ct corev1.Container, ref intstr.IntOrString, port uint16) bool {
	if ref.Type == intstr.Int {
		return ref.IntVal == int32(port)
	}
	for _, p := range ct.Ports {
		if strings.EqualFold(p.Name, ref.StrVal) && p.ContainerPort == int32(port) {
			return true
		}
	}
	return false
}

// authorizations turns authzs into messages, sorted by kind and name.
func authorizations(authzs []authz) []*policyv1.Authorization {
	slices.SortFunc(authzs, func(a, b authz) int {
		return cmp.Or(cmp.Compare(a.kind, b.kind), cmp.Compare(a.name, b.name))
	})
	var out []*policyv1.Authorization
	for _, a := range authzs {
		m := &policyv1.Authorization{Labels: map[string]string{"group": authzGroup(a.kind), "kind": a.kind, "name": a.name}}
		for _, n := range a.networks {
			nw := &policyv1.Network{Net: policyv1.NewIpNetwork(n.net)}
			for _, e := range n.except {
				nw.Except = append(nw.Except, policyv1.NewIpNetwork(e))
			}
			m.Networks = append(m.Networks, nw)
		}
		if a.clients.anyone {
			m.Authentication = &policyv1.Authentication{Kind: &policyv1.Authentication_Unauthenticated{Unauthenticated: &policyv1.Authentication_AnyClient{}}}
		} else {
			ids := slices.Compact(slices.Sorted(slices.Values(a.clients.identities)))
			sfx := slices.Compact(slices.Sorted(slices.Values(a.clients.suffixes)))
			m.Authentication = &policyv1.Authentication{Kind: &policyv1.Authentication_MeshTls{MeshTls: &policyv1.Authentication_MeshTlsClients{Identities: ids, Suffixes: sfx}}}
		}
		out = append(out, m)
	}
	return out
}

func authzGroup(kind string) string {
	if kind == "default" {
		return ""
	}
	return groupPolicy
}
