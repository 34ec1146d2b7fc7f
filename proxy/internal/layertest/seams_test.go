package layertest_test

import (
	"errors"
	"net/http"
	"testing"

	"github.com/linkerd-go/linkerd-go/proxy/internal/accrual"
	"github.com/linkerd-go/linkerd-go/proxy/internal/layertest"
	"github.com/linkerd-go/linkerd-go/proxy/internal/retry"
	"github.com/linkerd-go/linkerd-go/proxy/internal/tap"
)

// Until their features land, the seams hand every request on once, as it
// came, and return what came back: responses and errors alike.
func TestSeamsPassThrough(t *testing.T) {
	for name, layer := range map[string]func(http.RoundTripper) http.RoundTripper{
		"accrual": func(n http.RoundTripper) http.RoundTripper { return accrual.New(n) },
		"retry":   func(n http.RoundTripper) http.RoundTripper { return retry.New(n) },
		"tap":     func(n http.RoundTripper) http.RoundTripper { return tap.New(n) },
	} {
		t.Run(name, func(t *testing.T) {
			next := &layertest.Next{}
			l := layer(next)
			r, _ := layertest.Request("POST", "http://svc.test/a", "body")
			resp, err := l.RoundTrip(r)
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("got %v, %v", resp, err)
			}
			if calls := next.Calls(); len(calls) != 1 || calls[0] != r {
				t.Fatalf("next saw %d requests, want r once", len(calls))
			}
			boom := errors.New("boom")
			next.Answer = func(*http.Request) (*http.Response, error) { return nil, boom }
			if _, err := l.RoundTrip(r); !errors.Is(err, boom) {
				t.Errorf("error %v, want %v", err, boom)
			}
			if n := len(next.Calls()); n != 2 {
				t.Errorf("a failed request was sent %d times in all, want once more", n)
			}
		})
	}
}
