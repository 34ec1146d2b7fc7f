// Package app wires destination together: configuration, informers,
// watchers, the gRPC server and the admin server, under one errgroup.
package app

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	identityv1 "github.com/linkerd-go/linkerd-go/api/linkerd/identity/v1"
	"github.com/linkerd-go/linkerd-go/api/mesh"
	"github.com/linkerd-go/linkerd-go/component/logging"
	"github.com/linkerd-go/linkerd-go/destination/internal/policy"
)

// Config is destination's configuration.
type Config struct {
	GRPCAddr   string
	PolicyAddr string
	AdminAddr  string
	// AdmissionAddr is where the policy validator (a validating admission
	// webhook, HTTPS) listens; empty: not served.
	AdmissionAddr     string
	AdmissionCertFile string
	AdmissionKeyFile  string
	// Kubeconfig is a kubeconfig file; empty means in-cluster.
	Kubeconfig string

	ClusterDomain         string
	ControllerNamespace   string
	TrustDomain           string
	DefaultOpaquePorts    string
	EnableH2Upgrade       bool
	StreamQueueSize       int
	MaxConcurrentStreams  uint
	ShutdownTimeout       time.Duration
	InsecurePlaintextGRPC bool

	// Inbound policy.
	DefaultInboundPolicy string
	ClusterNetworks      string
	ProbeNetworks        string

	// Identity of destination's own server certificate.
	ServiceAccount     string
	IdentityAddr       string
	IdentityServerName string
	TrustAnchorsFile   string
	TokenFile          string

	LogLevel  string
	LogFormat string
}

// Defaults.
const (
	defaultGRPCAddr   = ":8086"
	defaultPolicyAddr = ":8090"
	// Linkerd's default: the private and carrier-grade NAT ranges.
	defaultClusterNetworks = "10.0.0.0/8,100.64.0.0/10,172.16.0.0/12,192.168.0.0/16,fd00::/8"
	defaultAdminAddr       = ":9996"
	defaultTokenFile       = "/var/run/secrets/tokens/linkerd-identity-token"
	defaultTrustAnchors    = "/var/run/linkerd/identity/trust-roots/ca-bundle.crt"
	defaultServiceAccount  = "linkerd-destination"
	defaultIdentityAccount = "linkerd-identity"
)

// ParseFlags reads the command line.
func ParseFlags(args []string, output io.Writer) (Config, error) {
	var c Config
	fs := flag.NewFlagSet("destination", flag.ContinueOnError)
	fs.SetOutput(output)
	fs.StringVar(&c.GRPCAddr, "grpc-addr", defaultGRPCAddr, "address of the destination gRPC server")
	fs.StringVar(&c.PolicyAddr, "policy-addr", defaultPolicyAddr, "address of the inbound policy gRPC server (linkerd.policy.v1.InboundPolicyService)")
	fs.StringVar(&c.DefaultInboundPolicy, "default-inbound-policy", string(policy.AllUnauthenticated), "policy of the ports no Server describes, where neither the pod nor its namespace has the config.linkerd.io/default-inbound-policy annotation: all-unauthenticated, all-authenticated, cluster-unauthenticated, cluster-authenticated, deny or audit")
	fs.StringVar(&c.ClusterNetworks, "cluster-networks", defaultClusterNetworks, "the cluster's pod and node networks (comma-separated CIDRs), for the cluster-* policies and ServerAuthorizations without networks")
	fs.StringVar(&c.ProbeNetworks, "probe-networks", "0.0.0.0/0,::/0", "networks the kubelet's probes come from (comma-separated CIDRs); they reach the pods' HTTP probe paths unauthenticated (empty: no probe exception)")
	fs.StringVar(&c.AdminAddr, "admin-addr", defaultAdminAddr, "address of the admin server (/metrics, /ready, /live)")
	fs.StringVar(&c.AdmissionAddr, "admission-addr", "", "address of the policy validator, the HTTPS admission webhook that refuses unusable policy.linkerd.io objects (the chart: :9443); empty: not served")
	fs.StringVar(&c.AdmissionCertFile, "admission-tls-cert-file", "/var/run/linkerd/tls/tls.crt", "PEM certificate chain of the policy validator (reloaded when it changes)")
	fs.StringVar(&c.AdmissionKeyFile, "admission-tls-key-file", "/var/run/linkerd/tls/tls.key", "PEM private key of the policy validator (reloaded when it changes)")
	fs.StringVar(&c.Kubeconfig, "kubeconfig", "", "kubeconfig file (default: in-cluster configuration)")
	fs.StringVar(&c.ClusterDomain, "cluster-domain", "cluster.local", "the cluster's DNS domain")
	fs.StringVar(&c.ControllerNamespace, "controller-namespace", "linkerd", "the control plane's namespace (pods labelled linkerd.io/control-plane-ns with it are meshed by this control plane)")
	fs.StringVar(&c.TrustDomain, "identity-trust-domain", identityv1.DefaultTrustDomain, "the identity trust domain")
	fs.StringVar(&c.DefaultOpaquePorts, "default-opaque-ports", mesh.DefaultOpaquePorts, "ports treated as opaque where no config.linkerd.io/opaque-ports annotation says otherwise")
	fs.BoolVar(&c.EnableH2Upgrade, "enable-h2-upgrade", true, "hint meshed endpoints as accepting HTTP/2 from other proxies")
	fs.IntVar(&c.StreamQueueSize, "stream-queue-size", 64, "updates a stream may have waiting before it is reset")
	fs.UintVar(&c.MaxConcurrentStreams, "max-concurrent-streams", 10000, "gRPC streams per client connection")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 10*time.Second, "how long shutdown waits for servers to drain")
	fs.BoolVar(&c.InsecurePlaintextGRPC, "insecure-plaintext-grpc", false, "serve gRPC WITHOUT TLS and without contacting identity; for local debugging only")
	fs.StringVar(&c.ServiceAccount, "identity-service-account", defaultServiceAccount, "destination's ServiceAccount, for its own identity name")
	fs.StringVar(&c.IdentityAddr, "identity-addr", "", "address of the identity service (default linkerd-identity-headless.<controller-namespace>.svc.<cluster-domain>:8080)")
	fs.StringVar(&c.IdentityServerName, "identity-server-name", "", "the identity service's TLS identity (default linkerd-identity.<ns>.serviceaccount.identity.<ns>.<trust-domain>)")
	fs.StringVar(&c.TrustAnchorsFile, "identity-trust-anchors-file", defaultTrustAnchors, "PEM bundle of the trust anchors")
	fs.StringVar(&c.TokenFile, "identity-token-file", defaultTokenFile, "ServiceAccount token (audience identity.l5d.io) presented to identity")
	fs.StringVar(&c.LogLevel, "log-level", "info", "log verbosity: off, error, warn, info, debug (details of each request and update) or trace (everything)")
	fs.StringVar(&c.LogFormat, "log-format", "plain", "log format: plain or json")
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	c.setDefaults()
	return c, c.Validate()
}

func (c *Config) setDefaults() {
	if c.IdentityAddr == "" {
		c.IdentityAddr = "linkerd-identity-headless." + c.ControllerNamespace + ".svc." + c.ClusterDomain + ":8080"
	}
	if c.IdentityServerName == "" {
		c.IdentityServerName = identityv1.Name{ServiceAccount: defaultIdentityAccount, Namespace: c.ControllerNamespace, ControlPlaneNamespace: c.ControllerNamespace, TrustDomain: c.TrustDomain}.String()
	}
}

// OwnName is destination's own identity name.
func (c *Config) OwnName() identityv1.Name {
	return identityv1.Name{ServiceAccount: c.ServiceAccount, Namespace: c.ControllerNamespace, ControlPlaneNamespace: c.ControllerNamespace, TrustDomain: c.TrustDomain}
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	if c.GRPCAddr == "" || c.PolicyAddr == "" || c.AdminAddr == "" {
		errs = append(errs, errors.New("--grpc-addr, --policy-addr and --admin-addr are required"))
	}
	if c.AdmissionAddr != "" && (c.AdmissionCertFile == "" || c.AdmissionKeyFile == "") {
		errs = append(errs, errors.New("--admission-addr needs --admission-tls-cert-file and --admission-tls-key-file"))
	}
	if _, err := policy.ParseDefaultPolicy(c.DefaultInboundPolicy); err != nil {
		errs = append(errs, fmt.Errorf("--default-inbound-policy: %w", err))
	}
	if _, err := policy.ParseNetworks(c.ClusterNetworks); err != nil {
		errs = append(errs, fmt.Errorf("--cluster-networks: %w", err))
	}
	if _, err := policy.ParseNetworks(c.ProbeNetworks); err != nil {
		errs = append(errs, fmt.Errorf("--probe-networks: %w", err))
	}
	if c.ClusterDomain == "" {
		errs = append(errs, errors.New("--cluster-domain is required"))
	}
	if _, err := mesh.ParsePortRanges(c.DefaultOpaquePorts); err != nil {
		errs = append(errs, fmt.Errorf("--default-opaque-ports: %w", err))
	}
	if c.StreamQueueSize < 1 || c.StreamQueueSize > 100000 {
		errs = append(errs, fmt.Errorf("--stream-queue-size %d: want 1 to 100000", c.StreamQueueSize))
	}
	if c.MaxConcurrentStreams < 1 || c.MaxConcurrentStreams > 1<<20 {
		errs = append(errs, fmt.Errorf("--max-concurrent-streams %d: want 1 to %d", c.MaxConcurrentStreams, 1<<20))
	}
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, errors.New("--shutdown-timeout must be positive"))
	}
	if err := c.OwnName().Validate(); err != nil {
		errs = append(errs, fmt.Errorf("own identity (--identity-service-account, --controller-namespace, --identity-trust-domain): %w", err))
	}
	if !c.InsecurePlaintextGRPC && (c.IdentityAddr == "" || c.IdentityServerName == "" || c.TrustAnchorsFile == "" || c.TokenFile == "") {
		errs = append(errs, errors.New("TLS needs --identity-addr, --identity-server-name, --identity-trust-anchors-file and --identity-token-file"))
	}
	if _, err := logging.ParseLevel(c.LogLevel); err != nil {
		errs = append(errs, fmt.Errorf("--log-level: %w", err))
	}
	if err := logging.CheckFormat(c.LogFormat); err != nil {
		errs = append(errs, fmt.Errorf("--log-format: %w", err))
	}
	return errors.Join(errs...)
}

// policyConfig is the inbound policy's configuration (flags checked by
// Validate).
func (c *Config) policyConfig(opaque []mesh.PortRange) (policy.Config, error) {
	def, err := policy.ParseDefaultPolicy(c.DefaultInboundPolicy)
	if err != nil {
		return policy.Config{}, err
	}
	cluster, err := policy.ParseNetworks(c.ClusterNetworks)
	if err != nil {
		return policy.Config{}, err
	}
	probes, err := policy.ParseNetworks(c.ProbeNetworks)
	if err != nil {
		return policy.Config{}, err
	}
	return policy.Config{
		ControlPlaneNamespace: c.ControllerNamespace,
		TrustDomain:           c.TrustDomain,
		DefaultPolicy:         def,
		ClusterNetworks:       cluster,
		ProbeNetworks:         probes,
		DefaultOpaquePorts:    opaque,
		QueueSize:             c.StreamQueueSize,
	}, nil
}
