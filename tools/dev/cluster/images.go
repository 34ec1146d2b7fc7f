package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/linkerd-go/linkerd-go/tools/dev/internal/ociimage"
)

// The images every dev cluster has: nothing can be pulled here, so the pause
// (sandbox) image, CoreDNS and the test workload are built locally.

// buildGo builds a command of the tools module as a static binary for this
// machine's architecture (the node's).
func (c *Cluster) buildGo(ctx context.Context, pkg, out string) error {
	cmd := command(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, pkg)
	cmd.Dir = c.DevModuleDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	return nil
}

// BuildCommandImage builds the tools module's ./cmd/<name> as a static
// binary for the node's architecture and writes an image of it (entrypoint
// /<name>, uid and gid 65532) named ref to dir/<name>.tar, whose path it
// returns. LoadImage loads it.
func (c *Cluster) BuildCommandImage(ctx context.Context, name, ref, dir string) (string, error) {
	bin := filepath.Join(dir, "bin", name)
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		return "", err
	}
	if err := c.buildGo(ctx, "./cmd/"+name, bin); err != nil {
		return "", err
	}
	p := filepath.Join(dir, name+".tar")
	return p, ociimage.WriteTarball(ociimage.Spec{
		Ref:        ref,
		Arch:       runtime.GOARCH,
		Entrypoint: []string{"/" + name},
		User:       "65532:65532",
		Files:      []ociimage.File{{Path: "/" + name, Source: bin, Mode: 0o755}},
	}, p)
}

// buildImages writes the cluster's image tarballs into images/ and returns
// their paths.
func (c *Cluster) buildImages(ctx context.Context) ([]string, error) {
	dir := c.path("images")
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		return nil, err
	}
	for _, name := range []string{"pause", "testapp"} {
		if err := c.buildGo(ctx, "./cmd/"+name, filepath.Join(dir, "bin", name)); err != nil {
			return nil, err
		}
	}
	specs := []struct {
		file string
		spec ociimage.Spec
	}{
		{"pause.tar", ociimage.Spec{
			Ref:        PauseImage,
			Arch:       runtime.GOARCH,
			Entrypoint: []string{"/pause"},
			User:       "65535:65535",
			Files:      []ociimage.File{{Path: "/pause", Source: filepath.Join(dir, "bin", "pause"), Mode: 0o755}},
		}},
		{"testapp.tar", ociimage.Spec{
			Ref:        TestAppImage,
			Arch:       runtime.GOARCH,
			Entrypoint: []string{"/testapp"},
			User:       "65532:65532",
			Files:      []ociimage.File{{Path: "/testapp", Source: filepath.Join(dir, "bin", "testapp"), Mode: 0o755}},
		}},
		{"coredns.tar", ociimage.Spec{
			Ref:        CoreDNSImage,
			Arch:       runtime.GOARCH,
			Entrypoint: []string{"/coredns"},
			User:       "65532:65532",
			Files:      []ociimage.File{{Path: "/coredns", Source: c.bin("coredns"), Mode: 0o755}},
		}},
	}
	var paths []string
	for _, s := range specs {
		p := filepath.Join(dir, s.file)
		if err := ociimage.WriteTarball(s.spec, p); err != nil {
			return nil, err
		}
		paths = append(paths, p)
	}
	return paths, nil
}

// LoadImage imports an image tarball (docker or OCI layout) into the node's
// containerd, where pods with imagePullPolicy Never or IfNotPresent find it.
// Of a multi-platform image, the node's platform (linux/<this machine's
// architecture>) is imported; the tarball must hold it.
func (c *Cluster) LoadImage(ctx context.Context, tarball string) error {
	if _, err := os.Stat(tarball); err != nil {
		return err
	}
	if _, ok := c.running("containerd"); !ok {
		return fmt.Errorf("containerd is not running: run `cluster up` first")
	}
	names, err := ociimage.TarballNames(tarball)
	if err != nil {
		return err
	}
	out, err := c.ctr(ctx, "images", "import", "--platform", "linux/"+runtime.GOARCH, tarball)
	if err != nil {
		return fmt.Errorf("importing %s: %w: %s", tarball, err, out)
	}
	c.logf("loaded %s from %s", strings.Join(names, ", "), filepath.Base(tarball))
	return nil
}

// ctr runs containerd's client in the k8s.io namespace (the CRI's).
func (c *Cluster) ctr(ctx context.Context, args ...string) ([]byte, error) {
	full := append([]string{"--address", c.path("containerd", "containerd.sock"), "--namespace", "k8s.io"}, args...)
	return command(ctx, c.bin("ctr"), full...).CombinedOutput()
}
