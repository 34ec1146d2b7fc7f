// Package kubebuild builds the pinned set of binaries that the integration
// tests and the dev cluster run (testkit/kubebins names them and their cache
// folders). Everything comes from the Go module proxy (plus a few Debian
// packages) and is built into a cache folder keyed by version, so only the
// first run is slow.
package kubebuild

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/linkerd-go/linkerd-go/tools/testkit/kubebins"
)

// DebianPackages are the host packages the binaries need: runc links
// libseccomp, kube-proxy programs iptables (nf_tables backend) and cleans
// conntrack entries, the dev cluster lists nftables tables and manages links
// and addresses with iproute2.
var DebianPackages = []string{
	"libseccomp-dev", "pkg-config", "iptables", "nftables", "conntrack", "iproute2",
}

// completeMarker is written last into a component folder; a folder without it
// is a build that did not finish and is rebuilt.
const completeMarker = ".complete"

type buildFunc func(ctx context.Context, b *builder, c kubebins.Component, out string) error

// recipes builds each component of the pinned set, by name.
var recipes = map[string]buildFunc{
	"cni-plugins": buildCNI,
	"crane":       buildCrane,
	"runc":        buildRunc,
	"etcd":        buildEtcd,
	"containerd":  buildContainerd,
	"helm":        buildHelm,
	"coredns":     buildCoreDNS,
	"kubernetes":  buildKubernetes,
}

// Options tune Install.
type Options struct {
	// CacheRoot overrides kubebins.CacheRoot().
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
		if root, err = kubebins.CacheRoot(); err != nil {
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
	for _, c := range kubebins.Components() {
		dir := kubebins.ComponentDir(root, c)
		if complete(dir, c) {
			continue
		}
		built++
		build, ok := recipes[c.Name]
		if !ok {
			return "", fmt.Errorf("no recipe builds %s", c.Name)
		}
		if err := b.buildComponent(ctx, c, build, dir); err != nil {
			return "", err
		}
	}
	set := kubebins.Dir(root)
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

func complete(dir string, c kubebins.Component) bool {
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
func (b *builder) buildComponent(ctx context.Context, c kubebins.Component, build buildFunc, dir string) error {
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
	err = build(ctx, b, c, out)
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
	for _, c := range kubebins.Components() {
		for _, bin := range c.Binaries {
			if err := os.Symlink(filepath.Join(kubebins.ComponentDir(root, c), bin), filepath.Join(tmp, bin)); err != nil {
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
