package cluster

import (
	"bytes"
	"os"
	"path/filepath"
	"text/template"
)

// The configuration files of containerd, CNI, the kubelet and kube-proxy.
// Each setting that differs from the defaults says why: most are there so
// that nothing is written outside the state folder and nothing leaves the
// machine, or because this machine kind lacks CAP_SYS_RESOURCE and uses
// cgroup v1 (see docs/testing.md, "The dev cluster's host").

// containerd 2.x accepts config schema 3 (and migrates it in memory).
const containerdConfig = `version = 3
root = "{{.State}}/containerd/root"
state = "{{.State}}/containerd/state"

[grpc]
  address = "{{.State}}/containerd/containerd.sock"

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    # Built here and pinned: never pulled, never garbage collected.
    sandbox = "{{.PauseImage}}"

[plugins.'io.containerd.cri.v1.runtime']
  # No CAP_SYS_RESOURCE here: lowering oom_score_adj would fail every sandbox.
  restrict_oom_score_adj = {{.RestrictOOMScoreAdj}}
  # Pod network namespaces under our state folder, not /run/netns.
  netns_mounts_under_state_dir = true
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = "{{.Bin}}/runc"
        SystemdCgroup = false
        Root = "{{.State}}/containerd/runc"
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["{{.Bin}}"]
    conf_dir = "{{.State}}/cni/net.d"
    max_conf_num = 1

[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = "127.0.0.1"
`

// Pods route only 198.18.0.0/15 and are not masqueraded: nothing they send
// can leave the machine.
const cniConfig = `{
  "cniVersion": "1.0.0",
  "name": "{{.CNINetwork}}",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "{{.Bridge}}",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "{{.State}}/cni/ipam",
        "ranges": [[{"subnet": "{{.PodCIDR}}", "gateway": "{{.PodGateway}}"}]],
        "routes": [{"dst": "{{.PodRoute}}"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "loopback"}
  ]
}
`

const kubeletConfig = `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This machine kind mounts cgroup v1; the kubelet refuses v1 unless told
# not to. Harmless on a cgroup v2 host.
failCgroupV1: false
cgroupDriver: cgroupfs
failSwapOn: false
containerRuntimeEndpoint: unix://{{.State}}/containerd/containerd.sock
imageServiceEndpoint: unix://{{.State}}/containerd/containerd.sock
address: {{.NodeIP}}
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: {{.State}}/pki/ca.crt}
authorization: {mode: Webhook}
clusterDomain: {{.ClusterDomain}}
clusterDNS: ["{{.DNSServiceIP}}"]
# Never hand the host's resolver to pods: only cluster names resolve.
resolvConf: ""
# Images cannot be pulled again here: never garbage collect them.
imageGCHighThresholdPercent: 100
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
oomScoreAdj: {{.OOMScoreAdj}}
podLogsDir: {{.State}}/podlogs
# Do not leave KUBE-FIREWALL and friends behind on the host.
makeIPTablesUtilChains: false
serializeImagePulls: false
`

const kubeProxyConfig = `apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clusterCIDR: {{.PodCIDR}}
hostnameOverride: {{.NodeName}}
nodePortAddresses: [primary]
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
clientConnection: {kubeconfig: {{.State}}/kubeconfig/kube-proxy.conf}
conntrack:
  # Leave the host's conntrack table size and timeouts alone.
  maxPerCore: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
oomScoreAdj: {{.OOMScoreAdj}}
iptables:
  # Otherwise it sets net.ipv4.conf.all.route_localnet=1.
  localhostNodePorts: false
`

// configValues are what the templates above and the manifests are filled
// with.
type configValues struct {
	State, Bin, NodeName                string
	NodeIP, PodCIDR, PodGateway         string
	PodRoute, ServiceCIDR, DNSServiceIP string
	ClusterDomain, Bridge, CNINetwork   string
	PauseImage, CoreDNSImage, TestImage string
	CgroupV2, RestrictOOMScoreAdj       bool
	OOMScoreAdj                         int
}

func (c *Cluster) values(h hostFacts) configValues {
	v := configValues{
		State: c.StateDir, Bin: c.BinDir, NodeName: c.NodeName,
		NodeIP: NodeIP, PodCIDR: PodCIDR, PodGateway: PodGateway,
		PodRoute: PodRoute, ServiceCIDR: ServiceCIDR, DNSServiceIP: DNSServiceIP,
		ClusterDomain: ClusterDomain, Bridge: Bridge, CNINetwork: CNINetwork,
		PauseImage: PauseImage, CoreDNSImage: CoreDNSImage, TestImage: TestAppImage,
	}
	// Without CAP_SYS_RESOURCE nobody may lower an oom_score_adj: clamp
	// containerd's requests and keep the kubelet and kube-proxy at 0.
	if !h.capSysResource {
		v.RestrictOOMScoreAdj = true
	} else {
		v.OOMScoreAdj = -999
	}
	return v
}

// writeConfigs renders every configuration file into the state folder.
func (c *Cluster) writeConfigs(v configValues) error {
	files := []struct{ path, tmpl string }{
		{c.path("containerd", "config.toml"), containerdConfig},
		{c.path("cni", "net.d", "10-"+CNINetwork+".conflist"), cniConfig},
		{c.path("kubelet", "config.yaml"), kubeletConfig},
		{c.path("kube-proxy.yaml"), kubeProxyConfig},
		{c.path("manifests", "coredns.yaml"), corednsManifest},
	}
	for _, f := range files {
		out, err := render(f.tmpl, v)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(f.path), 0o755); err != nil {
			return err
		}
		// Rewrite only on change: kube-proxy exits when its config file
		// changes under it.
		if old, err := os.ReadFile(f.path); err == nil && bytes.Equal(old, out) {
			continue
		}
		if err := os.WriteFile(f.path, out, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func render(tmpl string, v any) ([]byte, error) {
	t, err := template.New("").Option("missingkey=error").Parse(tmpl)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
