package tap_test

import (
	"net/http"
	"testing"

	"github.com/linkerd-go/linkerd-go/proxy/internal/layertest"
	"github.com/linkerd-go/linkerd-go/proxy/internal/tap"
)

// Until its feature lands the layer changes nothing.
func TestPassesThrough(t *testing.T) {
	layertest.CheckPassesThrough(t, func(next http.RoundTripper) http.RoundTripper { return tap.New(next) })
}
