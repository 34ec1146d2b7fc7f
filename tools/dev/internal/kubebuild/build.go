package kubebuild

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/linkerd-go/linkerd-go/tools/testkit/childproc"
	"github.com/linkerd-go/linkerd-go/tools/testkit/kubebins"
)

// builder runs the go toolchain for one component at a time.
type builder struct {
	root string
	log  io.Writer
}

// command is exec.CommandContext with a bounded wait for output pipes after
// the context ends, so a cancelled build cannot hang the installer.
func command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

// goEnv is the environment for building third-party modules: outside any
// workspace, with module mode set by the recipe rather than inherited.
func goEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		switch {
		case strings.HasPrefix(kv, "GOFLAGS="), strings.HasPrefix(kv, "GOWORK="),
			strings.HasPrefix(kv, "GOBIN="), strings.HasPrefix(kv, "CGO_ENABLED="),
			strings.HasPrefix(kv, "GOOS="), strings.HasPrefix(kv, "GOARCH="):
			continue
		}
		env = append(env, kv)
	}
	return append(env, append([]string{"GOWORK=off", "GOFLAGS=-buildvcs=false"}, extra...)...)
}

// run runs the go command in dir, logging to the component's log file, and on
// failure returns the tail of that log.
func (b *builder) run(ctx context.Context, name, dir string, env []string, args ...string) error {
	logDir := filepath.Join(b.root, "k8s-bins", "logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return err
	}
	logPath := filepath.Join(logDir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	fmt.Fprintf(f, "\n$ go %s\n", strings.Join(args, " "))
	cmd := command(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.Stdout = f
	cmd.Stderr = f
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go %s: %w (log: %s)\n%s", args[0], err, logPath, childproc.TailFile(logPath, 30))
	}
	return nil
}

// goInstall builds packages of one module version straight from the module
// proxy, honouring that module's own go.mod (go install pkg@version).
func (b *builder) goInstall(ctx context.Context, name, out string, cgo bool, tags, ldflags string, pkgs ...string) error {
	cgoEnabled := "CGO_ENABLED=0"
	if cgo {
		cgoEnabled = "CGO_ENABLED=1"
	}
	args := []string{"install", "-trimpath", "-ldflags", strings.TrimSpace("-s -w " + ldflags)}
	if tags != "" {
		args = append(args, "-tags", tags)
	}
	args = append(args, pkgs...)
	return b.run(ctx, name, out, goEnv("GOBIN="+out, cgoEnabled), args...)
}

// wrapperBuild builds packages through a throwaway main module, for modules
// that cannot be installed directly (their go.mod has replace directives).
func (b *builder) wrapperBuild(ctx context.Context, name, out, gomod string, files map[string]string, ldflags string, pkgs ...string) error {
	src := filepath.Join(filepath.Dir(out), "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte(gomod), 0o644); err != nil {
		return err
	}
	for f, content := range files {
		if err := os.WriteFile(filepath.Join(src, f), []byte(content), 0o644); err != nil {
			return err
		}
	}
	// -mod=mod resolves the requirement graph and go.sum from the proxy on
	// the fly; the versions come from the required module's own go.mod.
	args := []string{"build", "-mod=mod", "-trimpath", "-ldflags", strings.TrimSpace("-s -w " + ldflags), "-o", out + "/"}
	args = append(args, pkgs...)
	return b.run(ctx, name, src, goEnv("CGO_ENABLED=0"), args...)
}

func buildCNI(ctx context.Context, b *builder, c kubebins.Component, out string) error {
	const mod = "github.com/containernetworking/plugins/plugins/"
	v := "@" + c.Version
	return b.goInstall(ctx, "cni-plugins", out, false, "", "",
		mod+"main/bridge"+v, mod+"ipam/host-local"+v, mod+"main/loopback"+v, mod+"meta/portmap"+v)
}

func buildCrane(ctx context.Context, b *builder, c kubebins.Component, out string) error {
	return b.goInstall(ctx, "crane", out, false, "", "",
		"github.com/google/go-containerregistry/cmd/crane@"+c.Version)
}

// runc needs cgo (its nsenter is C) and libseccomp for the seccomp profiles
// the kubelet asks for.
func buildRunc(ctx context.Context, b *builder, c kubebins.Component, out string) error {
	return b.goInstall(ctx, "runc", out, true, "seccomp",
		"-X main.version="+strings.TrimPrefix(c.Version, "v"),
		"github.com/opencontainers/runc@"+c.Version)
}

func buildContainerd(ctx context.Context, b *builder, c kubebins.Component, out string) error {
	const mod = "github.com/containerd/containerd/v2/cmd/"
	v := "@" + c.Version
	return b.goInstall(ctx, "containerd", out, false, "",
		"-X github.com/containerd/containerd/v2/version.Version="+c.Version,
		mod+"containerd"+v, mod+"containerd-shim-runc-v2"+v, mod+"ctr"+v)
}

func buildHelm(ctx context.Context, b *builder, c kubebins.Component, out string) error {
	return b.goInstall(ctx, "helm", out, false, "",
		"-X helm.sh/helm/v3/internal/version.version="+c.Version,
		"helm.sh/helm/v3/cmd/helm@"+c.Version)
}

// CoreDNS is built without cgo so its image needs no libc.
func buildCoreDNS(ctx context.Context, b *builder, c kubebins.Component, out string) error {
	return b.goInstall(ctx, "coredns", out, false, "", "",
		"github.com/coredns/coredns@"+c.Version)
}

// etcd's server module carries replace directives, so it is built through a
// five-line main of our own.
func buildEtcd(ctx context.Context, b *builder, c kubebins.Component, out string) error {
	gomod := "module etcd\n\ngo 1.26.0\n\nrequire go.etcd.io/etcd/server/v3 " + c.Version + "\n"
	main := "package main\n\nimport (\n\t\"os\"\n\n\t\"go.etcd.io/etcd/server/v3/etcdmain\"\n)\n\nfunc main() { etcdmain.Main(os.Args) }\n"
	return b.wrapperBuild(ctx, "etcd", out, gomod, map[string]string{"main.go": main}, "", ".")
}

// buildKubernetes builds the Kubernetes commands through a main module that
// requires k8s.io/kubernetes and points each of its staging modules
// (replaced by ./staging/... in its own go.mod, which a dependency's replace
// cannot use) at the published v0.X.Y of the same release. The version
// ldflags make the binaries report the real version, which Helm's
// kubeVersion checks and kubectl need.
func buildKubernetes(ctx context.Context, b *builder, c kubebins.Component, out string) error {
	stagingVersion := "v0" + strings.TrimPrefix(c.Version, "v1")
	mod, err := downloadGoMod(ctx, b, "k8s.io/kubernetes@"+c.Version)
	if err != nil {
		return err
	}
	var gomod strings.Builder
	fmt.Fprintf(&gomod, "module kubebuild\n\ngo 1.26.0\n\nrequire k8s.io/kubernetes %s\n\n", c.Version)
	for _, line := range strings.Split(mod, "\n") {
		fields := strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), "replace "))
		if len(fields) == 3 && fields[1] == "=>" && strings.HasPrefix(fields[2], "./staging/") {
			fmt.Fprintf(&gomod, "replace %s => %s %s\n", fields[0], fields[0], stagingVersion)
		}
	}
	major, minor, _ := strings.Cut(strings.TrimPrefix(c.Version, "v"), ".")
	minor, _, _ = strings.Cut(minor, ".")
	var ldflags []string
	for _, pkg := range []string{"k8s.io/component-base/version", "k8s.io/client-go/pkg/version"} {
		ldflags = append(ldflags,
			"-X "+pkg+".gitVersion="+c.Version,
			"-X "+pkg+".gitMajor="+major,
			"-X "+pkg+".gitMinor="+minor,
			"-X "+pkg+".gitTreeState=clean",
			"-X "+pkg+".buildDate=1970-01-01T00:00:00Z")
	}
	var pkgs []string
	for _, bin := range c.Binaries {
		pkgs = append(pkgs, "k8s.io/kubernetes/cmd/"+bin)
	}
	return b.wrapperBuild(ctx, "kubernetes", out, gomod.String(), nil, strings.Join(ldflags, " "), pkgs...)
}

// downloadGoMod fetches a module's go.mod through the module proxy and
// returns its text.
func downloadGoMod(ctx context.Context, b *builder, modVersion string) (string, error) {
	cmd := command(ctx, "go", "mod", "download", "-json", modVersion)
	cmd.Env = goEnv()
	cmd.Dir = b.root
	outb, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go mod download %s: %w", modVersion, err)
	}
	var info struct{ GoMod string }
	if err := json.Unmarshal(outb, &info); err != nil || info.GoMod == "" {
		return "", fmt.Errorf("go mod download %s: no go.mod in %q", modVersion, outb)
	}
	data, err := os.ReadFile(info.GoMod)
	return string(data), err
}
