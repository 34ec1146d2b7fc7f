// Package cluster runs a real single-node Kubernetes cluster on this
// machine, with no Docker: etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler, containerd + runc, kubelet, a CNI bridge, kube-proxy and
// CoreDNS, all from the k8s-bins cache. It is what the end-to-end tests and
// the demo run on.
//
// Everything lives in one state folder; processes are detached and tracked
// by pidfiles there, and every change to the host (sysctls, an address on
// lo, the bridge, nftables tables, host folders the kubelet insists on) is
// recorded before it is made so that Down can undo exactly that.
//
// Addresses stay inside 198.18.0.0/15: pods in 198.18.0.0/16 on bridge
// l5dgo0, Services in 198.19.0.0/20, the node and API server on
// 198.19.255.1 (added to lo). Pods get no default route.
package cluster

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/linkerd-go/linkerd-go/tools/testkit/kubebins"
)

// Addresses and names of the dev cluster.
const (
	NodeIP         = "198.19.255.1"
	APIServerPort  = 6443
	PodCIDR        = "198.18.0.0/16"
	PodGateway     = "198.18.0.1"
	PodRoute       = "198.18.0.0/15" // the only route pods get
	ServiceCIDR    = "198.19.0.0/20"
	DNSServiceIP   = "198.19.0.10"
	ClusterDomain  = "cluster.local"
	Bridge         = "l5dgo0"
	CNINetwork     = "l5dgo"
	etcdClientPort = 23790
	etcdPeerPort   = 23800

	// ImageRegistry prefixes the images built here; nothing is ever pulled.
	ImageRegistry = "dev.local"
	PauseImage    = ImageRegistry + "/pause:v1"
	CoreDNSImage  = ImageRegistry + "/coredns:" + kubebins.CoreDNSVersion
	TestAppImage  = ImageRegistry + "/testapp:dev"
)

// Cluster is a dev cluster's configuration and state folder.
type Cluster struct {
	// StateDir holds PKI, configs, data, logs and pidfiles.
	StateDir string
	// BinDir holds the k8s-bins set.
	BinDir string
	// DevModuleDir is the tools/dev module's folder, for building the
	// pause and test images from source.
	DevModuleDir string
	// NodeName is the Node's name (the host name, lower case).
	NodeName string
	// Log receives progress lines.
	Log io.Writer
}

// New returns the Cluster whose state lives under the cache root, using the
// cached binaries and the tools module found from the working folder.
func New(log io.Writer) (*Cluster, error) {
	root, err := kubebins.CacheRoot()
	if err != nil {
		return nil, err
	}
	bin, err := kubebins.Find()
	if err != nil {
		return nil, err
	}
	tools, err := findDevModule()
	if err != nil {
		return nil, err
	}
	host, err := os.Hostname()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = io.Discard
	}
	return &Cluster{
		StateDir:     filepath.Join(root, "cluster"),
		BinDir:       bin,
		DevModuleDir: tools,
		NodeName:     strings.ToLower(host),
		Log:          log,
	}, nil
}

// findDevModule walks up from the working folder to the dev tools module
// (tools/dev), which holds the commands built into the dev images.
func findDevModule() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.HasPrefix(string(data), "module github.com/linkerd-go/linkerd-go/tools/dev\n") {
			return dir, nil
		}
		// From the checkout root, the module is tools/dev/.
		if _, err := os.Stat(filepath.Join(dir, "tools", "dev", "go.mod")); err == nil {
			return filepath.Join(dir, "tools", "dev"), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("cannot find the tools/dev module: run from inside the linkerd-go checkout")
		}
		dir = parent
	}
}

func (c *Cluster) path(elem ...string) string {
	return filepath.Join(append([]string{c.StateDir}, elem...)...)
}

func (c *Cluster) bin(name string) string { return filepath.Join(c.BinDir, name) }

// KubeconfigPath is the admin kubeconfig of the cluster.
func (c *Cluster) KubeconfigPath() string { return c.path("kubeconfig", "admin.conf") }

// LogDir holds one log file per component.
func (c *Cluster) LogDir() string { return c.path("logs") }

func (c *Cluster) logf(format string, args ...any) {
	fmt.Fprintf(c.Log, "cluster: "+format+"\n", args...)
}
