package forward

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"log"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"

	"github.com/linkerd-go/linkerd-go/proxy/internal/h2guard"
	"github.com/linkerd-go/linkerd-go/proxy/internal/metrics"
)

// ConnMeta is what the proxy learned about a connection before handing it
// to the HTTP server: handlers read it from the request's context.
type ConnMeta struct {
	// Dst is where the client meant to go (the original destination).
	Dst netip.AddrPort
	// TLS is true when the proxy terminated mesh TLS on this connection.
	TLS bool
	// PeerID is the client's mesh identity (inbound, TLS only).
	PeerID string
	// Client is the client's address (inbound), for authorization by
	// network.
	Client netip.Addr
	// Slot is the connection's place under the side's connection limit;
	// the HTTP server releases it when it is done with the connection.
	Slot *Slot
}

type metaKey struct{}

// WithMeta returns ctx carrying m, as the HTTPServer gives it to the
// requests of m's connection.
func WithMeta(ctx context.Context, m *ConnMeta) context.Context {
	return context.WithValue(ctx, metaKey{}, m)
}

// Meta returns the connection metadata of a request served by an
// HTTPServer.
func Meta(ctx context.Context) *ConnMeta {
	m, _ := ctx.Value(metaKey{}).(*ConnMeta)
	return m
}

// HTTPServer serves HTTP/1.x, HTTP/2 prior knowledge (h2c) and HTTP over
// terminated TLS (h2 or http/1.1 by ALPN) on connections the proxy has
// already accepted and classified, through one http.Server so that keep-
// alive, limits and graceful shutdown work as usual. Every HTTP/2
// connection is served under an h2guard: a client that floods it (rapid
// resets, SETTINGS, PING, WINDOW_UPDATE, empty frames, …) gets GOAWAY
// ENHANCE_YOUR_CALM and is closed.
type HTTPServer struct {
	srv   *http.Server
	ln    *connListener
	metas sync.Map // net.Conn → *ConnMeta
	log   logr.Logger
	h2    atomic.Pointer[http2Guard]
	h2log rateLog
}

// http2Guard is what GuardHTTP2 set.
type http2Guard struct {
	limits h2guard.Limits
	floods *metrics.HTTP2Floods
}

// HTTPServerLimits bound what one client can hold; the side's Limiter
// bounds what all of them hold together.
type HTTPServerLimits struct {
	ReadHeaderTimeout time.Duration
	IdleTimeout       time.Duration
	MaxHeaderBytes    int
}

// DefaultLimits suit a sidecar: headers must arrive within 10s, idle
// connections are closed after 90s, request headers are at most 64 KiB.
var DefaultLimits = HTTPServerLimits{ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 90 * time.Second, MaxHeaderBytes: 64 << 10}

// NewHTTPServer returns a server of handler. Serve it with Run. Requests
// past the limiter's MaxInFlight are answered 503 before handler sees them.
func NewHTTPServer(handler http.Handler, limits HTTPServerLimits, limiter *Limiter, logger logr.Logger) *HTTPServer {
	s := &HTTPServer{ln: newConnListener(), log: logger}
	s.h2.Store(&http2Guard{})
	if limiter == nil {
		limiter = NewLimiter(Limits{}, nil, logger)
	}
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetHTTP2(true)
	protocols.SetUnencryptedHTTP2(true)
	s.srv = &http.Server{
		Handler:           limitHandler{next: handler, l: limiter},
		Protocols:         &protocols,
		HTTP2:             &http.HTTP2Config{MaxConcurrentStreams: limiter.Limits().HTTP2MaxConcurrentStreams},
		ReadHeaderTimeout: limits.ReadHeaderTimeout,
		IdleTimeout:       limits.IdleTimeout,
		MaxHeaderBytes:    limits.MaxHeaderBytes,
		ErrorLog:          log.New(logWriter{logger}, "", 0),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			ctx = guardContext(ctx, c)
			if m, ok := s.metas.Load(c); ok {
				return WithMeta(ctx, m.(*ConnMeta))
			}
			return ctx
		},
		ConnState: func(c net.Conn, state http.ConnState) {
			if state == http.StateClosed || state == http.StateHijacked {
				if m, ok := s.metas.LoadAndDelete(c); ok {
					m.(*ConnMeta).Slot.Release()
				}
			}
		},
	}
	// A *tls.Conn that negotiated h2 is served as HTTP/2 through
	// TLSNextProto, which net/http sets up when TLSConfig is non-nil; the
	// handshake itself was done by the proxy.
	s.srv.TLSConfig = &tls.Config{NextProtos: []string{"h2", "http/1.1"}}
	return s
}

// GuardHTTP2 sets the limits of the server's HTTP/2 client connections
// (zero fields: h2guard.DefaultLimits) and the counters of the
// connections closed for exceeding them (nil: not counted). Until it is
// called the defaults apply, uncounted. It affects connections served
// after it.
func (s *HTTPServer) GuardHTTP2(l h2guard.Limits, floods *metrics.HTTP2Floods) {
	s.h2.Store(&http2Guard{limits: l.WithDefaults(), floods: floods})
}

// Run serves until Shutdown.
func (s *HTTPServer) Run() error {
	err := s.srv.Serve(s.ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Serve hands a connection to the server, which releases meta.Slot when
// it is done with it. It returns an error when the server is shutting
// down; the caller closes the connection then (and keeps the slot).
func (s *HTTPServer) Serve(c net.Conn, meta *ConnMeta) error {
	if speaksHTTP2(c) {
		c = s.guard(c)
	}
	s.metas.Store(c, meta)
	if err := s.ln.push(c); err != nil {
		s.metas.Delete(c)
		return err
	}
	if meta.Slot != nil {
		meta.Slot.kept.Store(true)
	}
	return nil
}

// speaksHTTP2 reports whether c is an HTTP/2 connection: mesh TLS that
// negotiated h2, or a connection whose detected first bytes are the
// HTTP/2 preface (h2c with prior knowledge).
func speaksHTTP2(c net.Conn) bool {
	switch c := c.(type) {
	case *tls.Conn:
		return c.ConnectionState().NegotiatedProtocol == "h2"
	case interface{ Peeked() []byte }:
		return bytes.HasPrefix(c.Peeked(), []byte(h2guard.Preface))
	}
	return false
}

// guard wraps an HTTP/2 connection in an h2guard.Conn. Wrapped, a
// *tls.Conn is served by net/http as HTTP/2 prior knowledge (Protocols
// allow unencrypted HTTP/2) instead of through TLSNextProto, so its
// requests have no r.TLS: the proxy's handlers read what they need of the
// TLS session (that it was mesh TLS, the peer's identity) from ConnMeta.
func (s *HTTPServer) guard(c net.Conn) net.Conn {
	g := s.h2.Load()
	client := c.RemoteAddr().String()
	return h2guard.Wrap(c, g.limits, func(r h2guard.Reason) {
		g.floods.Inc(string(r))
		s.h2log.note(s.log, "HTTP/2 client connection closed with GOAWAY ENHANCE_YOUR_CALM", "reason", string(r), "client", client)
	})
}

// Shutdown stops taking connections and waits for in-flight requests until
// ctx ends, then closes what is left.
func (s *HTTPServer) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if err != nil {
		s.srv.Close()
	}
	return err
}

// connListener is a net.Listener fed by the proxy's own accept loop.
type connListener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newConnListener() *connListener {
	return &connListener{conns: make(chan net.Conn), closed: make(chan struct{})}
}

var errListenerClosed = errors.New("HTTP server is shutting down")

func (l *connListener) push(c net.Conn) error {
	select {
	case l.conns <- c:
		return nil
	case <-l.closed:
		return errListenerClosed
	}
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *connListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *connListener) Addr() net.Addr { return &net.TCPAddr{} }

// logWriter sends net/http's internal error log (TLS handshake errors,
// malformed requests) to logr at debug verbosity: they are client faults.
type logWriter struct{ log logr.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	w.log.V(1).Info(string(trimNewline(p)), "source", "http")
	return len(p), nil
}

func trimNewline(p []byte) []byte {
	for len(p) > 0 && (p[len(p)-1] == '\n' || p[len(p)-1] == '\r') {
		p = p[:len(p)-1]
	}
	return p
}
