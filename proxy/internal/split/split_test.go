package split_test

import (
	"errors"
	"testing"

	"github.com/linkerd-go/linkerd-go/proxy/internal/forward"
	"github.com/linkerd-go/linkerd-go/proxy/internal/layertest"
	"github.com/linkerd-go/linkerd-go/proxy/internal/split"
)

// One backend gets every request; none answers 503 "no endpoints".
func TestOneOrNoBackend(t *testing.T) {
	next := &layertest.Next{}
	backends := []split.Backend{{Weight: 1, Next: next}}
	l := split.New(func() []split.Backend { return backends })
	r, _ := layertest.Request("GET", "http://svc.test/", "")
	for range 3 {
		if _, err := l.RoundTrip(r); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(next.Calls()); n != 3 {
		t.Fatalf("backend got %d of 3", n)
	}
	backends = nil
	var fe *forward.FailureError
	if _, err := l.RoundTrip(r); !errors.As(err, &fe) || fe.Failure != forward.FailNoEndpoints {
		t.Errorf("no backend: %v, want the no-endpoints failure", err)
	}
	backends = []split.Backend{{Weight: 0, Next: next}}
	if _, err := l.RoundTrip(r); !errors.As(err, &fe) {
		t.Errorf("no weight: %v, want the no-endpoints failure", err)
	}
}

// Requests follow the weights; a zero weight gets none.
func TestWeights(t *testing.T) {
	a, b, z := &layertest.Next{}, &layertest.Next{}, &layertest.Next{}
	backends := []split.Backend{{Weight: 1, Next: a}, {Weight: 0, Next: z}, {Weight: 3, Next: b}}
	l := split.New(func() []split.Backend { return backends })
	r, _ := layertest.Request("GET", "http://svc.test/", "")
	const n = 4000
	for range n {
		if _, err := l.RoundTrip(r); err != nil {
			t.Fatal(err)
		}
	}
	na, nb := len(a.Calls()), len(b.Calls())
	if len(z.Calls()) != 0 || na+nb != n {
		t.Fatalf("a %d, b %d, zero-weight %d", na, nb, len(z.Calls()))
	}
	// 1:3 expected; a binomial share this far off (over 10 standard
	// deviations) does not happen by chance.
	if na < 700 || na > 1300 {
		t.Errorf("a got %d of %d, want about %d", na, n, n/4)
	}
}
