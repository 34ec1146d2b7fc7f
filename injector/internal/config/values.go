package config

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/linkerd-go/linkerd-go/api/mesh"
)

// The value checks below are shared by the config file and the
// config.linkerd.io/* annotations, so that a value means the same thing
// wherever it is written. Each returns an error that says what is wrong with
// the value, without repeating the value's name.

// maxValueLength bounds every free-form value (images, log filters, subnet
// lists); annotations may be up to 256 KiB in total, and nothing here needs
// more than this.
const maxValueLength = 4096

// imageNameRE is an image reference without tag or digest: an optional
// registry host (with port), then lower-case path components.
var imageNameRE = regexp.MustCompile(`^([A-Za-z0-9][A-Za-z0-9.-]*(:[0-9]+)?/)?[a-z0-9]+([._-]+[a-z0-9]+)*(/[a-z0-9]+([._-]+[a-z0-9]+)*)*$`)

// imageVersionRE is an image tag.
var imageVersionRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

// ValidateImageName checks an image name without tag or digest, such as
// "cr.l5d.io/linkerd/proxy" or "localhost:5000/proxy".
func ValidateImageName(s string) error {
	if len(s) > 255 || !imageNameRE.MatchString(s) {
		return errors.New("not an image name without tag or digest (e.g. cr.l5d.io/linkerd/proxy)")
	}
	return nil
}

// ValidateImageVersion checks an image tag, such as "v1.2.3".
func ValidateImageVersion(s string) error {
	if !imageVersionRE.MatchString(s) {
		return errors.New("not an image tag (letters, digits, '_', '.', '-'; at most 128)")
	}
	return nil
}

// ParsePullPolicy checks an image pull policy: Always, IfNotPresent or Never.
func ParsePullPolicy(s string) (corev1.PullPolicy, error) {
	switch p := corev1.PullPolicy(s); p {
	case corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever:
		return p, nil
	}
	return "", errors.New("not one of Always, IfNotPresent, Never")
}

// proxyLogLevels are the levels of the proxy's log filter.
var proxyLogLevels = []string{"trace", "debug", "info", "warn", "error", "off"}

// logTargetRE is a log target of the proxy's filter, such as "linkerd" or
// "linkerd::proxy".
var logTargetRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(::[A-Za-z_][A-Za-z0-9_]*)*$`)

// ValidateProxyLogLevel checks the proxy's log filter (LINKERD2_PROXY_LOG):
// comma-separated items, each a level or target=level, such as
// "warn,linkerd=info". Levels: trace, debug, info, warn, error, off.
func ValidateProxyLogLevel(s string) error {
	if s == "" || len(s) > maxValueLength {
		return errors.New("not a log filter (e.g. warn,linkerd=info)")
	}
	for item := range strings.SplitSeq(s, ",") {
		level := item
		if target, l, ok := strings.Cut(item, "="); ok {
			if !logTargetRE.MatchString(target) {
				return fmt.Errorf("log target %q is not a module path (e.g. linkerd::proxy)", target)
			}
			level = l
		}
		if !slices.Contains(proxyLogLevels, level) {
			return fmt.Errorf("log level %q is not one of %s", level, strings.Join(proxyLogLevels, ", "))
		}
	}
	return nil
}

// ValidateLogFormat checks a log format: plain or json.
func ValidateLogFormat(s string) error {
	if s != "plain" && s != "json" {
		return errors.New("not one of plain, json")
	}
	return nil
}

// proxyInitLogLevels are the levels proxy-init's --log-level takes.
var proxyInitLogLevels = []string{"debug", "info", "warn", "error"}

// ValidateProxyInitLogLevel checks proxy-init's --log-level.
func ValidateProxyInitLogLevel(s string) error {
	if !slices.Contains(proxyInitLogLevels, s) {
		return fmt.Errorf("not one of %s", strings.Join(proxyInitLogLevels, ", "))
	}
	return nil
}

// InboundPolicies are the default inbound policies, for ports that no Server
// describes.
var InboundPolicies = []string{
	"all-unauthenticated", "all-authenticated",
	"cluster-unauthenticated", "cluster-authenticated",
	"deny", "audit",
}

// ValidateInboundPolicy checks a default inbound policy.
func ValidateInboundPolicy(s string) error {
	if !slices.Contains(InboundPolicies, s) {
		return fmt.Errorf("not one of %s", strings.Join(InboundPolicies, ", "))
	}
	return nil
}

// ParsePorts parses a port list ("25,587,8000-8100"), as api/mesh defines it.
func ParsePorts(s string) ([]mesh.PortRange, error) {
	rs, err := mesh.ParsePortRanges(s)
	if err != nil {
		// The mesh error names the bad item; drop its generic prefix.
		return nil, errors.New(strings.TrimPrefix(err.Error(), mesh.ErrMalformedPortList.Error()+": "))
	}
	return rs, nil
}

// maxSubnets bounds subnet lists, as proxy-init does.
const maxSubnets = 100

// ParseSubnets parses a comma-separated list of CIDRs (IPv4 or IPv6), blanks
// around items allowed. The empty string is the empty list. The prefixes are
// returned masked, in the order written.
func ParseSubnets(s string) ([]netip.Prefix, error) {
	if len(s) > maxValueLength {
		return nil, fmt.Errorf("%d bytes, more than %d", len(s), maxValueLength)
	}
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []netip.Prefix
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		p, err := netip.ParsePrefix(item)
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR (e.g. 10.0.0.0/8)", item)
		}
		out = append(out, p.Masked())
	}
	if len(out) > maxSubnets {
		return nil, fmt.Errorf("%d subnets, more than %d", len(out), maxSubnets)
	}
	return out, nil
}

// FormatSubnets returns the comma-separated form of ps.
func FormatSubnets(ps []netip.Prefix) string {
	parts := make([]string, len(ps))
	for i, p := range ps {
		parts[i] = p.String()
	}
	return strings.Join(parts, ",")
}

// ParseUID parses a user ID the proxy may run as: 1 to 2^31-1 (never root).
func ParseUID(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 1 || n > 1<<31-1 {
		return 0, errors.New("not a user ID from 1 to 2147483647 (the proxy never runs as root)")
	}
	return n, nil
}

// ParseGID parses a group ID: 0 to 2^31-1.
func ParseGID(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > 1<<31-1 {
		return 0, errors.New("not a group ID from 0 to 2147483647")
	}
	return n, nil
}

// ParseBool parses true or false (any case).
func ParseBool(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, errors.New("not true or false")
}

// MaxShutdownGracePeriod bounds the proxy's shutdown grace period.
const MaxShutdownGracePeriod = time.Hour

// ParseShutdownGracePeriod parses a Go duration ("30s", "2m") from 1s to 1h.
func ParseShutdownGracePeriod(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d < time.Second || d > MaxShutdownGracePeriod {
		return 0, errors.New("not a duration from 1s to 1h (e.g. 30s, 2m)")
	}
	return d, nil
}

// ParseQuantity parses a resource quantity ("100m", "64Mi"); it must not be
// negative.
func ParseQuantity(s string) (resource.Quantity, error) {
	if len(s) > 64 {
		return resource.Quantity{}, errors.New("not a resource quantity (e.g. 100m, 64Mi)")
	}
	q, err := resource.ParseQuantity(s)
	if err != nil {
		return resource.Quantity{}, errors.New("not a resource quantity (e.g. 100m, 64Mi)")
	}
	if q.Sign() < 0 {
		return resource.Quantity{}, errors.New("negative resource quantity")
	}
	return q, nil
}
