// Package app wires the proxy together: identity, discovery, the inbound
// and outbound sides and the admin server, run under one errgroup and shut
// down gracefully.
package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	policyv1 "github.com/linkerd-go/linkerd-go/api/linkerd/policy/v1"
	"github.com/linkerd-go/linkerd-go/component/admin"
	"github.com/linkerd-go/linkerd-go/component/identityclient"
	"github.com/linkerd-go/linkerd-go/proxy/internal/authz"
	"github.com/linkerd-go/linkerd-go/proxy/internal/config"
	"github.com/linkerd-go/linkerd-go/proxy/internal/discovery"
	"github.com/linkerd-go/linkerd-go/proxy/internal/forward"
	"github.com/linkerd-go/linkerd-go/proxy/internal/h2guard"
	"github.com/linkerd-go/linkerd-go/proxy/internal/identity"
	"github.com/linkerd-go/linkerd-go/proxy/internal/inbound"
	"github.com/linkerd-go/linkerd-go/proxy/internal/memtrim"
	"github.com/linkerd-go/linkerd-go/proxy/internal/meshtls"
	"github.com/linkerd-go/linkerd-go/proxy/internal/metrics"
	"github.com/linkerd-go/linkerd-go/proxy/internal/outbound"
	"github.com/linkerd-go/linkerd-go/proxy/internal/policy"
	"github.com/linkerd-go/linkerd-go/proxy/internal/selfaddr"
	"github.com/linkerd-go/linkerd-go/proxy/internal/trustbundle"
)

func sideLimits(l config.SideLimits) forward.Limits {
	return forward.Limits{MaxInFlight: l.MaxInFlight, MaxConnections: l.MaxConnections, HTTP2MaxConcurrentStreams: l.HTTP2MaxConcurrentStreams}
}

// Deps are what New needs from outside.
type Deps struct {
	Log logr.Logger
}

// App is a built proxy: its trust anchors parsed, serving nothing until
// Run.
type App struct {
	cfg   *config.Config
	log   logr.Logger
	store *meshtls.Store
}

// New checks what the configuration alone can tell: the trust anchors
// parse and the local identity is a valid name.
func New(cfg *config.Config, d Deps) (*App, error) {
	store, err := meshtls.NewStore(cfg.LocalName, cfg.TrustAnchorsPEM)
	if err != nil {
		return nil, fmt.Errorf("trust anchors: %w", err)
	}
	return &App{cfg: cfg, log: d.Log, store: store}, nil
}

// Run runs the proxy until ctx ends (SIGTERM) or POST /shutdown, then
// drains for the grace period.
func (a *App) Run(ctx context.Context) error {
	cfg, log, store := a.cfg, a.log, a.store
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	m := metrics.New()
	idConn, err := identityclient.Dial(cfg.IdentityAddr, cfg.IdentityName, store.Roots)
	if err != nil {
		return fmt.Errorf("identity service: %w", err)
	}
	defer idConn.Close()
	idClient, err := identity.New(identity.Config{TokenPath: cfg.TokenFile}, store, idConn, m.Registry, log.WithName("identity"))
	if err != nil {
		return err
	}
	// The destination service is a meshed workload: mesh TLS, with our
	// certificate, to exactly its identity.
	dstConn, err := discovery.Dial(cfg.DestinationAddr, store.ClientConfig(cfg.DestinationName, []string{"h2"}))
	if err != nil {
		return fmt.Errorf("destination service: %w", err)
	}
	defer dstConn.Close()
	disc := discovery.New(dstConn, cfg.DestinationContext, log.WithName("discovery"), m.Registry, discovery.Options{})
	defer disc.Close()

	// Inbound policy: the default of the environment, kept up to date per
	// port from the policy service when there is one.
	defaultPolicy, err := policy.Default(policy.DefaultName(cfg.DefaultInboundPolicy), cfg.ClusterNetworks)
	if err != nil {
		return err
	}
	var policies authz.Policies = authz.Fixed{Policy: defaultPolicy}
	var policyStore *policy.Store
	if cfg.PolicyAddr != "" {
		polConn, err := discovery.Dial(cfg.PolicyAddr, store.ClientConfig(cfg.PolicyName, []string{"h2"}))
		if err != nil {
			return fmt.Errorf("policy service: %w", err)
		}
		defer polConn.Close()
		policyStore = policy.NewStore(policy.Config{
			Namespace: cfg.PolicyNamespace, Pod: cfg.PolicyPod, Default: defaultPolicy, Ports: cfg.InboundPorts,
		}, policyv1.NewInboundPolicyServiceClient(polConn), m.Registry, log.WithName("policy"))
		policies = policyStore
	}
	az := authz.New(policies, m.Registry, log.WithName("authz"))

	inLimits, outLimits := sideLimits(cfg.Inbound).WithDefaults(), sideLimits(cfg.Outbound).WithDefaults()
	fitFileLimit(log, &inLimits, &outLimits)

	lns, err := listen(ctx, append([]string{cfg.InboundAddr, cfg.AdminAddr}, cfg.OutboundAddrs...))
	if err != nil {
		return err
	}
	inLn, adminLn, outLns := lns[0], lns[1], lns[2:]
	self, err := ownListeners(cfg.ControlAddr, lns...)
	if err != nil {
		for _, ln := range lns {
			ln.Close()
		}
		return err
	}
	in := inbound.New(inbound.Config{
		DetectTimeout: cfg.DetectTimeout, ConnectTimeout: cfg.InboundConnectTimeout, OpaquePorts: cfg.OpaquePorts,
		Limits: inLimits, Self: self, Authz: az,
		HTTP2: h2guard.Limits{RapidResets: h2guard.PerSecond(cfg.Inbound.HTTP2MaxRapidResetsPerSecond)},
	}, store, m, log.WithName("inbound"))
	out := outbound.New(outbound.Config{
		DetectTimeout: cfg.DetectTimeout, ConnectTimeout: cfg.OutboundConnectTimeout,
		DiscoveryTimeout: 3 * time.Second, IdleTimeout: time.Minute, OpaquePorts: cfg.OpaquePorts,
		Limits: outLimits, Self: self,
		HTTP2: h2guard.Limits{RapidResets: h2guard.PerSecond(cfg.Outbound.HTTP2MaxRapidResetsPerSecond)},
	}, store, func(target string) outbound.Watch { return disc.Endpoints(target) }, m, log.WithName("outbound"))

	adminCfg := admin.Config{Registry: m.Registry, Ready: store.HasCertificate, NotReady: "no certificate yet"}
	if cfg.ShutdownEndpoint {
		adminCfg.Shutdown = stop
	}
	log.Info("proxy starting", "identity", cfg.LocalName, "defaultInboundPolicy", cfg.DefaultInboundPolicy, "policyService", cfg.PolicyAddr, "inbound", cfg.InboundAddr, "outbound", cfg.OutboundAddrs, "admin", cfg.AdminAddr)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return idClient.Run(gctx) })
	if policyStore != nil {
		g.Go(func() error { return policyStore.Run(gctx) })
	}
	if cfg.TrustAnchorsFile != "" {
		bundle := trustbundle.New(trustbundle.Config{Path: cfg.TrustAnchorsFile}, store, m.Registry, log.WithName("trust-bundle"))
		g.Go(func() error { return bundle.Run(gctx) })
	}
	trim := &memtrim.Trimmer{Sides: []memtrim.Counts{in.Connections, out.Connections}, Log: log.WithName("memtrim")}
	g.Go(func() error { trim.Run(gctx); return nil })
	g.Go(func() error { return admin.Serve(gctx, adminLn, adminCfg, 0) })
	g.Go(func() error { return in.Serve(gctx, inLn, cfg.ShutdownGrace) })
	for _, ln := range outLns {
		g.Go(func() error { return out.Serve(gctx, ln, cfg.ShutdownGrace) })
	}
	err = g.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	log.Info("proxy stopped")
	return err
}

// listen opens a listener on each address, or none of them.
func listen(ctx context.Context, addrs []string) ([]net.Listener, error) {
	var lc net.ListenConfig
	var lns []net.Listener
	for _, a := range addrs {
		ln, err := lc.Listen(ctx, "tcp", a)
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return nil, err
		}
		lns = append(lns, ln)
	}
	return lns, nil
}

// fitFileLimit lowers the sides' connection limits when the process's file
// limit cannot hold them (see forward.FitFileLimit), and says so.
func fitFileLimit(log logr.Logger, in, out *forward.Limits) {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		log.Info("cannot read the file descriptor limit; connection limits kept", "err", err)
		return
	}
	if needed, lowered := forward.FitFileLimit(rl.Cur, in, out); lowered {
		log.Info("the file descriptor limit is below what the connection limits need; max connections lowered",
			"nofile", rl.Cur, "needed", needed, "inboundMaxConnections", in.MaxConnections, "outboundMaxConnections", out.MaxConnections)
	}
}

// ownListeners is the set of the proxy's listening addresses (and the
// reserved control address), which no connection may be forwarded to.
func ownListeners(controlAddr string, lns ...net.Listener) (*selfaddr.Set, error) {
	addrs := []netip.AddrPort{netip.MustParseAddrPort(controlAddr)}
	for _, ln := range lns {
		a, err := netip.ParseAddrPort(ln.Addr().String())
		if err != nil {
			return nil, fmt.Errorf("listener address %s: %w", ln.Addr(), err)
		}
		addrs = append(addrs, a)
	}
	return selfaddr.FromInterfaces(addrs)
}
