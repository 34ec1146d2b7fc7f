package mesh

// The proxy's well-known ports.
const (
	// OutboundPort is where the proxy accepts the application's outgoing
	// connections, redirected to it by proxy-init. It listens on loopback only.
	OutboundPort = 4140
	// InboundPort is where the proxy accepts connections to the pod, redirected
	// to it by proxy-init, including mesh TLS from other proxies. Its container
	// port is named "linkerd-proxy".
	InboundPort = 4143
	// ControlPort is the proxy's control port (reserved for tap-like
	// diagnostics). Never redirected.
	ControlPort = 4190
	// AdminPort serves the proxy's /metrics, /ready and /live. Its container
	// port is named "linkerd-admin". Never redirected.
	AdminPort = 4191
)

// DefaultProxyUID is the user ID the proxy runs as. proxy-init exempts this
// user's traffic from redirection, so the proxy's own connections go out as
// they are.
const DefaultProxyUID = 2102

// DefaultOpaquePorts are the ports whose protocols speak first from the
// server side (SMTP, MySQL, Galera, PostgreSQL, Redis, Elasticsearch,
// memcached), so protocol detection would stall: they are proxied as opaque
// TCP unless configured otherwise.
const DefaultOpaquePorts = "25,587,3306,4444,5432,6379,9300,11211"

// DefaultInboundPortsToIgnore returns the inbound ports proxy-init never
// redirects: the proxy's own control and admin ports.
func DefaultInboundPortsToIgnore() []PortRange {
	return []PortRange{{ControlPort, ControlPort}, {AdminPort, AdminPort}}
}
