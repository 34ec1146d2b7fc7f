// Command injector is the mesh's mutating admission webhook: it adds the
// linkerd-init step and the linkerd-proxy container to pods that ask for the
// mesh. See the module's README for its flags, config file and metrics.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/linkerd-go/linkerd-go/component/logging"
	"github.com/linkerd-go/linkerd-go/injector/internal/app"
	"github.com/linkerd-go/linkerd-go/injector/internal/config"
	"github.com/linkerd-go/linkerd-go/injector/internal/webhook"
)

// version is set at link time (-ldflags "-X main.version=…").
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	fs := flag.NewFlagSet("injector", flag.ContinueOnError)
	var (
		cfg        app.Config
		configFile string
		kubeconfig string
		logLevel   string
		logFormat  string
	)
	fs.StringVar(&configFile, "config", "/var/run/linkerd/injector/config.yaml", "`path` of the injector config file (apiVersion "+config.APIVersion+")")
	fs.StringVar(&cfg.WebhookAddr, "addr", ":8443", "`address` of the HTTPS webhook")
	fs.StringVar(&cfg.AdminAddr, "admin-addr", ":9995", "`address` of the admin server (/metrics, /ready, /live)")
	fs.StringVar(&cfg.CertFile, "tls-cert-file", "/var/run/linkerd/tls/tls.crt", "`path` of the webhook's PEM certificate chain (reloaded when it changes)")
	fs.StringVar(&cfg.KeyFile, "tls-key-file", "/var/run/linkerd/tls/tls.key", "`path` of the webhook's PEM private key (reloaded when it changes)")
	fs.StringVar(&kubeconfig, "kubeconfig", "", "`path` of a kubeconfig; default: the in-cluster ServiceAccount")
	fs.Int64Var(&cfg.MaxRequestBytes, "max-request-bytes", webhook.DefaultMaxRequestBytes, "largest AdmissionReview body accepted, in `bytes`")
	fs.IntVar(&cfg.MaxInFlight, "max-in-flight", 64, "admission requests handled at once; more wait")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", 10*time.Second, "how long in-flight requests may take to finish on shutdown")
	fs.StringVar(&logLevel, "log-level", "info", "log `level`: off, error, warn, info, debug or trace")
	fs.StringVar(&logFormat, "log-format", "plain", "log `format`: plain or json")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "injector: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	log, err := logging.New(os.Stderr, logLevel, logFormat)
	if err != nil {
		fmt.Fprintf(os.Stderr, "injector: %v\n", err)
		return 2
	}
	cfg.Version = version
	if cfg.Injector, err = config.Load(configFile); err != nil {
		log.Error(err, "invalid config file")
		return 2
	}
	if err := cfg.Validate(); err != nil {
		log.Error(err, "invalid flags")
		return 2
	}
	rest, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		log.Error(err, "no Kubernetes API configuration")
		return 1
	}
	rest.UserAgent = "linkerd-proxy-injector/" + version
	client, err := kubernetes.NewForConfig(rest)
	if err != nil {
		log.Error(err, "building the Kubernetes client")
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	log.Info("starting", "version", version)
	if err := app.Run(ctx, cfg, client, log); err != nil {
		log.Error(err, "injector failed")
		return 1
	}
	log.Info("stopped")
	return 0
}
