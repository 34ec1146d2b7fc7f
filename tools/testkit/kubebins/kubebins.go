// Package kubebins says which Kubernetes, etcd, container-runtime, CNI,
// CoreDNS, Helm and crane binaries the test tiers and the dev cluster run
// (the pinned versions) and where `make k8s-bins` caches them, so that the
// test harness finds exactly the pinned set. The builder is in the tools
// module (tools/dev/internal/kubebuild); this package only names and finds.
//
// Layout under the cache root:
//
//	k8s-bins/<component>-<version>-r<recipe>/   the binaries of one component
//	k8s-bins/set-<key>/                         symlinks to every binary of the pinned set
//
// Find returns the set folder; that is what tests and the cluster put on PATH.
package kubebins

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// EnvCacheDir names the environment variable that overrides the cache root.
// The Makefile sets it, so make targets and tests agree on one folder.
const EnvCacheDir = "LINKERD_GO_CACHE"

// Recipe changes whenever the way the builder (tools/dev/internal/kubebuild)
// makes a component changes, so that a cached build made with an older
// recipe is not reused.
const Recipe = "1"

// Component is one unit of the pinned set: built together, cached together.
type Component struct {
	Name     string
	Version  string
	Binaries []string
}

// Components returns the pinned set, in build order (fast ones first, so a
// broken toolchain shows up before the long Kubernetes build).
func Components() []Component {
	return []Component{
		{Name: "cni-plugins", Version: CNIPluginsVersion, Binaries: []string{"bridge", "host-local", "loopback", "portmap"}},
		{Name: "crane", Version: CraneVersion, Binaries: []string{"crane"}},
		{Name: "runc", Version: RuncVersion, Binaries: []string{"runc"}},
		{Name: "etcd", Version: EtcdVersion, Binaries: []string{"etcd"}},
		{Name: "containerd", Version: ContainerdVersion, Binaries: []string{"containerd", "containerd-shim-runc-v2", "ctr"}},
		{Name: "helm", Version: HelmVersion, Binaries: []string{"helm"}},
		{Name: "coredns", Version: CoreDNSVersion, Binaries: []string{"coredns"}},
		{Name: "kubernetes", Version: KubernetesVersion, Binaries: []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy", "kubectl"}},
	}
}

// CacheRoot is the folder everything of this project is cached in:
// $LINKERD_GO_CACHE, else <user cache dir>/linkerd-go.
func CacheRoot() (string, error) {
	if d := os.Getenv(EnvCacheDir); d != "" {
		return filepath.Abs(d)
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache folder: set %s: %w", EnvCacheDir, err)
	}
	return filepath.Join(d, "linkerd-go"), nil
}

// setKey identifies the pinned set: it changes when any version or the
// recipe changes.
func setKey() string {
	h := sha256.New()
	fmt.Fprintln(h, "recipe", Recipe)
	for _, c := range Components() {
		fmt.Fprintln(h, c.Name, c.Version, strings.Join(c.Binaries, ","))
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// Dir is the folder holding every binary of the pinned set, under root.
func Dir(root string) string {
	return filepath.Join(root, "k8s-bins", "set-"+setKey())
}

// ComponentDir is the folder holding the binaries of one component, under
// root.
func ComponentDir(root string, c Component) string {
	return filepath.Join(root, "k8s-bins", c.Name+"-"+c.Version+"-r"+Recipe)
}

// Find returns the set folder for the current cache root and checks that
// every binary in it exists, so a test fails with one clear instruction
// instead of an exec error deep inside.
func Find() (string, error) {
	root, err := CacheRoot()
	if err != nil {
		return "", err
	}
	dir := Dir(root)
	var missing []string
	for _, c := range Components() {
		for _, b := range c.Binaries {
			if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
				missing = append(missing, b)
			}
		}
	}
	if len(missing) > 0 {
		return "", fmt.Errorf("the Kubernetes test binaries are missing from %s (%s): run `make k8s-bins` first", dir, strings.Join(missing, ", "))
	}
	return dir, nil
}
