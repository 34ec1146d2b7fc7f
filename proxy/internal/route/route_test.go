package route_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/linkerd-go/linkerd-go/proxy/internal/layertest"
	"github.com/linkerd-go/linkerd-go/proxy/internal/route"
	"github.com/linkerd-go/linkerd-go/proxy/internal/stack"
)

// Every request takes the default route, and the layers beneath see it.
func TestDefaultRouteReachesTheLayersBeneath(t *testing.T) {
	def := stack.Route{Name: "default", Timeout: time.Second}
	var seen stack.Route
	next := &layertest.Next{Answer: func(r *http.Request) (*http.Response, error) {
		seen = stack.From(r).Route
		return layertest.OK(r), nil
	}}
	r, ex := layertest.Request("GET", "http://svc.test/", "")
	ex.Route = stack.Route{Name: "stale"}
	if _, err := route.New(route.Config{Default: def}, next).RoundTrip(r); err != nil {
		t.Fatal(err)
	}
	if seen != def || ex.Route != def {
		t.Errorf("route beneath %+v, in exchange %+v, want %+v", seen, ex.Route, def)
	}
}
