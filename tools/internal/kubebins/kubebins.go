// Package kubebins builds the Kubernetes, etcd, container-runtime, CNI,
// CoreDNS, Helm and crane binaries that the integration tests and the dev
// cluster run. Everything comes from the Go module proxy (plus a few Debian
// packages) and is built into a cache folder keyed by version, so only the
// first run is slow.
//
// Layout under the cache root:
//
//	k8s-bins/<component>-<version>/   the binaries of one component
//	k8s-bins/set-<key>/               symlinks to every binary of the pinned set
//
// Dir returns the set folder; that is what tests and the cluster put on PATH.
package kubebins

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// EnvCacheDir names the environment variable that overrides the cache root.
// The Makefile sets it, so make targets and tests agree on one folder.
const EnvCacheDir = "LINKERD_GO_CACHE"

// recipe changes whenever the way a component is built changes, so that a
// cached build made with an older recipe is not reused.
const recipe = "1"

// completeMarker is written last into a component folder; a folder without it
// is a build that did not finish and is rebuilt.
const completeMarker = ".complete"

// Component is one unit of the pinned set: built together, cached together.
type Component struct {
	Name     string
	Version  string
	Binaries []string
	build    func(ctx context.Context, b *builder, out string) error
}

// Components returns the pinned set, in build order (fast ones first, so a
// broken toolchain shows up before the long Kubernetes build).
func Components() []Component {
	return []Component{
		{Name: "cni-plugins", Version: CNIPluginsVersion, Binaries: []string{"bridge", "host-local", "loopback", "portmap"}, build: buildCNI},
		{Name: "crane", Version: CraneVersion, Binaries: []string{"crane"}, build: buildCrane},
		{Name: "runc", Version: RuncVersion, Binaries: []string{"runc"}, build: buildRunc},
		{Name: "etcd", Version: EtcdVersion, Binaries: []string{"etcd"}, build: buildEtcd},
		{Name: "containerd", Version: ContainerdVersion, Binaries: []string{"containerd", "containerd-shim-runc-v2", "ctr"}, build: buildContainerd},
		{Name: "helm", Version: HelmVersion, Binaries: []string{"helm"}, build: buildHelm},
		{Name: "coredns", Version: CoreDNSVersion, Binaries: []string{"coredns"}, build: buildCoreDNS},
		{Name: "kubernetes", Version: KubernetesVersion, Binaries: kubernetesBinaries, build: buildKubernetes},
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
	fmt.Fprintln(h, "recipe", recipe)
	for _, c := range Components() {
		fmt.Fprintln(h, c.Name, c.Version, strings.Join(c.Binaries, ","))
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// Dir is the folder holding every binary of the pinned set, under root.
func Dir(root string) string {
	return filepath.Join(root, "k8s-bins", "set-"+setKey())
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

// Options tune Install.
type Options struct {
	// CacheRoot overrides CacheRoot().
	CacheRoot string
	// SkipPackages leaves the Debian packages alone (for machines where they
	// are managed otherwise).
	SkipPackages bool
	// Log receives progress lines.
	Log io.Writer
}

// Install makes sure every pinned binary is in the cache, building what is
// missing, and returns the set folder. A warm run only checks markers.
func Install(ctx context.Context, opts Options) (string, error) {
	root := opts.CacheRoot
	if root == "" {
		var err error
		if root, err = CacheRoot(); err != nil {
			return "", err
		}
	}
	log := opts.Log
	if log == nil {
		log = io.Discard
	}
	if !opts.SkipPackages {
		if err := ensurePackages(ctx, log, DebianPackages); err != nil {
			return "", err
		}
	}
	b := &builder{root: root, log: log}
	start := time.Now()
	built := 0
	for _, c := range Components() {
		dir := componentDir(root, c)
		if complete(dir, c) {
			continue
		}
		built++
		if err := b.buildComponent(ctx, c, dir); err != nil {
			return "", err
		}
	}
	set := Dir(root)
	if err := link(root, set); err != nil {
		return "", err
	}
	if built > 0 {
		fmt.Fprintf(log, "k8s-bins: built %d component(s) in %s; binaries in %s\n", built, time.Since(start).Round(time.Second), set)
	} else {
		fmt.Fprintf(log, "k8s-bins: all cached in %s\n", set)
	}
	return set, nil
}

func componentDir(root string, c Component) string {
	return filepath.Join(root, "k8s-bins", c.Name+"-"+c.Version+"-r"+recipe)
}

func complete(dir string, c Component) bool {
	if _, err := os.Stat(filepath.Join(dir, completeMarker)); err != nil {
		return false
	}
	for _, b := range c.Binaries {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			return false
		}
	}
	return true
}

// buildComponent builds into a fresh temporary folder beside the final one
// and renames it into place, so an interrupted build never looks complete.
func (b *builder) buildComponent(ctx context.Context, c Component, dir string) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "."+c.Name+"-build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		return err
	}
	fmt.Fprintf(b.log, "k8s-bins: building %s %s (%s)\n", c.Name, c.Version, strings.Join(c.Binaries, ", "))
	start := time.Now()
	stop := b.heartbeat(c.Name, start)
	err = c.build(ctx, b, out)
	stop()
	if err != nil {
		return fmt.Errorf("building %s %s: %w", c.Name, c.Version, err)
	}
	for _, bin := range c.Binaries {
		if _, err := os.Stat(filepath.Join(out, bin)); err != nil {
			return fmt.Errorf("building %s %s: %s was not produced", c.Name, c.Version, bin)
		}
	}
	if err := os.WriteFile(filepath.Join(out, completeMarker), []byte(c.Version+"\n"), 0o644); err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.Rename(out, dir); err != nil {
		return err
	}
	fmt.Fprintf(b.log, "k8s-bins: built %s in %s\n", c.Name, time.Since(start).Round(time.Second))
	return nil
}

// link (re)creates the set folder as symlinks into the component folders.
func link(root, set string) error {
	tmp := set + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	for _, c := range Components() {
		for _, bin := range c.Binaries {
			if err := os.Symlink(filepath.Join(componentDir(root, c), bin), filepath.Join(tmp, bin)); err != nil {
				return err
			}
		}
	}
	if err := os.RemoveAll(set); err != nil {
		return err
	}
	return os.Rename(tmp, set)
}

// heartbeat prints a line every 30 s while a long build runs, so nobody
// stares at a silent terminal.
func (b *builder) heartbeat(name string, start time.Time) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(30 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				fmt.Fprintf(b.log, "k8s-bins: still building %s (%s)\n", name, time.Since(start).Round(time.Second))
			}
		}
	}()
	return func() { close(done); <-finished }
}

// ErrNotRoot is returned when Debian packages are missing and cannot be
// installed because the process is not root.
var ErrNotRoot = errors.New("not root")

// missingPackages returns the packages dpkg does not report as installed.
func missingPackages(ctx context.Context, pkgs []string) []string {
	var missing []string
	for _, p := range pkgs {
		out, err := command(ctx, "dpkg-query", "-W", "-f=${db:Status-Status}", p).Output()
		if err != nil || strings.TrimSpace(string(out)) != "installed" {
			missing = append(missing, p)
		}
	}
	return missing
}

func ensurePackages(ctx context.Context, log io.Writer, pkgs []string) error {
	missing := missingPackages(ctx, pkgs)
	if len(missing) == 0 {
		return nil
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("the Debian packages %s are missing and %w: install them with apt-get", strings.Join(missing, " "), ErrNotRoot)
	}
	fmt.Fprintf(log, "k8s-bins: apt-get install %s\n", strings.Join(missing, " "))
	env := append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	update := command(ctx, "apt-get", "update", "-q")
	update.Env = env
	if out, err := update.CombinedOutput(); err != nil {
		return fmt.Errorf("apt-get update: %w\n%s", err, out)
	}
	install := command(ctx, "apt-get", slices.Concat([]string{"install", "-y", "-q", "--no-install-recommends"}, missing)...)
	install.Env = env
	if out, err := install.CombinedOutput(); err != nil {
		return fmt.Errorf("apt-get install: %w\n%s", err, out)
	}
	if still := missingPackages(ctx, pkgs); len(still) > 0 {
		return fmt.Errorf("still missing after apt-get install: %s", strings.Join(still, " "))
	}
	return nil
}
