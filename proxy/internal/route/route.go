// Package route is the layer that selects a request's route: the rule of
// the target's routes (ServiceProfile, HTTPRoute, GRPCRoute) that the
// request matches, and what that rule says about it (timeout, retries,
// backends). The layers beneath read the choice from the exchange.
//
// No routes are matched yet: every request takes the configured default
// route, as every request did before routing.
package route

import (
	"net/http"

	"github.com/linkerd-go/linkerd-go/proxy/internal/stack"
)

// Config is what the layer routes by.
type Config struct {
	// Default is the route of a request that matches no rule.
	Default stack.Route
}

// Layer selects routes.
type Layer struct {
	cfg  Config
	next http.RoundTripper
}

// New returns the layer over next.
func New(cfg Config, next http.RoundTripper) *Layer { return &Layer{cfg: cfg, next: next} }

// RoundTrip records the request's route and passes it on.
func (l *Layer) RoundTrip(r *http.Request) (*http.Response, error) {
	stack.From(r).Route = l.cfg.Default
	return l.next.RoundTrip(r)
}
