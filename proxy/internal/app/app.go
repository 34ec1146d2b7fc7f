// Package app wires the proxy together: identity, discovery, the inbound
// and outbound sides and the admin server, run under one errgroup and shut
// down gracefully.
package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/linkerd-go/linkerd-go/proxy/internal/admin"
	"github.com/linkerd-go/linkerd-go/proxy/internal/config"
	"github.com/linkerd-go/linkerd-go/proxy/internal/discovery"
	"github.com/linkerd-go/linkerd-go/proxy/internal/forward"
	"github.com/linkerd-go/linkerd-go/proxy/internal/identity"
	"github.com/linkerd-go/linkerd-go/proxy/internal/inbound"
	"github.com/linkerd-go/linkerd-go/proxy/internal/meshtls"
	"github.com/linkerd-go/linkerd-go/proxy/internal/metrics"
	"github.com/linkerd-go/linkerd-go/proxy/internal/outbound"
)

func sideLimits(l config.SideLimits) forward.Limits {
	return forward.Limits{MaxInFlight: l.MaxInFlight, MaxConnections: l.MaxConnections, HTTP2MaxConcurrentStreams: l.HTTP2MaxConcurrentStreams}
}

// Run runs the proxy until ctx ends (SIGTERM) or POST /shutdown, then
// drains for the grace period.
func Run(ctx context.Context, cfg *config.Config, log logr.Logger) error {
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	m := metrics.New()
	store, err := meshtls.NewStore(cfg.LocalName, cfg.TrustAnchorsPEM)
	if err != nil {
		return fmt.Errorf("trust anchors: %w", err)
	}
	idConn, err := identity.Dial(cfg.IdentityAddr, cfg.IdentityName, store.Roots())
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
	dstConn, err := grpc.NewClient(cfg.DestinationAddr,
		grpc.WithTransportCredentials(credentials.NewTLS(store.ClientConfig(cfg.DestinationName, []string{"h2"}))))
	if err != nil {
		return fmt.Errorf("destination service: %w", err)
	}
	defer dstConn.Close()
	disc := discovery.New(dstConn, cfg.DestinationContext, log.WithName("discovery"), m.Registry, discovery.Options{})
	defer disc.Close()

	in := inbound.New(inbound.Config{
		DetectTimeout: cfg.DetectTimeout, ConnectTimeout: cfg.InboundConnectTimeout, OpaquePorts: cfg.OpaquePorts,
		Limits: sideLimits(cfg.Inbound),
	}, store, m, log.WithName("inbound"))
	out := outbound.New(outbound.Config{
		DetectTimeout: cfg.DetectTimeout, ConnectTimeout: cfg.OutboundConnectTimeout,
		DiscoveryTimeout: 3 * time.Second, IdleTimeout: time.Minute, OpaquePorts: cfg.OpaquePorts,
		Limits: sideLimits(cfg.Outbound),
	}, store, func(target string) outbound.Watch { return disc.Endpoints(target) }, m, log.WithName("outbound"))

	var lc net.ListenConfig
	inLn, err := lc.Listen(ctx, "tcp", cfg.InboundAddr)
	if err != nil {
		return err
	}
	var outLns []net.Listener
	for _, a := range cfg.OutboundAddrs {
		ln, err := lc.Listen(ctx, "tcp", a)
		if err != nil {
			inLn.Close()
			for _, l := range outLns {
				l.Close()
			}
			return err
		}
		outLns = append(outLns, ln)
	}
	adminLn, err := lc.Listen(ctx, "tcp", cfg.AdminAddr)
	if err != nil {
		inLn.Close()
		for _, l := range outLns {
			l.Close()
		}
		return err
	}
	adminCfg := admin.Config{Ready: store.HasCertificate}
	if cfg.ShutdownEndpoint {
		adminCfg.Shutdown = stop
	}
	log.Info("proxy starting", "identity", cfg.LocalName, "inbound", cfg.InboundAddr, "outbound", cfg.OutboundAddrs, "admin", cfg.AdminAddr)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return idClient.Run(gctx) })
	g.Go(func() error { return admin.Serve(gctx, adminLn, admin.Handler(m.Registry, adminCfg)) })
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
