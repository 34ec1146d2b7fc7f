// Package layertest drives the proxy's request layers without sockets: a
// stub next layer that records what reached it and answers as told.
package layertest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"

	"github.com/linkerd-go/linkerd-go/proxy/internal/metrics"
	"github.com/linkerd-go/linkerd-go/proxy/internal/stack"
)

// Next is a stub next layer. Answer decides each call's outcome (nil: 200
// with body "ok").
type Next struct {
	Answer func(r *http.Request) (*http.Response, error)

	mu    sync.Mutex
	calls []*http.Request
}

// RoundTrip records r and answers.
func (n *Next) RoundTrip(r *http.Request) (*http.Response, error) {
	n.mu.Lock()
	n.calls = append(n.calls, r)
	n.mu.Unlock()
	if n.Answer != nil {
		return n.Answer(r)
	}
	return OK(r), nil
}

// Calls returns the requests that reached the stub, in order.
func (n *Next) Calls() []*http.Request {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]*http.Request(nil), n.calls...)
}

// OK is a 200 response to r with body "ok".
func OK(r *http.Request) *http.Response {
	return Response(r, http.StatusOK, "ok")
}

// Response is a response to r.
func Response(r *http.Request, status int, body string) *http.Response {
	return &http.Response{
		StatusCode: status, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{}, Body: io.NopCloser(strings.NewReader(body)),
		ContentLength: int64(len(body)), Request: r,
	}
}

// Request is a request with an exchange, as a stack's server side hands
// it down; body "" means none.
func Request(method, target, body string) (*http.Request, *stack.Exchange) {
	var r *http.Request
	if body == "" {
		r = httptest.NewRequest(method, target, nil)
	} else {
		r = httptest.NewRequest(method, target, strings.NewReader(body))
	}
	ex := stack.NewExchange(nil, metrics.Labels{})
	return stack.With(r, ex), ex
}
