// Package target parses the paths proxies ask about: a Service's DNS name
// (optionally with a pod hostname in front) or an IP address, with a port.
package target

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// MaxPathLength bounds the paths Parse accepts: a DNS name (253) and a port.
const MaxPathLength = 260

// DefaultPort is the port of a path that names none.
const DefaultPort = 80

// ErrMalformed is wrapped by every error Parse returns.
var ErrMalformed = errors.New("malformed target")

// Target is a parsed path. Exactly one of Service and Addr is set.
type Target struct {
	// Namespace and Service name the Service of a DNS-name target.
	Namespace, Service string
	// Hostname names one pod of the Service ("web-0" in
	// "web-0.web.ns.svc.cluster.local"); empty for the whole Service.
	Hostname string
	// Addr is the IP of an address target (a cluster IP or a pod IP).
	Addr netip.Addr
	// Port is the port the client dialled.
	Port uint16
}

// IsService reports whether the target names a Service by DNS name.
func (t Target) IsService() bool { return t.Service != "" }

// FQDN returns the Service's name under clusterDomain, without a port.
func (t Target) FQDN(clusterDomain string) string {
	return ServiceFQDN(t.Service, t.Namespace, clusterDomain)
}

// ServiceFQDN returns "<service>.<namespace>.svc.<clusterDomain>".
func ServiceFQDN(service, namespace, clusterDomain string) string {
	return service + "." + namespace + ".svc." + clusterDomain
}

// String returns the target in path form, without the cluster domain.
func (t Target) String() string { return t.Path("") }

// Path returns the target in the path form Parse reads, its DNS name under
// clusterDomain (none when empty).
func (t Target) Path(clusterDomain string) string {
	if t.Addr.IsValid() {
		return netip.AddrPortFrom(t.Addr, t.Port).String()
	}
	host := t.Service + "." + t.Namespace + ".svc"
	if clusterDomain != "" {
		host += "." + clusterDomain
	}
	if t.Hostname != "" {
		host = t.Hostname + "." + host
	}
	return host + ":" + strconv.Itoa(int(t.Port))
}

// Parse parses a path: "<svc>.<ns>.svc.<clusterDomain>[:<port>]",
// "<hostname>.<svc>.<ns>.svc.<clusterDomain>[:<port>]" or "<ip>:<port>"
// (IPv6 in brackets). A DNS name may end with a dot and is read in lower
// case; a missing port is DefaultPort. Names outside the cluster domain are
// errors: the caller resolves them itself.
func Parse(path, clusterDomain string) (Target, error) {
	if len(path) > MaxPathLength {
		return Target{}, fmt.Errorf("%w: %d bytes, more than %d", ErrMalformed, len(path), MaxPathLength)
	}
	if path == "" {
		return Target{}, fmt.Errorf("%w: empty path", ErrMalformed)
	}
	if ap, err := netip.ParseAddrPort(path); err == nil {
		if ap.Addr().Zone() != "" {
			return Target{}, fmt.Errorf("%w: %q: IPv6 zones are not supported", ErrMalformed, path)
		}
		if ap.Port() == 0 {
			return Target{}, fmt.Errorf("%w: %q: port 0", ErrMalformed, path)
		}
		return Target{Addr: ap.Addr().Unmap(), Port: ap.Port()}, nil
	}
	host, port, err := splitHostPort(path)
	if err != nil {
		return Target{}, fmt.Errorf("%w: %q: %v", ErrMalformed, path, err)
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return Target{}, fmt.Errorf("%w: %q: an IP address needs a port", ErrMalformed, path)
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	suffix := ".svc." + strings.ToLower(strings.TrimSuffix(clusterDomain, "."))
	name, ok := strings.CutSuffix(host, suffix)
	if !ok {
		return Target{}, fmt.Errorf("%w: %q is not a Service name under %q", ErrMalformed, path, suffix[1:])
	}
	labels := strings.Split(name, ".")
	var t Target
	switch len(labels) {
	case 2:
		t = Target{Service: labels[0], Namespace: labels[1]}
	case 3:
		t = Target{Hostname: labels[0], Service: labels[1], Namespace: labels[2]}
	default:
		return Target{}, fmt.Errorf("%w: %q: want <service>.<namespace> or <hostname>.<service>.<namespace> before %q", ErrMalformed, path, suffix)
	}
	for _, l := range labels {
		if errs := validation.IsDNS1123Label(l); len(errs) > 0 {
			return Target{}, fmt.Errorf("%w: %q: label %q: %s", ErrMalformed, path, l, errs[0])
		}
	}
	t.Port = port
	return t, nil
}

func splitHostPort(s string) (string, uint16, error) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return s, DefaultPort, nil
	}
	host, p := s[:i], s[i+1:]
	if p == "" || len(p) > 5 || strings.TrimLeft(p, "0123456789") != "" {
		return "", 0, fmt.Errorf("port %q is not a number", p)
	}
	n, _ := strconv.Atoi(p)
	if n < 1 || n > 65535 {
		return "", 0, fmt.Errorf("port %d out of range 1-65535", n)
	}
	if host == "" {
		return "", 0, errors.New("empty host")
	}
	return host, uint16(n), nil
}
