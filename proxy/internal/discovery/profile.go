package discovery

import (
	"errors"
	"fmt"
	"math"
	"net"
	"regexp"
	"strconv"
	"time"

	destinationv1 "github.com/linkerd-go/linkerd-go/api/linkerd/destination/v1"
)

// Profile is what the data path needs to route requests to a target: its
// routes, retry budget, traffic split and protocol. It is immutable and
// shared.
type Profile struct {
	// FullyQualifiedName is the Service's name ("web.ns.svc.cluster.local"),
	// empty when the target is not a Service.
	FullyQualifiedName string
	// Opaque is true when the target port carries opaque TCP: no protocol
	// detection, no routes.
	Opaque bool
	// Routes in order; Route picks the first that matches.
	Routes []*Route
	// RetryBudget bounds the retries of the target's retryable routes.
	RetryBudget RetryBudget
	// DstOverrides is the traffic split: when not empty, requests go to these
	// authorities in proportion to their weights (all weights are > 0).
	DstOverrides []WeightedAuthority
	// Endpoint is set when the target is one pod: its identity and protocol
	// without a Get stream.
	Endpoint *Endpoint
}

// Route returns the first route that matches the request, or nil.
func (p *Profile) Route(method, path string) *Route {
	if p == nil {
		return nil
	}
	for _, r := range p.Routes {
		if r.Matches(method, path) {
			return r
		}
	}
	return nil
}

// Route is a class of requests with its own timeout, retries, response
// classification and metrics.
type Route struct {
	// Name is the "route" metric label.
	Name string
	// ResponseClasses in order; see IsFailure.
	ResponseClasses []ResponseClass
	// Retryable: failed requests may be retried within the retry budget.
	Retryable bool
	// Timeout bounds a request with its retries; 0 means none.
	Timeout time.Duration

	match requestMatcher
}

// Matches reports whether the request belongs to the route.
func (r *Route) Matches(method, path string) bool {
	return r.match != nil && r.match.matches(method, path)
}

// IsFailure classifies a response status: the first class whose condition
// matches decides; a status no class matches is a failure if it is a 5xx.
func (r *Route) IsFailure(status int) bool {
	if r != nil {
		for _, c := range r.ResponseClasses {
			if c.match.matches(status) {
				return c.IsFailure
			}
		}
	}
	return status >= 500 && status <= 599
}

// ResponseClass classifies the responses that match its condition.
type ResponseClass struct {
	IsFailure bool

	match responseMatcher
}

// Matches reports whether the status belongs to the class.
func (c ResponseClass) Matches(status int) bool { return c.match != nil && c.match.matches(status) }

// RetryBudget bounds retries: at most RetryRatio of the original requests plus
// MinRetriesPerSecond, counted over TTL.
type RetryBudget struct {
	RetryRatio          float64
	MinRetriesPerSecond uint32
	TTL                 time.Duration
}

// DefaultRetryBudget is used when the profile carries none or an invalid one.
var DefaultRetryBudget = RetryBudget{RetryRatio: 0.2, MinRetriesPerSecond: 10, TTL: 10 * time.Second}

// WeightedAuthority is one branch of a traffic split.
type WeightedAuthority struct {
	Authority string // "host:port"
	Weight    uint32
}

// Bounds on a profile, so that a message cannot make matching expensive.
const (
	maxRoutes         = 1024
	maxMatchDepth     = 16
	maxMatchNodes     = 256 // per route condition
	maxResponseNodes  = 256 // per route's response classes
	maxRegexLength    = 2048
	maxDstOverrides   = 256
	maxAuthority      = 253 + 1 + 5
	maxMethodLength   = 64
	maxRetryRatio     = 1000
	maxRetryBudgetTTL = time.Hour
)

// regexCache holds compiled path regexes by source, so that an update of a
// profile compiles only the regexes it adds.
type regexCache map[string]*regexp.Regexp

// profileFromProto converts a wire profile. Invalid routes, response classes
// and split branches are dropped and returned as problems; the rest applies.
// cache (may be nil) supplies regexes compiled for an earlier version; the
// regexes of the result are returned in next.
func profileFromProto(m *destinationv1.Profile, cache regexCache) (p *Profile, next regexCache, problems []error) {
	next = regexCache{}
	c := &compiler{prev: cache, next: next}
	p = &Profile{
		FullyQualifiedName: m.GetFullyQualifiedName(),
		Opaque:             m.GetOpaqueProtocol(),
		RetryBudget:        DefaultRetryBudget,
	}
	routes := m.GetRoutes()
	if len(routes) > maxRoutes {
		problems = append(problems, fmt.Errorf("%d routes, more than %d: the rest are dropped", len(routes), maxRoutes))
		routes = routes[:maxRoutes]
	}
	for i, pr := range routes {
		r, err := c.route(pr)
		if err != nil {
			problems = append(problems, fmt.Errorf("route %d %q: %w", i, pr.GetName(), err))
			continue
		}
		if r != nil {
			p.Routes = append(p.Routes, r)
		}
		problems = append(problems, c.drain()...)
	}
	if b := m.GetRetryBudget(); b != nil {
		rb, err := retryBudgetFromProto(b)
		if err != nil {
			problems = append(problems, err)
		} else {
			p.RetryBudget = rb
		}
	}
	p.DstOverrides, problems = dstOverridesFromProto(m.GetDstOverrides(), problems)
	if e := m.GetEndpoint(); e != nil {
		ep, err := endpointFromProto(e, nil)
		if err != nil {
			problems = append(problems, fmt.Errorf("profile endpoint: %w", err))
		} else {
			p.Endpoint = &ep
		}
	}
	return p, next, problems
}

func retryBudgetFromProto(b *destinationv1.RetryBudget) (RetryBudget, error) {
	rb := RetryBudget{RetryRatio: float64(b.GetRetryRatio()), MinRetriesPerSecond: b.GetMinRetriesPerSecond()}
	if math.IsNaN(rb.RetryRatio) || rb.RetryRatio < 0 || rb.RetryRatio > maxRetryRatio {
		return RetryBudget{}, fmt.Errorf("retry budget: ratio %v out of range 0-%d", rb.RetryRatio, maxRetryRatio)
	}
	ttl := b.GetTtl()
	if ttl == nil {
		rb.TTL = DefaultRetryBudget.TTL
		return rb, nil
	}
	if err := ttl.CheckValid(); err != nil {
		return RetryBudget{}, fmt.Errorf("retry budget ttl: %w", err)
	}
	rb.TTL = ttl.AsDuration()
	if rb.TTL <= 0 || rb.TTL > maxRetryBudgetTTL {
		return RetryBudget{}, fmt.Errorf("retry budget: ttl %v out of range (0, %v]", rb.TTL, maxRetryBudgetTTL)
	}
	return rb, nil
}

func dstOverridesFromProto(ws []*destinationv1.WeightedDestination, problems []error) ([]WeightedAuthority, []error) {
	if len(ws) > maxDstOverrides {
		problems = append(problems, fmt.Errorf("%d traffic split branches, more than %d: the split is ignored", len(ws), maxDstOverrides))
		return nil, problems
	}
	var out []WeightedAuthority
	for _, w := range ws {
		if err := validAuthority(w.GetAuthority()); err != nil {
			problems = append(problems, fmt.Errorf("traffic split: %w", err))
			continue
		}
		if w.GetWeight() == 0 {
			continue
		}
		out = append(out, WeightedAuthority{Authority: w.GetAuthority(), Weight: w.GetWeight()})
	}
	return out, problems
}

// ErrInvalidTarget is wrapped by the errors validAuthority returns.
var ErrInvalidTarget = errors.New("invalid target")

// validAuthority checks that s is a bounded "host:port" with a port of 1 to
// 65535.
func validAuthority(s string) error {
	if len(s) > maxAuthority {
		return fmt.Errorf("%w: %d bytes", ErrInvalidTarget, len(s))
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%w: %q: %v", ErrInvalidTarget, s, err)
	}
	if host == "" {
		return fmt.Errorf("%w: %q: no host", ErrInvalidTarget, s)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return fmt.Errorf("%w: %q: port is not 1-65535", ErrInvalidTarget, s)
	}
	return nil
}

// compiler builds matchers, sharing compiled regexes and counting nodes.
type compiler struct {
	prev, next regexCache
	nodes      int
	problems   []error
}

func (c *compiler) drain() []error {
	p := c.problems
	c.problems = nil
	return p
}

// route converts one route. A route whose condition does not compile is an
// error: the caller drops the route. A route without a condition matches
// nothing and is dropped too (nil, nil).
func (c *compiler) route(r *destinationv1.Route) (*Route, error) {
	out := &Route{Name: r.GetName(), Retryable: r.GetIsRetryable()}
	if t := r.GetTimeout(); t != nil {
		if err := t.CheckValid(); err != nil {
			return nil, fmt.Errorf("timeout: %w", err)
		}
		if out.Timeout = t.AsDuration(); out.Timeout < 0 {
			return nil, fmt.Errorf("timeout %v is negative", out.Timeout)
		}
	}
	if r.GetCondition() == nil {
		return nil, nil
	}
	c.nodes = 0
	m, err := c.request(r.GetCondition(), 0)
	if err != nil {
		return nil, err
	}
	out.match = m
	c.nodes = 0
	for i, rc := range r.GetResponseClasses() {
		m, err := c.response(rc.GetCondition(), 0)
		if err != nil {
			// A class dropped changes only how some responses are
			// classified; the route stays.
			c.problems = append(c.problems, fmt.Errorf("route %q: response class %d: %w", r.GetName(), i, err))
			continue
		}
		out.ResponseClasses = append(out.ResponseClasses, ResponseClass{IsFailure: rc.GetIsFailure(), match: m})
	}
	return out, nil
}

var (
	errTooDeep     = fmt.Errorf("condition nested deeper than %d", maxMatchDepth)
	errTooLarge    = fmt.Errorf("condition of more than %d parts", maxMatchNodes)
	errEmptyMatch  = errors.New("empty condition")
	errRegexLength = fmt.Errorf("path regex longer than %d bytes", maxRegexLength)
)

func (c *compiler) count(depth int) error {
	if depth > maxMatchDepth {
		return errTooDeep
	}
	if c.nodes++; c.nodes > maxMatchNodes {
		return errTooLarge
	}
	return nil
}

func (c *compiler) request(m *destinationv1.RequestMatch, depth int) (requestMatcher, error) {
	if err := c.count(depth); err != nil {
		return nil, err
	}
	switch v := m.GetMatch().(type) {
	case *destinationv1.RequestMatch_All:
		ms, err := c.requestList(v.All.GetMatches(), depth)
		return allRequest(ms), err
	case *destinationv1.RequestMatch_Any:
		ms, err := c.requestList(v.Any.GetMatches(), depth)
		return anyRequest(ms), err
	case *destinationv1.RequestMatch_Not:
		inner, err := c.request(v.Not, depth+1)
		if err != nil {
			return nil, err
		}
		return notRequest{inner}, nil
	case *destinationv1.RequestMatch_Path:
		re, err := c.regex(v.Path.GetRegex())
		if err != nil {
			return nil, err
		}
		return pathMatch{re}, nil
	case *destinationv1.RequestMatch_Method:
		meth := v.Method.GetMethod()
		if meth == "" || len(meth) > maxMethodLength {
			return nil, fmt.Errorf("method %q: empty or longer than %d bytes", meth, maxMethodLength)
		}
		return methodMatch(meth), nil
	default:
		// Documented to match nothing; kept so that "not" of it works.
		return anyRequest(nil), nil
	}
}

func (c *compiler) requestList(ms []*destinationv1.RequestMatch, depth int) ([]requestMatcher, error) {
	out := make([]requestMatcher, 0, len(ms))
	for _, m := range ms {
		x, err := c.request(m, depth+1)
		if err != nil {
			return nil, err
		}
		out = append(out, x)
	}
	return out, nil
}

// regex compiles a path regex that must match the whole path. The source is
// compiled alone first, so that a source that is not a complete expression
// (")(") cannot escape the anchoring group.
func (c *compiler) regex(src string) (*regexp.Regexp, error) {
	if re, ok := c.next[src]; ok {
		return re, nil
	}
	if re, ok := c.prev[src]; ok {
		c.next[src] = re
		return re, nil
	}
	if len(src) > maxRegexLength {
		return nil, errRegexLength
	}
	if _, err := regexp.Compile(src); err != nil {
		return nil, fmt.Errorf("path regex %q: %w", src, err)
	}
	re, err := regexp.Compile(`^(?:` + src + `)$`)
	if err != nil {
		return nil, fmt.Errorf("path regex %q: %w", src, err)
	}
	c.next[src] = re
	return re, nil
}

func (c *compiler) response(m *destinationv1.ResponseMatch, depth int) (responseMatcher, error) {
	if m == nil {
		return nil, errEmptyMatch
	}
	if err := c.count(depth); err != nil {
		return nil, err
	}
	switch v := m.GetMatch().(type) {
	case *destinationv1.ResponseMatch_All:
		ms, err := c.responseList(v.All.GetMatches(), depth)
		return allResponse(ms), err
	case *destinationv1.ResponseMatch_Any:
		ms, err := c.responseList(v.Any.GetMatches(), depth)
		return anyResponse(ms), err
	case *destinationv1.ResponseMatch_Not:
		inner, err := c.response(v.Not, depth+1)
		if err != nil {
			return nil, err
		}
		return notResponse{inner}, nil
	case *destinationv1.ResponseMatch_Status:
		lo, hi := v.Status.GetMin(), v.Status.GetMax()
		if lo < 100 || hi > 599 || lo > hi {
			return nil, fmt.Errorf("status range %d-%d outside 100-599 or reversed", lo, hi)
		}
		return statusRange{int(lo), int(hi)}, nil
	default:
		return anyResponse(nil), nil
	}
}

func (c *compiler) responseList(ms []*destinationv1.ResponseMatch, depth int) ([]responseMatcher, error) {
	out := make([]responseMatcher, 0, len(ms))
	for _, m := range ms {
		x, err := c.response(m, depth+1)
		if err != nil {
			return nil, err
		}
		out = append(out, x)
	}
	return out, nil
}

// Compiled matchers.

type requestMatcher interface {
	matches(method, path string) bool
}

type (
	allRequest  []requestMatcher
	anyRequest  []requestMatcher
	notRequest  struct{ m requestMatcher }
	pathMatch   struct{ re *regexp.Regexp }
	methodMatch string
)

func (a allRequest) matches(method, path string) bool {
	for _, m := range a {
		if !m.matches(method, path) {
			return false
		}
	}
	return true
}

func (a anyRequest) matches(method, path string) bool {
	for _, m := range a {
		if m.matches(method, path) {
			return true
		}
	}
	return false
}

func (n notRequest) matches(method, path string) bool { return !n.m.matches(method, path) }
func (p pathMatch) matches(_, path string) bool       { return p.re.MatchString(path) }
func (m methodMatch) matches(method, _ string) bool   { return string(m) == method }

type responseMatcher interface {
	matches(status int) bool
}

type (
	allResponse []responseMatcher
	anyResponse []responseMatcher
	notResponse struct{ m responseMatcher }
	statusRange struct{ lo, hi int }
)

func (a allResponse) matches(status int) bool {
	for _, m := range a {
		if !m.matches(status) {
			return false
		}
	}
	return true
}

func (a anyResponse) matches(status int) bool {
	for _, m := range a {
		if m.matches(status) {
			return true
		}
	}
	return false
}

func (n notResponse) matches(status int) bool { return !n.m.matches(status) }
func (r statusRange) matches(status int) bool { return r.lo <= status && status <= r.hi }
