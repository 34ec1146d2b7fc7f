// Package endpoint is the bottom of the outbound stacks: the clients that
// reach one endpoint. A meshed endpoint is reached with mesh TLS (the
// server must present exactly the identity discovery promised), HTTP/1
// carried over HTTP/2 between the proxies when the peer takes it (marked
// l5d-orig-proto); any other endpoint in the application's own protocol, in
// plaintext. Connections are pooled per protocol and, for mesh TLS, per
// identity.
package endpoint

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	transportv1 "github.com/linkerd-go/linkerd-go/api/linkerd/transport/v1"
	"github.com/linkerd-go/linkerd-go/proxy/internal/discovery"
	"github.com/linkerd-go/linkerd-go/proxy/internal/forward"
	"github.com/linkerd-go/linkerd-go/proxy/internal/meshtls"
	"github.com/linkerd-go/linkerd-go/proxy/internal/metrics"
	"github.com/linkerd-go/linkerd-go/proxy/internal/stack"
)

// Config tunes the clients.
type Config struct {
	ConnectTimeout time.Duration
	// HandshakeTimeout bounds a mesh TLS handshake (after the connect).
	HandshakeTimeout time.Duration
	// Dial connects (nil: a TCP dialer with ConnectTimeout); tests
	// replace it to run without sockets.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Clients are the connection pools of one proxy side.
type Clients struct {
	cfg    Config
	store  *meshtls.Store
	dial   func(ctx context.Context, network, addr string) (net.Conn, error)
	plain1 *http.Transport // plaintext HTTP/1.x
	plain2 *http.Transport // plaintext HTTP/2 (h2c)
	mesh   sync.Map        // meshKey → *http.Transport
}

type meshKey struct {
	identity, serverName string
	h2                   bool
}

// NewClients returns the pools; mesh TLS takes its certificate and roots
// from store.
func NewClients(cfg Config, store *meshtls.Store) *Clients {
	c := &Clients{cfg: cfg, store: store}
	c.dial = cfg.Dial
	if c.dial == nil {
		d := &net.Dialer{Timeout: cfg.ConnectTimeout, KeepAlive: 30 * time.Second}
		c.dial = d.DialContext
	}
	c.plain1, c.plain2 = forward.PlainTransports(c.dial)
	return c
}

// Dial connects to addr in plaintext.
func (c *Clients) Dial(ctx context.Context, addr string) (net.Conn, error) {
	return c.dial(ctx, "tcp", addr)
}

// DialMeshTLS connects to addr and completes a mesh TLS handshake that
// succeeds only if the server presents identity.
func (c *Clients) DialMeshTLS(ctx context.Context, addr, identity, serverName, alpn string) (*tls.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.ConnectTimeout+c.cfg.HandshakeTimeout)
	defer cancel()
	conn, err := c.dial(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	cfg := c.store.ClientConfig(identity, []string{alpn})
	if serverName != "" {
		cfg.ServerName = serverName
	}
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		conn.Close()
		return nil, err
	}
	return tc, nil
}

// CloseIdle closes every pooled connection not in use.
func (c *Clients) CloseIdle() {
	c.plain1.CloseIdleConnections()
	c.plain2.CloseIdleConnections()
	c.mesh.Range(func(_, t any) bool { t.(*http.Transport).CloseIdleConnections(); return true })
}

// plain returns the plaintext pool of the request's protocol.
func (c *Clients) plain(r *http.Request) *http.Transport {
	if r.ProtoMajor == 2 {
		return c.plain2
	}
	return c.plain1
}

// meshTransport returns the pool of endpoints with one identity: mesh TLS
// with ALPN h2 (multiplexed) or http/1.1 (upgrades, and peers without the
// HTTP/2 hint).
func (c *Clients) meshTransport(k meshKey) *http.Transport {
	if t, ok := c.mesh.Load(k); ok {
		return t.(*http.Transport)
	}
	alpn := "http/1.1"
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	if k.h2 {
		alpn = "h2"
		protocols = http.Protocols{}
		protocols.SetHTTP2(true)
	}
	t := &http.Transport{
		Protocols:           &protocols,
		MaxIdleConnsPerHost: 100,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return c.DialMeshTLS(ctx, addr, k.identity, k.serverName, alpn)
		},
	}
	actual, _ := c.mesh.LoadOrStore(k, t)
	return actual.(*http.Transport)
}

// Connect is the bottom of the outbound opaque path: it opens the
// connection for opaque bytes to an endpoint, with mesh TLS when it is
// meshed (through its proxy's inbound port with the transport header when
// discovery gave one), in plaintext otherwise.
func (c *Clients) Connect(ctx context.Context, e discovery.Endpoint) (net.Conn, error) {
	if e.Identity == "" {
		return c.Dial(ctx, e.Addr.String())
	}
	if e.OpaqueInboundPort == 0 {
		return c.DialMeshTLS(ctx, e.Addr.String(), e.Identity, e.ServerName, "")
	}
	addr := netip.AddrPortFrom(e.Addr.Addr(), e.OpaqueInboundPort).String()
	tc, err := c.DialMeshTLS(ctx, addr, e.Identity, e.ServerName, transportv1.ALPN)
	if err != nil {
		return nil, err
	}
	if tc.ConnectionState().NegotiatedProtocol != transportv1.ALPN {
		tc.Close()
		return nil, errors.New("peer proxy does not speak the transport protocol")
	}
	if err := transportv1.WriteHeader(tc, &transportv1.TransportHeader{Port: uint32(e.Addr.Port())}); err != nil {
		tc.Close()
		return nil, err
	}
	return tc, nil
}

// SetLabels sets the labels of traffic to e: its address, its workload,
// and whether it is reached with mesh TLS (and as whom).
func SetLabels(l *metrics.Labels, e discovery.Endpoint) {
	l.TargetAddr, l.Dst = e.Addr.String(), metrics.DstFromMap(e.Labels)
	l.TLS, l.ServerID = "no_identity", ""
	if e.Identity != "" {
		l.TLS, l.ServerID = "true", e.Identity
	}
}

// Picked is the layer that sends a request to the endpoint the balancer
// picked (the exchange's Endpoint), and counts it under that endpoint's
// labels.
type Picked struct {
	c *Clients
}

// NewPicked returns the layer over the clients.
func NewPicked(c *Clients) *Picked { return &Picked{c: c} }

// RoundTrip sends the request to the picked endpoint.
func (p *Picked) RoundTrip(r *http.Request) (*http.Response, error) {
	ex := stack.From(r)
	if !ex.Picked {
		return nil, forward.Fail(forward.FailNoEndpoints)
	}
	e := &ex.Endpoint
	SetLabels(&ex.Labels, *e)
	r.URL.Scheme, r.URL.Host = "http", e.Addr.String()
	origProto := ""
	var t *http.Transport
	switch {
	case e.Identity == "":
		t = p.c.plain(r)
	case forward.IsUpgrade(r) || (r.ProtoMajor == 1 && !e.HTTP2):
		r.URL.Scheme = "https"
		t = p.c.meshTransport(meshKey{identity: e.Identity, serverName: e.ServerName})
	default:
		r.URL.Scheme = "https"
		t = p.c.meshTransport(meshKey{identity: e.Identity, serverName: e.ServerName, h2: true})
		if r.ProtoMajor == 1 {
			origProto = forward.OrigProto(r)
		}
	}
	if origProto != "" {
		r.Header[forward.OrigProtoKey] = []string{origProto}
	} else {
		delete(r.Header, forward.OrigProtoKey)
	}
	return t.RoundTrip(r)
}

// Original is the bottom of a target discovery does not know: the request
// goes to the address the application connected to, in its own protocol
// and in plaintext, counted under the target's labels.
type Original struct {
	c    *Clients
	addr string
}

// NewOriginal returns the client of addr.
func NewOriginal(c *Clients, addr netip.AddrPort) *Original {
	return &Original{c: c, addr: addr.String()}
}

// RoundTrip sends the request to the original address.
func (o *Original) RoundTrip(r *http.Request) (*http.Response, error) {
	r.URL.Scheme, r.URL.Host = "http", o.addr
	return o.c.plain(r).RoundTrip(r)
}
