package policy

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"

	policyv1 "github.com/linkerd-go/linkerd-go/api/linkerd/policy/v1"
)

// The kinds read, as they appear in logs and metrics.
const (
	KindServer                = "Server"
	KindServerAuthorization   = "ServerAuthorization"
	KindAuthorizationPolicy   = "AuthorizationPolicy"
	KindMeshTLSAuthentication = "MeshTLSAuthentication"
	KindNetworkAuthentication = "NetworkAuthentication"
	KindHTTPRoute             = "HTTPRoute"
)

const (
	groupPolicy  = "policy.linkerd.io"
	groupGateway = "gateway.networking.k8s.io"
)

// Parse checks obj as an object of kind and returns why it cannot work as
// written, or nil. The admission webhook refuses such objects with this
// message.
func Parse(kind string, obj *unstructured.Unstructured, cfg Config) error {
	err := (&Computer{cfg: cfg}).check(kind, obj)
	var d deniedPorts
	if errors.As(err, &d) {
		return errors.New(d.problems)
	}
	return err
}

// deniedPorts is the error of a Server that is served, as deny: it still
// takes the ports it selects, so that a mistake never opens them.
type deniedPorts struct{ problems string }

func (d deniedPorts) Error() string { return d.problems + " (serving its ports as deny)" }

// check parses obj (through the cache, which it fills for the computations
// that follow the change). Index calls it on every change to log each
// unusable object once; the computation leaves such objects out (or, for a
// Server, denies its ports).
func (c *Computer) check(kind string, obj *unstructured.Unstructured) error {
	var err error
	switch kind {
	case KindServer:
		var s *server
		if s, err = cached(c.parsed, kind, obj, parseServer); err == nil && s.broken != "" {
			err = deniedPorts{s.broken}
		}
	case KindServerAuthorization:
		_, err = cached(c.parsed, kind, obj, c.parseServerAuthorization)
	case KindAuthorizationPolicy:
		_, err = cached(c.parsed, kind, obj, parseAuthorizationPolicy)
	case KindMeshTLSAuthentication:
		_, err = cached(c.parsed, kind, obj, c.parseMeshTLS)
	case KindNetworkAuthentication:
		_, err = cached(c.parsed, kind, obj, parseNetworkAuthentication)
	case KindHTTPRoute:
		_, err = cached(c.parsed, kind, obj, parseHTTPRoute)
	default:
		err = fmt.Errorf("unknown kind %q", kind)
	}
	return err
}

// decode converts an object's spec into out; a spec of the wrong shape is an
// error.
func decode(obj *unstructured.Unstructured, out any) error {
	spec, ok := obj.Object["spec"].(map[string]any)
	if !ok {
		return errors.New("no spec")
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(spec, out); err != nil {
		return fmt.Errorf("malformed spec: %w", err)
	}
	return nil
}

// created orders objects: the oldest first, then by name.
type created struct {
	at   time.Time
	name string
}

func createdOf(obj *unstructured.Unstructured) created {
	return created{at: obj.GetCreationTimestamp().Time, name: obj.GetName()}
}

func (a created) compare(b created) int {
	if c := a.at.Compare(b.at); c != 0 {
		return c
	}
	return strings.Compare(a.name, b.name)
}

// --- Server ---

type serverSpec struct {
	PodSelector              *metav1.LabelSelector `json:"podSelector,omitempty"`
	ExternalWorkloadSelector *metav1.LabelSelector `json:"externalWorkloadSelector,omitempty"`
	Port                     intstr.IntOrString    `json:"port"`
	ProxyProtocol            string                `json:"proxyProtocol,omitempty"`
	AccessPolicy             string                `json:"accessPolicy,omitempty"`
}

// server is a Server as the index uses it.
type server struct {
	created
	labels map[string]string
	// pods selects the pods; nil selects none (a Server for external
	// workloads).
	pods     labels.Selector
	port     intstr.IntOrString
	protocol *policyv1.ProxyProtocol
	// access is what traffic no authorization allows gets; deny unless set.
	access DefaultPolicy
	// broken, when set, says why the Server cannot be served as written: it
	// still takes the ports it selects, and permits nothing on them.
	broken string
}

func parseServer(obj *unstructured.Unstructured) (*server, error) {
	var spec serverSpec
	if err := decode(obj, &spec); err != nil {
		return nil, err
	}
	s := &server{created: createdOf(obj), labels: obj.GetLabels(), port: spec.Port, access: Deny}
	if spec.PodSelector != nil {
		sel, err := metav1.LabelSelectorAsSelector(spec.PodSelector)
		if err != nil {
			return nil, fmt.Errorf("podSelector: %w", err)
		}
		s.pods = sel
	}
	if err := checkPort(spec.Port); err != nil {
		return nil, err
	}
	var problems []string
	if spec.PodSelector != nil && spec.ExternalWorkloadSelector != nil {
		problems = append(problems, "both podSelector and externalWorkloadSelector are set")
	}
	if spec.PodSelector == nil && spec.ExternalWorkloadSelector == nil {
		return nil, errors.New("neither podSelector nor externalWorkloadSelector is set")
	}
	var err error
	if s.protocol, err = parseProtocol(spec.ProxyProtocol); err != nil {
		problems = append(problems, err.Error())
		s.protocol = detect()
	}
	if spec.AccessPolicy != "" {
		if s.access, err = ParseDefaultPolicy(spec.AccessPolicy); err != nil {
			problems = append(problems, "accessPolicy: "+err.Error())
			s.access = Deny
		}
	}
	if len(problems) > 0 {
		s.broken = strings.Join(problems, "; ")
	}
	return s, nil
}

func checkPort(p intstr.IntOrString) error {
	if p.Type == intstr.Int {
		if p.IntVal < 1 || p.IntVal > 65535 {
			return fmt.Errorf("port %d: want 1 to 65535", p.IntVal)
		}
		return nil
	}
	if p.StrVal == "" || len(p.StrVal) > 15 {
		return fmt.Errorf("port name %q: want 1 to 15 characters", p.StrVal)
	}
	return nil
}

func detect() *policyv1.ProxyProtocol {
	return &policyv1.ProxyProtocol{Kind: &policyv1.ProxyProtocol_Detect{Detect: &policyv1.ProxyProtocol_DetectOptions{}}}
}

func opaque() *policyv1.ProxyProtocol {
	return &policyv1.ProxyProtocol{Kind: &policyv1.ProxyProtocol_Opaque{Opaque: &policyv1.ProxyProtocol_OpaqueOptions{}}}
}

func parseProtocol(s string) (*policyv1.ProxyProtocol, error) {
	switch s {
	case "", "unknown":
		return detect(), nil
	case "opaque":
		return opaque(), nil
	case "TLS":
		return &policyv1.ProxyProtocol{Kind: &policyv1.ProxyProtocol_Tls{Tls: &policyv1.ProxyProtocol_TlsOptions{}}}, nil
	case "HTTP/1":
		return &policyv1.ProxyProtocol{Kind: &policyv1.ProxyProtocol_Http1{Http1: &policyv1.ProxyProtocol_Http1Options{}}}, nil
	case "HTTP/2":
		return &policyv1.ProxyProtocol{Kind: &policyv1.ProxyProtocol_Http2{Http2: &policyv1.ProxyProtocol_Http2Options{}}}, nil
	case "gRPC":
		return &policyv1.ProxyProtocol{Kind: &policyv1.ProxyProtocol_Grpc{Grpc: &policyv1.ProxyProtocol_GrpcOptions{}}}, nil
	}
	return nil, fmt.Errorf("proxyProtocol %q: want unknown, HTTP/1, HTTP/2, gRPC, opaque or TLS", s)
}

// --- networks and identities ---

type networkSpec struct {
	CIDR   string   `json:"cidr"`
	Except []string `json:"except,omitempty"`
}

// network is a client network with holes.
type network struct {
	net    netip.Prefix
	except []netip.Prefix
}

var (
	allIPv4 = netip.MustParsePrefix("0.0.0.0/0")
	allIPv6 = netip.MustParsePrefix("::/0")
)

// allNetworks is every address.
func allNetworks() []network { return []network{{net: allIPv4}, {net: allIPv6}} }

func networksOf(ps []netip.Prefix) []network {
	out := make([]network, 0, len(ps))
	for _, p := range ps {
		out = append(out, network{net: p})
	}
	return out
}

// ParseCIDR reads a network ("10.0.0.0/8") or a single address, masked.
func ParseCIDR(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		if p.Addr().Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q: zones are not allowed", s)
		}
		return netip.PrefixFrom(p.Addr().Unmap(), unmappedBits(p)).Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q: zones are not allowed", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// unmappedBits is p's length once an IPv4-mapped address is read as IPv4.
func unmappedBits(p netip.Prefix) int {
	if p.Addr().Is4In6() {
		return max(p.Bits()-96, 0)
	}
	return p.Bits()
}

func parseNetworks(specs []networkSpec) ([]network, error) {
	var out []network
	for _, n := range specs {
		net, err := ParseCIDR(n.CIDR)
		if err != nil {
			return nil, fmt.Errorf("cidr %q: %w", n.CIDR, err)
		}
		nw := network{net: net}
		for _, e := range n.Except {
			ex, err := ParseCIDR(e)
			if err != nil {
				return nil, fmt.Errorf("except %q: %w", e, err)
			}
			if ex.Addr().Is4() != net.Addr().Is4() || ex.Bits() < net.Bits() || !net.Contains(ex.Addr()) {
				return nil, fmt.Errorf("except %q is not inside %q", e, n.CIDR)
			}
			nw.except = append(nw.except, ex)
		}
		out = append(out, nw)
	}
	return out, nil
}

// clients is who an authorization lets in.
type clients struct {
	// anyone: no authentication needed.
	anyone     bool
	identities []string
	// suffixes match identities ending with "." and the suffix; "" matches
	// every identity.
	suffixes []string
}

// addIdentity adds an identity pattern: "*" is every meshed client, "*.S"
// every identity in S, anything else one identity.
func (c *clients) addIdentity(id string) error {
	id = strings.TrimSpace(id)
	switch {
	case id == "":
		return errors.New("empty identity")
	case id == "*":
		c.suffixes = append(c.suffixes, "")
	case strings.HasPrefix(id, "*."):
		s := strings.TrimPrefix(id, "*.")
		if s == "" || strings.Contains(s, "*") {
			return fmt.Errorf("identity %q: a wildcard is only allowed as the whole first label", id)
		}
		c.suffixes = append(c.suffixes, s)
	case strings.Contains(id, "*"):
		return fmt.Errorf("identity %q: a wildcard is only allowed as the whole first label", id)
	default:
		c.identities = append(c.identities, id)
	}
	return nil
}

// authz is one authorization before it becomes a message.
type authz struct {
	kind, name string
	networks   []network
	clients    clients
}

// --- ServerAuthorization ---

type serviceAccountRef struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
}

type sazSpec struct {
	Server struct {
		Name     string                `json:"name,omitempty"`
		Selector *metav1.LabelSelector `json:"selector,omitempty"`
	} `json:"server"`
	Client struct {
		Networks        []networkSpec `json:"networks,omitempty"`
		Unauthenticated bool          `json:"unauthenticated,omitempty"`
		MeshTLS         *struct {
			UnauthenticatedTLS bool                `json:"unauthenticatedTLS,omitempty"`
			Identities         []string            `json:"identities,omitempty"`
			ServiceAccounts    []serviceAccountRef `json:"serviceAccounts,omitempty"`
		} `json:"meshTLS,omitempty"`
	} `json:"client"`
}

// serverAuthorization is a ServerAuthorization: the Servers it applies to
// (by name or by label) and whom it lets in.
type serverAuthorization struct {
	serverName string
	servers    labels.Selector
	authz      authz
}

func (s *serverAuthorization) selects(name string, srvLabels map[string]string) bool {
	if s.servers == nil {
		return s.serverName == name
	}
	return s.servers.Matches(labels.Set(srvLabels))
}

func parseServerAuthorization(obj *unstructured.Unstructured, cfg Config) (*serverAuthorization, error) {
	var spec sazSpec
	if err := decode(obj, &spec); err != nil {
		return nil, err
	}
	out := &serverAuthorization{serverName: spec.Server.Name, authz: authz{kind: "serverauthorization", name: obj.GetName()}}
	switch {
	case spec.Server.Name != "" && spec.Server.Selector != nil, spec.Server.Name == "" && spec.Server.Selector == nil:
		return nil, errors.New("server: want exactly one of name or selector")
	case spec.Server.Selector != nil:
		sel, err := metav1.LabelSelectorAsSelector(spec.Server.Selector)
		if err != nil {
			return nil, fmt.Errorf("server.selector: %w", err)
		}
		out.servers = sel
	}
	nets, err := parseNetworks(spec.Client.Networks)
	if err != nil {
		return nil, fmt.Errorf("client.networks: %w", err)
	}
	if len(nets) == 0 {
		// Unset networks mean the cluster's.
		nets = networksOf(cfg.ClusterNetworks)
	}
	out.authz.networks = nets
	c := &out.authz.clients
	switch mtls := spec.Client.MeshTLS; {
	case spec.Client.Unauthenticated:
		c.anyone = true
	case mtls == nil:
		return nil, errors.New("client: neither unauthenticated nor meshTLS is set")
	case mtls.UnauthenticatedTLS:
		// The policy API has no way to say "TLS without an identity": rather
		// than let more clients in, the authorization is left out.
		return nil, errors.New("client.meshTLS.unauthenticatedTLS is not supported")
	default:
		for _, id := range mtls.Identities {
			if err := c.addIdentity(id); err != nil {
				return nil, fmt.Errorf("client.meshTLS.identities: %w", err)
			}
		}
		for _, sa := range mtls.ServiceAccounts {
			ns := sa.Namespace
			if ns == "" {
				ns = obj.GetNamespace()
			}
			if sa.Name == "" {
				return nil, errors.New("client.meshTLS.serviceAccounts: a name is required")
			}
			c.identities = append(c.identities, cfg.serviceAccountIdentity(ns, sa.Name))
		}
		if len(c.identities) == 0 && len(c.suffixes) == 0 {
			return nil, errors.New("client.meshTLS: no identities or serviceAccounts")
		}
	}
	return out, nil
}

// --- AuthorizationPolicy ---

type objectRef struct {
	Group     string `json:"group,omitempty"`
	Kind      string `json:"kind"`
	Name      string `json:"name,omitempty"`
	Namespace string `json:"namespace,omitempty"`
}

// is reports whether r refers to kind in group; the core group is "" or
// "core".
func (r objectRef) is(group, kind string) bool {
	g := strings.ToLower(r.Group)
	if g == "core" {
		g = ""
	}
	return g == group && strings.EqualFold(r.Kind, kind)
}

type apSpec struct {
	TargetRef                  objectRef   `json:"targetRef"`
	RequiredAuthenticationRefs []objectRef `json:"requiredAuthenticationRefs"`
}

type targetKind uint8

const (
	targetServer targetKind = iota
	targetNamespace
	targetHTTPRoute
	// targetOther is a kind of route this index does not serve (GRPCRoute,
	// Gateway API routes): valid, and never matched.
	targetOther
)

// authorizationPolicy is an AuthorizationPolicy with its references still
// unresolved: they are looked up when a port's policy is computed.
type authorizationPolicy struct {
	name       string
	namespace  string
	target     targetKind
	targetName string
	meshTLS    *objectRef
	network    *objectRef
	// serviceAccount is an identity required directly.
	serviceAccount string
}

func parseAuthorizationPolicy(obj *unstructured.Unstructured) (*authorizationPolicy, error) {
	var spec apSpec
	if err := decode(obj, &spec); err != nil {
		return nil, err
	}
	ns := obj.GetNamespace()
	ap := &authorizationPolicy{name: obj.GetName(), namespace: ns, targetName: spec.TargetRef.Name}
	t := spec.TargetRef
	switch {
	case t.Name == "":
		return nil, errors.New("targetRef: a name is required")
	case t.is(groupPolicy, "Server"):
		ap.target = targetServer
	case t.is("", "Namespace"):
		if t.Name != ns {
			return nil, fmt.Errorf("targetRef: Namespace %q is not the policy's own namespace", t.Name)
		}
		ap.target = targetNamespace
	case t.is(groupPolicy, "HTTPRoute"):
		ap.target = targetHTTPRoute
	case t.is(groupPolicy, "GRPCRoute"), t.is(groupGateway, "HTTPRoute"), t.is(groupGateway, "GRPCRoute"):
		ap.target = targetOther
	default:
		return nil, fmt.Errorf("targetRef: unsupported kind %q in group %q", t.Kind, t.Group)
	}
	for _, r := range spec.RequiredAuthenticationRefs {
		if r.Name == "" {
			return nil, fmt.Errorf("requiredAuthenticationRefs: %s without a name", r.Kind)
		}
		if r.Namespace == "" {
			r.Namespace = ns
		}
		switch {
		case r.is(groupPolicy, KindMeshTLSAuthentication):
			if ap.meshTLS != nil || ap.serviceAccount != "" {
				return nil, errors.New("requiredAuthenticationRefs: more than one MeshTLSAuthentication or ServiceAccount")
			}
			ap.meshTLS = &r
		case r.is("", "ServiceAccount"):
			if ap.meshTLS != nil || ap.serviceAccount != "" {
				return nil, errors.New("requiredAuthenticationRefs: more than one MeshTLSAuthentication or ServiceAccount")
			}
			ap.serviceAccount = r.Namespace + "/" + r.Name
		case r.is(groupPolicy, KindNetworkAuthentication):
			if ap.network != nil {
				return nil, errors.New("requiredAuthenticationRefs: more than one NetworkAuthentication")
			}
			ap.network = &r
		default:
			return nil, fmt.Errorf("requiredAuthenticationRefs: unsupported kind %q in group %q", r.Kind, r.Group)
		}
	}
	return ap, nil
}

// --- MeshTLSAuthentication ---

type meshTLSSpec struct {
	Identities   []string    `json:"identities,omitempty"`
	IdentityRefs []objectRef `json:"identityRefs,omitempty"`
}

func parseMeshTLS(obj *unstructured.Unstructured, cfg Config) (*clients, error) {
	var spec meshTLSSpec
	if err := decode(obj, &spec); err != nil {
		return nil, err
	}
	c := &clients{}
	for _, id := range spec.Identities {
		if err := c.addIdentity(id); err != nil {
			return nil, fmt.Errorf("identities: %w", err)
		}
	}
	for _, r := range spec.IdentityRefs {
		ns := r.Namespace
		if ns == "" {
			ns = obj.GetNamespace()
		}
		switch {
		case r.is("", "ServiceAccount") && r.Name != "":
			c.identities = append(c.identities, cfg.serviceAccountIdentity(ns, r.Name))
		case r.is("", "ServiceAccount"):
			// No name: every ServiceAccount of the namespace.
			c.suffixes = append(c.suffixes, cfg.namespaceSuffix(ns))
		case r.is("", "Namespace") && r.Name != "":
			c.suffixes = append(c.suffixes, cfg.namespaceSuffix(r.Name))
		default:
			return nil, fmt.Errorf("identityRefs: unsupported reference %s %q in group %q", r.Kind, r.Name, r.Group)
		}
	}
	if len(c.identities) == 0 && len(c.suffixes) == 0 {
		return nil, errors.New("no identities or identityRefs")
	}
	return c, nil
}

// --- NetworkAuthentication ---

type networkAuthnSpec struct {
	Networks []networkSpec `json:"networks"`
}

func parseNetworkAuthentication(obj *unstructured.Unstructured) ([]network, error) {
	var spec networkAuthnSpec
	if err := decode(obj, &spec); err != nil {
		return nil, err
	}
	nets, err := parseNetworks(spec.Networks)
	if err != nil {
		return nil, fmt.Errorf("networks: %w", err)
	}
	if len(nets) == 0 {
		return nil, errors.New("no networks")
	}
	return nets, nil
}

// --- HTTPRoute ---

type valueMatchSpec struct {
	Type  string `json:"type,omitempty"`
	Name  string `json:"name"`
	Value string `json:"value"`
}

type headerSpec struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type headerModifierSpec struct {
	Set    []headerSpec `json:"set,omitempty"`
	Add    []headerSpec `json:"add,omitempty"`
	Remove []string     `json:"remove,omitempty"`
}

type routeSpec struct {
	ParentRefs []struct {
		objectRef   `json:",inline"`
		Port        *int32 `json:"port,omitempty"`
		SectionName string `json:"sectionName,omitempty"`
	} `json:"parentRefs,omitempty"`
	Hostnames []string `json:"hostnames,omitempty"`
	Rules     []struct {
		Matches []struct {
			Path *struct {
				Type  string `json:"type,omitempty"`
				Value string `json:"value,omitempty"`
			} `json:"path,omitempty"`
			Headers     []valueMatchSpec `json:"headers,omitempty"`
			QueryParams []valueMatchSpec `json:"queryParams,omitempty"`
			Method      string           `json:"method,omitempty"`
		} `json:"matches,omitempty"`
		Filters []struct {
			Type                  string              `json:"type"`
			RequestHeaderModifier *headerModifierSpec `json:"requestHeaderModifier,omitempty"`
		} `json:"filters,omitempty"`
	} `json:"rules,omitempty"`
}

// httpRoute is an HTTPRoute attached to Servers.
type httpRoute struct {
	created
	// servers names the parent Servers (in the route's namespace).
	servers []string
	// route is the message, without authorizations.
	route *policyv1.HttpRoute
}

func parseHTTPRoute(obj *unstructured.Unstructured) (*httpRoute, error) {
	var spec routeSpec
	if err := decode(obj, &spec); err != nil {
		return nil, err
	}
	r := &httpRoute{created: createdOf(obj), route: &policyv1.HttpRoute{
		Labels:    map[string]string{"group": groupPolicy, "kind": KindHTTPRoute, "name": obj.GetName()},
		Hostnames: spec.Hostnames,
	}}
	for _, p := range spec.ParentRefs {
		group := p.Group
		if !strings.EqualFold(group, groupPolicy) || !strings.EqualFold(p.Kind, "Server") {
			continue // an outbound parent (a Service), or another kind
		}
		switch {
		case p.Name == "":
			return nil, errors.New("parentRefs: a Server parent without a name")
		case p.Namespace != "" && p.Namespace != obj.GetNamespace():
			return nil, fmt.Errorf("parentRefs: Server %q in another namespace", p.Name)
		case p.Port != nil:
			return nil, fmt.Errorf("parentRefs: Server %q with a port", p.Name)
		case p.SectionName != "":
			return nil, fmt.Errorf("parentRefs: Server %q with a sectionName", p.Name)
		}
		r.servers = append(r.servers, p.Name)
	}
	for i, h := range spec.Hostnames {
		if h == "" || strings.Contains(strings.TrimPrefix(h, "*."), "*") {
			return nil, fmt.Errorf("hostnames[%d] %q: want a name or *.name", i, h)
		}
	}
	rules := spec.Rules
	for i, rule := range rules {
		out := &policyv1.HttpRoute_Rule{}
		for j, m := range rule.Matches {
			pm := &policyv1.HttpRouteMatch{Method: m.Method}
			if m.Path != nil {
				path, err := pathMatch(m.Path.Type, m.Path.Value)
				if err != nil {
					return nil, fmt.Errorf("rules[%d].matches[%d].path: %w", i, j, err)
				}
				pm.Path = path
			}
			for _, h := range m.Headers {
				regex, err := valueMatch(h)
				if err != nil {
					return nil, fmt.Errorf("rules[%d].matches[%d].headers %q: %w", i, j, h.Name, err)
				}
				hm := &policyv1.HttpHeaderMatch{Name: h.Name, Value: &policyv1.HttpHeaderMatch_Exact{Exact: h.Value}}
				if regex {
					hm.Value = &policyv1.HttpHeaderMatch_Regex{Regex: h.Value}
				}
				pm.Headers = append(pm.Headers, hm)
			}
			for _, q := range m.QueryParams {
				regex, err := valueMatch(q)
				if err != nil {
					return nil, fmt.Errorf("rules[%d].matches[%d].queryParams %q: %w", i, j, q.Name, err)
				}
				qm := &policyv1.HttpQueryParamMatch{Name: q.Name, Value: &policyv1.HttpQueryParamMatch_Exact{Exact: q.Value}}
				if regex {
					qm.Value = &policyv1.HttpQueryParamMatch_Regex{Regex: q.Value}
				}
				pm.QueryParams = append(pm.QueryParams, qm)
			}
			out.Matches = append(out.Matches, pm)
		}
		for _, f := range rule.Filters {
			// Only request header changes happen on the inbound side. The
			// others (response headers, redirects) are left out: the rule
			// and its authorizations stay, so nobody gets in who would not.
			if f.Type == "RequestHeaderModifier" && f.RequestHeaderModifier != nil {
				out.Filters = append(out.Filters, headerModifier(f.RequestHeaderModifier))
			}
		}
		r.route.Rules = append(r.route.Rules, out)
	}
	if len(rules) == 0 {
		// The CRD's default: every request.
		r.route.Rules = []*policyv1.HttpRoute_Rule{everyRequest()}
	}
	return r, nil
}

// everyRequest is a rule that matches every request.
func everyRequest() *policyv1.HttpRoute_Rule {
	prefix := &policyv1.HttpPathMatch{Kind: &policyv1.HttpPathMatch_Prefix{Prefix: "/"}}
	return &policyv1.HttpRoute_Rule{Matches: []*policyv1.HttpRouteMatch{{Path: prefix}}}
}

func pathMatch(typ, value string) (*policyv1.HttpPathMatch, error) {
	switch typ {
	case "Exact":
		if !strings.HasPrefix(value, "/") {
			return nil, fmt.Errorf("exact path %q does not start with /", value)
		}
		return &policyv1.HttpPathMatch{Kind: &policyv1.HttpPathMatch_Exact{Exact: value}}, nil
	case "", "PathPrefix":
		if value == "" {
			value = "/"
		}
		if !strings.HasPrefix(value, "/") {
			return nil, fmt.Errorf("path prefix %q does not start with /", value)
		}
		return &policyv1.HttpPathMatch{Kind: &policyv1.HttpPathMatch_Prefix{Prefix: value}}, nil
	case "RegularExpression":
		if err := checkRegex(value); err != nil {
			return nil, err
		}
		return &policyv1.HttpPathMatch{Kind: &policyv1.HttpPathMatch_Regex{Regex: value}}, nil
	}
	return nil, fmt.Errorf("unknown type %q", typ)
}

// valueMatch checks a header or query parameter condition; regex reports a
// RegularExpression one (else the value must be equal).
func valueMatch(m valueMatchSpec) (regex bool, err error) {
	switch m.Type {
	case "", "Exact":
		return false, nil
	case "RegularExpression":
		return true, checkRegex(m.Value)
	}
	return false, fmt.Errorf("unknown type %q", m.Type)
}

func checkRegex(s string) error {
	if _, err := regexp.Compile(s); err != nil {
		return fmt.Errorf("regular expression %q: %w", s, err)
	}
	return nil
}

func headerModifier(m *headerModifierSpec) *policyv1.HttpRouteFilter {
	headers := func(hs []headerSpec) []*policyv1.HttpHeader {
		var out []*policyv1.HttpHeader
		for _, h := range hs {
			out = append(out, &policyv1.HttpHeader{Name: h.Name, Value: h.Value})
		}
		return out
	}
	return &policyv1.HttpRouteFilter{Kind: &policyv1.HttpRouteFilter_RequestHeaderModifier_{RequestHeaderModifier: &policyv1.HttpRouteFilter_RequestHeaderModifier{
		Set: headers(m.Set), Add: headers(m.Add), Remove: m.Remove,
	}}}
}
