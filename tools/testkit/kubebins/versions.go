package kubebins

// The pinned versions of everything the test tiers and the dev cluster run.
// This is the one place to change them: the cache folder of each component is
// keyed by its version, so a bump here rebuilds exactly what changed.
const (
	// KubernetesVersion is the k8s.io/kubernetes module the control plane,
	// kubelet, kube-proxy and kubectl are built from.
	KubernetesVersion = "v1.37.2"
	// EtcdVersion is the go.etcd.io/etcd/server/v3 module.
	EtcdVersion = "v3.6.16"
	// ContainerdVersion is the github.com/containerd/containerd/v2 module.
	ContainerdVersion = "v2.4.2"
	// RuncVersion is the github.com/opencontainers/runc module.
	RuncVersion = "v1.5.2"
	// CNIPluginsVersion is the github.com/containernetworking/plugins module.
	CNIPluginsVersion = "v1.10.0"
	// CoreDNSVersion is the github.com/coredns/coredns module (cluster DNS).
	CoreDNSVersion = "v1.15.0"
	// HelmVersion is the helm.sh/helm/v3 module.
	HelmVersion = "v3.19.0"
	// CraneVersion is the github.com/google/go-containerregistry module.
	CraneVersion = "v0.22.1"
)
