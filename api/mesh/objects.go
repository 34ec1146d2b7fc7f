package mesh

// The names the mesh reads and writes on Kubernetes objects: the
// linkerd.io/* labels and annotations and the config.linkerd.io/*
// overrides. Users' manifests carry them, so they are Linkerd's exactly.
// Every component and the CLI use these; none spells one out itself.

// Injection.
const (
	// AnnotationInject turns injection on or off, on a pod or its
	// namespace (the pod's wins).
	AnnotationInject = "linkerd.io/inject"

	// The values of AnnotationInject.
	InjectEnabled  = "enabled"
	InjectIngress  = "ingress"
	InjectDisabled = "disabled"
)

// What the injector records on the pods it injects, and the control plane
// on its own objects.
const (
	AnnotationCreatedBy     = "linkerd.io/created-by"
	AnnotationProxyVersion  = "linkerd.io/proxy-version"
	AnnotationTrustRootSHA  = "linkerd.io/trust-root-sha256"
	LabelControlPlaneNS     = "linkerd.io/control-plane-ns"
	LabelWorkloadNS         = "linkerd.io/workload-ns"
	LabelControlPlaneComp   = "linkerd.io/control-plane-component"
	LabelProxyKindPrefix    = "linkerd.io/proxy-" // + deployment, statefulset, …
	ProxyContainerName      = "linkerd-proxy"
	InitContainerName       = "linkerd-init"
	IdentityTokenVolumeName = "linkerd-identity-token"
	// TrustRootsConfigMap holds the trust anchors the control plane
	// serves, as a PEM bundle under TrustRootsKey.
	TrustRootsConfigMap = "linkerd-identity-trust-roots"
	TrustRootsKey       = "ca-bundle.crt"
)

// The two layouts of the issuer Secret (identity.issuer.scheme).
const (
	// IssuerSchemeLinkerd is Linkerd's own layout: keys crt.pem and key.pem.
	IssuerSchemeLinkerd = "linkerd.io/tls"
	// IssuerSchemeKubernetes is the layout of Secrets of type
	// kubernetes.io/tls, as cert-manager writes them: keys tls.crt and
	// tls.key.
	IssuerSchemeKubernetes = "kubernetes.io/tls"
)

// ConfigAnnotationPrefix starts the name of every configuration override,
// set on a pod or, for pods that do not set their own, on its namespace.
const ConfigAnnotationPrefix = "config.linkerd.io/"

// The configuration overrides.
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

	// AnnotationRequireIdentityPorts lists the ports whose default policy
	// admits only meshed clients; AnnotationRequireIdentityPortsShort is
	// the same list under the name Linkerd's injector writes.
	AnnotationRequireIdentityPorts      = ConfigAnnotationPrefix + "proxy-require-identity-on-inbound-ports"
	AnnotationRequireIdentityPortsShort = ConfigAnnotationPrefix + "proxy-require-identity-inbound-ports"
)
