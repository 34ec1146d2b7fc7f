// Package config reads the proxy's configuration from the environment
// variables the injector sets (the LINKERD2_PROXY_* names of Linkerd's
// proxy) and validates it.
package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	destinationv1 "github.com/linkerd-go/linkerd-go/api/linkerd/destination/v1"
	"github.com/linkerd-go/linkerd-go/api/mesh"
)

// Var is one environment variable the proxy reads.
type Var struct {
	Name, Default, Help string
	Required            bool
}

// Vars lists every variable, for --help and the README.
var Vars = []Var{
	{"LINKERD2_PROXY_LOG", "info", "log level: trace, debug, info, warn or error (a Linkerd-style filter such as warn,linkerd=info uses its first bare level)", false},
	{"LINKERD2_PROXY_LOG_FORMAT", "plain", "log format: plain or json", false},
	{"LINKERD2_PROXY_INBOUND_LISTEN_ADDR", "0.0.0.0:4143", "inbound listener (redirected connections to the pod)", false},
	{"LINKERD2_PROXY_OUTBOUND_LISTEN_ADDRS", "127.0.0.1:4140", "outbound listeners, comma-separated (redirected connections from the pod)", false},
	{"LINKERD2_PROXY_ADMIN_LISTEN_ADDR", "0.0.0.0:4191", "admin server: /metrics, /ready, /live, /shutdown", false},
	{"LINKERD2_PROXY_CONTROL_LISTEN_ADDR", "0.0.0.0:4190", "control listener (reserved; not served yet)", false},
	{"LINKERD2_PROXY_IDENTITY_LOCAL_NAME", "", "this proxy's mesh identity name", true},
	{"LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS", "", "PEM bundle of the trust anchors", true},
	{"LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS_FILE", "", "file of the trust bundle, read every 10s and swapped in live when it changes (empty: the anchors above, for good)", false},
	{"LINKERD2_PROXY_IDENTITY_TOKEN_FILE", "/var/run/secrets/tokens/linkerd-identity-token", "projected ServiceAccount token (audience identity.l5d.io)", false},
	{"LINKERD2_PROXY_IDENTITY_SVC_ADDR", "", "identity service address (host:port)", true},
	{"LINKERD2_PROXY_IDENTITY_SVC_NAME", "", "identity service's mesh identity name", true},
	{"LINKERD2_PROXY_IDENTITY_DIR", "", "accepted for compatibility; keys are kept in memory", false},
	{"LINKERD2_PROXY_DESTINATION_SVC_ADDR", "", "destination service address (host:port)", true},
	{"LINKERD2_PROXY_DESTINATION_SVC_NAME", "", "destination service's mesh identity name", true},
	{"LINKERD2_PROXY_DESTINATION_CONTEXT", "", `context token sent with discovery requests: {"ns":…,"nodeName":…,"pod":…}`, false},
	{"LINKERD2_PROXY_DESTINATION_PROFILE_SUFFIXES", "svc.cluster.local.", "accepted for compatibility", false},
	{"LINKERD2_PROXY_INBOUND_PORTS", "", "the pod's container ports (comma-separated): their inbound policy is fetched at start; other ports' at their first connection", false},
	{"LINKERD2_PROXY_INBOUND_PORTS_DISABLE_PROTOCOL_DETECTION", mesh.DefaultOpaquePorts, "opaque ports: no protocol detection, inbound and outbound (list, a-b ranges)", false},
	{"LINKERD2_PROXY_INBOUND_DEFAULT_POLICY", "all-unauthenticated", "inbound policy of every port until the policy service answers for it, and of all ports without a policy service: all-unauthenticated, all-authenticated, cluster-unauthenticated, cluster-authenticated, deny or audit", false},
	{"LINKERD2_PROXY_POLICY_SVC_ADDR", "", "policy service address (host:port); unset: the default inbound policy applies to every port", false},
	{"LINKERD2_PROXY_POLICY_SVC_NAME", "", "the policy service's mesh identity (required with the address)", false},
	{"LINKERD2_PROXY_POLICY_WORKLOAD", "", `this pod, for the policy service: {"ns":"<namespace>","pod":"<name>"} (required with the address)`, false},
	{"LINKERD2_PROXY_POLICY_CLUSTER_NETWORKS", "", "the cluster's networks (comma-separated CIDRs), for the cluster-* default policies", false},
	{"LINKERD2_PROXY_SHUTDOWN_GRACE_PERIOD", "2m", "how long in-flight work may drain after SIGTERM", false},
	{"LINKERD2_PROXY_SHUTDOWN_ENDPOINT_ENABLED", "false", "serve POST /shutdown on the admin server (from localhost only)", false},
	{"LINKERD2_PROXY_DETECT_TIMEOUT", "10s", "protocol detection timeout", false},
	{"LINKERD2_PROXY_OUTBOUND_CONNECT_TIMEOUT", "1s", "connect timeout towards endpoints", false},
	{"LINKERD2_PROXY_INBOUND_CONNECT_TIMEOUT", "1s", "connect timeout towards the application", false},
	{"LINKERD2_PROXY_INGRESS_MODE", "false", "accepted for compatibility (ingress routing is not implemented yet)", false},
	{"LINKERD2_PROXY_INBOUND_MAX_IN_FLIGHT", "1000", "inbound HTTP requests waiting for their response's headers; past it a request gets 503 at once", false},
	{"LINKERD2_PROXY_OUTBOUND_MAX_IN_FLIGHT", "1000", "outbound HTTP requests waiting for their response's headers; past it a request gets 503 at once", false},
	{"LINKERD2_PROXY_INBOUND_MAX_CONNECTIONS", "4096", "inbound accepted connections open at once (HTTP and opaque); past it a connection is reset at once", false},
	{"LINKERD2_PROXY_OUTBOUND_MAX_CONNECTIONS", "4096", "outbound accepted connections open at once (HTTP and opaque); past it a connection is reset at once", false},
	{"LINKERD2_PROXY_INBOUND_SERVER_HTTP2_MAX_CONCURRENT_STREAMS", "250", "streams one HTTP/2 client connection may have open on the inbound side", false},
	{"LINKERD2_PROXY_OUTBOUND_SERVER_HTTP2_MAX_CONCURRENT_STREAMS", "250", "streams one HTTP/2 client connection may have open on the outbound side", false},
	{"LINKERD2_PROXY_INBOUND_SERVER_HTTP2_MAX_RAPID_RESETS_PER_SECOND", "1000", "streams an HTTP/2 client connection to the inbound side may reset before their answer, within a second of opening them, per second (and at once); past it the connection gets GOAWAY ENHANCE_YOUR_CALM", false},
	{"LINKERD2_PROXY_OUTBOUND_SERVER_HTTP2_MAX_RAPID_RESETS_PER_SECOND", "1000", "the same for HTTP/2 client connections to the outbound side", false},
}

// Config is the proxy's validated configuration.
type Config struct {
	LogLevel, LogFormat  string
	InboundAddr          string
	OutboundAddrs        []string
	AdminAddr            string
	ControlAddr          string // reserved: not served yet, but never forwarded to
	LocalName            string
	TrustAnchorsPEM      []byte
	TrustAnchorsFile     string
	TokenFile            string
	IdentityAddr         string
	IdentityName         string
	DestinationAddr      string
	DestinationName      string
	DestinationContext   string
	OpaquePorts          []mesh.PortRange
	DefaultInboundPolicy string
	// Inbound policy: the policy service (empty address: none), this pod,
	// the cluster's networks and the ports watched from the start.
	PolicyAddr, PolicyName string
	PolicyNamespace        string
	PolicyPod              string
	ClusterNetworks        []netip.Prefix
	InboundPorts           []uint16
	ShutdownGrace          time.Duration
	ShutdownEndpoint       bool
	DetectTimeout          time.Duration
	OutboundConnectTimeout time.Duration
	InboundConnectTimeout  time.Duration
	Inbound, Outbound      SideLimits
}

// SideLimits bound the work of one side (inbound or outbound).
type SideLimits struct {
	MaxInFlight, MaxConnections, HTTP2MaxConcurrentStreams int
	// HTTP2MaxRapidResetsPerSecond is the rapid-reset budget of each
	// HTTP/2 client connection: h2guard.PerSecond(n) as
	// h2guard.Limits.RapidResets, n at once and n per second.
	HTTP2MaxRapidResetsPerSecond int
}

// FromEnv reads and validates the configuration; getenv is os.Getenv
// except in tests. All problems are reported together.
func FromEnv(getenv func(string) string) (*Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	get := func(name string) string {
		if v := getenv(name); v != "" {
			return v
		}
		for _, v := range Vars {
			if v.Name == name {
				return v.Default
			}
		}
		return ""
	}
	var errs []error
	bad := func(name string, err error) { errs = append(errs, fmt.Errorf("%s: %w", name, err)) }
	for _, v := range Vars {
		if v.Required && getenv(v.Name) == "" {
			bad(v.Name, errors.New("required"))
		}
	}
	c := &Config{
		LogFormat:            get("LINKERD2_PROXY_LOG_FORMAT"),
		InboundAddr:          get("LINKERD2_PROXY_INBOUND_LISTEN_ADDR"),
		AdminAddr:            get("LINKERD2_PROXY_ADMIN_LISTEN_ADDR"),
		ControlAddr:          get("LINKERD2_PROXY_CONTROL_LISTEN_ADDR"),
		LocalName:            get("LINKERD2_PROXY_IDENTITY_LOCAL_NAME"),
		TrustAnchorsPEM:      []byte(get("LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS")),
		TrustAnchorsFile:     get("LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS_FILE"),
		TokenFile:            get("LINKERD2_PROXY_IDENTITY_TOKEN_FILE"),
		IdentityAddr:         get("LINKERD2_PROXY_IDENTITY_SVC_ADDR"),
		IdentityName:         get("LINKERD2_PROXY_IDENTITY_SVC_NAME"),
		DestinationAddr:      get("LINKERD2_PROXY_DESTINATION_SVC_ADDR"),
		DestinationName:      get("LINKERD2_PROXY_DESTINATION_SVC_NAME"),
		DestinationContext:   get("LINKERD2_PROXY_DESTINATION_CONTEXT"),
		DefaultInboundPolicy: get("LINKERD2_PROXY_INBOUND_DEFAULT_POLICY"),
	}
	var err error
	if c.LogLevel, err = parseLogLevel(get("LINKERD2_PROXY_LOG")); err != nil {
		bad("LINKERD2_PROXY_LOG", err)
	}
	if c.LogFormat != "plain" && c.LogFormat != "json" {
		bad("LINKERD2_PROXY_LOG_FORMAT", fmt.Errorf("%q is not plain or json", c.LogFormat))
	}
	for _, a := range []struct{ name, v string }{
		{"LINKERD2_PROXY_INBOUND_LISTEN_ADDR", c.InboundAddr},
		{"LINKERD2_PROXY_ADMIN_LISTEN_ADDR", c.AdminAddr},
		{"LINKERD2_PROXY_CONTROL_LISTEN_ADDR", c.ControlAddr},
	} {
		if _, err := netip.ParseAddrPort(a.v); err != nil {
			bad(a.name, err)
		}
	}
	for _, a := range strings.Split(get("LINKERD2_PROXY_OUTBOUND_LISTEN_ADDRS"), ",") {
		a = strings.TrimSpace(a)
		if _, err := netip.ParseAddrPort(a); err != nil {
			bad("LINKERD2_PROXY_OUTBOUND_LISTEN_ADDRS", err)
			continue
		}
		c.OutboundAddrs = append(c.OutboundAddrs, a)
	}
	if c.DestinationContext != "" {
		if _, err := destinationv1.ParseContextToken(c.DestinationContext); err != nil {
			bad("LINKERD2_PROXY_DESTINATION_CONTEXT", err)
		}
	}
	if c.OpaquePorts, err = mesh.ParsePortRanges(get("LINKERD2_PROXY_INBOUND_PORTS_DISABLE_PROTOCOL_DETECTION")); err != nil {
		bad("LINKERD2_PROXY_INBOUND_PORTS_DISABLE_PROTOCOL_DETECTION", err)
	}
	durations := []struct {
		name string
		dst  *time.Duration
	}{
		{"LINKERD2_PROXY_SHUTDOWN_GRACE_PERIOD", &c.ShutdownGrace},
		{"LINKERD2_PROXY_DETECT_TIMEOUT", &c.DetectTimeout},
		{"LINKERD2_PROXY_OUTBOUND_CONNECT_TIMEOUT", &c.OutboundConnectTimeout},
		{"LINKERD2_PROXY_INBOUND_CONNECT_TIMEOUT", &c.InboundConnectTimeout},
	}
	for _, d := range durations {
		v, err := parseDuration(get(d.name))
		if err != nil {
			bad(d.name, err)
		}
		*d.dst = v
	}
	counts := []struct {
		name string
		dst  *int
	}{
		{"LINKERD2_PROXY_INBOUND_MAX_IN_FLIGHT", &c.Inbound.MaxInFlight},
		{"LINKERD2_PROXY_OUTBOUND_MAX_IN_FLIGHT", &c.Outbound.MaxInFlight},
		{"LINKERD2_PROXY_INBOUND_MAX_CONNECTIONS", &c.Inbound.MaxConnections},
		{"LINKERD2_PROXY_OUTBOUND_MAX_CONNECTIONS", &c.Outbound.MaxConnections},
		{"LINKERD2_PROXY_INBOUND_SERVER_HTTP2_MAX_CONCURRENT_STREAMS", &c.Inbound.HTTP2MaxConcurrentStreams},
		{"LINKERD2_PROXY_OUTBOUND_SERVER_HTTP2_MAX_CONCURRENT_STREAMS", &c.Outbound.HTTP2MaxConcurrentStreams},
		{"LINKERD2_PROXY_INBOUND_SERVER_HTTP2_MAX_RAPID_RESETS_PER_SECOND", &c.Inbound.HTTP2MaxRapidResetsPerSecond},
		{"LINKERD2_PROXY_OUTBOUND_SERVER_HTTP2_MAX_RAPID_RESETS_PER_SECOND", &c.Outbound.HTTP2MaxRapidResetsPerSecond},
	}
	for _, n := range counts {
		v, err := strconv.Atoi(get(n.name))
		if err == nil && (v < 1 || v > 1<<24) {
			err = fmt.Errorf("%d is not between 1 and %d", v, 1<<24)
		}
		if err != nil {
			bad(n.name, err)
		}
		*n.dst = v
	}
	if c.ShutdownEndpoint, err = strconv.ParseBool(get("LINKERD2_PROXY_SHUTDOWN_ENDPOINT_ENABLED")); err != nil {
		bad("LINKERD2_PROXY_SHUTDOWN_ENDPOINT_ENABLED", err)
	}
	errs = append(errs, c.readPolicy(get)...)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}

// parseDuration accepts Go durations ("90s", "2m") and bare seconds ("120").
func parseDuration(s string) (time.Duration, error) {
	if n, err := strconv.Atoi(s); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, err
	}
	if d <= 0 {
		return 0, fmt.Errorf("%s is not positive", s)
	}
	return d, nil
}

// parseLogLevel takes the first bare level of a Linkerd log filter.
func parseLogLevel(s string) (string, error) {
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" || strings.Contains(part, "=") {
			continue
		}
		switch strings.ToLower(part) {
		case "trace", "debug", "info", "warn", "error", "off":
			return strings.ToLower(part), nil
		}
		return "", fmt.Errorf("unknown level %q", part)
	}
	return "info", nil
}

// DefaultInboundPolicies are the names LINKERD2_PROXY_INBOUND_DEFAULT_POLICY
// accepts.
var DefaultInboundPolicies = []string{"all-unauthenticated", "all-authenticated", "cluster-unauthenticated", "cluster-authenticated", "deny", "audit"}

// readPolicy reads the inbound policy variables.
func (c *Config) readPolicy(get func(string) string) []error {
	var errs []error
	bad := func(name string, err error) { errs = append(errs, fmt.Errorf("%s: %w", name, err)) }
	if !slices.Contains(DefaultInboundPolicies, c.DefaultInboundPolicy) {
		bad("LINKERD2_PROXY_INBOUND_DEFAULT_POLICY", fmt.Errorf("%q is not one of %s", c.DefaultInboundPolicy, strings.Join(DefaultInboundPolicies, ", ")))
	}
	for _, f := range strings.Split(get("LINKERD2_PROXY_POLICY_CLUSTER_NETWORKS"), ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			bad("LINKERD2_PROXY_POLICY_CLUSTER_NETWORKS", err)
			continue
		}
		c.ClusterNetworks = append(c.ClusterNetworks, p.Masked())
	}
	if strings.HasPrefix(c.DefaultInboundPolicy, "cluster-") && len(c.ClusterNetworks) == 0 {
		bad("LINKERD2_PROXY_POLICY_CLUSTER_NETWORKS", fmt.Errorf("required by the default inbound policy %s", c.DefaultInboundPolicy))
	}
	for _, f := range strings.Split(get("LINKERD2_PROXY_INBOUND_PORTS"), ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.ParseUint(f, 10, 16)
		if err != nil || n == 0 {
			bad("LINKERD2_PROXY_INBOUND_PORTS", fmt.Errorf("%q is not a port", f))
			continue
		}
		c.InboundPorts = append(c.InboundPorts, uint16(n))
	}
	c.PolicyAddr, c.PolicyName = get("LINKERD2_PROXY_POLICY_SVC_ADDR"), get("LINKERD2_PROXY_POLICY_SVC_NAME")
	if c.PolicyAddr == "" {
		return errs
	}
	if _, _, err := net.SplitHostPort(c.PolicyAddr); err != nil {
		bad("LINKERD2_PROXY_POLICY_SVC_ADDR", err)
	}
	if c.PolicyName == "" {
		bad("LINKERD2_PROXY_POLICY_SVC_NAME", errors.New("required with LINKERD2_PROXY_POLICY_SVC_ADDR"))
	}
	var w struct {
		Namespace string `json:"ns"`
		Pod       string `json:"pod"`
	}
	if err := json.Unmarshal([]byte(get("LINKERD2_PROXY_POLICY_WORKLOAD")), &w); err != nil || w.Namespace == "" || w.Pod == "" {
		bad("LINKERD2_PROXY_POLICY_WORKLOAD", errors.New(`want {"ns":"<namespace>","pod":"<name>"} with both set`))
	}
	c.PolicyNamespace, c.PolicyPod = w.Namespace, w.Pod
	return errs
}
