// Package outbound is the proxy's client side (port 4140): the
// application's connections, redirected by proxy-init, arrive here with
// their original destination. Discovery says what that destination is;
// requests (HTTP) or connections (TCP) are balanced over its endpoints,
// with mesh TLS to meshed endpoints (the server must present exactly the
// identity discovery promised), HTTP/1 carried over HTTP/2 between proxies,
// and a fast 503 when a service has no endpoints. A destination discovery
// does not know is reached directly at its original address.
package outbound

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"

	"github.com/linkerd-go/linkerd-go/api/mesh"
	"github.com/linkerd-go/linkerd-go/proxy/internal/balance"
	"github.com/linkerd-go/linkerd-go/proxy/internal/discovery"
	"github.com/linkerd-go/linkerd-go/proxy/internal/endpoint"
	"github.com/linkerd-go/linkerd-go/proxy/internal/forward"
	"github.com/linkerd-go/linkerd-go/proxy/internal/h2guard"
	"github.com/linkerd-go/linkerd-go/proxy/internal/meshtls"
	"github.com/linkerd-go/linkerd-go/proxy/internal/metrics"
	"github.com/linkerd-go/linkerd-go/proxy/internal/origdst"
	"github.com/linkerd-go/linkerd-go/proxy/internal/selfaddr"
	"github.com/linkerd-go/linkerd-go/proxy/internal/split"
)

// Watch is a discovery watch of one target (*discovery.Watch).
type Watch interface {
	Snapshot() discovery.Snapshot
	Changed() <-chan struct{}
	Release()
}

// Resolver opens a watch on a target ("ip:port").
type Resolver func(target string) Watch

// Config tunes the outbound side.
type Config struct {
	DetectTimeout  time.Duration
	ConnectTimeout time.Duration
	// DiscoveryTimeout bounds the wait for discovery's first answer about a
	// target; past it the target is treated as unknown (original address).
	DiscoveryTimeout time.Duration
	// IdleTimeout is how long an unused target's state is kept.
	IdleTimeout time.Duration
	// OpaquePorts skip protocol detection.
	OpaquePorts []mesh.PortRange
	// Limits bound the side's work; zero fields take their defaults.
	Limits forward.Limits
	// OrigDst recovers a connection's original destination; tests replace
	// it to run without nftables.
	OrigDst func(net.Conn) (netip.AddrPort, error)
	// Self holds the proxy's own listeners: a connection is never
	// forwarded to one of them (nil: no check).
	Self *selfaddr.Set
	// HTTP2 bounds what one HTTP/2 client connection may flood; zero
	// fields take h2guard's defaults.
	HTTP2 h2guard.Limits
}

// Proxy is the outbound side.
type Proxy struct {
	cfg     Config
	resolve Resolver
	m       *metrics.Metrics
	log     logr.Logger

	http    *forward.HTTPServer
	clients *endpoint.Clients

	mu    sync.RWMutex // read-locked on every request, write-locked to add or evict
	dests map[netip.AddrPort]*dest

	conns   forward.Conns
	limiter *forward.Limiter
}

// New returns the outbound side.
func New(cfg Config, store *meshtls.Store, resolve Resolver, m *metrics.Metrics, log logr.Logger) *Proxy {
	if cfg.OrigDst == nil {
		cfg.OrigDst = origdst.Get
	}
	p := &Proxy{cfg: cfg, resolve: resolve, m: m, log: log, dests: map[netip.AddrPort]*dest{}}
	p.clients = endpoint.NewClients(endpoint.Config{ConnectTimeout: cfg.ConnectTimeout, HandshakeTimeout: cfg.DetectTimeout}, store)
	p.limiter = forward.NewLimiter(cfg.Limits.WithDefaults(), m.Load("outbound"), log)
	p.http = forward.NewHTTPServer(http.HandlerFunc(p.serveHTTP), forward.DefaultLimits, p.limiter, log)
	p.http.GuardHTTP2(cfg.HTTP2, m.HTTP2Floods("outbound"))
	return p
}

// Connections returns the side's accepted connections open now and the
// most open at once since the last call.
func (p *Proxy) Connections() (open, peak int) { return p.limiter.Connections() }

// Serve accepts on ln until ctx ends, then shuts down within grace.
func (p *Proxy) Serve(ctx context.Context, ln net.Listener, grace time.Duration) error {
	janitorCtx, stopJanitor := context.WithCancel(ctx)
	janitorDone := make(chan struct{})
	go func() { defer close(janitorDone); p.janitor(janitorCtx) }()
	err := forward.Serve(ctx, ln, grace, p.http, &p.conns, p.limiter, p.handle)
	stopJanitor()
	<-janitorDone
	p.mu.Lock()
	for k, d := range p.dests {
		d.watch.Release()
		d.bal.Close()
		delete(p.dests, k)
	}
	p.mu.Unlock()
	p.clients.CloseIdle()
	return err
}

// dest is the outbound state of one original destination: its discovery
// watch and its balancer, shared by every connection to it.
type dest struct {
	addr     netip.AddrPort
	watch    Watch
	bal      *balance.Balancer[discovery.Endpoint]
	inUse    atomic.Int64
	lastUsed atomic.Int64 // unix nanoseconds

	// requests is the server side of the target's request stack (see
	// stack.go); backends are its backends for each discovery state.
	requests           *httputil.ReverseProxy
	balanced, original []split.Backend
	tcp                *balance.TCP // the balancer of opaque connections
	state              atomic.Int32 // discovery.State of snap

	mu      sync.Mutex
	changed <-chan struct{}
	snap    discovery.Snapshot
}

func (p *Proxy) dest(dst netip.AddrPort) *dest {
	// The common case, a known destination, takes only the read lock. The
	// janitor evicts under the write lock and spares anything used since
	// its last pass, so a destination returned here stays valid.
	p.mu.RLock()
	d := p.dests[dst]
	if d != nil {
		d.lastUsed.Store(time.Now().UnixNano())
	}
	p.mu.RUnlock()
	if d != nil {
		return d
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if d = p.dests[dst]; d == nil {
		d = p.newDest(dst)
		d.refreshLocked()
		p.dests[dst] = d
	}
	d.lastUsed.Store(time.Now().UnixNano())
	return d
}

// refreshLocked reads the watch's snapshot into the balancer; the change
// channel is taken first so no update can slip between the two.
func (d *dest) refreshLocked() {
	d.changed = d.watch.Changed()
	d.snap = d.watch.Snapshot()
	d.state.Store(int32(d.snap.State))
	targets := make([]balance.Target[discovery.Endpoint], 0, len(d.snap.Endpoints))
	for _, ep := range d.snap.Endpoints {
		targets = append(targets, balance.Target[discovery.Endpoint]{Addr: ep.Addr, Weight: ep.Weight, Value: ep})
	}
	d.bal.Update(targets)
}

// current returns the latest snapshot, waiting up to timeout for
// discovery's first answer.
func (d *dest) current(ctx context.Context, timeout time.Duration) discovery.Snapshot {
	d.mu.Lock()
	select {
	case <-d.changed:
		d.refreshLocked()
	default:
	}
	snap, changed := d.snap, d.changed
	d.mu.Unlock()
	if snap.State != discovery.Pending {
		return snap
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	for snap.State == discovery.Pending {
		select {
		case <-changed:
			d.mu.Lock()
			select {
			case <-d.changed:
				d.refreshLocked()
			default:
			}
			snap, changed = d.snap, d.changed
			d.mu.Unlock()
		case <-t.C:
			return snap
		case <-ctx.Done():
			return snap
		}
	}
	return snap
}

// janitor releases the watches of destinations unused for IdleTimeout.
func (p *Proxy) janitor(ctx context.Context) {
	t := time.NewTicker(p.cfg.IdleTimeout / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			p.mu.Lock()
			for k, d := range p.dests {
				if d.inUse.Load() == 0 && now.Sub(time.Unix(0, d.lastUsed.Load())) > p.cfg.IdleTimeout {
					d.watch.Release()
					d.bal.Close()
					delete(p.dests, k)
				}
			}
			p.mu.Unlock()
		}
	}
}

// maxConnectAttempts bounds the endpoints one request or connection tries
// when connects fail.
const maxConnectAttempts = 3

// probe tells whether an endpoint ejected for failed connects can be
// connected to again.
func (p *Proxy) probe(ctx context.Context, e *balance.Endpoint[discovery.Endpoint]) error {
	c, err := p.clients.Dial(ctx, e.Addr.String())
	if err != nil {
		return err
	}
	return c.Close()
}

// forwardTCP balances one connection over the destination's endpoints.
func (p *Proxy) forwardTCP(c net.Conn, d *dest) {
	defer p.conns.Track(c)()
	snap := d.current(context.Background(), p.cfg.DiscoveryTimeout)
	var (
		up      net.Conn
		err     error
		release = func() {}
		labels  = metrics.Labels{Direction: "outbound", TargetAddr: d.addr.String(), TLS: "no_identity", Dst: metrics.DstFromMap(snap.Labels)}
	)
	switch snap.State {
	case discovery.NoEndpoints:
		c.Close()
		return
	case discovery.Endpoints:
		var e discovery.Endpoint
		up, e, release, err = d.tcp.Connect(context.Background())
		if errors.Is(err, balance.ErrNoEndpoints) {
			c.Close()
			return
		}
		endpoint.SetLabels(&labels, e)
	default:
		up, err = p.clients.Dial(context.Background(), d.addr.String())
	}
	defer release()
	h := p.m.For(labels)
	h.TCPOpen.Inc()
	h.TCPConns.Inc()
	if err != nil {
		p.log.V(1).Info("connect failed", "target", labels.TargetAddr, "err", err)
		c.Close()
		h.TCPClosed(forward.Errno(err))
		return
	}
	defer p.conns.Track(up)()
	err = forward.TCP(c, up, h)
	h.TCPClosed(forward.Errno(err))
}
