package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/record"

	identityv1 "github.com/linkerd-go/linkerd-go/api/linkerd/identity/v1"
	"github.com/linkerd-go/linkerd-go/api/mesh"
	"github.com/linkerd-go/linkerd-go/component/admin"
	"github.com/linkerd-go/linkerd-go/component/certfile"
	"github.com/linkerd-go/linkerd-go/component/identityclient"
	logs "github.com/linkerd-go/linkerd-go/component/logging"
	"github.com/linkerd-go/linkerd-go/destination/internal/admission"
	"github.com/linkerd-go/linkerd-go/destination/internal/identity"
	"github.com/linkerd-go/linkerd-go/destination/internal/k8s"
	"github.com/linkerd-go/linkerd-go/destination/internal/metrics"
	"github.com/linkerd-go/linkerd-go/destination/internal/policy"
	"github.com/linkerd-go/linkerd-go/destination/internal/server"
	"github.com/linkerd-go/linkerd-go/destination/internal/watch"
)

// Deps are what New needs from outside: Kubernetes clients, a logger and,
// optionally, listeners already bound (tests) and a certify client (tests;
// by default one is dialled from the configuration).
type Deps struct {
	Log      logr.Logger
	Kube     kubernetes.Interface
	Metadata metadata.Interface
	Dynamic  dynamic.Interface
	Registry *prometheus.Registry

	GRPCListener   net.Listener
	PolicyListener net.Listener
	AdminListener  net.Listener
	// AdmissionListener is the policy validator's (plain TCP: the App adds
	// TLS); used only when cfg.AdmissionAddr is set.
	AdmissionListener net.Listener
	Identity          identityv1.IdentityServiceClient
}

// NewLogger returns the logger the flags ask for, writing to w
// (component/logging: the same level and format names in every component).
func NewLogger(cfg Config, w io.Writer) (logr.Logger, error) {
	return logs.New(w, cfg.LogLevel, cfg.LogFormat)
}

// App is a built destination: configuration checked, listeners bound,
// serving nothing until Run.
type App struct {
	cfg                          Config
	deps                         Deps
	grpcLis, policyLis, adminLis net.Listener
	admissionLis                 net.Listener
	admissionCerts               *certfile.Reloader
}

// New checks the configuration and binds the listeners Deps does not
// provide. They are closed by Run (or Close, if Run is never called).
func New(cfg Config, d Deps) (*App, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.Kube == nil || d.Metadata == nil || d.Dynamic == nil {
		return nil, errors.New("the typed, metadata and dynamic Kubernetes clients are all required")
	}
	a := &App{cfg: cfg, deps: d, grpcLis: d.GRPCListener, policyLis: d.PolicyListener, adminLis: d.AdminListener}
	listeners := []struct {
		lis  *net.Listener
		flag string
		addr string
	}{{&a.grpcLis, "--grpc-addr", cfg.GRPCAddr}, {&a.policyLis, "--policy-addr", cfg.PolicyAddr}, {&a.adminLis, "--admin-addr", cfg.AdminAddr}}
	if cfg.AdmissionAddr != "" {
		var err error
		// Loaded here, so that a missing or bad certificate fails the
		// start (exit code 2) rather than every admission review.
		if a.admissionCerts, err = certfile.New(cfg.AdmissionCertFile, cfg.AdmissionKeyFile, d.Log.WithName("admission-certs"), nil); err != nil {
			return nil, fmt.Errorf("--admission-tls-cert-file/--admission-tls-key-file: %w", err)
		}
		a.admissionLis = d.AdmissionListener
		listeners = append(listeners, struct {
			lis  *net.Listener
			flag string
			addr string
		}{&a.admissionLis, "--admission-addr", cfg.AdmissionAddr})
	}
	for _, l := range listeners {
		if *l.lis != nil {
			continue
		}
		var err error
		if *l.lis, err = net.Listen("tcp", l.addr); err != nil {
			a.Close()
			return nil, fmt.Errorf("%s: %w", l.flag, err)
		}
	}
	return a, nil
}

// Close closes the listeners of an App that will not Run.
func (a *App) Close() {
	for _, l := range []net.Listener{a.grpcLis, a.policyLis, a.adminLis, a.admissionLis} {
		if l != nil {
			_ = l.Close()
		}
	}
}

// Run serves until ctx is done, then shuts down within cfg.ShutdownTimeout
// per server. It returns the first error that stopped it, or nil.
func (a *App) Run(ctx context.Context) (err error) {
	// Servers close their listener when they stop; this closes those that
	// never started (a setup error below). A second Close is harmless.
	defer a.Close()
	cfg, d := a.cfg, a.deps
	grpcLis, policyLis, adminLis := a.grpcLis, a.policyLis, a.adminLis
	log := d.Log
	reg := d.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	m := metrics.New(reg)
	opaque, err := mesh.ParsePortRanges(cfg.DefaultOpaquePorts)
	if err != nil {
		return err
	}
	cluster, err := k8s.New(d.Kube, d.Metadata, d.Dynamic)
	if err != nil {
		return err
	}
	index, err := watch.New(log.WithName("watch"), watch.Config{
		ClusterDomain:         cfg.ClusterDomain,
		ControlPlaneNamespace: cfg.ControllerNamespace,
		TrustDomain:           cfg.TrustDomain,
		DefaultOpaquePorts:    opaque,
		EnableH2Upgrade:       cfg.EnableH2Upgrade,
		QueueSize:             cfg.StreamQueueSize,
	}, cluster, m)
	if err != nil {
		return err
	}
	policyInformers, err := k8s.NewPolicy(d.Dynamic)
	if err != nil {
		return err
	}
	policyCfg, err := cfg.policyConfig(opaque)
	if err != nil {
		return err
	}
	// Unusable policy objects get a Warning Event, so that kubectl describe
	// says why an object does nothing.
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	defer broadcaster.Shutdown()
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: d.Kube.CoreV1().Events("")})
	policyCfg.Events = broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "linkerd-destination"})
	policies, err := policy.New(log.WithName("policy"), policyCfg, cluster.Pods, cluster.Namespaces, policyInformers, m)
	if err != nil {
		return err
	}
	if err := index.UseServers(policyInformers.Servers, policies); err != nil {
		return err
	}

	// Our own certificate.
	var certs *identity.Client
	creds := insecure.NewCredentials()
	if cfg.InsecurePlaintextGRPC {
		log.Info("WARNING: serving gRPC in plaintext (--insecure-plaintext-grpc); for local debugging only")
	} else {
		anchors, err := identity.ReadTrustAnchors(cfg.TrustAnchorsFile)
		if err != nil {
			return fmt.Errorf("trust anchors: %w", err)
		}
		rpc := d.Identity
		if rpc == nil {
			conn, err := identityclient.Dial(cfg.IdentityAddr, cfg.IdentityServerName, func() *x509.CertPool { return anchors })
			if err != nil {
				return fmt.Errorf("identity service: %w", err)
			}
			defer conn.Close()
			rpc = identityv1.NewIdentityServiceClient(conn)
		}
		certs, err = identity.New(log.WithName("identity"), identity.Config{
			Name: cfg.OwnName(), TrustAnchors: anchors, TokenFile: cfg.TokenFile,
		}, rpc, reg)
		if err != nil {
			return err
		}
		creds = credentials.NewTLS(certs.ServerTLSConfig())
	}

	grpcMetrics := grpcprom.NewServerMetrics()
	reg.MustRegister(grpcMetrics)
	grpcLog := log.WithName("grpc")
	recover := recovery.WithRecoveryHandler(func(p any) error {
		grpcLog.Error(fmt.Errorf("%v", p), "panic in handler")
		return status.Error(codes.Internal, "internal error")
	})
	logOpts := []logging.Option{logging.WithLogOnEvents(logging.FinishCall)}
	// The discovery and policy APIs are served on two ports with the same
	// TLS, limits, metrics and logging.
	newServer := func() *grpc.Server {
		return grpc.NewServer(
			grpc.Creds(creds),
			grpc.MaxConcurrentStreams(uint32(cfg.MaxConcurrentStreams)),
			grpc.MaxRecvMsgSize(64<<10),
			grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
			grpc.ChainUnaryInterceptor(grpcMetrics.UnaryServerInterceptor(), logging.UnaryServerInterceptor(logger(grpcLog), logOpts...), recovery.UnaryServerInterceptor(recover)),
			grpc.ChainStreamInterceptor(grpcMetrics.StreamServerInterceptor(), logging.StreamServerInterceptor(logger(grpcLog), logOpts...), recovery.StreamServerInterceptor(recover)),
		)
	}
	gs, ps := newServer(), newServer()
	dest := server.New(log.WithName("server"), index, m, cfg.ClusterDomain)
	dest.Register(gs)
	pol := server.NewPolicy(log.WithName("policy-server"), policies, m)
	pol.Register(ps)
	grpcMetrics.InitializeMetrics(gs)
	grpcMetrics.InitializeMetrics(ps)

	synced := func() bool { return cluster.HasSynced() && policyInformers.HasSynced() }
	ready := func() bool { return synced() && (certs == nil || certs.Ready()) }

	g, gctx := errgroup.WithContext(ctx)
	cluster.Start(gctx)
	defer cluster.Shutdown()
	policyInformers.Start(gctx)
	defer policyInformers.Shutdown()
	g.Go(func() error { index.Run(gctx); return nil })
	g.Go(func() error { policies.Run(gctx); return nil })
	if certs != nil {
		g.Go(func() error { return certs.Run(gctx) })
	}
	if a.admissionLis != nil {
		a.serveAdmission(gctx, g, policyCfg, reg)
	}
	g.Go(func() error {
		log.Info("admin server listening", "addr", adminLis.Addr().String())
		return admin.Serve(gctx, adminLis, admin.Config{Registry: reg, Ready: ready, NotReady: "caches not synced or no certificate yet"}, cfg.ShutdownTimeout)
	})
	// Serve once the caches hold the cluster and a certificate is held.
	waitReady := func() bool {
		if err := cluster.WaitForSync(gctx); err != nil {
			return false
		}
		if err := policyInformers.WaitForSync(gctx); err != nil {
			return false
		}
		if certs != nil {
			if err := certs.WaitReady(gctx); err != nil {
				return false
			}
		}
		return true
	}
	for _, srv := range []struct {
		name string
		gs   *grpc.Server
		lis  net.Listener
		stop func()
	}{{"gRPC", gs, grpcLis, dest.Stop}, {"policy gRPC", ps, policyLis, pol.Stop}} {
		g.Go(func() error {
			if !waitReady() {
				srv.lis.Close()
				return nil
			}
			log.Info(srv.name+" server listening", "addr", srv.lis.Addr().String(), "tls", certs != nil)
			if err := srv.gs.Serve(srv.lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
				return fmt.Errorf("%s server: %w", srv.name, err)
			}
			return nil
		})
		g.Go(func() error {
			<-gctx.Done()
			// End the streams (clients reconnect elsewhere), then drain.
			srv.stop()
			done := make(chan struct{})
			go func() {
				srv.gs.GracefulStop()
				close(done)
			}()
			timer := time.NewTimer(cfg.ShutdownTimeout)
			defer timer.Stop()
			select {
			case <-done:
			case <-timer.C:
				srv.gs.Stop()
				<-done
			}
			return nil
		})
	}
	return g.Wait()
}

// serveAdmission serves the policy validator on its listener until ctx is
// done. It needs no cache: it judges each object alone and lists Servers
// from the API server for the conflict check.
func (a *App) serveAdmission(ctx context.Context, g *errgroup.Group, policyCfg policy.Config, reg prometheus.Registerer) {
	log := a.deps.Log.WithName("admission")
	servers := a.deps.Dynamic.Resource(k8s.ServerGVR)
	h := &admission.Handler{
		Log:    log,
		Policy: policyCfg,
		Servers: func(ctx context.Context, ns string) ([]unstructured.Unstructured, error) {
			list, err := servers.Namespace(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				return nil, err
			}
			return list.Items, nil
		},
		Metrics: admission.NewMetrics(reg),
	}
	srv := &http.Server{
		Handler: h,
		TLSConfig: &tls.Config{
			MinVersion:     tls.VersionTLS12,
			GetCertificate: a.admissionCerts.GetCertificate,
		},
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       90 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
	lis := a.admissionLis
	g.Go(func() error {
		log.Info("policy validator listening", "addr", lis.Addr().String())
		if err := srv.ServeTLS(lis, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("policy validator: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.ShutdownTimeout)
		defer cancel()
		return srv.Shutdown(shutdownCtx)
	})
}

// logger adapts logr to the gRPC logging interceptor: finished calls at
// debug verbosity, failures at info.
func logger(l logr.Logger) logging.Logger {
	return logging.LoggerFunc(func(_ context.Context, lvl logging.Level, msg string, fields ...any) {
		switch lvl {
		case logging.LevelDebug:
			l.V(2).Info(msg, fields...)
		case logging.LevelInfo:
			l.V(1).Info(msg, fields...)
		default:
			l.Info(msg, fields...)
		}
	})
}
