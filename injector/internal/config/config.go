// Package config is the injector's config file: everything the injector puts
// into a meshed pod (images, ports, defaults, trust anchors, control-plane
// addresses), as one typed, versioned document. The charts render it into a
// ConfigMap from their values, the injector reads it at start, so both agree
// by construction. Its schema is documented in the module's README.
package config

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	identityv1 "github.com/linkerd-go/linkerd-go/api/linkerd/identity/v1"
	"github.com/linkerd-go/linkerd-go/api/mesh"
)

// APIVersion and Kind identify the config document. A file with another
// apiVersion is refused: a new schema comes with a new version.
const (
	APIVersion = "injector.linkerd.io/v1alpha1"
	Kind       = "InjectorConfig"
)

// MaxFileSize bounds the config file (trust anchor bundles included).
const MaxFileSize = 1 << 20

// Config is the injector's config file.
type Config struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`

	// ControlPlaneNamespace is the mesh's namespace ("linkerd").
	ControlPlaneNamespace string `json:"controlPlaneNamespace"`
	// ClusterDomain is the cluster's DNS domain ("cluster.local").
	ClusterDomain string `json:"clusterDomain"`
	// IdentityTrustDomain is the trust domain of identity names; empty means
	// ClusterDomain.
	IdentityTrustDomain string `json:"identityTrustDomain,omitempty"`
	// IdentityTrustAnchorsPEM is the PEM bundle of trust anchors the proxies
	// verify peers and the identity service with. Required.
	IdentityTrustAnchorsPEM string `json:"identityTrustAnchorsPEM"`
	// ClusterNetworks are the cluster's pod and node networks, comma-separated
	// CIDRs, for the cluster-* default inbound policies.
	ClusterNetworks string `json:"clusterNetworks"`
	// DisableIPv6 makes proxies listen on IPv4 only and proxy-init redirect
	// IPv4 only.
	DisableIPv6 bool `json:"disableIPv6"`

	ControlPlane ControlPlane `json:"controlPlane"`
	Proxy        Proxy        `json:"proxy"`
	ProxyInit    ProxyInit    `json:"proxyInit"`
}

// ControlPlane locates the control-plane services proxies talk to.
type ControlPlane struct {
	Identity    Service `json:"identity"`
	Destination Service `json:"destination"`
	Policy      Service `json:"policy"`
}

// Service is one control-plane gRPC service.
type Service struct {
	// Address is host:port. Empty means the default address in the
	// control-plane namespace and cluster domain (see Resolve).
	Address string `json:"address,omitempty"`
	// ServiceAccount is the ServiceAccount its pods run as: the proxy expects
	// the identity of that ServiceAccount from the server.
	ServiceAccount string `json:"serviceAccount"`
}

// Image is a container image.
type Image struct {
	// Name is the image name without tag or digest.
	Name string `json:"name"`
	// Version is the image tag.
	Version string `json:"version"`
	// PullPolicy is Always, IfNotPresent or Never.
	PullPolicy string `json:"pullPolicy"`
}

// Ref returns name:version.
func (i Image) Ref() string { return i.Name + ":" + i.Version }

// Ports are the proxy's ports.
type Ports struct {
	Inbound  int32 `json:"inbound"`
	Outbound int32 `json:"outbound"`
	Admin    int32 `json:"admin"`
	Control  int32 `json:"control"`
}

// Resources are a container's requests and limits; empty strings are unset.
type Resources struct {
	CPU    Bounds `json:"cpu"`
	Memory Bounds `json:"memory"`
}

// Bounds are a request and a limit, as resource quantities ("100m", "64Mi").
type Bounds struct {
	Request string `json:"request,omitempty"`
	Limit   string `json:"limit,omitempty"`
}

// Proxy configures the linkerd-proxy container.
type Proxy struct {
	Image Image `json:"image"`
	Ports Ports `json:"ports"`
	// UID is the user the proxy runs as; proxy-init exempts its traffic.
	UID int64 `json:"uid"`
	// GID is the proxy's group (runAsGroup, and exempt from redirection);
	// -1 means none.
	GID int64 `json:"gid"`
	// LogLevel is the proxy's log filter ("warn,linkerd=info").
	LogLevel string `json:"logLevel"`
	// LogFormat is plain or json.
	LogFormat string `json:"logFormat"`
	// DefaultInboundPolicy applies to ports no Server describes.
	DefaultInboundPolicy string `json:"defaultInboundPolicy"`
	// OpaquePorts are proxied as opaque TCP, without protocol detection.
	OpaquePorts string `json:"opaquePorts"`
	// NativeSidecar selects the native sidecar layout (the proxy is an init
	// container with restartPolicy Always); false selects the legacy layout
	// (the proxy is the first container, with a postStart wait).
	NativeSidecar bool `json:"nativeSidecar"`
	// AwaitCommand is the postStart command of the legacy layout: it must
	// return once the proxy is ready (or fail after a timeout).
	AwaitCommand []string `json:"awaitCommand"`
	// ShutdownGracePeriod is how long the proxy drains on shutdown; empty
	// leaves the proxy's own default.
	ShutdownGracePeriod string    `json:"shutdownGracePeriod,omitempty"`
	Resources           Resources `json:"resources"`
}

// ProxyInit configures the linkerd-init container.
type ProxyInit struct {
	Image Image `json:"image"`
	// IgnoreInboundPorts are inbound ports never redirected to the proxy, in
	// addition to the proxy's control and admin ports.
	IgnoreInboundPorts string `json:"ignoreInboundPorts,omitempty"`
	// IgnoreOutboundPorts are outbound ports never redirected to the proxy.
	IgnoreOutboundPorts string `json:"ignoreOutboundPorts,omitempty"`
	// SkipSubnets are CIDRs whose traffic bypasses the proxy.
	SkipSubnets string `json:"skipSubnets,omitempty"`
	LogLevel    string `json:"logLevel"`
	LogFormat   string `json:"logFormat"`
	// RunAsRoot runs proxy-init as uid 0 (with only NET_ADMIN and NET_RAW);
	// false runs it as 65534, which needs an image whose binary carries
	// those file capabilities.
	RunAsRoot bool      `json:"runAsRoot"`
	Resources Resources `json:"resources"`
}

// Default returns the defaults, which a config file overrides field by field.
// It lacks trust anchors, which every file must give.
func Default() Config {
	return Config{
		APIVersion:            APIVersion,
		Kind:                  Kind,
		ControlPlaneNamespace: "linkerd",
		ClusterDomain:         "cluster.local",
		ClusterNetworks:       "10.0.0.0/8,100.64.0.0/10,172.16.0.0/12,192.168.0.0/16,fd00::/8",
		DisableIPv6:           true,
		ControlPlane: ControlPlane{
			Identity:    Service{ServiceAccount: "linkerd-identity"},
			Destination: Service{ServiceAccount: "linkerd-destination"},
			Policy:      Service{ServiceAccount: "linkerd-destination"},
		},
		Proxy: Proxy{
			Image: Image{Name: "cr.l5d.io/linkerd/proxy", Version: "latest", PullPolicy: "IfNotPresent"},
			Ports: Ports{
				Inbound:  mesh.InboundPort,
				Outbound: mesh.OutboundPort,
				Admin:    mesh.AdminPort,
				Control:  mesh.ControlPort,
			},
			UID:                  mesh.DefaultProxyUID,
			GID:                  -1,
			LogLevel:             "warn,linkerd=info",
			LogFormat:            "plain",
			DefaultInboundPolicy: "all-unauthenticated",
			OpaquePorts:          mesh.DefaultOpaquePorts,
			NativeSidecar:        true,
			AwaitCommand:         []string{"/usr/lib/linkerd/linkerd-await", "--timeout=2m", "--port=4191"},
			Resources: Resources{
				CPU:    Bounds{Request: "100m"},
				Memory: Bounds{Request: "20Mi", Limit: "250Mi"},
			},
		},
		ProxyInit: ProxyInit{
			Image:     Image{Name: "cr.l5d.io/linkerd/proxy-init", Version: "latest", PullPolicy: "IfNotPresent"},
			LogLevel:  "info",
			LogFormat: "plain",
			RunAsRoot: true,
			Resources: Resources{
				CPU:    Bounds{Request: "10m", Limit: "100m"},
				Memory: Bounds{Request: "10Mi", Limit: "20Mi"},
			},
		},
	}
}

// Parse decodes a config file (YAML or JSON) over the defaults, strictly:
// unknown or duplicate fields are errors. It does not validate.
func Parse(data []byte) (Config, error) {
	if len(data) > MaxFileSize {
		return Config{}, fmt.Errorf("config is %d bytes, more than %d", len(data), MaxFileSize)
	}
	c := Default()
	if err := yaml.UnmarshalStrict(data, &c); err != nil {
		return Config{}, fmt.Errorf("decoding config: %w", err)
	}
	return c, nil
}

// Load reads, parses and validates the config file at path.
func Load(path string) (Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return Config{}, err
	}
	defer f.Close()
	// One byte more than allowed, so that Parse sees a file too large.
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return Config{}, fmt.Errorf("reading config %s: %w", path, err)
	}
	c, err := Parse(data)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Validate reports every problem of the config, one per line.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field string, err error) {
		errs = append(errs, fmt.Errorf("%s: %w", field, err))
	}
	check := func(field string, err error) {
		if err != nil {
			bad(field, err)
		}
	}
	if c.APIVersion != APIVersion {
		bad("apiVersion", fmt.Errorf("%q is not %q", c.APIVersion, APIVersion))
	}
	if c.Kind != Kind {
		bad("kind", fmt.Errorf("%q is not %q", c.Kind, Kind))
	}
	if msgs := validation.IsDNS1123Label(c.ControlPlaneNamespace); len(msgs) > 0 {
		bad("controlPlaneNamespace", errors.New(strings.Join(msgs, "; ")))
	}
	if msgs := validation.IsDNS1123Subdomain(c.ClusterDomain); len(msgs) > 0 {
		bad("clusterDomain", errors.New(strings.Join(msgs, "; ")))
	}
	for _, s := range []struct {
		field string
		svc   Service
	}{
		{"controlPlane.identity", c.ControlPlane.Identity},
		{"controlPlane.destination", c.ControlPlane.Destination},
		{"controlPlane.policy", c.ControlPlane.Policy},
	} {
		if s.svc.Address != "" {
			check(s.field+".address", validateHostPort(s.svc.Address))
		}
		// The server's identity name must be well formed.
		check(s.field+".serviceAccount", c.IdentityName(s.svc.ServiceAccount, c.ControlPlaneNamespace).Validate())
	}
	if _, err := ParseTrustAnchors(c.IdentityTrustAnchorsPEM); err != nil {
		bad("identityTrustAnchorsPEM", err)
	}
	if _, err := ParseSubnets(c.ClusterNetworks); err != nil {
		bad("clusterNetworks", err)
	}

	p := &c.Proxy
	c.validateImage("proxy.image", p.Image, bad)
	ports := map[int32]string{}
	for _, pt := range []struct {
		field string
		port  int32
	}{
		{"proxy.ports.inbound", p.Ports.Inbound},
		{"proxy.ports.outbound", p.Ports.Outbound},
		{"proxy.ports.admin", p.Ports.Admin},
		{"proxy.ports.control", p.Ports.Control},
	} {
		if pt.port < 1 || pt.port > 65535 {
			bad(pt.field, fmt.Errorf("%d is not a port from 1 to 65535", pt.port))
		} else if other, dup := ports[pt.port]; dup {
			bad(pt.field, fmt.Errorf("%d is also %s", pt.port, other))
		}
		ports[pt.port] = pt.field
	}
	if _, err := ParseUID(strconv.FormatInt(p.UID, 10)); err != nil {
		bad("proxy.uid", err)
	}
	if p.GID != -1 {
		if _, err := ParseGID(strconv.FormatInt(p.GID, 10)); err != nil {
			bad("proxy.gid", fmt.Errorf("%w, or -1 for none", err))
		}
	}
	check("proxy.logLevel", ValidateProxyLogLevel(p.LogLevel))
	check("proxy.logFormat", ValidateLogFormat(p.LogFormat))
	check("proxy.defaultInboundPolicy", ValidateInboundPolicy(p.DefaultInboundPolicy))
	if _, err := ParsePorts(p.OpaquePorts); err != nil {
		bad("proxy.opaquePorts", err)
	}
	if len(p.AwaitCommand) == 0 || p.AwaitCommand[0] == "" {
		bad("proxy.awaitCommand", errors.New("empty (the legacy layout needs it)"))
	}
	if p.ShutdownGracePeriod != "" {
		if _, err := ParseShutdownGracePeriod(p.ShutdownGracePeriod); err != nil {
			bad("proxy.shutdownGracePeriod", err)
		}
	}
	validateResources("proxy.resources", p.Resources, bad)

	pi := &c.ProxyInit
	c.validateImage("proxyInit.image", pi.Image, bad)
	if _, err := ParsePorts(pi.IgnoreInboundPorts); err != nil {
		bad("proxyInit.ignoreInboundPorts", err)
	}
	if _, err := ParsePorts(pi.IgnoreOutboundPorts); err != nil {
		bad("proxyInit.ignoreOutboundPorts", err)
	}
	if _, err := ParseSubnets(pi.SkipSubnets); err != nil {
		bad("proxyInit.skipSubnets", err)
	}
	check("proxyInit.logLevel", ValidateProxyInitLogLevel(pi.LogLevel))
	check("proxyInit.logFormat", ValidateLogFormat(pi.LogFormat))
	validateResources("proxyInit.resources", pi.Resources, bad)
	return errors.Join(errs...)
}

func (c *Config) validateImage(field string, img Image, bad func(string, error)) {
	if err := ValidateImageName(img.Name); err != nil {
		bad(field+".name", err)
	}
	if err := ValidateImageVersion(img.Version); err != nil {
		bad(field+".version", err)
	}
	if _, err := ParsePullPolicy(img.PullPolicy); err != nil {
		bad(field+".pullPolicy", err)
	}
}

func validateResources(field string, r Resources, bad func(string, error)) {
	for _, b := range []struct {
		field string
		b     Bounds
	}{{field + ".cpu", r.CPU}, {field + ".memory", r.Memory}} {
		var req, lim resource.Quantity
		var err error
		if b.b.Request != "" {
			if req, err = ParseQuantity(b.b.Request); err != nil {
				bad(b.field+".request", err)
				continue
			}
		}
		if b.b.Limit != "" {
			if lim, err = ParseQuantity(b.b.Limit); err != nil {
				bad(b.field+".limit", err)
				continue
			}
		}
		if b.b.Request != "" && b.b.Limit != "" && req.Cmp(lim) > 0 {
			bad(b.field, fmt.Errorf("request %s is more than limit %s", b.b.Request, b.b.Limit))
		}
	}
}

func validateHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not host:port", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q: port is not from 1 to 65535", s)
	}
	if host == "" {
		return fmt.Errorf("%q has no host", s)
	}
	return nil
}

// ParseTrustAnchors parses a PEM bundle of one or more CA certificates.
func ParseTrustAnchors(bundle string) ([]*x509.Certificate, error) {
	rest := []byte(bundle)
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("PEM block of type %q, want CERTIFICATE", block.Type)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", len(certs)+1, err)
		}
		if !cert.IsCA {
			return nil, fmt.Errorf("certificate %d (%q) is not a CA", len(certs)+1, cert.Subject.String())
		}
		certs = append(certs, cert)
	}
	if strings.TrimSpace(string(rest)) != "" {
		return nil, errors.New("text that is not PEM after the certificates")
	}
	if len(certs) == 0 {
		return nil, errors.New("no certificate")
	}
	return certs, nil
}

// TrustDomain returns the identity trust domain.
func (c *Config) TrustDomain() string {
	if c.IdentityTrustDomain != "" {
		return c.IdentityTrustDomain
	}
	return c.ClusterDomain
}

// IdentityName returns the identity of ServiceAccount sa in namespace ns
// under this control plane.
func (c *Config) IdentityName(sa, ns string) identityv1.Name {
	return identityv1.Name{
		ServiceAccount:        sa,
		Namespace:             ns,
		ControlPlaneNamespace: c.ControlPlaneNamespace,
		TrustDomain:           c.TrustDomain(),
	}
}

// TrustRootSHA256 returns the hex SHA-256 of the trust anchors bundle, with
// the whitespace around it trimmed: the linkerd.io/trust-root-sha256
// annotation of injected pods.
func (c *Config) TrustRootSHA256() string {
	sum := sha256.Sum256([]byte(strings.TrimSpace(c.IdentityTrustAnchorsPEM)))
	return hex.EncodeToString(sum[:])
}

// Default service names and ports of the control plane, used when an address
// is not set.
const (
	defaultIdentityAddress    = "linkerd-identity-headless.%s.svc.%s.:8080"
	defaultDestinationAddress = "linkerd-dst-headless.%s.svc.%s.:8086"
	defaultPolicyAddress      = "linkerd-policy.%s.svc.%s.:8090"
)

// IdentityAddress returns the identity service's address.
func (c *Config) IdentityAddress() string {
	return c.addr(c.ControlPlane.Identity.Address, defaultIdentityAddress)
}

// DestinationAddress returns the destination service's address.
func (c *Config) DestinationAddress() string {
	return c.addr(c.ControlPlane.Destination.Address, defaultDestinationAddress)
}

// PolicyAddress returns the policy service's address.
func (c *Config) PolicyAddress() string {
	return c.addr(c.ControlPlane.Policy.Address, defaultPolicyAddress)
}

func (c *Config) addr(set, format string) string {
	if set != "" {
		return set
	}
	return fmt.Sprintf(format, c.ControlPlaneNamespace, c.ClusterDomain)
}
