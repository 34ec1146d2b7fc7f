package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
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
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"

	identityv1 "github.com/linkerd-go/linkerd-go/api/linkerd/identity/v1"
	"github.com/linkerd-go/linkerd-go/component/admin"
	"github.com/linkerd-go/linkerd-go/identity/internal/certify"
	"github.com/linkerd-go/linkerd-go/identity/internal/issuer"
	"github.com/linkerd-go/linkerd-go/identity/internal/metrics"
	"github.com/linkerd-go/linkerd-go/identity/internal/pki"
	"github.com/linkerd-go/linkerd-go/identity/internal/token"
)

// EventComponent is the source component of the Events identity records.
const EventComponent = "linkerd-identity"

// issuerDebounce is how long the issuer folder must be quiet after a change
// before it is read: a Secret update is several file operations.
const issuerDebounce = 100 * time.Millisecond

// Deps are what the identity component needs from outside.
type Deps struct {
	// Kube reaches the Kubernetes API (TokenReviews, Events).
	Kube kubernetes.Interface
	// Log is the logger.
	Log logr.Logger
	// Registry receives every metric; New makes one (with the Go and
	// process collectors) when nil.
	Registry *prometheus.Registry
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// App is a configured identity component with its listeners open.
type App struct {
	cfg      Config
	deps     Deps
	ca       *pki.CA
	metrics  *metrics.Metrics
	grpcLis  net.Listener
	adminLis net.Listener
}

// New validates cfg, loads the trust anchors and opens the listeners. The
// listeners are closed by Run (or Close, if Run is never called).
func New(cfg Config, deps Deps) (*App, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Kube == nil {
		return nil, errors.New("no Kubernetes client")
	}
	if deps.Registry == nil {
		deps.Registry = prometheus.NewRegistry()
		deps.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	anchors, err := pki.LoadAnchors(cfg.TrustAnchorsFile)
	if err != nil {
		return nil, err
	}
	ca := pki.NewCA(anchors, cfg.IssuanceLifetime, cfg.ClockSkewAllowance, deps.Now)
	m := metrics.New(deps.Registry, func() (time.Time, bool) {
		if iss := ca.Issuer(); iss != nil {
			return iss.NotAfter, true
		}
		return time.Time{}, false
	})
	a := &App{cfg: cfg, deps: deps, ca: ca, metrics: m}
	var lc net.ListenConfig
	if a.grpcLis, err = lc.Listen(context.Background(), "tcp", cfg.Addr); err != nil {
		return nil, fmt.Errorf("--addr: %w", err)
	}
	if a.adminLis, err = lc.Listen(context.Background(), "tcp", cfg.AdminAddr); err != nil {
		_ = a.grpcLis.Close()
		return nil, fmt.Errorf("--admin-addr: %w", err)
	}
	return a, nil
}

// GRPCAddr is the address the IdentityService listens on.
func (a *App) GRPCAddr() net.Addr { return a.grpcLis.Addr() }

// AdminAddr is the address the admin server listens on.
func (a *App) AdminAddr() net.Addr { return a.adminLis.Addr() }

// Close closes the listeners of an App that will not Run.
func (a *App) Close() {
	_ = a.grpcLis.Close()
	_ = a.adminLis.Close()
}

// Ready reports whether the App can issue certificates: a valid issuer is
// loaded.
func (a *App) Ready() bool {
	iss := a.ca.Issuer()
	return iss != nil && iss.ValidAt(a.ca.Now()) == nil
}

// Run serves until ctx ends, then shuts down gracefully within the
// configured timeout. It returns the first error that stopped a server.
func (a *App) Run(ctx context.Context) error {
	log := a.deps.Log
	defer a.Close()

	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	defer broadcaster.Shutdown()
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: a.deps.Kube.CoreV1().Events("")})
	recorder := broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: EventComponent})
	secretRef := &corev1.ObjectReference{APIVersion: "v1", Kind: "Secret", Namespace: a.cfg.ControlPlaneNamespace, Name: a.cfg.IssuerSecret}

	watcher, err := issuer.New(issuer.Config{
		Dir: a.cfg.IssuerDir, Scheme: a.cfg.IssuerScheme, AnchorsFile: a.cfg.TrustAnchorsFile,
		Resync: a.cfg.IssuerResync, Debounce: issuerDebounce,
	}, a.ca, recorder, secretRef, a.metrics, log.WithName("issuer"))
	if err != nil {
		return err
	}
	if err := watcher.Reload(); err != nil {
		log.Info("not ready until a valid issuer is mounted", "dir", a.cfg.IssuerDir)
	}

	reviewer := token.NewKubeReviewer(a.deps.Kube.AuthenticationV1().TokenReviews(), identityv1.TokenAudience, a.cfg.TokenReviewTimeout)
	svc := certify.New(certify.Config{
		TrustDomain:           a.cfg.TrustDomain,
		ControlPlaneNamespace: a.cfg.ControlPlaneNamespace,
		MaxConcurrent:         a.cfg.MaxConcurrentCertify,
	}, a.ca, reviewer, a.metrics, log.WithName("certify"))
	grpcServer := a.grpcServer(svc)
	// The admin server outlives the gRPC server's drain, so that /metrics
	// and /ready answer until the last call is done.
	adminCtx, stopAdmin := context.WithCancel(context.WithoutCancel(ctx))
	defer stopAdmin()

	selfName := a.cfg.SelfName().String()
	log.Info("serving", "addr", a.GRPCAddr().String(), "admin", a.AdminAddr().String(), "identity", selfName,
		"trustDomain", a.cfg.TrustDomain, "anchors", len(a.ca.Anchors().Certificates()), "issuerDir", a.cfg.IssuerDir, "issuerScheme", a.cfg.IssuerScheme)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return watcher.Run(gctx) })
	g.Go(func() error {
		if err := grpcServer.Serve(a.grpcLis); err != nil {
			return fmt.Errorf("gRPC server: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		return admin.Serve(adminCtx, a.adminLis, admin.Config{Registry: a.deps.Registry, Ready: a.Ready, NotReady: "no valid issuer loaded"}, a.cfg.ShutdownTimeout)
	})
	g.Go(func() error {
		<-gctx.Done()
		log.Info("shutting down", "timeout", a.cfg.ShutdownTimeout)
		sctx, cancel := context.WithTimeout(context.WithoutCancel(gctx), a.cfg.ShutdownTimeout)
		defer cancel()
		stopped := make(chan struct{})
		go func() {
			grpcServer.GracefulStop()
			close(stopped)
		}()
		select {
		case <-stopped:
		case <-sctx.Done():
			log.Info("graceful shutdown timed out; closing the remaining connections")
			grpcServer.Stop()
			<-stopped
		}
		stopAdmin()
		return nil
	})
	return g.Wait()
}

func (a *App) grpcServer(svc identityv1.IdentityServiceServer) *grpc.Server {
	log := a.deps.Log.WithName("grpc")
	srvMetrics := grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram())
	a.deps.Registry.MustRegister(srvMetrics)
	serverCert := pki.NewServerCert(a.ca, a.cfg.SelfName().String())
	tlsConfig := &tls.Config{
		MinVersion:     tls.VersionTLS13,
		GetCertificate: serverCert.GetCertificate,
	}
	s := grpc.NewServer(
		grpc.Creds(credentials.NewTLS(tlsConfig)),
		grpc.MaxRecvMsgSize(a.cfg.MaxRequestBytes),
		grpc.MaxConcurrentStreams(a.cfg.MaxConcurrentStreams),
		grpc.MaxHeaderListSize(16<<10),
		grpc.ConnectionTimeout(10*time.Second),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: 5 * time.Minute}),
		grpc.ChainUnaryInterceptor(
			srvMetrics.UnaryServerInterceptor(),
			logging.UnaryServerInterceptor(interceptorLogger(log), logging.WithLogOnEvents(logging.FinishCall)),
			recovery.UnaryServerInterceptor(recovery.WithRecoveryHandlerContext(func(_ context.Context, p any) error {
				log.Error(fmt.Errorf("%v", p), "panic while serving a request")
				return status.Error(codes.Internal, "internal error")
			})),
		),
	)
	identityv1.RegisterIdentityServiceServer(s, svc)
	srvMetrics.InitializeMetrics(s)
	return s
}

// interceptorLogger adapts a logr.Logger to the logging interceptor: a
// finished call is logged at V(1) unless it failed with a server-side code.
func interceptorLogger(l logr.Logger) logging.Logger {
	return logging.LoggerFunc(func(_ context.Context, lvl logging.Level, msg string, fields ...any) {
		switch lvl {
		case logging.LevelError:
			l.Error(nil, msg, fields...)
		case logging.LevelWarn:
			l.Info(msg, fields...)
		case logging.LevelInfo:
			l.V(1).Info(msg, fields...)
		default:
			l.V(2).Info(msg, fields...)
		}
	})
}
