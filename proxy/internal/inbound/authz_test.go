package inbound

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	policyv1 "github.com/linkerd-go/linkerd-go/api/linkerd/policy/v1"
	"github.com/linkerd-go/linkerd-go/proxy/internal/authz"
	"github.com/linkerd-go/linkerd-go/proxy/internal/forward"
	"github.com/linkerd-go/linkerd-go/proxy/internal/policy"
)

// webOnly is a Server that lets only the client's identity in, on a route
// for /api; /healthz is open to everyone.
func webOnly() *policy.Port {
	meshTLS := &policyv1.Authentication{Kind: &policyv1.Authentication_MeshTls{MeshTls: &policyv1.Authentication_MeshTlsClients{Identities: []string{clientID}}}}
	anyone := &policyv1.Authentication{Kind: &policyv1.Authentication_Unauthenticated{Unauthenticated: &policyv1.Authentication_AnyClient{}}}
	prefix := func(p string) []*policyv1.HttpRouteMatch {
		return []*policyv1.HttpRouteMatch{{Path: &policyv1.HttpPathMatch{Kind: &policyv1.HttpPathMatch_Prefix{Prefix: p}}}}
	}
	return policy.FromProto(&policyv1.Server{
		Labels:         map[string]string{"kind": "Server", "name": "web"},
		Authorizations: []*policyv1.Authorization{{Authentication: meshTLS, Labels: map[string]string{"kind": "AuthorizationPolicy", "name": "client-only"}}},
		HttpRoutes: []*policyv1.HttpRoute{
			{Labels: map[string]string{"kind": "HTTPRoute", "name": "api"}, Rules: []*policyv1.HttpRoute_Rule{{Matches: prefix("/api")}}},
			{Labels: map[string]string{"kind": "HTTPRoute", "name": "health"}, Rules: []*policyv1.HttpRoute_Rule{{Matches: prefix("/healthz")}},
				Authorizations: []*policyv1.Authorization{{Authentication: anyone, Labels: map[string]string{"kind": "NetworkAuthentication", "name": "probes"}}}},
		},
	})
}

func authzFixture(t *testing.T, p *policy.Port) (*fixture, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	return newFixtureWith(t, forward.Limits{}, authz.New(authz.Fixed{Policy: p}, reg, logr.Discard())), reg
}

// counter returns the value of the counter name with the given labels
// (0 when it was never counted).
func counter(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue metric
				}
			}
			return metricValue(m)
		}
	}
	return 0
}

func metricValue(m *dto.Metric) float64 { return m.GetCounter().GetValue() }

// The Server's authorization admits the client's identity; other requests
// are answered 403 (gRPC: PERMISSION_DENIED) by the proxy; a route's own
// authorization opens it to everyone; no route is 404.
func TestRequestsAuthorized(t *testing.T) {
	f, reg := authzFixture(t, webOnly())
	meshed := f.meshClient(t, "h2")
	plain := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(plain.CloseIdleConnections)

	body, resp := get(t, meshed, "https://"+f.proxy+"/api/list", nil)
	if resp.StatusCode != 200 || !strings.Contains(body, "client-id="+clientID) {
		t.Errorf("meshed client on /api: %d %q", resp.StatusCode, body)
	}
	_, resp = get(t, plain, "http://"+f.proxy+"/api/list", nil)
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("l5d-proxy-error") == "" {
		t.Errorf("unmeshed client on /api: %d %v, want 403 from the proxy", resp.StatusCode, resp.Header)
	}
	_, resp = get(t, plain, "http://"+f.proxy+"/api/list", map[string]string{"Content-Type": "application/grpc"})
	if resp.StatusCode != 200 || resp.Header.Get("Grpc-Status") != "7" {
		t.Errorf("unmeshed gRPC call: %d grpc-status %q, want PERMISSION_DENIED (7)", resp.StatusCode, resp.Header.Get("Grpc-Status"))
	}
	_, resp = get(t, plain, "http://"+f.proxy+"/healthz", nil)
	if resp.StatusCode != 200 {
		t.Errorf("unmeshed client on /healthz: %d, want the route's own authorization to admit it", resp.StatusCode)
	}
	_, resp = get(t, meshed, "https://"+f.proxy+"/elsewhere", nil)
	if resp.StatusCode != http.StatusNotFound || resp.Header.Get("l5d-proxy-error") == "" {
		t.Errorf("no route: %d %v, want 404 from the proxy", resp.StatusCode, resp.Header)
	}

	target := f.app.String()
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"inbound_http_authz_allow_total", map[string]string{"target_addr": target, "srv_kind": "Server", "srv_name": "web", "authz_kind": "AuthorizationPolicy", "authz_name": "client-only", "route_name": "api"}, 1},
		{"inbound_http_authz_allow_total", map[string]string{"srv_name": "web", "authz_name": "probes", "route_name": "health"}, 1},
		{"inbound_http_authz_deny_total", map[string]string{"target_addr": target, "srv_kind": "Server", "srv_name": "web", "route_name": "api"}, 2},
		{"inbound_http_authz_deny_total", map[string]string{"srv_name": "web", "route_name": ""}, 1},
	} {
		if got := counter(t, reg, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}

// Opaque connections are decided once: an unmeshed client is closed before
// anything reaches the application; the meshed one (transport header) is
// let through.
func TestConnectionsAuthorized(t *testing.T) {
	f, reg := authzFixture(t, webOnly())
	c := f.dialEcho(t)
	fmt.Fprint(c, "\x00binary hello\n")
	if n, err := c.Read(make([]byte, 64)); err != io.EOF {
		t.Errorf("denied connection: read %d bytes, %v; want it closed", n, err)
	}
	mc := f.dialTransport(t, f.echo.Port())
	fmt.Fprint(mc, "over the mesh\n")
	if line, err := bufio.NewReader(mc).ReadString('\n'); err != nil || line != "over the mesh\n" {
		t.Errorf("meshed connection: %q, %v", line, err)
	}
	target := f.echo.String()
	if got := counter(t, reg, "inbound_tcp_authz_deny_total", map[string]string{"target_addr": target, "srv_name": "web"}); got != 1 {
		t.Errorf("tcp deny = %v, want 1", got)
	}
	if got := counter(t, reg, "inbound_tcp_authz_allow_total", map[string]string{"target_addr": target, "authz_name": "client-only"}); got != 1 {
		t.Errorf("tcp allow = %v, want 1", got)
	}
}

// The deny default refuses everyone; audit lets everyone through and counts
// it under the audit authorization.
func TestDenyAndAuditDefaults(t *testing.T) {
	deny, _ := policy.Default(policy.DefaultDeny, nil)
	f, _ := authzFixture(t, deny)
	_, resp := get(t, f.meshClient(t, "h2"), "https://"+f.proxy+"/", nil)
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("deny: %d, want 403", resp.StatusCode)
	}
	audit, _ := policy.Default(policy.DefaultAudit, nil)
	f, reg := authzFixture(t, audit)
	plain := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(plain.CloseIdleConnections)
	if _, resp := get(t, plain, "http://"+f.proxy+"/", nil); resp.StatusCode != 200 {
		t.Errorf("audit: %d, want 200", resp.StatusCode)
	}
	if got := counter(t, reg, "inbound_http_authz_allow_total", map[string]string{"authz_kind": "default", "authz_name": "audit", "srv_name": "audit"}); got != 1 {
		t.Errorf("audit allow = %v, want 1", got)
	}
}

// serverWith is a Server that lets everyone in and declares protocol.
func serverWith(protocol *policyv1.ProxyProtocol) *policy.Port {
	anyone := &policyv1.Authentication{Kind: &policyv1.Authentication_Unauthenticated{Unauthenticated: &policyv1.Authentication_AnyClient{}}}
	return policy.FromProto(&policyv1.Server{
		Protocol:       protocol,
		Labels:         map[string]string{"kind": "Server", "name": "declared"},
		Authorizations: []*policyv1.Authorization{{Authentication: anyone, Labels: map[string]string{"kind": "default", "name": "all-unauthenticated"}}},
		HttpRoutes:     []*policyv1.HttpRoute{{Labels: map[string]string{"kind": "default", "name": "default"}, Rules: []*policyv1.HttpRoute_Rule{{}}}},
	})
}

// A Server's proxyProtocol opaque makes the port's bytes pass untouched:
// a plaintext HTTP request reaches the application as it was written (the
// echo application returns it verbatim) and is counted as a connection,
// while a client proxy's mesh TLS is still terminated.
func TestServerDeclaredOpaque(t *testing.T) {
	f, reg := authzFixture(t, serverWith(&policyv1.ProxyProtocol{Kind: &policyv1.ProxyProtocol_Opaque{Opaque: &policyv1.ProxyProtocol_OpaqueOptions{}}}))
	c := f.dialEcho(t)
	const req = "GET /x HTTP/1.1\r\nhost: as-written\r\n\r\n"
	fmt.Fprint(c, req)
	got := make([]byte, len(req))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != req {
		t.Errorf("echoed %q, %v; want the request verbatim", got, err)
	}
	c.Close()
	if got := counter(t, reg, "inbound_tcp_authz_allow_total", map[string]string{"srv_name": "declared"}); got != 1 {
		t.Errorf("tcp allow = %v, want 1", got)
	}
	if got := counter(t, reg, "inbound_http_authz_allow_total", map[string]string{"srv_name": "declared"}); got != 0 {
		t.Errorf("http allow = %v, want 0 (nothing read as HTTP)", got)
	}

	f.toEcho.Store(false)
	body, resp := get(t, f.meshClient(t, "h2"), "https://"+f.proxy+"/over-mesh", nil)
	if resp.StatusCode != 200 || !strings.Contains(body, "client-id="+clientID) {
		t.Errorf("meshed HTTP on the opaque port: %d %q", resp.StatusCode, body)
	}
}

// A Server that declares HTTP closes a connection that is not HTTP rather
// than forwarding it.
func TestServerDeclaredHTTP(t *testing.T) {
	f, reg := authzFixture(t, serverWith(&policyv1.ProxyProtocol{Kind: &policyv1.ProxyProtocol_Http1{Http1: &policyv1.ProxyProtocol_Http1Options{}}}))
	c := f.dialEcho(t)
	fmt.Fprint(c, "\x00binary hello\n")
	if n, err := c.Read(make([]byte, 64)); err != io.EOF {
		t.Errorf("non-HTTP on a declared HTTP port: read %d bytes, %v; want it closed", n, err)
	}
	if got := counter(t, reg, "inbound_tcp_authz_allow_total", map[string]string{"srv_name": "declared"}); got != 0 {
		t.Errorf("tcp allow = %v, want 0 (never forwarded)", got)
	}
	f.toEcho.Store(false)
	plain := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(plain.CloseIdleConnections)
	if _, resp := get(t, plain, "http://"+f.proxy+"/", nil); resp.StatusCode != 200 {
		t.Errorf("HTTP on the declared HTTP port: %d, want 200", resp.StatusCode)
	}
}
