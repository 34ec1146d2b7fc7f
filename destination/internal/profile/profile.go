// Package profile reads ServiceProfile objects (linkerd.io/v1alpha2) and turns
// them into the profiles the destination API serves.
package profile

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	destinationv1 "github.com/linkerd-go/linkerd-go/api/linkerd/destination/v1"
)

// GVR is the ServiceProfile resource.
var GVR = schema.GroupVersionResource{Group: "linkerd.io", Version: "v1alpha2", Resource: "serviceprofiles"}

// Retry budget defaults, used when a ServiceProfile has no retryBudget.
const (
	DefaultRetryRatio          = 0.2
	DefaultMinRetriesPerSecond = 10
	DefaultRetryTTL            = 10 * time.Second
)

// maxConditionDepth bounds the nesting of all/any/not conditions.
const maxConditionDepth = 16

// Spec is the spec of a ServiceProfile.
type Spec struct {
	Routes       []Route       `json:"routes,omitempty"`
	RetryBudget  *RetryBudget  `json:"retryBudget,omitempty"`
	DstOverrides []DstOverride `json:"dstOverrides,omitempty"`
	OpaquePorts  []string      `json:"opaquePorts,omitempty"`
}

// Route is one route of a ServiceProfile.
type Route struct {
	Name            string          `json:"name"`
	Condition       *RequestMatch   `json:"condition,omitempty"`
	ResponseClasses []ResponseClass `json:"responseClasses,omitempty"`
	IsRetryable     bool            `json:"isRetryable,omitempty"`
	Timeout         string          `json:"timeout,omitempty"`
}

// RequestMatch is a request condition. Every field that is set must hold.
type RequestMatch struct {
	All       []*RequestMatch `json:"all,omitempty"`
	Any       []*RequestMatch `json:"any,omitempty"`
	Not       RequestNot      `json:"not,omitempty"`
	PathRegex string          `json:"pathRegex,omitempty"`
	Method    string          `json:"method,omitempty"`
}

// RequestNot is the operand of a request condition's "not": one condition,
// or a list of conditions none of which may hold (manifests written for the
// upstream schema use a list).
type RequestNot []*RequestMatch

// UnmarshalJSON accepts an object or an array of objects.
func (n *RequestNot) UnmarshalJSON(b []byte) error {
	var list []*RequestMatch
	if err := json.Unmarshal(b, &list); err == nil {
		*n = list
		return nil
	}
	var one RequestMatch
	if err := json.Unmarshal(b, &one); err != nil {
		return err
	}
	*n = RequestNot{&one}
	return nil
}

// ResponseClass classifies responses.
type ResponseClass struct {
	Condition *ResponseMatch `json:"condition,omitempty"`
	IsFailure bool           `json:"isFailure,omitempty"`
}

// ResponseMatch is a response condition. Every field that is set must hold.
type ResponseMatch struct {
	All    []*ResponseMatch `json:"all,omitempty"`
	Any    []*ResponseMatch `json:"any,omitempty"`
	Not    *ResponseMatch   `json:"not,omitempty"`
	Status *Range           `json:"status,omitempty"`
}

// Range is an inclusive range of status codes; 0 means unbounded on that side.
type Range struct {
	Min uint32 `json:"min,omitempty"`
	Max uint32 `json:"max,omitempty"`
}

// RetryBudget bounds retries.
type RetryBudget struct {
	RetryRatio          float32 `json:"retryRatio"`
	MinRetriesPerSecond uint32  `json:"minRetriesPerSecond"`
	TTL                 string  `json:"ttl"`
}

// DstOverride is one branch of a traffic split.
type DstOverride struct {
	Authority string            `json:"authority"`
	Weight    resource.Quantity `json:"weight"`
}

// FromUnstructured decodes the spec of a ServiceProfile object.
func FromUnstructured(u *unstructured.Unstructured) (*Spec, error) {
	raw, ok := u.Object["spec"].(map[string]any)
	if !ok {
		return &Spec{}, nil
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return nil, err
	}
	var s Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("ServiceProfile %s/%s: %w", u.GetNamespace(), u.GetName(), err)
	}
	return &s, nil
}

// DefaultRetryBudget returns the retry budget of a profile that sets none.
func DefaultRetryBudget() *destinationv1.RetryBudget {
	return &destinationv1.RetryBudget{
		RetryRatio:          DefaultRetryRatio,
		MinRetriesPerSecond: DefaultMinRetriesPerSecond,
		Ttl:                 durationpb.New(DefaultRetryTTL),
	}
}

// Default returns the profile of a target without a ServiceProfile.
func Default(fqdn string) *destinationv1.Profile {
	return &destinationv1.Profile{FullyQualifiedName: fqdn, RetryBudget: DefaultRetryBudget()}
}

// Translate returns the profile a ServiceProfile spec describes. Parts that
// cannot be served (a route with a bad regex or timeout, a bad retry budget)
// are left out and reported in problems; the rest is served.
func Translate(fqdn string, s *Spec) (p *destinationv1.Profile, problems []error) {
	p = Default(fqdn)
	for _, r := range s.Routes {
		route, err := translateRoute(r)
		if err != nil {
			problems = append(problems, fmt.Errorf("route %q left out: %w", r.Name, err))
			continue
		}
		p.Routes = append(p.Routes, route)
	}
	if b := s.RetryBudget; b != nil {
		if budget, err := retryBudget(b); err != nil {
			problems = append(problems, err)
		} else {
			p.RetryBudget = budget
		}
	}
	for _, d := range s.DstOverrides {
		w, err := overrideWeight(d)
		if err != nil {
			problems = append(problems, err)
			continue
		}
		p.DstOverrides = append(p.DstOverrides, &destinationv1.WeightedDestination{Authority: d.Authority, Weight: w})
	}
	return p, problems
}

// Servable returns a copy of s without the parts that cannot be served (a
// route with a bad regex or timeout, a bad retry budget, a dstOverride
// weight out of range), and the problems that left them out: Translate of
// the result reports none.
func Servable(s *Spec) (*Spec, []error) {
	out := &Spec{OpaquePorts: s.OpaquePorts}
	var problems []error
	for _, r := range s.Routes {
		if _, err := translateRoute(r); err != nil {
			problems = append(problems, fmt.Errorf("route %q left out: %w", r.Name, err))
			continue
		}
		out.Routes = append(out.Routes, r)
	}
	if b := s.RetryBudget; b != nil {
		if _, err := retryBudget(b); err != nil {
			problems = append(problems, err)
		} else {
			out.RetryBudget = b
		}
	}
	for _, d := range s.DstOverrides {
		if _, err := overrideWeight(d); err != nil {
			problems = append(problems, err)
			continue
		}
		out.DstOverrides = append(out.DstOverrides, d)
	}
	return out, problems
}

func retryBudget(b *RetryBudget) (*destinationv1.RetryBudget, error) {
	ttl, err := time.ParseDuration(b.TTL)
	switch {
	case err != nil:
		return nil, fmt.Errorf("retry budget: ttl %q: %w; using the default budget", b.TTL, err)
	case ttl <= 0 || b.RetryRatio < 0:
		return nil, errors.New("retry budget: ttl must be positive and retryRatio not negative; using the default budget")
	}
	return &destinationv1.RetryBudget{
		RetryRatio:          b.RetryRatio,
		MinRetriesPerSecond: b.MinRetriesPerSecond,
		Ttl:                 durationpb.New(ttl),
	}, nil
}

// overrideWeight is a dstOverride's weight in the API's units (a weight of
// 1 is 10,000).
func overrideWeight(d DstOverride) (uint32, error) {
	w := d.Weight.MilliValue()
	if w < 0 || w > 1<<31/10 {
		return 0, fmt.Errorf("dstOverride %q: weight %s out of range; left out", d.Authority, d.Weight.String())
	}
	return uint32(w * 10), nil
}

// OpaquePortNumbers returns the ports a ServiceProfile lists in
// opaquePorts. Items that are not port numbers are skipped.
func (s *Spec) OpaquePortNumbers() []uint16 {
	var out []uint16
	for _, p := range s.OpaquePorts {
		n, err := strconv.ParseUint(p, 10, 16)
		if err == nil && n > 0 {
			out = append(out, uint16(n))
		}
	}
	return out
}

func translateRoute(r Route) (*destinationv1.Route, error) {
	out := &destinationv1.Route{Name: r.Name, IsRetryable: r.IsRetryable}
	if r.Condition != nil {
		m, err := requestMatch(r.Condition, 0)
		if err != nil {
			return nil, err
		}
		out.Condition = m
	}
	for _, rc := range r.ResponseClasses {
		c := &destinationv1.ResponseClass{IsFailure: rc.IsFailure}
		if rc.Condition != nil {
			m, err := responseMatch(rc.Condition, 0)
			if err != nil {
				return nil, err
			}
			c.Condition = m
		}
		out.ResponseClasses = append(out.ResponseClasses, c)
	}
	if r.Timeout != "" {
		d, err := time.ParseDuration(r.Timeout)
		if err != nil {
			return nil, fmt.Errorf("timeout %q: %w", r.Timeout, err)
		}
		if d <= 0 {
			return nil, fmt.Errorf("timeout %q is not positive", r.Timeout)
		}
		out.Timeout = durationpb.New(d)
	}
	return out, nil
}

var errTooDeep = fmt.Errorf("conditions nested more than %d deep", maxConditionDepth)

func requestMatch(m *RequestMatch, depth int) (*destinationv1.RequestMatch, error) {
	if depth > maxConditionDepth {
		return nil, errTooDeep
	}
	var parts []*destinationv1.RequestMatch
	if m.Method != "" {
		parts = append(parts, &destinationv1.RequestMatch{Match: &destinationv1.RequestMatch_Method{Method: &destinationv1.MethodMatch{Method: m.Method}}})
	}
	if m.PathRegex != "" {
		if _, err := regexp.Compile(m.PathRegex); err != nil {
			return nil, fmt.Errorf("pathRegex %q: %w", m.PathRegex, err)
		}
		parts = append(parts, &destinationv1.RequestMatch{Match: &destinationv1.RequestMatch_Path{Path: &destinationv1.PathMatch{Regex: m.PathRegex}}})
	}
	list := func(ms []*RequestMatch) (*destinationv1.RequestMatch_List, error) {
		matches, err := translateAll(ms, depth+1, requestMatch)
		return &destinationv1.RequestMatch_List{Matches: matches}, err
	}
	if m.All != nil {
		l, err := list(m.All)
		if err != nil {
			return nil, err
		}
		parts = append(parts, &destinationv1.RequestMatch{Match: &destinationv1.RequestMatch_All{All: l}})
	}
	if m.Any != nil {
		l, err := list(m.Any)
		if err != nil {
			return nil, err
		}
		parts = append(parts, &destinationv1.RequestMatch{Match: &destinationv1.RequestMatch_Any{Any: l}})
	}
	if len(m.Not) > 0 {
		l, err := list(m.Not)
		if err != nil {
			return nil, err
		}
		inner := &destinationv1.RequestMatch{Match: &destinationv1.RequestMatch_Any{Any: l}}
		if len(l.Matches) == 1 {
			inner = l.Matches[0]
		}
		parts = append(parts, &destinationv1.RequestMatch{Match: &destinationv1.RequestMatch_Not{Not: inner}})
	}
	switch len(parts) {
	case 0:
		return &destinationv1.RequestMatch{}, nil
	case 1:
		return parts[0], nil
	}
	return &destinationv1.RequestMatch{Match: &destinationv1.RequestMatch_All{All: &destinationv1.RequestMatch_List{Matches: parts}}}, nil
}

// translateAll translates the non-nil conditions of a list.
func translateAll[S, T any](items []*S, depth int, f func(*S, int) (T, error)) ([]T, error) {
	var out []T
	for _, it := range items {
		if it == nil {
			continue
		}
		t, err := f(it, depth)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

func responseMatch(m *ResponseMatch, depth int) (*destinationv1.ResponseMatch, error) {
	if depth > maxConditionDepth {
		return nil, errTooDeep
	}
	var parts []*destinationv1.ResponseMatch
	if s := m.Status; s != nil {
		lo, hi := s.Min, s.Max
		if lo == 0 {
			lo = 100
		}
		if hi == 0 {
			hi = 599
		}
		if lo < 100 || hi > 599 || lo > hi {
			return nil, fmt.Errorf("status range %d-%d is not within 100-599 with min <= max", s.Min, s.Max)
		}
		parts = append(parts, &destinationv1.ResponseMatch{Match: &destinationv1.ResponseMatch_Status{Status: &destinationv1.HttpStatusRange{Min: lo, Max: hi}}})
	}
	list := func(ms []*ResponseMatch) (*destinationv1.ResponseMatch_List, error) {
		matches, err := translateAll(ms, depth+1, responseMatch)
		return &destinationv1.ResponseMatch_List{Matches: matches}, err
	}
	if m.All != nil {
		l, err := list(m.All)
		if err != nil {
			return nil, err
		}
		parts = append(parts, &destinationv1.ResponseMatch{Match: &destinationv1.ResponseMatch_All{All: l}})
	}
	if m.Any != nil {
		l, err := list(m.Any)
		if err != nil {
			return nil, err
		}
		parts = append(parts, &destinationv1.ResponseMatch{Match: &destinationv1.ResponseMatch_Any{Any: l}})
	}
	if m.Not != nil {
		inner, err := responseMatch(m.Not, depth+1)
		if err != nil {
			return nil, err
		}
		parts = append(parts, &destinationv1.ResponseMatch{Match: &destinationv1.ResponseMatch_Not{Not: inner}})
	}
	switch len(parts) {
	case 0:
		return &destinationv1.ResponseMatch{}, nil
	case 1:
		return parts[0], nil
	}
	return &destinationv1.ResponseMatch{Match: &destinationv1.ResponseMatch_All{All: &destinationv1.ResponseMatch_List{Matches: parts}}}, nil
}
