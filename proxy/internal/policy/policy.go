// Package policy is the proxy's inbound policy: for each inbound port, the
// Server that describes it (its protocol, who may connect, its HTTP routes
// and who may use each), as destination's policy API serves it
// (linkerd.policy.v1 WatchPort), or the default policy of the proxy's
// environment until the first answer arrives.
//
// The decisions are made here and only here: AllowConnection for opaque
// and TLS traffic (once per connection), Route and AllowRequest for HTTP
// (once per request). They read an immutable Port; a new policy replaces
// the Port as a whole, so a decision never sees half an update.
package policy

import (
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"time"

	policyv1 "github.com/linkerd-go/linkerd-go/api/linkerd/policy/v1"
)

// Protocol is how the port's connections are treated.
type Protocol uint8

const (
	// Detect HTTP on each connection; other traffic is opaque.
	Detect Protocol = iota
	// Opaque TCP: no detection, authorized per connection.
	Opaque
	// TLS the application terminates: forwarded as it is, per connection.
	TLS
	// HTTP1, HTTP2 and GRPC: HTTP without detection, per request.
	HTTP1
	HTTP2
	GRPC
)

// Labels name the resource behind a policy element in metrics.
type Labels struct {
	Group, Kind, Name string
}

func labelsOf(m map[string]string) Labels {
	return Labels{Group: m["group"], Kind: m["kind"], Name: m["name"]}
}

// Port is the policy of one inbound port. It is never changed once made.
type Port struct {
	Protocol Protocol
	// DetectTimeout is the Server's detect timeout; 0 means the proxy's.
	DetectTimeout  time.Duration
	Authorizations []*Authorization
	Server         Labels
	Routes         []*Route
}

// Client is who is asking: the connection's source address and, with mesh
// TLS, the client's identity ("" without).
type Client struct {
	Addr     netip.Addr
	Identity string
}

// Authorization permits the clients from its networks that pass its
// authentication.
type Authorization struct {
	Labels Labels
	// networks: the client must be in one (none: any address).
	networks []network
	// anyClient: no authentication needed; else identities and suffixes
	// say which mesh identities may pass.
	anyClient  bool
	identities []string
	suffixes   []string
	// broken marks an authorization the proxy cannot read (a malformed
	// network, an unknown authentication): it permits no one.
	broken bool
}

type network struct {
	net    netip.Prefix
	except []netip.Prefix
}

// Audit reports whether a is the audit default: it lets everyone through,
// and what it lets through is what a stricter policy would deny.
func (a *Authorization) Audit() bool {
	return a.Labels.Kind == "default" && a.Labels.Name == string(DefaultAudit)
}

// Permits reports whether c may pass a.
func (a *Authorization) Permits(c Client) bool {
	if a.broken {
		return false
	}
	if len(a.networks) > 0 {
		addr := c.Addr.Unmap()
		in := false
		for _, n := range a.networks {
			if n.contains(addr) {
				in = true
				break
			}
		}
		if !in {
			return false
		}
	}
	if a.anyClient {
		return true
	}
	if c.Identity == "" {
		return false
	}
	for _, id := range a.identities {
		if id == c.Identity {
			return true
		}
	}
	for _, s := range a.suffixes {
		if s == "" || strings.HasSuffix(c.Identity, "."+s) {
			return true
		}
	}
	return false
}

func (n network) contains(addr netip.Addr) bool {
	if !n.net.Contains(addr) {
		return false
	}
	for _, e := range n.except {
		if e.Contains(addr) {
			return false
		}
	}
	return true
}

// AllowConnection decides a connection (opaque, TLS, or traffic that turned
// out not to be HTTP): the first of the Server's authorizations that
// permits c, or false.
func (p *Port) AllowConnection(c Client) (*Authorization, bool) {
	return first(p.Authorizations, c)
}

// AllowRequest decides a request on route rt: the first of the Server's
// authorizations, then of the route's, that permits c, or false.
func (p *Port) AllowRequest(rt *Route, c Client) (*Authorization, bool) {
	if a, ok := first(p.Authorizations, c); ok {
		return a, true
	}
	return first(rt.Authorizations, c)
}

func first(as []*Authorization, c Client) (*Authorization, bool) {
	for _, a := range as {
		if a.Permits(c) {
			return a, true
		}
	}
	return nil, false
}

// Route is one HTTP route of a port.
type Route struct {
	Labels         Labels
	hostnames      []string
	Rules          []*Rule
	Authorizations []*Authorization
}

// Rule is a set of alternative matches and the filters of the requests
// that match.
type Rule struct {
	matches []*match
	Filters []Filter
}

// Filter changes a request before it reaches the application. Unknown is
// a filter this proxy does not know: the requests it applies to fail
// rather than pass unfiltered.
type Filter struct {
	Unknown bool
	// RequestHeaderModifier: set, then add, then remove.
	Set, Add []Header
	Remove   []string
}

// Header is one header line.
type Header struct{ Name, Value string }

// Apply changes r's headers as f says.
func (f Filter) Apply(r *http.Request) {
	for _, h := range f.Set {
		r.Header.Set(h.Name, h.Value)
	}
	for _, h := range f.Add {
		r.Header.Add(h.Name, h.Value)
	}
	for _, n := range f.Remove {
		r.Header.Del(n)
	}
}

type pathKind uint8

const (
	pathAny pathKind = iota
	pathExact
	pathPrefix
	pathRegex
)

type match struct {
	pathKind pathKind
	path     string
	pathRe   *regexp.Regexp
	headers  []valueMatch
	query    []valueMatch
	method   string
	// broken: a regex that does not compile; the match never holds.
	broken bool
}

type valueMatch struct {
	name  string
	exact string
	re    *regexp.Regexp // nil: exact
}

func (v valueMatch) holds(values []string) bool {
	for _, s := range values {
		if v.re != nil && v.re.MatchString(s) || v.re == nil && s == v.exact {
			return true
		}
	}
	return false
}

func (m *match) holds(r *http.Request) bool {
	if m.broken {
		return false
	}
	if m.method != "" && r.Method != m.method {
		return false
	}
	path := r.URL.Path
	switch m.pathKind {
	case pathExact:
		if path != m.path {
			return false
		}
	case pathPrefix:
		if !prefixMatch(path, m.path) {
			return false
		}
	case pathRegex:
		if !m.pathRe.MatchString(path) {
			return false
		}
	}
	for _, h := range m.headers {
		if !h.holds(r.Header.Values(h.name)) {
			return false
		}
	}
	if len(m.query) > 0 {
		q := r.URL.Query()
		for _, v := range m.query {
			if !v.holds(q[v.name]) {
				return false
			}
		}
	}
	return true
}

// prefixMatch is a path prefix at a "/" boundary: "/api" matches "/api"
// and "/api/x", not "/apix"; "/" matches everything.
func prefixMatch(path, prefix string) bool {
	prefix = strings.TrimSuffix(prefix, "/")
	if prefix == "" {
		return true
	}
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

// rank orders matches as the Gateway API's precedence does: an exact path
// before a prefix, a longer prefix before a shorter one, then a method,
// then more header and more query conditions. Higher wins.
func (m *match) rank() [5]int {
	var kind, length int
	switch m.pathKind {
	case pathExact:
		kind, length = 3, len(m.path)
	case pathPrefix:
		kind, length = 2, len(strings.TrimSuffix(m.path, "/"))
	case pathRegex:
		kind = 1
	}
	method := 0
	if m.method != "" {
		method = 1
	}
	return [5]int{kind, length, method, len(m.headers), len(m.query)}
}

func (rt *Route) hostMatches(host string) bool {
	if len(rt.hostnames) == 0 {
		return true
	}
	for _, h := range rt.hostnames {
		if suffix, ok := strings.CutPrefix(h, "*"); ok {
			// "*.example.com" matches any name below example.com.
			if strings.HasSuffix(host, suffix) && len(host) > len(suffix) {
				return true
			}
		} else if host == h {
			return true
		}
	}
	return false
}

// Route returns the route and rule r belongs to: among the rules of the
// routes whose hostnames admit r, the one with the best-ranked match
// (Gateway API precedence); on a tie, the first in the order the server
// sent. ok is false when no route matches (the request is refused).
func (p *Port) Route(r *http.Request) (rt *Route, rule *Rule, ok bool) {
	host := requestHost(r)
	var best [5]int
	for _, route := range p.Routes {
		if !route.hostMatches(host) {
			continue
		}
		for _, ru := range route.Rules {
			if len(ru.matches) == 0 {
				// A rule without matches matches everything, ranked lowest.
				if !ok {
					rt, rule, ok = route, ru, true
				}
				continue
			}
			for _, m := range ru.matches {
				if !m.holds(r) {
					continue
				}
				if k := m.rank(); !ok || greater(k, best) {
					rt, rule, ok, best = route, ru, true, k
				}
			}
		}
	}
	return rt, rule, ok
}

func greater(a, b [5]int) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] > b[i]
		}
	}
	return false
}

// requestHost is r's host name, lower case, without a port or a final dot.
func requestHost(r *http.Request) string {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return strings.ToLower(strings.TrimSuffix(host, "."))
}

// FromProto reads a policy from the API. What the proxy cannot read is made
// to deny, never to allow: a malformed network or an unknown authentication
// makes its authorization permit no one, a regex that does not compile
// makes its match never hold, an unknown filter fails its requests, and an
// unknown protocol is detect.
func FromProto(s *policyv1.Server) *Port {
	p := &Port{Server: labelsOf(s.GetLabels())}
	switch k := s.GetProtocol().GetKind().(type) {
	case *policyv1.ProxyProtocol_Detect:
		p.Protocol = Detect
		if d := k.Detect.GetTimeout(); d != nil && d.AsDuration() > 0 {
			p.DetectTimeout = d.AsDuration()
		}
	case *policyv1.ProxyProtocol_Opaque:
		p.Protocol = Opaque
	case *policyv1.ProxyProtocol_Tls:
		p.Protocol = TLS
	case *policyv1.ProxyProtocol_Http1:
		p.Protocol = HTTP1
	case *policyv1.ProxyProtocol_Http2:
		p.Protocol = HTTP2
	case *policyv1.ProxyProtocol_Grpc:
		p.Protocol = GRPC
	}
	p.Authorizations = authorizations(s.GetAuthorizations())
	for _, r := range s.GetHttpRoutes() {
		p.Routes = append(p.Routes, routeFromProto(r))
	}
	return p
}

func authorizations(in []*policyv1.Authorization) []*Authorization {
	out := make([]*Authorization, 0, len(in))
	for _, a := range in {
		out = append(out, authorizationFromProto(a))
	}
	return out
}

func authorizationFromProto(a *policyv1.Authorization) *Authorization {
	out := &Authorization{Labels: labelsOf(a.GetLabels())}
	for _, n := range a.GetNetworks() {
		net, err := n.GetNet().Prefix()
		if err != nil {
			out.broken = true
			continue
		}
		nw := network{net: net}
		for _, e := range n.GetExcept() {
			ex, err := e.Prefix()
			if err != nil {
				out.broken = true
				continue
			}
			nw.except = append(nw.except, ex)
		}
		out.networks = append(out.networks, nw)
	}
	switch k := a.GetAuthentication().GetKind().(type) {
	case *policyv1.Authentication_Unauthenticated:
		out.anyClient = true
	case *policyv1.Authentication_MeshTls:
		out.identities = k.MeshTls.GetIdentities()
		out.suffixes = k.MeshTls.GetSuffixes()
	default:
		out.broken = true
	}
	return out
}

func routeFromProto(r *policyv1.HttpRoute) *Route {
	out := &Route{Labels: labelsOf(r.GetLabels()), Authorizations: authorizations(r.GetAuthorizations())}
	for _, h := range r.GetHostnames() {
		out.hostnames = append(out.hostnames, strings.ToLower(h))
	}
	for _, ru := range r.GetRules() {
		rule := &Rule{}
		for _, m := range ru.GetMatches() {
			rule.matches = append(rule.matches, matchFromProto(m))
		}
		for _, f := range ru.GetFilters() {
			switch k := f.GetKind().(type) {
			case *policyv1.HttpRouteFilter_RequestHeaderModifier_:
				m := k.RequestHeaderModifier
				var flt Filter
				for _, h := range m.GetSet() {
					flt.Set = append(flt.Set, Header{h.GetName(), h.GetValue()})
				}
				for _, h := range m.GetAdd() {
					flt.Add = append(flt.Add, Header{h.GetName(), h.GetValue()})
				}
				flt.Remove = m.GetRemove()
				rule.Filters = append(rule.Filters, flt)
			default:
				rule.Filters = append(rule.Filters, Filter{Unknown: true})
			}
		}
		out.Rules = append(out.Rules, rule)
	}
	return out
}

func matchFromProto(m *policyv1.HttpRouteMatch) *match {
	out := &match{method: m.GetMethod()}
	switch k := m.GetPath().GetKind().(type) {
	case *policyv1.HttpPathMatch_Exact:
		out.pathKind, out.path = pathExact, k.Exact
	case *policyv1.HttpPathMatch_Prefix:
		out.pathKind, out.path = pathPrefix, k.Prefix
	case *policyv1.HttpPathMatch_Regex:
		re, err := wholeRegexp(k.Regex)
		if err != nil {
			out.broken = true
		}
		out.pathKind, out.pathRe = pathRegex, re
	}
	for _, h := range m.GetHeaders() {
		v, ok := newValueMatch(h.GetName(), h.GetExact(), h.GetRegex(), h.GetValue() != nil, isHeaderRegex(h))
		out.headers, out.broken = append(out.headers, v), out.broken || !ok
	}
	for _, q := range m.GetQueryParams() {
		_, isRegex := q.GetValue().(*policyv1.HttpQueryParamMatch_Regex)
		v, ok := newValueMatch(q.GetName(), q.GetExact(), q.GetRegex(), q.GetValue() != nil, isRegex)
		out.query, out.broken = append(out.query, v), out.broken || !ok
	}
	return out
}

func isHeaderRegex(h *policyv1.HttpHeaderMatch) bool {
	_, ok := h.GetValue().(*policyv1.HttpHeaderMatch_Regex)
	return ok
}

// newValueMatch is a header or query condition; ok is false when the
// condition is missing or its regex does not compile (the match then
// never holds).
func newValueMatch(name, exact, expr string, set, isRegex bool) (valueMatch, bool) {
	v := valueMatch{name: name, exact: exact}
	if !set {
		return v, false
	}
	if isRegex {
		re, err := wholeRegexp(expr)
		if err != nil {
			return v, false
		}
		v.re = re
	}
	return v, true
}

// wholeRegexp compiles an RE2 expression that must match a whole value.
func wholeRegexp(expr string) (*regexp.Regexp, error) {
	return regexp.Compile(`^(?:` + expr + `)$`)
}
