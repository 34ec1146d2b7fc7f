// Package authz enforces the inbound policy (package policy): per
// connection for opaque and TLS traffic (a denied connection is closed),
// per request for HTTP (a request that matches no route gets 404, a denied
// one 403, gRPC calls the matching gRPC status, all with l5d-proxy-error).
// It counts each decision under Linkerd's metric names and logs denials at
// debug level; what the audit default lets through is logged at info, at
// most once per port every auditLogEvery.
package authz

import (
	"net/http"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/linkerd-go/linkerd-go/proxy/internal/forward"
	"github.com/linkerd-go/linkerd-go/proxy/internal/policy"
	"github.com/linkerd-go/linkerd-go/proxy/internal/stack"
)

// auditLogEvery bounds the audit log lines: one per port per interval,
// with the count of what was let through since the last.
const auditLogEvery = 10 * time.Second

// Policies gives the current policy of an inbound port: a policy.Store, or
// Fixed when there is no policy service.
type Policies interface {
	Port(port uint16) *policy.Port
}

// Fixed is the same policy for every port.
type Fixed struct{ Policy *policy.Port }

// Port returns the fixed policy.
func (f Fixed) Port(uint16) *policy.Port { return f.Policy }

// Authorizer decides connections and requests and counts the decisions.
type Authorizer struct {
	policies Policies
	log      logr.Logger

	httpAllow, httpDeny *prometheus.CounterVec
	tcpAllow, tcpDeny   *prometheus.CounterVec

	mu     sync.Mutex
	audits map[uint16]*auditLog
}

type auditLog struct {
	last       time.Time
	suppressed int
}

var (
	httpAllowLabels = []string{"target_addr", "srv_kind", "srv_name", "authz_kind", "authz_name", "route_kind", "route_name"}
	httpDenyLabels  = []string{"target_addr", "srv_kind", "srv_name", "route_kind", "route_name"}
	tcpAllowLabels  = []string{"target_addr", "srv_kind", "srv_name", "authz_kind", "authz_name"}
	tcpDenyLabels   = []string{"target_addr", "srv_kind", "srv_name"}
)

// New returns an Authorizer over policies, with its metrics on reg.
func New(policies Policies, reg prometheus.Registerer, log logr.Logger) *Authorizer {
	counter := func(name, help string, labels []string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
		reg.MustRegister(c)
		return c
	}
	return &Authorizer{
		policies:  policies,
		log:       log,
		audits:    map[uint16]*auditLog{},
		httpAllow: counter("inbound_http_authz_allow_total", "Inbound HTTP requests allowed by the port's policy.", httpAllowLabels),
		httpDeny:  counter("inbound_http_authz_deny_total", "Inbound HTTP requests denied by the port's policy (answered 403 or PERMISSION_DENIED).", httpDenyLabels),
		tcpAllow:  counter("inbound_tcp_authz_allow_total", "Inbound connections (opaque, TLS, or not HTTP) allowed by the port's policy.", tcpAllowLabels),
		tcpDeny:   counter("inbound_tcp_authz_deny_total", "Inbound connections (opaque, TLS, or not HTTP) denied by the port's policy and closed.", tcpDenyLabels),
	}
}

// Policy returns the current policy of port.
func (a *Authorizer) Policy(port uint16) *policy.Port { return a.policies.Port(port) }

// Connection decides a connection to target (the application's address and
// port) from c; a false answer means the caller closes it.
func (a *Authorizer) Connection(target string, port uint16, c policy.Client) bool {
	p := a.policies.Port(port)
	authz, ok := p.AllowConnection(c)
	if !ok {
		a.tcpDeny.WithLabelValues(target, p.Server.Kind, p.Server.Name).Inc()
		a.log.V(1).Info("connection denied", "target", target, "client", c.Addr.String(), "clientID", c.Identity, "server", p.Server.Name)
		return false
	}
	a.tcpAllow.WithLabelValues(target, p.Server.Kind, p.Server.Name, authz.Labels.Kind, authz.Labels.Name).Inc()
	if authz.Audit() {
		a.audit(port, "connection", target, c)
	}
	return true
}

// audit logs what the audit default let through, rate-limited per port.
func (a *Authorizer) audit(port uint16, what, target string, c policy.Client) {
	a.mu.Lock()
	l := a.audits[port]
	if l == nil {
		l = &auditLog{}
		a.audits[port] = l
	}
	now := time.Now()
	if now.Sub(l.last) < auditLogEvery {
		l.suppressed++
		a.mu.Unlock()
		return
	}
	suppressed := l.suppressed
	l.last, l.suppressed = now, 0
	a.mu.Unlock()
	a.log.Info("audit: allowed what a stricter policy would check", "what", what, "target", target, "client", c.Addr.String(), "clientID", c.Identity, "moreSinceLastLine", suppressed)
}

// Layer returns the request layer over next.
func (a *Authorizer) Layer(next http.RoundTripper) http.RoundTripper {
	return &layer{a: a, next: next}
}

type layer struct {
	a    *Authorizer
	next http.RoundTripper
}

// RoundTrip routes r on its port's policy, authorizes it, applies its
// rule's filters and passes it on.
func (l *layer) RoundTrip(r *http.Request) (*http.Response, error) {
	meta := forward.Meta(r.Context())
	if meta == nil {
		return nil, forward.Fail(forward.FailNoMeta)
	}
	port := meta.Dst.Port()
	p := l.a.policies.Port(port)
	target := meta.Dst.String()
	c := policy.Client{Addr: meta.Client, Identity: meta.PeerID}
	rt, rule, ok := p.Route(r)
	if !ok {
		l.a.httpDeny.WithLabelValues(target, p.Server.Kind, p.Server.Name, "", "").Inc()
		l.a.log.V(1).Info("no route for request", "target", target, "path", r.URL.Path, "client", c.Addr.String(), "clientID", c.Identity)
		return nil, forward.Fail(forward.FailNoRoute)
	}
	authz, ok := p.AllowRequest(rt, c)
	if !ok {
		l.a.httpDeny.WithLabelValues(target, p.Server.Kind, p.Server.Name, rt.Labels.Kind, rt.Labels.Name).Inc()
		l.a.log.V(1).Info("request denied", "target", target, "route", rt.Labels.Name, "client", c.Addr.String(), "clientID", c.Identity, "server", p.Server.Name)
		return nil, forward.Fail(forward.FailForbidden)
	}
	l.a.httpAllow.WithLabelValues(target, p.Server.Kind, p.Server.Name, authz.Labels.Kind, authz.Labels.Name, rt.Labels.Kind, rt.Labels.Name).Inc()
	if authz.Audit() {
		l.a.audit(port, "request", target, c)
	}
	for _, f := range rule.Filters {
		if f.Unknown {
			return nil, forward.Fail(forward.FailFilter)
		}
		f.Apply(r)
	}
	if rt.Labels.Kind != "default" {
		ex := stack.From(r)
		ex.Route.Name = rt.Labels.Name
	}
	return l.next.RoundTrip(r)
}
