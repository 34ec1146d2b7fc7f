package outbound

import (
	"testing"

	"github.com/linkerd-go/linkerd-go/proxy/internal/discovery"
	"github.com/linkerd-go/linkerd-go/proxy/internal/h1test"
)

// malformedFixture is an outbound proxy in front of a recording
// application: a meshed endpoint behind its inbound proxy (mesh TLS and
// HTTP/2 between the proxies), or, unmeshed, a destination discovery does
// not know (plain HTTP/1 to its original address).
func malformedFixture(t *testing.T, meshed bool) (*fixture, *h1test.App) {
	t.Helper()
	app := h1test.StartApp(t)
	if !meshed {
		f := newFixture(t, discovery.Snapshot{State: discovery.DoesNotExist})
		f.service.Store(&app.Addr)
		return f, app
	}
	f := newFixture(t, discovery.Snapshot{})
	f.watch.set(discovery.Snapshot{State: discovery.Endpoints, Endpoints: []discovery.Endpoint{{
		Addr: startInbound(t, f.ca, serverID, app.Addr), Identity: serverID, HTTP2: true,
	}}})
	return f, app
}

// The application's malformed chunked bodies get the proxy's own 400 and a
// closed connection from the outbound side, counted as the client's
// error; nothing past the bad chunk goes to the destination.
func TestMalformedChunkedBodiesRefused(t *testing.T) {
	for _, meshed := range []bool{true, false} {
		f, app := malformedFixture(t, meshed)
		h1test.CheckMalformedBodies(t, f.proxy.String(), app)
		h1test.CheckClientErrors(t, f.m, "outbound", len(h1test.MalformedBodies))
	}
}

// Methods get the same answers as on the inbound side: valid methods the
// proxy does not know (get, M-SEARCH) are forwarded, through the mesh
// too; a method outside the token characters (G@T) gets the proxy's 400
// and a closed connection, not a connection closed without an answer.
func TestMethodsAnsweredByShape(t *testing.T) {
	for _, meshed := range []bool{true, false} {
		f, app := malformedFixture(t, meshed)
		refused := h1test.CheckMethods(t, f.proxy.String(), app)
		h1test.CheckClientErrors(t, f.m, "outbound", refused)
	}
}
