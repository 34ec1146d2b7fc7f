package inject

// The Kubernetes-facing names the injector reads and writes. They are
// Linkerd's, the compatibility surface: keep them exactly.
const (
	// AnnotationInject turns injection on or off, on a pod or its namespace.
	AnnotationInject = "linkerd.io/inject"

	// Values of AnnotationInject.
	InjectEnabled  = "enabled"
	InjectIngress  = "ingress"
	InjectDisabled = "disabled"

	// Recorded on injected pods.
	AnnotationCreatedBy      = "linkerd.io/created-by"
	AnnotationProxyVersion   = "linkerd.io/proxy-version"
	AnnotationTrustRootSHA   = "linkerd.io/trust-root-sha256"
	LabelControlPlaneNS      = "linkerd.io/control-plane-ns"
	LabelWorkloadNS          = "linkerd.io/workload-ns"
	LabelProxyKindPrefix     = "linkerd.io/proxy-"
	LabelControlPlaneComp    = "linkerd.io/control-plane-component"
	ConfigAnnotationPrefix   = "config.linkerd.io/"
	ProxyContainerName       = "linkerd-proxy"
	InitContainerName        = "linkerd-init"
	IdentityTokenVolumeName  = "linkerd-identity-token"
	IdentityEndEntityVolName = "linkerd-identity-end-entity"
)

// The config.linkerd.io/* overrides the injector honours, on the pod or, for
// pods that do not set them, on the namespace.
const (
	AnnotationProxyImage           = ConfigAnnotationPrefix + "proxy-image"
	AnnotationProxyVersionOverride = ConfigAnnotationPrefix + "proxy-version"
	AnnotationImagePullPolicy      = ConfigAnnotationPrefix + "image-pull-policy"
	AnnotationSkipInboundPorts     = ConfigAnnotationPrefix + "skip-inbound-ports"
	AnnotationSkipOutboundPorts    = ConfigAnnotationPrefix + "skip-outbound-ports"
	AnnotationSkipSubnets          = ConfigAnnotationPrefix + "skip-subnets"
	AnnotationOpaquePorts          = ConfigAnnotationPrefix + "opaque-ports"
	AnnotationProxyCPURequest      = ConfigAnnotationPrefix + "proxy-cpu-request"
	AnnotationProxyCPULimit        = ConfigAnnotationPrefix + "proxy-cpu-limit"
	AnnotationProxyMemoryRequest   = ConfigAnnotationPrefix + "proxy-memory-request"
	AnnotationProxyMemoryLimit     = ConfigAnnotationPrefix + "proxy-memory-limit"
	AnnotationProxyLogLevel        = ConfigAnnotationPrefix + "proxy-log-level"
	AnnotationProxyLogFormat       = ConfigAnnotationPrefix + "proxy-log-format"
	AnnotationDefaultInboundPolicy = ConfigAnnotationPrefix + "default-inbound-policy"
	AnnotationProxyUID             = ConfigAnnotationPrefix + "proxy-uid"
	AnnotationProxyGID             = ConfigAnnotationPrefix + "proxy-gid"
	AnnotationNativeSidecar        = ConfigAnnotationPrefix + "proxy-enable-native-sidecar"
	AnnotationShutdownGracePeriod  = ConfigAnnotationPrefix + "shutdown-grace-period"
)
