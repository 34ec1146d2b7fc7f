package authz_test

import (
	"net/http"
	"testing"

	"github.com/linkerd-go/linkerd-go/proxy/internal/authz"
	"github.com/linkerd-go/linkerd-go/proxy/internal/layertest"
)

// Until its feature lands the layer changes nothing.
func TestPassesThrough(t *testing.T) {
	layertest.CheckPassesThrough(t, func(next http.RoundTripper) http.RoundTripper { return authz.New(next) })
}
