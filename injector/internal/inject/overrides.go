package inject

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/linkerd-go/linkerd-go/api/mesh"

	"github.com/linkerd-go/linkerd-go/injector/internal/config"
)

// settings are what one pod gets: the config file's values with the pod's
// (or its namespace's) overrides applied.
type settings struct {
	proxyImage      config.Image
	initPullPolicy  corev1.PullPolicy
	uid, gid        int64
	logLevel        string
	logFormat       string
	inboundPolicy   string
	opaquePorts     []mesh.PortRange
	skipInbound     []mesh.PortRange
	skipOutbound    []mesh.PortRange
	skipSubnets     []netip.Prefix
	nativeSidecar   bool
	shutdownGrace   string
	cpu, memory     bounds
	proxyPullPolicy corev1.PullPolicy
}

type bounds struct{ request, limit string }

func defaultSettings(c *config.Config) settings {
	// The config is validated: these parse.
	opaque, _ := config.ParsePorts(c.Proxy.OpaquePorts)
	skipIn, _ := config.ParsePorts(c.ProxyInit.IgnoreInboundPorts)
	skipOut, _ := config.ParsePorts(c.ProxyInit.IgnoreOutboundPorts)
	subnets, _ := config.ParseSubnets(c.ProxyInit.SkipSubnets)
	return settings{
		proxyImage:      c.Proxy.Image,
		proxyPullPolicy: corev1.PullPolicy(c.Proxy.Image.PullPolicy),
		initPullPolicy:  corev1.PullPolicy(c.ProxyInit.Image.PullPolicy),
		uid:             c.Proxy.UID,
		gid:             c.Proxy.GID,
		logLevel:        c.Proxy.LogLevel,
		logFormat:       c.Proxy.LogFormat,
		inboundPolicy:   c.Proxy.DefaultInboundPolicy,
		opaquePorts:     opaque,
		skipInbound:     skipIn,
		skipOutbound:    skipOut,
		skipSubnets:     subnets,
		nativeSidecar:   c.Proxy.NativeSidecar,
		shutdownGrace:   c.Proxy.ShutdownGracePeriod,
		cpu:             bounds{c.Proxy.Resources.CPU.Request, c.Proxy.Resources.CPU.Limit},
		memory:          bounds{c.Proxy.Resources.Memory.Request, c.Proxy.Resources.Memory.Limit},
	}
}

// An override is one config.linkerd.io/* annotation.
type override struct {
	key string
	// critical overrides decide which traffic the proxy sees or who may
	// reach the pod: a bad value leaves the pod un-injected, rather than
	// meshing it with a behaviour nobody asked for. A bad value of any other
	// override keeps the config's default for that setting.
	critical bool
	apply    func(s *settings, v string, pod *corev1.Pod) error
}

// overrides lists every override, in the order they are applied and
// reported.
var overrides = []override{
	{key: mesh.AnnotationProxyImage, apply: func(s *settings, v string, _ *corev1.Pod) error {
		if err := config.ValidateImageName(v); err != nil {
			return err
		}
		s.proxyImage.Name = v
		return nil
	}},
	{key: mesh.AnnotationProxyVersionOverride, apply: func(s *settings, v string, _ *corev1.Pod) error {
		if err := config.ValidateImageVersion(v); err != nil {
			return err
		}
		s.proxyImage.Version = v
		return nil
	}},
	{key: mesh.AnnotationImagePullPolicy, apply: func(s *settings, v string, _ *corev1.Pod) error {
		p, err := config.ParsePullPolicy(v)
		if err != nil {
			return err
		}
		s.proxyPullPolicy, s.initPullPolicy = p, p
		return nil
	}},
	{key: mesh.AnnotationSkipInboundPorts, critical: true, apply: func(s *settings, v string, pod *corev1.Pod) error {
		rs, err := parsePodPorts(v, pod)
		s.skipInbound = rs
		return err
	}},
	{key: mesh.AnnotationSkipOutboundPorts, critical: true, apply: func(s *settings, v string, _ *corev1.Pod) error {
		rs, err := config.ParsePorts(v)
		s.skipOutbound = rs
		return err
	}},
	{key: mesh.AnnotationSkipSubnets, critical: true, apply: func(s *settings, v string, _ *corev1.Pod) error {
		ps, err := config.ParseSubnets(v)
		s.skipSubnets = ps
		return err
	}},
	{key: mesh.AnnotationOpaquePorts, critical: true, apply: func(s *settings, v string, pod *corev1.Pod) error {
		rs, err := parsePodPorts(v, pod)
		s.opaquePorts = rs
		return err
	}},
	{key: mesh.AnnotationDefaultInboundPolicy, critical: true, apply: func(s *settings, v string, _ *corev1.Pod) error {
		if err := config.ValidateInboundPolicy(v); err != nil {
			return err
		}
		s.inboundPolicy = v
		return nil
	}},
	{key: mesh.AnnotationProxyCPURequest, apply: quantity(func(s *settings) *string { return &s.cpu.request })},
	{key: mesh.AnnotationProxyCPULimit, apply: quantity(func(s *settings) *string { return &s.cpu.limit })},
	{key: mesh.AnnotationProxyMemoryRequest, apply: quantity(func(s *settings) *string { return &s.memory.request })},
	{key: mesh.AnnotationProxyMemoryLimit, apply: quantity(func(s *settings) *string { return &s.memory.limit })},
	{key: mesh.AnnotationProxyLogLevel, apply: func(s *settings, v string, _ *corev1.Pod) error {
		if err := config.ValidateProxyLogLevel(v); err != nil {
			return err
		}
		s.logLevel = v
		return nil
	}},
	{key: mesh.AnnotationProxyLogFormat, apply: func(s *settings, v string, _ *corev1.Pod) error {
		if err := config.ValidateLogFormat(v); err != nil {
			return err
		}
		s.logFormat = v
		return nil
	}},
	{key: mesh.AnnotationProxyUID, apply: func(s *settings, v string, _ *corev1.Pod) error {
		uid, err := config.ParseUID(v)
		if err != nil {
			return err
		}
		s.uid = uid
		return nil
	}},
	{key: mesh.AnnotationProxyGID, apply: func(s *settings, v string, _ *corev1.Pod) error {
		gid, err := config.ParseGID(v)
		if err != nil {
			return err
		}
		s.gid = gid
		return nil
	}},
	{key: mesh.AnnotationNativeSidecar, apply: func(s *settings, v string, _ *corev1.Pod) error {
		b, err := config.ParseBool(v)
		if err != nil {
			return err
		}
		s.nativeSidecar = b
		return nil
	}},
	{key: mesh.AnnotationShutdownGracePeriod, apply: func(s *settings, v string, _ *corev1.Pod) error {
		if _, err := config.ParseShutdownGracePeriod(v); err != nil {
			return err
		}
		s.shutdownGrace = v
		return nil
	}},
}

// OverrideKeys returns the annotation keys of every override, for metrics
// and documentation.
func OverrideKeys() []string {
	keys := make([]string, len(overrides))
	for i, o := range overrides {
		keys[i] = o.key
	}
	return keys
}

func quantity(field func(*settings) *string) func(*settings, string, *corev1.Pod) error {
	return func(s *settings, v string, _ *corev1.Pod) error {
		q, err := config.ParseQuantity(v)
		if err != nil {
			return err
		}
		*field(s) = q.String()
		return nil
	}
}

// Problem is a bad override value.
type Problem struct {
	// Key is the annotation.
	Key string
	// Value is its value.
	Value string
	// FromNamespace says the value came from the namespace.
	FromNamespace bool
	// Critical problems leave the pod un-injected.
	Critical bool
	// Err says what is wrong.
	Err error
}

func (p Problem) String() string {
	where := "pod"
	if p.FromNamespace {
		where = "namespace"
	}
	outcome := "the default is kept"
	if p.Critical {
		outcome = "the pod is not injected"
	}
	return fmt.Sprintf("%s annotation %s=%q: %v; %s", where, p.Key, truncate(p.Value), p.Err, outcome)
}

// resolve applies the pod's overrides, or its namespace's where the pod sets
// none, over the config's defaults. It returns the settings, the problems
// found, and the namespace annotations that applied (to record on the pod).
func resolve(c *config.Config, pod *corev1.Pod, nsAnnotations map[string]string) (settings, []Problem, map[string]string) {
	s := defaultSettings(c)
	var problems []Problem
	inherited := map[string]string{}
	for _, o := range overrides {
		v, fromNS, ok := lookup(o.key, pod.Annotations, nsAnnotations)
		if !ok {
			continue
		}
		before := s
		if err := o.apply(&s, strings.TrimSpace(v), pod); err != nil {
			s = before
			problems = append(problems, Problem{Key: o.key, Value: v, FromNamespace: fromNS, Critical: o.critical, Err: err})
			continue
		}
		if fromNS {
			inherited[o.key] = v
		}
	}
	// A request above its limit makes the pod invalid: keep the config's
	// bounds for that resource instead.
	d := defaultSettings(c)
	for _, r := range []struct {
		name     string
		b, def   *bounds
		req, lim string
	}{
		{"cpu", &s.cpu, &d.cpu, mesh.AnnotationProxyCPURequest, mesh.AnnotationProxyCPULimit},
		{"memory", &s.memory, &d.memory, mesh.AnnotationProxyMemoryRequest, mesh.AnnotationProxyMemoryLimit},
	} {
		if r.b.request == "" || r.b.limit == "" {
			continue
		}
		req, lim := resource.MustParse(r.b.request), resource.MustParse(r.b.limit)
		if req.Cmp(lim) <= 0 {
			continue
		}
		v, fromNS, _ := lookup(r.req, pod.Annotations, nsAnnotations)
		problems = append(problems, Problem{
			Key:           r.req,
			Value:         v,
			FromNamespace: fromNS,
			Err:           fmt.Errorf("%s request %s is more than its limit %s", r.name, r.b.request, r.b.limit),
		})
		*r.b = *r.def
		delete(inherited, r.req)
		delete(inherited, r.lim)
	}
	return s, problems, inherited
}

// lookup returns the pod's value of key, else the namespace's.
func lookup(key string, pod, ns map[string]string) (v string, fromNS, ok bool) {
	if v, ok := pod[key]; ok {
		return v, false, true
	}
	if v, ok := ns[key]; ok {
		return v, true, true
	}
	return "", false, false
}

// parsePodPorts parses a port list in which items may also be the names of
// the pod's container ports ("http,8080-8090"), resolved to their numbers.
func parsePodPorts(s string, pod *corev1.Pod) ([]mesh.PortRange, error) {
	if len(s) > mesh.MaxPortListLength {
		return nil, fmt.Errorf("%d bytes, more than %d", len(s), mesh.MaxPortListLength)
	}
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []mesh.PortRange
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if len(validation.IsValidPortName(item)) == 0 {
			port, ok := namedPort(pod, item)
			if !ok {
				return nil, fmt.Errorf("no container of the pod has a port named %q", item)
			}
			out = append(out, mesh.PortRange{First: port, Last: port})
			continue
		}
		rs, err := config.ParsePorts(item)
		if err != nil {
			return nil, err
		}
		if len(rs) != 1 {
			return nil, errors.New("empty item")
		}
		out = append(out, rs[0])
	}
	return out, nil
}

func namedPort(pod *corev1.Pod, name string) (uint16, bool) {
	for _, c := range slices.Concat(pod.Spec.InitContainers, pod.Spec.Containers) {
		for _, p := range c.Ports {
			if p.Name == name && p.ContainerPort > 0 && p.ContainerPort <= 65535 {
				return uint16(p.ContainerPort), true
			}
		}
	}
	return 0, false
}

// itoa formats an int64.
func itoa(n int64) string { return strconv.FormatInt(n, 10) }
