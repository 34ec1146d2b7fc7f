// Package app runs the injector: the HTTPS webhook, the admin server
// (/metrics, /ready, /live) and the namespace informer, under one errgroup
// with a bounded graceful shutdown.
package app

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/linkerd-go/linkerd-go/component/admin"
	"github.com/linkerd-go/linkerd-go/component/certfile"
	"github.com/linkerd-go/linkerd-go/component/logging"
	"github.com/linkerd-go/linkerd-go/injector/internal/config"
	"github.com/linkerd-go/linkerd-go/injector/internal/inject"
	"github.com/linkerd-go/linkerd-go/injector/internal/webhook"
)

// Config is what the injector runs with.
type Config struct {
	// Injector is the validated config file.
	Injector config.Config
	// WebhookAddr is where the HTTPS webhook listens (":8443").
	WebhookAddr string
	// AdminAddr is where /metrics, /ready and /live are served (":9995").
	AdminAddr string
	// CertFile and KeyFile are the webhook's PEM certificate (with its
	// chain) and key; they are read again when they change.
	CertFile, KeyFile string
	// MaxRequestBytes bounds AdmissionReview bodies.
	MaxRequestBytes int64
	// MaxInFlight bounds the admission requests handled at once; more wait.
	MaxInFlight int
	// ShutdownTimeout bounds the graceful shutdown of each server.
	ShutdownTimeout time.Duration
	// Version is recorded in linkerd.io/created-by.
	Version string
	// Kubeconfig is a kubeconfig file; empty is the in-cluster
	// ServiceAccount.
	Kubeconfig string
	// LogLevel and LogFormat choose the logger (component/logging).
	LogLevel, LogFormat string
}

// ParseFlags reads the command line (without the program name) and the
// config file it names. Errors and -help output go to stderr.
func ParseFlags(args []string, stderr io.Writer) (Config, error) {
	fs := flag.NewFlagSet("injector", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cfg        Config
		configFile string
	)
	fs.StringVar(&configFile, "config", "/var/run/linkerd/injector/config.yaml", "`path` of the injector config file (apiVersion "+config.APIVersion+")")
	fs.StringVar(&cfg.WebhookAddr, "addr", ":8443", "`address` of the HTTPS webhook")
	fs.StringVar(&cfg.AdminAddr, "admin-addr", ":9995", "`address` of the admin server (/metrics, /ready, /live)")
	fs.StringVar(&cfg.CertFile, "tls-cert-file", "/var/run/linkerd/tls/tls.crt", "`path` of the webhook's PEM certificate chain (reloaded when it changes)")
	fs.StringVar(&cfg.KeyFile, "tls-key-file", "/var/run/linkerd/tls/tls.key", "`path` of the webhook's PEM private key (reloaded when it changes)")
	fs.StringVar(&cfg.Kubeconfig, "kubeconfig", "", "`path` of a kubeconfig; default: the in-cluster ServiceAccount")
	fs.Int64Var(&cfg.MaxRequestBytes, "max-request-bytes", webhook.DefaultMaxRequestBytes, "largest AdmissionReview body accepted, in `bytes`")
	fs.IntVar(&cfg.MaxInFlight, "max-in-flight", 64, "admission requests handled at once; more wait")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", 10*time.Second, "how long in-flight requests may take to finish on shutdown")
	fs.StringVar(&cfg.LogLevel, "log-level", "info", "log `level`: off, error, warn, info, debug or trace")
	fs.StringVar(&cfg.LogFormat, "log-format", "plain", "log `format`: plain or json")
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	var err error
	if cfg.Injector, err = config.Load(configFile); err != nil {
		return Config{}, fmt.Errorf("invalid config file: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("invalid flags: %w", err)
	}
	return cfg, nil
}

// NewLogger returns the logger the flags ask for, writing to w
// (component/logging: the same level and format names in every component).
func NewLogger(cfg Config, w io.Writer) (logr.Logger, error) {
	return logging.New(w, cfg.LogLevel, cfg.LogFormat)
}

// Deps are what New needs from outside.
type Deps struct {
	Kube kubernetes.Interface
	Log  logr.Logger
}

// Validate checks the fields the flags set; the config file is validated
// when it is loaded.
func (c *Config) Validate() error {
	var errs []error
	if c.WebhookAddr == "" || c.AdminAddr == "" {
		errs = append(errs, errors.New("--addr and --admin-addr must be set"))
	}
	if c.CertFile == "" || c.KeyFile == "" {
		errs = append(errs, errors.New("--tls-cert-file and --tls-key-file must be set"))
	}
	if c.MaxRequestBytes < 64<<10 {
		errs = append(errs, fmt.Errorf("--max-request-bytes %d is less than 64KiB", c.MaxRequestBytes))
	}
	if c.MaxInFlight < 1 {
		errs = append(errs, fmt.Errorf("--max-in-flight %d is less than 1", c.MaxInFlight))
	}
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, errors.New("--shutdown-timeout must be positive"))
	}
	return errors.Join(errs...)
}

// App is a built injector, listening but not serving until Run.
type App struct {
	cfg      Config
	log      logr.Logger
	client   kubernetes.Interface
	registry *prometheus.Registry

	webhookLn, adminLn net.Listener
	certs              *certfile.Reloader
	ready              atomic.Bool
	readyCh            chan struct{}
}

// New loads the webhook certificate and binds both listeners.
func New(cfg Config, deps Deps) (*App, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	client, log := deps.Kube, deps.Log
	s := &App{cfg: cfg, log: log, client: client, registry: prometheus.NewRegistry(), readyCh: make(chan struct{})}
	s.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reloads := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "proxy_inject_certificate_reloads_total",
		Help: "Reloads of the webhook certificate after its files changed, by result (ok, error).",
	}, []string{"result"})
	s.registry.MustRegister(reloads)
	var err error
	s.certs, err = certfile.New(cfg.CertFile, cfg.KeyFile, log.WithName("certs"), func(err error) {
		if err != nil {
			reloads.WithLabelValues("error").Inc()
		} else {
			reloads.WithLabelValues("ok").Inc()
		}
	})
	if err != nil {
		return nil, err
	}
	if s.webhookLn, err = net.Listen("tcp", cfg.WebhookAddr); err != nil {
		return nil, err
	}
	if s.adminLn, err = net.Listen("tcp", cfg.AdminAddr); err != nil {
		s.webhookLn.Close()
		return nil, err
	}
	return s, nil
}

// WebhookAddr returns the webhook listener's address.
func (s *App) WebhookAddr() net.Addr { return s.webhookLn.Addr() }

// AdminAddr returns the admin listener's address.
func (s *App) AdminAddr() net.Addr { return s.adminLn.Addr() }

// Ready is closed once the server is ready (its namespace cache synced).
func (s *App) Ready() <-chan struct{} { return s.readyCh }

// Registry returns the server's metrics registry.
func (s *App) Registry() *prometheus.Registry { return s.registry }

// Run serves until ctx is cancelled, then shuts down within the shutdown
// timeout. It returns the first error of any part.
func (s *App) Run(ctx context.Context) error {
	factory := informers.NewSharedInformerFactory(s.client, 0)
	nsInformer := factory.Core().V1().Namespaces()
	// Only annotations are needed: drop the rest before caching.
	if err := nsInformer.Informer().SetTransform(trimNamespace); err != nil {
		return err
	}
	lister := nsInformer.Lister()

	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: s.client.CoreV1().Events("")})
	defer broadcaster.Shutdown()
	recorder := broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "linkerd-proxy-injector"})

	handler := &webhook.Handler{
		Log:             s.log.WithName("webhook"),
		Injector:        inject.New(&s.cfg.Injector, "linkerd/proxy-injector "+s.cfg.Version),
		Namespaces:      &webhook.InformerNamespaces{Lister: lister, Client: s.client},
		Events:          recorder,
		Metrics:         webhook.NewMetrics(s.registry),
		MaxRequestBytes: s.cfg.MaxRequestBytes,
	}
	webhookSrv := &http.Server{
		Handler: limitInFlight(handler, s.cfg.MaxInFlight),
		TLSConfig: &tls.Config{
			MinVersion:     tls.VersionTLS12,
			GetCertificate: s.certs.GetCertificate,
		},
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       90 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}

	g, gctx := errgroup.WithContext(ctx)
	factory.Start(gctx.Done())
	g.Go(func() error {
		synced := factory.WaitForCacheSync(gctx.Done())
		for typ, ok := range synced {
			if !ok {
				if gctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("cache of %v did not sync", typ)
			}
		}
		s.ready.Store(true)
		close(s.readyCh)
		s.log.Info("namespace cache synced; ready")
		return nil
	})
	g.Go(func() error {
		s.log.Info("serving the webhook", "addr", s.webhookLn.Addr().String())
		return serve(webhookSrv.ServeTLS(s.webhookLn, "", ""))
	})
	g.Go(func() error {
		s.log.Info("serving admin", "addr", s.adminLn.Addr().String())
		return admin.Serve(gctx, s.adminLn, admin.Config{Registry: s.registry, Ready: s.ready.Load, NotReady: "namespace cache not synced"}, s.cfg.ShutdownTimeout)
	})
	g.Go(func() error {
		<-gctx.Done()
		s.ready.Store(false)
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
		defer cancel()
		// In-flight admissions finish while /ready says no.
		return webhookSrv.Shutdown(shutdownCtx)
	})
	err := g.Wait()
	factory.Shutdown()
	return err
}

// serve maps the normal end of Serve to nil.
func serve(err error) error {
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// limitInFlight lets at most n requests through at once; the others wait
// for a slot or for their request to end.
func limitInFlight(h http.Handler, n int) http.Handler {
	slots := make(chan struct{}, n)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case slots <- struct{}{}:
		case <-r.Context().Done():
			http.Error(w, "request cancelled while waiting", http.StatusServiceUnavailable)
			return
		}
		defer func() { <-slots }()
		h.ServeHTTP(w, r)
	})
}

// trimNamespace keeps what the injector reads of a namespace: its name and
// annotations.
func trimNamespace(obj any) (any, error) {
	ns, ok := obj.(*corev1.Namespace)
	if !ok {
		return obj, nil
	}
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name:            ns.Name,
		UID:             ns.UID,
		ResourceVersion: ns.ResourceVersion,
		Annotations:     ns.Annotations,
	}}, nil
}

var _ cache.TransformFunc = trimNamespace
