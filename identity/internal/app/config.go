// Package app wires the identity component together: configuration, the
// issuer watcher, the gRPC server (over TLS, with a certificate the CA issues
// to itself) and the admin server, run under one errgroup with a bounded
// graceful shutdown.
package app

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"time"

	identityv1 "github.com/linkerd-go/linkerd-go/api/linkerd/identity/v1"
	"github.com/linkerd-go/linkerd-go/api/mesh"
	"github.com/linkerd-go/linkerd-go/component/logging"
	"github.com/linkerd-go/linkerd-go/identity/internal/pki"
)

// Config is the identity component's configuration.
type Config struct {
	// Addr is where the gRPC IdentityService listens (TLS).
	Addr string
	// AdminAddr is where /metrics, /ready and /live are served (plain HTTP).
	AdminAddr string

	// TrustDomain and ControlPlaneNamespace are the suffix of every
	// identity issued: "<sa>.<ns>.serviceaccount.identity.<cpns>.<trust-domain>".
	TrustDomain           string
	ControlPlaneNamespace string
	// ServiceAccount is the identity component's own ServiceAccount, which
	// names the certificate its gRPC server presents.
	ServiceAccount string

	// IssuanceLifetime is how long issued certificates are valid from the
	// moment they are signed.
	IssuanceLifetime time.Duration
	// ClockSkewAllowance back-dates issued certificates.
	ClockSkewAllowance time.Duration

	// IssuerDir is where the issuer Secret is mounted; IssuerScheme says its
	// layout (mesh.IssuerSchemeLinkerd or mesh.IssuerSchemeKubernetes).
	IssuerDir    string
	IssuerScheme string
	// IssuerSecret names the issuer Secret (in ControlPlaneNamespace), the
	// object the issuer Events are recorded on.
	IssuerSecret string
	// IssuerResync is how often the issuer folder is read without a change
	// notification, in case one was lost.
	IssuerResync time.Duration
	// TrustAnchorsFile is the PEM bundle of trust anchors.
	TrustAnchorsFile string

	// MaxConcurrentCertify bounds the Certify calls in progress.
	MaxConcurrentCertify int
	// MaxConcurrentStreams bounds the calls in progress on one connection.
	MaxConcurrentStreams uint32
	// MaxRequestBytes bounds a request message.
	MaxRequestBytes int
	// TokenReviewTimeout bounds one TokenReview.
	TokenReviewTimeout time.Duration
	// ShutdownTimeout bounds the graceful shutdown.
	ShutdownTimeout time.Duration

	// Kubeconfig is a kubeconfig file; empty for the in-cluster config.
	Kubeconfig string
	// KubeAPIQPS and KubeAPIBurst rate-limit the Kubernetes client: every
	// Certify call makes one TokenReview.
	KubeAPIQPS   float64
	KubeAPIBurst int

	// LogLevel is debug, info, warn or error; LogFormat is plain or json.
	LogLevel  string
	LogFormat string
}

// DefaultConfig returns the defaults of every flag.
func DefaultConfig() Config {
	return Config{
		Addr:                  ":8080",
		AdminAddr:             ":9990",
		TrustDomain:           identityv1.DefaultTrustDomain,
		ControlPlaneNamespace: "linkerd",
		ServiceAccount:        "linkerd-identity",
		IssuanceLifetime:      24 * time.Hour,
		ClockSkewAllowance:    20 * time.Second,
		IssuerDir:             "/var/run/linkerd/identity/issuer",
		IssuerScheme:          mesh.IssuerSchemeLinkerd,
		IssuerSecret:          "linkerd-identity-issuer",
		IssuerResync:          time.Minute,
		TrustAnchorsFile:      "/var/run/linkerd/identity/trust-roots/ca-bundle.crt",
		MaxConcurrentCertify:  128,
		MaxConcurrentStreams:  16,
		MaxRequestBytes:       32 << 10,
		TokenReviewTimeout:    10 * time.Second,
		ShutdownTimeout:       10 * time.Second,
		KubeAPIQPS:            200,
		KubeAPIBurst:          400,
		LogLevel:              "info",
		LogFormat:             "plain",
	}
}

// ParseFlags parses the command line (without the program name) over the
// defaults. Errors and -help output go to stderr.
func ParseFlags(args []string, stderr io.Writer) (Config, error) {
	c := DefaultConfig()
	fs := flag.NewFlagSet("identity", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.Addr, "addr", c.Addr, "address of the gRPC IdentityService (TLS)")
	fs.StringVar(&c.AdminAddr, "admin-addr", c.AdminAddr, "address of the admin server (/metrics, /ready, /live)")
	fs.StringVar(&c.TrustDomain, "trust-domain", c.TrustDomain, "trust domain of the identities issued")
	fs.StringVar(&c.ControlPlaneNamespace, "control-plane-namespace", c.ControlPlaneNamespace, "namespace of the control plane; part of every identity issued")
	fs.StringVar(&c.ServiceAccount, "service-account", c.ServiceAccount, "this component's ServiceAccount; names the certificate its gRPC server presents")
	fs.DurationVar(&c.IssuanceLifetime, "issuance-lifetime", c.IssuanceLifetime, "lifetime of issued certificates (never past the issuer's expiry)")
	fs.DurationVar(&c.ClockSkewAllowance, "clock-skew-allowance", c.ClockSkewAllowance, "how far issued certificates are back-dated")
	fs.StringVar(&c.IssuerDir, "issuer-dir", c.IssuerDir, "folder where the issuer Secret is mounted")
	fs.StringVar(&c.IssuerScheme, "issuer-scheme", c.IssuerScheme, "layout of the issuer Secret: linkerd.io/tls (crt.pem, key.pem) or kubernetes.io/tls (tls.crt, tls.key)")
	fs.StringVar(&c.IssuerSecret, "issuer-secret", c.IssuerSecret, "name of the issuer Secret, on which issuer Events are recorded")
	fs.DurationVar(&c.IssuerResync, "issuer-resync", c.IssuerResync, "how often the issuer folder is read even without a change notification (0: never)")
	fs.StringVar(&c.TrustAnchorsFile, "trust-anchors-file", c.TrustAnchorsFile, "PEM bundle of the trust anchors")
	fs.IntVar(&c.MaxConcurrentCertify, "max-concurrent-certify", c.MaxConcurrentCertify, "Certify calls served at once; more are refused with RESOURCE_EXHAUSTED")
	maxStreams := uint(c.MaxConcurrentStreams)
	fs.UintVar(&maxStreams, "max-concurrent-streams", maxStreams, "calls in progress on one connection")
	fs.IntVar(&c.MaxRequestBytes, "max-request-bytes", c.MaxRequestBytes, "largest request message accepted")
	fs.DurationVar(&c.TokenReviewTimeout, "token-review-timeout", c.TokenReviewTimeout, "time limit of one TokenReview")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "time limit of the graceful shutdown")
	fs.StringVar(&c.Kubeconfig, "kubeconfig", c.Kubeconfig, "kubeconfig file (default: the in-cluster configuration)")
	fs.Float64Var(&c.KubeAPIQPS, "kube-api-qps", c.KubeAPIQPS, "requests per second to the Kubernetes API (one TokenReview per Certify)")
	fs.IntVar(&c.KubeAPIBurst, "kube-api-burst", c.KubeAPIBurst, "burst of requests to the Kubernetes API")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "log verbosity: off, error, warn, info, debug or trace")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "plain or json")
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if maxStreams > 1<<31 {
		maxStreams = 1 << 31
	}
	c.MaxConcurrentStreams = uint32(maxStreams)
	return c, nil
}

// Validate reports every problem of the configuration.
func (c Config) Validate() error {
	var errs []error
	for _, a := range []struct{ flag, v string }{{"addr", c.Addr}, {"admin-addr", c.AdminAddr}} {
		if _, _, err := net.SplitHostPort(a.v); err != nil {
			errs = append(errs, fmt.Errorf("--%s %q: %w", a.flag, a.v, err))
		}
	}
	self := c.SelfName()
	if err := self.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("--trust-domain, --control-plane-namespace or --service-account: %w", err))
	}
	if c.IssuanceLifetime <= 0 {
		errs = append(errs, fmt.Errorf("--issuance-lifetime %s must be positive", c.IssuanceLifetime))
	}
	if c.ClockSkewAllowance < 0 {
		errs = append(errs, fmt.Errorf("--clock-skew-allowance %s must not be negative", c.ClockSkewAllowance))
	}
	if _, _, err := pki.IssuerFiles(c.IssuerScheme); err != nil {
		errs = append(errs, fmt.Errorf("--issuer-scheme: %w", err))
	}
	for _, f := range []struct{ flag, v string }{{"issuer-dir", c.IssuerDir}, {"issuer-secret", c.IssuerSecret}, {"trust-anchors-file", c.TrustAnchorsFile}} {
		if f.v == "" {
			errs = append(errs, fmt.Errorf("--%s is required", f.flag))
		}
	}
	if c.IssuerResync < 0 {
		errs = append(errs, fmt.Errorf("--issuer-resync %s must not be negative", c.IssuerResync))
	}
	if c.MaxConcurrentCertify < 1 {
		errs = append(errs, fmt.Errorf("--max-concurrent-certify %d must be at least 1", c.MaxConcurrentCertify))
	}
	if c.MaxConcurrentStreams < 1 {
		errs = append(errs, fmt.Errorf("--max-concurrent-streams %d must be at least 1", c.MaxConcurrentStreams))
	}
	if c.MaxRequestBytes < 1<<10 || c.MaxRequestBytes > 1<<20 {
		errs = append(errs, fmt.Errorf("--max-request-bytes %d must be between 1 KiB and 1 MiB", c.MaxRequestBytes))
	}
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{{"token-review-timeout", c.TokenReviewTimeout}, {"shutdown-timeout", c.ShutdownTimeout}} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("--%s %s must be positive", d.flag, d.v))
		}
	}
	if c.KubeAPIQPS <= 0 || c.KubeAPIBurst < 1 {
		errs = append(errs, fmt.Errorf("--kube-api-qps %g and --kube-api-burst %d must be positive", c.KubeAPIQPS, c.KubeAPIBurst))
	}
	if _, err := logging.ParseLevel(c.LogLevel); err != nil {
		errs = append(errs, fmt.Errorf("--log-level: %w", err))
	}
	if err := logging.CheckFormat(c.LogFormat); err != nil {
		errs = append(errs, fmt.Errorf("--log-format: %w", err))
	}
	return errors.Join(errs...)
}

// SelfName is the identity name of the component itself, which its gRPC
// server's certificate carries and proxies expect.
func (c Config) SelfName() identityv1.Name {
	return identityv1.Name{
		ServiceAccount:        c.ServiceAccount,
		Namespace:             c.ControlPlaneNamespace,
		ControlPlaneNamespace: c.ControlPlaneNamespace,
		TrustDomain:           c.TrustDomain,
	}
}
