package authz_test

import (
	"errors"
	"net/http"
	"net/netip"
	"testing"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"

	policyv1 "github.com/linkerd-go/linkerd-go/api/linkerd/policy/v1"
	"github.com/linkerd-go/linkerd-go/proxy/internal/authz"
	"github.com/linkerd-go/linkerd-go/proxy/internal/forward"
	"github.com/linkerd-go/linkerd-go/proxy/internal/layertest"
	"github.com/linkerd-go/linkerd-go/proxy/internal/policy"
	"github.com/linkerd-go/linkerd-go/proxy/internal/stack"
)

const webID = "web.emojivoto.serviceaccount.identity.linkerd.cluster.local"

var anyone = &policyv1.Authentication{Kind: &policyv1.Authentication_Unauthenticated{Unauthenticated: &policyv1.Authentication_AnyClient{}}}

// request is a request that came on a connection to port 8080 from
// 198.18.0.9 with identity id.
func request(id string) (*http.Request, *stack.Exchange) {
	r, ex := layertest.Request("GET", "http://web.test/", "")
	meta := &forward.ConnMeta{Dst: netip.MustParseAddrPort("198.18.0.1:8080"), PeerID: id, TLS: id != "", Client: netip.MustParseAddr("198.18.0.9")}
	return r.WithContext(forward.WithMeta(r.Context(), meta)), ex
}

func failure(err error) (forward.Failure, bool) {
	var fe *forward.FailureError
	if errors.As(err, &fe) {
		return fe.Failure, true
	}
	return forward.Failure{}, false
}

// The layer applies the matched rule's filters, names the route on the
// exchange, and refuses a rule it cannot filter rather than pass it on.
func TestFiltersAndRouteName(t *testing.T) {
	setHeader := &policyv1.HttpRouteFilter{Kind: &policyv1.HttpRouteFilter_RequestHeaderModifier_{RequestHeaderModifier: &policyv1.HttpRouteFilter_RequestHeaderModifier{
		Set: []*policyv1.HttpHeader{{Name: "x-route", Value: "web"}},
	}}}
	p := policy.FromProto(&policyv1.Server{
		Authorizations: []*policyv1.Authorization{{Authentication: anyone}},
		HttpRoutes: []*policyv1.HttpRoute{{
			Labels: map[string]string{"kind": "HTTPRoute", "name": "web"},
			Rules:  []*policyv1.HttpRoute_Rule{{Filters: []*policyv1.HttpRouteFilter{setHeader}}},
		}},
	})
	next := &layertest.Next{}
	l := authz.New(authz.Fixed{Policy: p}, prometheus.NewRegistry(), logr.Discard()).Layer(next)
	r, ex := request(webID)
	if _, err := l.RoundTrip(r); err != nil {
		t.Fatal(err)
	}
	if got := next.Calls()[0].Header.Get("x-route"); got != "web" {
		t.Errorf("x-route = %q: filter not applied", got)
	}
	if ex.Route.Name != "web" {
		t.Errorf("route on the exchange %q", ex.Route.Name)
	}

	unknown := policy.FromProto(&policyv1.Server{
		Authorizations: []*policyv1.Authorization{{Authentication: anyone}},
		HttpRoutes:     []*policyv1.HttpRoute{{Rules: []*policyv1.HttpRoute_Rule{{Filters: []*policyv1.HttpRouteFilter{{}}}}}},
	})
	next = &layertest.Next{}
	l = authz.New(authz.Fixed{Policy: unknown}, prometheus.NewRegistry(), logr.Discard()).Layer(next)
	r, _ = request(webID)
	_, err := l.RoundTrip(r)
	if f, ok := failure(err); !ok || f != forward.FailFilter || len(next.Calls()) != 0 {
		t.Errorf("unknown filter: %v, %d calls; want FailFilter and nothing sent", err, len(next.Calls()))
	}
}

// Without connection metadata nothing can be decided: the request fails.
func TestNoMetaFails(t *testing.T) {
	allow, _ := policy.Default(policy.DefaultAllUnauthenticated, nil)
	next := &layertest.Next{}
	r, _ := layertest.Request("GET", "http://web.test/", "")
	_, err := authz.New(authz.Fixed{Policy: allow}, prometheus.NewRegistry(), logr.Discard()).Layer(next).RoundTrip(r)
	if f, ok := failure(err); !ok || f != forward.FailNoMeta || len(next.Calls()) != 0 {
		t.Errorf("got %v", err)
	}
}

// Connections: a denied client is refused, counted; an allowed one passes.
func TestConnection(t *testing.T) {
	p, _ := policy.Default(policy.DefaultAllAuthenticated, nil)
	a := authz.New(authz.Fixed{Policy: p}, prometheus.NewRegistry(), logr.Discard())
	if a.Connection("198.18.0.1:5432", 5432, policy.Client{Addr: netip.MustParseAddr("198.18.0.9")}) {
		t.Error("an unmeshed connection passed all-authenticated")
	}
	if !a.Connection("198.18.0.1:5432", 5432, policy.Client{Addr: netip.MustParseAddr("198.18.0.9"), Identity: webID}) {
		t.Error("a meshed connection was refused by all-authenticated")
	}
}
