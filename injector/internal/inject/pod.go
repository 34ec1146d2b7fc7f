package inject

import (
	"net"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"

	identityv1 "github.com/linkerd-go/linkerd-go/api/linkerd/identity/v1"
	"github.com/linkerd-go/linkerd-go/api/mesh"

	"github.com/linkerd-go/linkerd-go/injector/internal/config"
)

// Paths inside the proxy container.
const (
	// IdentityDir is an in-memory folder where the proxy may keep its key.
	IdentityDir = "/var/run/linkerd/identity/end-entity"
	// TokenDir holds the projected ServiceAccount token.
	TokenDir = "/var/run/secrets/tokens"
	// TokenFile is the projected token the proxy presents to identity.
	TokenFile = TokenDir + "/" + mesh.IdentityTokenVolumeName
	// TokenExpirationSeconds is the lifetime of the projected token; the
	// kubelet refreshes it well before then.
	TokenExpirationSeconds = 86400
)

// Probe settings of the proxy. The startup probe is Linkerd's
// (proxy.startupProbe: initialDelaySeconds 0, periodSeconds 1,
// failureThreshold 120): a native-sidecar proxy has two minutes to hold a
// certificate before the kubelet restarts it. Without one the proxy retries
// identity at most 2s apart (proxy/internal/identity), so a pod created
// during a shorter identity outage starts within seconds of identity's
// return, without a restart. Liveness (/live) does not depend on the
// certificate.
const (
	startupPeriodSeconds    = 1
	startupFailureThreshold = 120 // two minutes to become ready
)

// nonRootInitUID is the user proxy-init runs as when not root ("nobody").
const nonRootInitUID = 65534

// builder builds the patch for one pod.
type builder struct {
	cfg       *config.Config
	s         *settings
	pod       *corev1.Pod
	namespace string
	identity  string
	ingress   bool
}

func (b *builder) patch(labels, annotations map[string]string) Patch {
	var p Patch
	spec := &b.pod.Spec
	addToMap(&p, "/metadata/labels", b.pod.Labels, labels)
	addToMap(&p, "/metadata/annotations", b.pod.Annotations, annotations)
	initC, proxy := b.initContainer(), b.proxyContainer()
	if b.s.nativeSidecar {
		// linkerd-init first, then the proxy, then the pod's own init
		// containers, which may use the mesh.
		prependContainers(&p, "/spec/initContainers", len(spec.InitContainers), initC, proxy)
	} else {
		// The pod's own init containers run first, without the mesh; the
		// proxy is the first container and holds the others back until it
		// is ready.
		appendItems(&p, "/spec/initContainers", len(spec.InitContainers), initC)
		prependContainers(&p, "/spec/containers", len(spec.Containers), proxy)
	}
	appendItems(&p, "/spec/volumes", len(spec.Volumes), b.volumes()...)
	if spec.ServiceAccountName == "" && spec.DeprecatedServiceAccount == "" {
		// The projected token needs a ServiceAccount; name the one the
		// identity name was made from (what the API server's ServiceAccount
		// admission sets, when it runs before the webhook).
		p = append(p, add("/spec/serviceAccountName", defaultServiceAccount))
	}
	return p
}

func (b *builder) initContainer() corev1.Container {
	ports := b.cfg.Proxy.Ports
	ignoreIn := append([]mesh.PortRange{port(ports.Control), port(ports.Admin)}, b.s.skipInbound...)
	// The first --inbound-ports-to-ignore replaces proxy-init's default, so
	// the list always includes the proxy's control and admin ports.
	args := []string{
		"--incoming-proxy-port=" + itoa(int64(ports.Inbound)),
		"--outgoing-proxy-port=" + itoa(int64(ports.Outbound)),
		"--proxy-uid=" + itoa(b.s.uid),
	}
	if b.s.gid >= 0 {
		args = append(args, "--proxy-gid="+itoa(b.s.gid))
	}
	args = append(args, "--inbound-ports-to-ignore="+mesh.FormatPortRanges(sortedUnique(ignoreIn)))
	if len(b.s.skipOutbound) > 0 {
		args = append(args, "--outbound-ports-to-ignore="+mesh.FormatPortRanges(sortedUnique(b.s.skipOutbound)))
	}
	if len(b.s.skipSubnets) > 0 {
		args = append(args, "--subnets-to-ignore="+config.FormatSubnets(b.s.skipSubnets))
	}
	if b.cfg.DisableIPv6 {
		args = append(args, "--ipv6=false")
	}
	args = append(args, "--log-level="+b.cfg.ProxyInit.LogLevel, "--log-format="+b.cfg.ProxyInit.LogFormat)

	runAs, nonRoot := int64(0), false
	if !b.cfg.ProxyInit.RunAsRoot {
		runAs, nonRoot = nonRootInitUID, true
	}
	return corev1.Container{
		Name:            mesh.InitContainerName,
		Image:           b.cfg.ProxyInit.Image.Ref(),
		ImagePullPolicy: b.s.initPullPolicy,
		Args:            args,
		Resources:       resources(b.cfg.ProxyInit.Resources.CPU.Request, b.cfg.ProxyInit.Resources.CPU.Limit, b.cfg.ProxyInit.Resources.Memory.Request, b.cfg.ProxyInit.Resources.Memory.Limit),
		SecurityContext: &corev1.SecurityContext{
			AllowPrivilegeEscalation: ptr(false),
			Capabilities: &corev1.Capabilities{
				Add:  []corev1.Capability{"NET_ADMIN", "NET_RAW"},
				Drop: []corev1.Capability{"ALL"},
			},
			Privileged:             ptr(false),
			ReadOnlyRootFilesystem: ptr(true),
			RunAsNonRoot:           ptr(nonRoot),
			RunAsUser:              ptr(runAs),
			SeccompProfile:         &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
	}
}

func (b *builder) proxyContainer() corev1.Container {
	ports := b.cfg.Proxy.Ports
	sc := &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptr(false),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		ReadOnlyRootFilesystem:   ptr(true),
		RunAsNonRoot:             ptr(true),
		RunAsUser:                ptr(b.s.uid),
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
	if b.s.gid >= 0 {
		sc.RunAsGroup = ptr(b.s.gid)
	}
	c := corev1.Container{
		Name:            mesh.ProxyContainerName,
		Image:           b.s.proxyImage.Ref(),
		ImagePullPolicy: b.s.proxyPullPolicy,
		Ports: []corev1.ContainerPort{
			{Name: "linkerd-proxy", ContainerPort: ports.Inbound, Protocol: corev1.ProtocolTCP},
			{Name: "linkerd-admin", ContainerPort: ports.Admin, Protocol: corev1.ProtocolTCP},
		},
		Env:                      b.env(),
		Resources:                resources(b.s.cpu.request, b.s.cpu.limit, b.s.memory.request, b.s.memory.limit),
		LivenessProbe:            httpProbe("/live", ports.Admin),
		ReadinessProbe:           httpProbe("/ready", ports.Admin),
		SecurityContext:          sc,
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
		VolumeMounts: []corev1.VolumeMount{
			{Name: IdentityEndEntityVolName, MountPath: IdentityDir},
			{Name: mesh.IdentityTokenVolumeName, MountPath: TokenDir, ReadOnly: true},
		},
	}
	if b.s.nativeSidecar {
		c.RestartPolicy = ptr(corev1.ContainerRestartPolicyAlways)
		c.StartupProbe = httpProbe("/ready", ports.Admin)
		c.StartupProbe.PeriodSeconds = startupPeriodSeconds
		c.StartupProbe.FailureThreshold = startupFailureThreshold
	} else {
		// Without a startup probe, give the proxy a moment before the probes
		// count.
		c.LivenessProbe.InitialDelaySeconds = 10
		c.ReadinessProbe.InitialDelaySeconds = 2
		c.Lifecycle = &corev1.Lifecycle{PostStart: &corev1.LifecycleHandler{
			Exec: &corev1.ExecAction{Command: slices.Clone(b.cfg.Proxy.AwaitCommand)},
		}}
	}
	return c
}

// Proxy environment variable names. The proxy reads exactly these; the
// README lists them with their meaning.
const (
	EnvLog                          = "LINKERD2_PROXY_LOG"
	EnvLogFormat                    = "LINKERD2_PROXY_LOG_FORMAT"
	EnvDestinationSvcAddr           = "LINKERD2_PROXY_DESTINATION_SVC_ADDR"
	EnvDestinationSvcName           = "LINKERD2_PROXY_DESTINATION_SVC_NAME"
	EnvDestinationProfileSuffixes   = "LINKERD2_PROXY_DESTINATION_PROFILE_SUFFIXES"
	EnvDestinationContext           = "LINKERD2_PROXY_DESTINATION_CONTEXT"
	EnvPolicySvcAddr                = "LINKERD2_PROXY_POLICY_SVC_ADDR"
	EnvPolicySvcName                = "LINKERD2_PROXY_POLICY_SVC_NAME"
	EnvPolicyWorkload               = "LINKERD2_PROXY_POLICY_WORKLOAD"
	EnvPolicyClusterNetworks        = "LINKERD2_PROXY_POLICY_CLUSTER_NETWORKS"
	EnvInboundDefaultPolicy         = "LINKERD2_PROXY_INBOUND_DEFAULT_POLICY"
	EnvInboundPorts                 = "LINKERD2_PROXY_INBOUND_PORTS"
	EnvInboundOpaquePorts           = "LINKERD2_PROXY_INBOUND_PORTS_DISABLE_PROTOCOL_DETECTION"
	EnvControlListenAddr            = "LINKERD2_PROXY_CONTROL_LISTEN_ADDR"
	EnvAdminListenAddr              = "LINKERD2_PROXY_ADMIN_LISTEN_ADDR"
	EnvInboundListenAddr            = "LINKERD2_PROXY_INBOUND_LISTEN_ADDR"
	EnvOutboundListenAddrs          = "LINKERD2_PROXY_OUTBOUND_LISTEN_ADDRS"
	EnvIdentityDir                  = "LINKERD2_PROXY_IDENTITY_DIR"
	EnvIdentityTrustAnchors         = "LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS"
	EnvIdentityTokenFile            = "LINKERD2_PROXY_IDENTITY_TOKEN_FILE"
	EnvIdentitySvcAddr              = "LINKERD2_PROXY_IDENTITY_SVC_ADDR"
	EnvIdentitySvcName              = "LINKERD2_PROXY_IDENTITY_SVC_NAME"
	EnvIdentityLocalName            = "LINKERD2_PROXY_IDENTITY_LOCAL_NAME"
	EnvShutdownGracePeriod          = "LINKERD2_PROXY_SHUTDOWN_GRACE_PERIOD"
	EnvIngressMode                  = "LINKERD2_PROXY_INGRESS_MODE"
	envPodName, envPodNS, envNodeNm = "_pod_name", "_pod_ns", "_pod_nodeName"
)

func (b *builder) env() []corev1.EnvVar {
	c, ports := b.cfg, b.cfg.Proxy.Ports
	anyAddr, loopbacks := "0.0.0.0", []string{"127.0.0.1"}
	if !c.DisableIPv6 {
		anyAddr, loopbacks = "::", []string{"127.0.0.1", "::1"}
	}
	outbound := make([]string, len(loopbacks))
	for i, l := range loopbacks {
		outbound[i] = hostPort(l, ports.Outbound)
	}
	env := []corev1.EnvVar{
		fieldEnv(envPodName, "metadata.name"),
		fieldEnv(envPodNS, "metadata.namespace"),
		fieldEnv(envNodeNm, "spec.nodeName"),
		{Name: EnvLog, Value: b.s.logLevel},
		{Name: EnvLogFormat, Value: b.s.logFormat},
		{Name: EnvDestinationSvcAddr, Value: c.DestinationAddress()},
		{Name: EnvDestinationSvcName, Value: b.serverName(c.ControlPlane.Destination.ServiceAccount)},
		{Name: EnvDestinationProfileSuffixes, Value: "svc." + c.ClusterDomain + "."},
		// The destination context token (api/linkerd/destination/v1
		// ContextToken); the kubelet expands the $(…) references.
		{Name: EnvDestinationContext, Value: `{"ns":"$(` + envPodNS + `)","nodeName":"$(` + envNodeNm + `)","pod":"$(` + envPodName + `)"}`},
		{Name: EnvPolicySvcAddr, Value: c.PolicyAddress()},
		{Name: EnvPolicySvcName, Value: b.serverName(c.ControlPlane.Policy.ServiceAccount)},
		{Name: EnvPolicyWorkload, Value: `{"ns":"$(` + envPodNS + `)","pod":"$(` + envPodName + `)"}`},
		{Name: EnvPolicyClusterNetworks, Value: c.ClusterNetworks},
		{Name: EnvInboundDefaultPolicy, Value: b.s.inboundPolicy},
		{Name: EnvInboundPorts, Value: b.inboundPorts()},
		{Name: EnvInboundOpaquePorts, Value: mesh.FormatPortRanges(sortedUnique(b.s.opaquePorts))},
		{Name: EnvControlListenAddr, Value: hostPort(anyAddr, ports.Control)},
		{Name: EnvAdminListenAddr, Value: hostPort(anyAddr, ports.Admin)},
		{Name: EnvInboundListenAddr, Value: hostPort(anyAddr, ports.Inbound)},
		{Name: EnvOutboundListenAddrs, Value: strings.Join(outbound, ",")},
		{Name: EnvIdentityDir, Value: IdentityDir},
		{Name: EnvIdentityTrustAnchors, Value: c.IdentityTrustAnchorsPEM},
		{Name: EnvIdentityTokenFile, Value: TokenFile},
		{Name: EnvIdentitySvcAddr, Value: c.IdentityAddress()},
		{Name: EnvIdentitySvcName, Value: b.serverName(c.ControlPlane.Identity.ServiceAccount)},
		{Name: EnvIdentityLocalName, Value: b.identity},
	}
	if b.s.shutdownGrace != "" {
		env = append(env, corev1.EnvVar{Name: EnvShutdownGracePeriod, Value: b.s.shutdownGrace})
	}
	if b.ingress {
		env = append(env, corev1.EnvVar{Name: EnvIngressMode, Value: "true"})
	}
	return env
}

// serverName is the identity a control-plane server presents.
func (b *builder) serverName(sa string) string {
	return identityv1.Name{
		ServiceAccount:        sa,
		Namespace:             b.cfg.ControlPlaneNamespace,
		ControlPlaneNamespace: b.cfg.ControlPlaneNamespace,
		TrustDomain:           b.cfg.TrustDomain(),
	}.String()
}

// inboundPorts lists the TCP ports the pod's containers declare, sorted,
// without the proxy's own.
func (b *builder) inboundPorts() string {
	ports := b.cfg.Proxy.Ports
	own := []int32{ports.Inbound, ports.Outbound, ports.Admin, ports.Control}
	var nums []int
	for _, c := range slices.Concat(b.pod.Spec.InitContainers, b.pod.Spec.Containers) {
		for _, p := range c.Ports {
			if p.Protocol != "" && p.Protocol != corev1.ProtocolTCP {
				continue
			}
			if p.ContainerPort < 1 || p.ContainerPort > 65535 || slices.Contains(own, p.ContainerPort) {
				continue
			}
			nums = append(nums, int(p.ContainerPort))
		}
	}
	slices.Sort(nums)
	out := make([]string, 0, len(nums))
	for _, n := range slices.Compact(nums) {
		out = append(out, strconv.Itoa(n))
	}
	return strings.Join(out, ",")
}

func (b *builder) volumes() []corev1.Volume {
	return []corev1.Volume{
		{Name: IdentityEndEntityVolName, VolumeSource: corev1.VolumeSource{
			EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory},
		}},
		{Name: mesh.IdentityTokenVolumeName, VolumeSource: corev1.VolumeSource{
			Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{{
				ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
					Audience:          identityv1.TokenAudience,
					ExpirationSeconds: ptr(int64(TokenExpirationSeconds)),
					Path:              mesh.IdentityTokenVolumeName,
				},
			}}},
		}},
	}
}

func httpProbe(path string, port int32) *corev1.Probe {
	return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
		HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromInt32(port)},
	}}
}

func resources(cpuReq, cpuLim, memReq, memLim string) corev1.ResourceRequirements {
	var r corev1.ResourceRequirements
	set := func(list *corev1.ResourceList, name corev1.ResourceName, v string) {
		if v == "" {
			return
		}
		if *list == nil {
			*list = corev1.ResourceList{}
		}
		(*list)[name] = resource.MustParse(v)
	}
	set(&r.Requests, corev1.ResourceCPU, cpuReq)
	set(&r.Requests, corev1.ResourceMemory, memReq)
	set(&r.Limits, corev1.ResourceCPU, cpuLim)
	set(&r.Limits, corev1.ResourceMemory, memLim)
	return r
}

func fieldEnv(name, path string) corev1.EnvVar {
	return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}}
}

// sortedUnique sorts port ranges and drops repeated ones. Unlike
// mesh.NormalizePortRanges it does not merge neighbours, so that the lists
// read as written ("4190,4191", not "4190-4191").
func sortedUnique(rs []mesh.PortRange) []mesh.PortRange {
	out := slices.Clone(rs)
	slices.SortFunc(out, func(a, b mesh.PortRange) int {
		if a.First != b.First {
			return int(a.First) - int(b.First)
		}
		return int(a.Last) - int(b.Last)
	})
	return slices.Compact(out)
}

func port(p int32) mesh.PortRange { return mesh.PortRange{First: uint16(p), Last: uint16(p)} }

func hostPort(host string, p int32) string { return net.JoinHostPort(host, strconv.Itoa(int(p))) }

func ptr[T any](v T) *T { return &v }
