package policy

import (
	"net/http/httptest"
	"net/netip"
	"testing"

	"google.golang.org/protobuf/types/known/durationpb"

	policyv1 "github.com/linkerd-go/linkerd-go/api/linkerd/policy/v1"
)

const (
	webID   = "web.emojivoto.serviceaccount.identity.linkerd.cluster.local"
	voteID  = "voting.emojivoto.serviceaccount.identity.linkerd.cluster.local"
	otherID = "client.other.serviceaccount.identity.linkerd.cluster.local"
)

func netw(cidr string, except ...string) *policyv1.Network {
	n := &policyv1.Network{Net: policyv1.NewIpNetwork(netip.MustParsePrefix(cidr))}
	for _, e := range except {
		n.Except = append(n.Except, policyv1.NewIpNetwork(netip.MustParsePrefix(e)))
	}
	return n
}

func meshTLS(ids []string, suffixes ...string) *policyv1.Authentication {
	return &policyv1.Authentication{Kind: &policyv1.Authentication_MeshTls{MeshTls: &policyv1.Authentication_MeshTlsClients{Identities: ids, Suffixes: suffixes}}}
}

var anyClient = &policyv1.Authentication{Kind: &policyv1.Authentication_Unauthenticated{Unauthenticated: &policyv1.Authentication_AnyClient{}}}

func client(addr, id string) Client { return Client{Addr: netip.MustParseAddr(addr), Identity: id} }

func TestAuthorizationPermits(t *testing.T) {
	for _, tc := range []struct {
		name   string
		authz  *policyv1.Authorization
		permit []Client
		refuse []Client
	}{
		{"any client from anywhere", &policyv1.Authorization{Authentication: anyClient},
			[]Client{client("198.18.0.1", ""), client("198.19.0.1", webID)}, nil},
		{"a network with a hole", &policyv1.Authorization{Authentication: anyClient, Networks: []*policyv1.Network{netw("198.18.0.0/16", "198.18.5.0/24")}},
			[]Client{client("198.18.0.1", ""), client("::ffff:198.18.1.1", "")},
			[]Client{client("198.18.5.7", ""), client("198.19.0.1", "")}},
		{"exact identities", &policyv1.Authorization{Authentication: meshTLS([]string{webID})},
			[]Client{client("198.18.0.1", webID)},
			[]Client{client("198.18.0.1", ""), client("198.18.0.1", voteID)}},
		{"a namespace's identities by suffix", &policyv1.Authorization{Authentication: meshTLS(nil, "emojivoto.serviceaccount.identity.linkerd.cluster.local")},
			[]Client{client("198.18.0.1", webID), client("198.18.0.1", voteID)},
			[]Client{client("198.18.0.1", otherID), client("198.18.0.1", "")}},
		{"the empty suffix is any meshed client", &policyv1.Authorization{Authentication: meshTLS(nil, "")},
			[]Client{client("198.18.0.1", otherID)},
			[]Client{client("198.18.0.1", "")}},
		{"mesh TLS with no names admits no one", &policyv1.Authorization{Authentication: meshTLS(nil)},
			nil, []Client{client("198.18.0.1", webID)}},
		{"no authentication admits no one", &policyv1.Authorization{},
			nil, []Client{client("198.18.0.1", webID), client("198.18.0.1", "")}},
		{"a malformed network admits no one", &policyv1.Authorization{Authentication: anyClient, Networks: []*policyv1.Network{{Net: &policyv1.IpNetwork{Ip: []byte{1, 2, 3}, PrefixLength: 8}}}},
			nil, []Client{client("1.2.3.4", "")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := authorizationFromProto(tc.authz)
			for _, c := range tc.permit {
				if !a.Permits(c) {
					t.Errorf("refused %+v", c)
				}
			}
			for _, c := range tc.refuse {
				if a.Permits(c) {
					t.Errorf("permitted %+v", c)
				}
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	cluster := []netip.Prefix{netip.MustParsePrefix("198.18.0.0/16")}
	inside, outside := netip.MustParseAddr("198.18.3.4"), netip.MustParseAddr("198.19.0.1")
	for _, tc := range []struct {
		name DefaultName
		// who is let through: meshed inside, plain inside, meshed outside, plain outside
		want [4]bool
	}{
		{DefaultAllUnauthenticated, [4]bool{true, true, true, true}},
		{DefaultAudit, [4]bool{true, true, true, true}},
		{DefaultAllAuthenticated, [4]bool{true, false, true, false}},
		{DefaultClusterUnauthenticated, [4]bool{true, true, false, false}},
		{DefaultClusterAuthenticated, [4]bool{true, false, false, false}},
		{DefaultDeny, [4]bool{false, false, false, false}},
	} {
		t.Run(string(tc.name), func(t *testing.T) {
			p, err := Default(tc.name, cluster)
			if err != nil {
				t.Fatal(err)
			}
			clients := []Client{{inside, webID}, {inside, ""}, {outside, webID}, {outside, ""}}
			for i, c := range clients {
				if _, ok := p.AllowConnection(c); ok != tc.want[i] {
					t.Errorf("%+v: allowed %v, want %v", c, ok, tc.want[i])
				}
				r := httptest.NewRequest("GET", "http://web:80/anything", nil)
				rt, _, ok := p.Route(r)
				if !ok {
					t.Fatal("the default route does not match")
				}
				if a, ok := p.AllowRequest(rt, c); ok != tc.want[i] || ok && (a.Labels.Kind != "default" || a.Labels.Name != string(tc.name)) {
					t.Errorf("%+v: request allowed %v by %+v, want %v", c, ok, a, tc.want[i])
				}
			}
			if p.Server != (Labels{Kind: "default", Name: string(tc.name)}) {
				t.Errorf("server labels %+v", p.Server)
			}
		})
	}
	if _, err := Default("permit-all", cluster); err == nil {
		t.Error("an unknown default was accepted")
	}
	if _, err := Default(DefaultClusterAuthenticated, nil); err == nil {
		t.Error("a cluster default without networks was accepted")
	}
	if a, _ := Default(DefaultAudit, nil); !a.Authorizations[0].Audit() {
		t.Error("the audit default is not marked audit")
	}
}

func path(kind string, v string) *policyv1.HttpPathMatch {
	switch kind {
	case "exact":
		return &policyv1.HttpPathMatch{Kind: &policyv1.HttpPathMatch_Exact{Exact: v}}
	case "prefix":
		return &policyv1.HttpPathMatch{Kind: &policyv1.HttpPathMatch_Prefix{Prefix: v}}
	}
	return &policyv1.HttpPathMatch{Kind: &policyv1.HttpPathMatch_Regex{Regex: v}}
}

func route(name string, hostnames []string, matches ...*policyv1.HttpRouteMatch) *policyv1.HttpRoute {
	return &policyv1.HttpRoute{
		Labels:    map[string]string{"kind": "HTTPRoute", "name": name},
		Hostnames: hostnames,
		Rules:     []*policyv1.HttpRoute_Rule{{Matches: matches}},
	}
}

func TestRouteSelection(t *testing.T) {
	p := FromProto(&policyv1.Server{HttpRoutes: []*policyv1.HttpRoute{
		route("prefix-api", nil, &policyv1.HttpRouteMatch{Path: path("prefix", "/api")}),
		route("prefix-api-v1", nil, &policyv1.HttpRouteMatch{Path: path("prefix", "/api/v1/")}),
		route("exact-list", nil, &policyv1.HttpRouteMatch{Path: path("exact", "/api/v1/list")}),
		route("post-vote", nil, &policyv1.HttpRouteMatch{Path: path("prefix", "/api/v1"), Method: "POST"}),
		route("regex-emoji", nil, &policyv1.HttpRouteMatch{Path: path("regex", "/emoji/[a-z]+")}),
		route("header", nil, &policyv1.HttpRouteMatch{Path: path("prefix", "/h"), Headers: []*policyv1.HttpHeaderMatch{{Name: "x-canary", Value: &policyv1.HttpHeaderMatch_Exact{Exact: "1"}}}}),
		route("query", nil, &policyv1.HttpRouteMatch{Path: path("prefix", "/q"), QueryParams: []*policyv1.HttpQueryParamMatch{{Name: "v", Value: &policyv1.HttpQueryParamMatch_Regex{Regex: "[0-9]+"}}}}),
		route("broken-regex", nil, &policyv1.HttpRouteMatch{Path: path("regex", "(")}),
		route("host-wild", []string{"*.example.com"}, &policyv1.HttpRouteMatch{Path: path("prefix", "/host")}),
		route("host-exact", []string{"web.example.com"}, &policyv1.HttpRouteMatch{Path: path("exact", "/host")}),
	}})
	for _, tc := range []struct {
		method, url string
		header      string
		want        string // "" = no route
	}{
		{"GET", "http://web/api", "", "prefix-api"},
		{"GET", "http://web/api/x", "", "prefix-api"},
		{"GET", "http://web/apix", "", ""},
		{"GET", "http://web/api/v1/other", "", "prefix-api-v1"},
		{"GET", "http://web/api/v1/list", "", "exact-list"},
		{"POST", "http://web/api/v1/list", "", "exact-list"},
		{"POST", "http://web/api/v1/vote", "", "post-vote"},
		{"GET", "http://web/emoji/abc", "", "regex-emoji"},
		{"GET", "http://web/emoji/abc/def", "", ""},
		{"GET", "http://web/h", "", ""},
		{"GET", "http://web/h", "x-canary: 1", "header"},
		{"GET", "http://web/q?v=12", "", "query"},
		{"GET", "http://web/q?v=1a", "", ""},
		{"GET", "http://a.example.com/host", "", "host-wild"},
		{"GET", "http://web.example.com:8080/host", "", "host-exact"},
		{"GET", "http://example.com/host", "", ""},
	} {
		t.Run(tc.method+" "+tc.url, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, tc.url, nil)
			if name, value, ok := cut(tc.header); ok {
				r.Header.Set(name, value)
			}
			rt, _, ok := p.Route(r)
			got := ""
			if ok {
				got = rt.Labels.Name
			}
			if got != tc.want {
				t.Errorf("route %q, want %q", got, tc.want)
			}
		})
	}
}

func cut(h string) (string, string, bool) {
	for i := 0; i+1 < len(h); i++ {
		if h[i] == ':' {
			return h[:i], h[i+2:], true
		}
	}
	return "", "", false
}

// A request is allowed by the Server's authorizations or by its route's.
func TestRouteAuthorizations(t *testing.T) {
	p := FromProto(&policyv1.Server{
		Labels:         map[string]string{"kind": "Server", "name": "web-http"},
		Authorizations: []*policyv1.Authorization{{Authentication: meshTLS([]string{webID}), Labels: map[string]string{"kind": "AuthorizationPolicy", "name": "web-only"}}},
		HttpRoutes: []*policyv1.HttpRoute{{
			Labels:         map[string]string{"kind": "HTTPRoute", "name": "health"},
			Rules:          []*policyv1.HttpRoute_Rule{{Matches: []*policyv1.HttpRouteMatch{{Path: path("exact", "/healthz")}}}},
			Authorizations: []*policyv1.Authorization{{Authentication: anyClient, Labels: map[string]string{"kind": "AuthorizationPolicy", "name": "probes"}}},
		}, {
			Labels: map[string]string{"kind": "HTTPRoute", "name": "rest"},
			Rules:  []*policyv1.HttpRoute_Rule{{}},
		}},
		Protocol: &policyv1.ProxyProtocol{Kind: &policyv1.ProxyProtocol_Detect{Detect: &policyv1.ProxyProtocol_DetectOptions{Timeout: durationpb.New(0)}}},
	})
	check := func(url string, c Client, want string) {
		t.Helper()
		rt, _, ok := p.Route(httptest.NewRequest("GET", url, nil))
		if !ok {
			t.Fatalf("%s: no route", url)
		}
		a, ok := p.AllowRequest(rt, c)
		got := "denied"
		if ok {
			got = a.Labels.Name
		}
		if got != want {
			t.Errorf("%s from %+v: %s, want %s", url, c, got, want)
		}
	}
	check("http://web/healthz", client("198.18.0.1", ""), "probes")
	check("http://web/healthz", client("198.18.0.1", webID), "web-only")
	check("http://web/", client("198.18.0.1", webID), "web-only")
	check("http://web/", client("198.18.0.1", voteID), "denied")
	if _, ok := p.AllowConnection(client("198.18.0.1", "")); ok {
		t.Error("an unmeshed connection was allowed")
	}
	if p.Server.Name != "web-http" || p.Protocol != Detect || p.DetectTimeout != 0 {
		t.Errorf("server %+v", p)
	}
}

func TestFilters(t *testing.T) {
	p := FromProto(&policyv1.Server{HttpRoutes: []*policyv1.HttpRoute{{Rules: []*policyv1.HttpRoute_Rule{{
		Filters: []*policyv1.HttpRouteFilter{
			{Kind: &policyv1.HttpRouteFilter_RequestHeaderModifier_{RequestHeaderModifier: &policyv1.HttpRouteFilter_RequestHeaderModifier{
				Set:    []*policyv1.HttpHeader{{Name: "x-set", Value: "new"}},
				Add:    []*policyv1.HttpHeader{{Name: "x-add", Value: "2"}},
				Remove: []string{"x-drop"},
			}}},
			{}, // a kind this proxy does not know
		},
	}}}}})
	r := httptest.NewRequest("GET", "http://web/", nil)
	r.Header.Set("x-set", "old")
	r.Header.Set("x-add", "1")
	r.Header.Set("x-drop", "yes")
	_, rule, ok := p.Route(r)
	if !ok || len(rule.Filters) != 2 {
		t.Fatalf("rule %+v", rule)
	}
	rule.Filters[0].Apply(r)
	if r.Header.Get("x-set") != "new" || len(r.Header.Values("x-add")) != 2 || r.Header.Get("x-drop") != "" {
		t.Errorf("headers after the filter: %v", r.Header)
	}
	if !rule.Filters[1].Unknown {
		t.Error("an unknown filter was not marked")
	}
}

func TestProtocols(t *testing.T) {
	for kind, want := range map[string]Protocol{"opaque": Opaque, "tls": TLS, "http1": HTTP1, "http2": HTTP2, "grpc": GRPC, "none": Detect} {
		var pp *policyv1.ProxyProtocol
		switch kind {
		case "opaque":
			pp = &policyv1.ProxyProtocol{Kind: &policyv1.ProxyProtocol_Opaque{Opaque: &policyv1.ProxyProtocol_OpaqueOptions{}}}
		case "tls":
			pp = &policyv1.ProxyProtocol{Kind: &policyv1.ProxyProtocol_Tls{Tls: &policyv1.ProxyProtocol_TlsOptions{}}}
		case "http1":
			pp = &policyv1.ProxyProtocol{Kind: &policyv1.ProxyProtocol_Http1{Http1: &policyv1.ProxyProtocol_Http1Options{}}}
		case "http2":
			pp = &policyv1.ProxyProtocol{Kind: &policyv1.ProxyProtocol_Http2{Http2: &policyv1.ProxyProtocol_Http2Options{}}}
		case "grpc":
			pp = &policyv1.ProxyProtocol{Kind: &policyv1.ProxyProtocol_Grpc{Grpc: &policyv1.ProxyProtocol_GrpcOptions{}}}
		}
		if got := FromProto(&policyv1.Server{Protocol: pp}).Protocol; got != want {
			t.Errorf("%s: %v, want %v", kind, got, want)
		}
	}
}
