package timeout_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/linkerd-go/linkerd-go/proxy/internal/layertest"
	"github.com/linkerd-go/linkerd-go/proxy/internal/timeout"
)

// Without a route timeout the request goes on as it is: same context, no
// deadline.
func TestNoTimeoutPassesThrough(t *testing.T) {
	next := &layertest.Next{}
	r, _ := layertest.Request("GET", "http://svc.test/", "")
	if _, err := timeout.New(next).RoundTrip(r); err != nil {
		t.Fatal(err)
	}
	got := next.Calls()[0]
	if got != r {
		t.Error("the request was copied")
	}
	if _, ok := got.Context().Deadline(); ok {
		t.Error("a deadline was set")
	}
}

// A route timeout that passes before the response makes the request fail
// with a deadline error (the server side answers 504 "timeout").
func TestTimeoutBeforeHeaders(t *testing.T) {
	next := &layertest.Next{Answer: func(r *http.Request) (*http.Response, error) {
		<-r.Context().Done() // an upstream that never answers
		return nil, r.Context().Err()
	}}
	r, ex := layertest.Request("GET", "http://svc.test/", "")
	ex.Route.Timeout = time.Millisecond
	_, err := timeout.New(next).RoundTrip(r)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v, want deadline exceeded", err)
	}
}

// The deadline covers the response body and ends when the body is closed.
func TestTimeoutCoversTheBody(t *testing.T) {
	var ctx context.Context
	next := &layertest.Next{Answer: func(r *http.Request) (*http.Response, error) {
		ctx = r.Context()
		return layertest.OK(r), nil
	}}
	r, ex := layertest.Request("GET", "http://svc.test/", "")
	ex.Route.Timeout = time.Hour
	resp, err := timeout.New(next).RoundTrip(r)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ctx.Deadline(); !ok {
		t.Fatal("no deadline beneath")
	}
	if b, _ := io.ReadAll(resp.Body); string(b) != "ok" || ctx.Err() != nil {
		t.Fatalf("body %q, context %v", b, ctx.Err())
	}
	resp.Body.Close()
	if ctx.Err() == nil {
		t.Error("the deadline's context lives on after the body closed")
	}
}

// A response that switched protocols keeps a writable body.
func TestTimeoutKeepsUpgradedBodiesWritable(t *testing.T) {
	next := &layertest.Next{Answer: func(r *http.Request) (*http.Response, error) {
		resp := layertest.Response(r, http.StatusSwitchingProtocols, "")
		resp.Body = rwc{}
		return resp, nil
	}}
	r, ex := layertest.Request("GET", "http://svc.test/", "")
	ex.Route.Timeout = time.Hour
	resp, err := timeout.New(next).RoundTrip(r)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := resp.Body.(io.ReadWriteCloser); !ok {
		t.Error("the upgraded body is no longer writable")
	}
}

type rwc struct{}

func (rwc) Read([]byte) (int, error)    { return 0, io.EOF }
func (rwc) Write(p []byte) (int, error) { return len(p), nil }
func (rwc) Close() error                { return nil }
