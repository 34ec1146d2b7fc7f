//go:build integration

package images

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/linkerd-go/linkerd-go/tools/testkit/childproc"
	"github.com/linkerd-go/linkerd-go/tools/testkit/kubebins"
)

// TestImagesOnRealParts builds the proxy and proxy-init images for both
// platforms, then imports them into a real containerd and runs them, and
// pushes them to a real registry (crane's) with crane and with Push.
func TestImagesOnRealParts(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test runs containerd and containers: run it as root")
	}
	bins, err := kubebins.Find()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	out := t.TempDir()
	res, err := Build(ctx, Options{OutDir: out, Components: []string{"proxy", "proxy-init"}, Tag: "it", Revision: "integration"})
	if err != nil {
		t.Fatal(err)
	}
	byComponent := map[string]Image{}
	for _, img := range res.Images {
		byComponent[img.Component] = img
	}

	t.Run("containerd", func(t *testing.T) {
		c := startContainerd(t, bins)
		for _, img := range res.Images {
			tarball := filepath.Join(out, img.File)
			// As documented: containerd picks the host platform.
			o, err := c.ctr("-n", "k8s.io", "images", "import", tarball)
			if err != nil {
				t.Fatalf("import %s: %v\n%s", img.File, err, o)
			}
			if got := c.imageDigest(t, "k8s.io", img.Ref); got != img.Digest {
				t.Errorf("containerd has %s as %q, want %s", img.Ref, got, img.Digest)
			}
			// As `dev cluster load` does it.
			if o, err := c.ctr("-n", "load", "images", "import", "--platform", "linux/"+runtime.GOARCH, tarball); err != nil {
				t.Fatalf("import --platform %s: %v\n%s", img.File, err, o)
			}
			if got := c.imageDigest(t, "load", img.Ref); got != img.Digest {
				t.Errorf("containerd (--platform) has %s as %q, want %s", img.Ref, got, img.Digest)
			}
		}

		// The static binaries run, as their non-root users, and the
		// version is the tag.
		o, spec, err := c.run(t, byComponent["proxy-init"].Ref, "/proxy-init", "--version")
		if err != nil || strings.TrimSpace(o) != "proxy-init it" {
			t.Errorf("proxy-init --version: %q, %v", o, err)
		}
		if spec.Process.User.UID != 65532 || spec.Process.User.GID != 65532 {
			t.Errorf("proxy-init runs as %+v", spec.Process.User)
		}
		o, spec, err = c.run(t, byComponent["proxy"].Ref, "/proxy", "--help")
		if err != nil || !strings.Contains(o, "LINKERD2_PROXY_") {
			t.Errorf("proxy --help: %q, %v", o, err)
		}
		if spec.Process.User.UID != 2102 || spec.Process.User.GID != 2102 {
			t.Errorf("proxy runs as %+v", spec.Process.User)
		}
		// There is no shell.
		o, _, err = c.run(t, byComponent["proxy"].Ref, "/bin/sh", "-c", "true")
		if err == nil || !strings.Contains(o, "/bin/sh") {
			t.Errorf("/bin/sh ran in the proxy image: %q, %v", o, err)
		}
	})

	t.Run("registry", func(t *testing.T) {
		reg := startRegistry(t, bins)
		crane := func(args ...string) string {
			t.Helper()
			b, err := exec.Command(filepath.Join(bins, "crane"), args...).Output()
			if err != nil {
				t.Fatalf("crane %v: %v\n%s", args, err, stderrOf(err))
			}
			return strings.TrimSpace(string(b))
		}
		for _, img := range res.Images {
			// crane, from the extracted layout.
			dir := t.TempDir()
			if b, err := exec.Command("tar", "-xf", filepath.Join(out, img.File), "-C", dir).CombinedOutput(); err != nil {
				t.Fatalf("tar: %v\n%s", err, b)
			}
			ref := Ref(reg+"/crane", img.Component, "it")
			if got := crane("push", dir, ref); got != reg+"/crane/"+img.Component+"@"+img.Digest {
				t.Errorf("crane push printed %q, want the digest %s", got, img.Digest)
			}
			checkManifest(t, crane("manifest", ref), img)
			if got := crane("digest", ref); got != img.Digest {
				t.Errorf("crane digest %s = %s, want %s", ref, got, img.Digest)
			}
		}
		// Push, renaming the images.
		pushed, err := Push(ctx, PushOptions{OutDir: out, RepositoryPrefix: reg + "/ours", Tag: "v9"})
		if err != nil {
			t.Fatal(err)
		}
		if len(pushed) != len(res.Images) {
			t.Fatalf("pushed %+v", pushed)
		}
		for _, p := range pushed {
			img := byComponent[p.Component]
			if p.Ref != Ref(reg+"/ours", p.Component, "v9") || p.Digest != img.Digest {
				t.Errorf("pushed %+v, want digest %s", p, img.Digest)
			}
			checkManifest(t, crane("manifest", p.Ref), img)
			var cfg struct {
				Config struct {
					User   string
					Labels map[string]string
				} `json:"config"`
			}
			if err := json.Unmarshal([]byte(crane("config", "--platform", "linux/arm64", p.Ref)), &cfg); err != nil {
				t.Fatal(err)
			}
			if cfg.Config.User != User(p.Component) || cfg.Config.Labels["org.opencontainers.image.revision"] != "integration" {
				t.Errorf("%s arm64 config: %+v", p.Ref, cfg.Config)
			}
		}
	})
}

func stderrOf(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}

// checkManifest checks that a registry's manifest is the built index.
func checkManifest(t *testing.T, raw string, img Image) {
	t.Helper()
	var m struct {
		MediaType string `json:"mediaType"`
		Manifests []struct {
			Digest   string `json:"digest"`
			Platform struct {
				OS           string `json:"os"`
				Architecture string `json:"architecture"`
			} `json:"platform"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		t.Fatalf("manifest of %s: %v\n%s", img.Ref, err, raw)
	}
	if m.MediaType != "application/vnd.oci.image.index.v1+json" {
		t.Errorf("%s: media type %q", img.Ref, m.MediaType)
	}
	var got, want []string
	for _, d := range m.Manifests {
		got = append(got, d.Platform.OS+"/"+d.Platform.Architecture+" "+d.Digest)
	}
	for _, p := range img.Platforms {
		want = append(want, p.Platform+" "+p.Digest)
	}
	if !slices.Equal(got, want) || len(got) != 2 {
		t.Errorf("%s: registry index holds %v, want %v", img.Ref, got, want)
	}
}

// waitFor polls cond on a ticker until it returns true, fails, or the
// deadline passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() (bool, error)) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		ok, err := cond()
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		if ok {
			return
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("%s not ready after %s", what, timeout)
		}
	}
}

type containerdProc struct {
	bins, dir, sock string
}

// startContainerd runs containerd with its own root, state, sockets and
// runc/FIFO folders under a temporary folder, without the CRI, NRI or
// anything else that touches the host, and stops it and cleans up when the
// test ends.
func startContainerd(t *testing.T, bins string) *containerdProc {
	dir := t.TempDir()
	c := &containerdProc{bins: bins, dir: dir, sock: filepath.Join(dir, "c.sock")}
	// The shims put their sockets under /run/containerd/s, whatever the
	// configuration says; remove the folders if this test made them.
	for _, d := range []string{"/run/containerd", "/run/containerd/s"} {
		if _, err := os.Stat(d); os.IsNotExist(err) {
			t.Cleanup(func() { _ = os.Remove(d) }) // only if empty; LIFO: s first
		}
	}
	cfg := fmt.Sprintf(`version = 3
root = %[1]q
state = %[2]q
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.cri.v1.runtime", "io.containerd.cri.v1.images", "io.containerd.podsandbox.controller.v1.podsandbox", "io.containerd.nri.v1.nri", "io.containerd.internal.v1.opt", "io.containerd.internal.v1.tracing"]
[grpc]
  address = %[3]q
[ttrpc]
  address = %[4]q
[debug]
  address = ""
[metrics]
  address = ""
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), c.sock, c.sock+".ttrpc")
	cfgPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := childproc.Start("containerd", filepath.Join(dir, "containerd.log"),
		[]string{"PATH=" + bins + ":" + os.Getenv("PATH")},
		filepath.Join(bins, "containerd"), "--config", cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.deleteTasks(t)
		p.Stop(10 * time.Second)
		unmountUnder(t, dir)
		if t.Failed() {
			t.Logf("containerd log:\n%s", p.Tail(30))
		}
	})
	waitFor(t, "containerd", 30*time.Second, func() (bool, error) {
		if err := p.Running(); err != nil {
			return false, fmt.Errorf("%w\n%s", err, p.Tail(20))
		}
		conn, err := net.Dial("unix", c.sock)
		if err != nil {
			return false, nil
		}
		conn.Close()
		return true, nil
	})
	return c
}

func (c *containerdProc) ctr(args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(c.bins, "ctr"), append([]string{"--address", c.sock}, args...)...)
	cmd.Env = append(os.Environ(), "PATH="+c.bins+":"+os.Getenv("PATH"))
	b, err := cmd.CombinedOutput()
	// Every ctr call warns that cgroup v1 is deprecated.
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.Contains(l, "DEPRECATION") {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "\n"), err
}

// imageDigest returns the digest containerd stores ref under.
func (c *containerdProc) imageDigest(t *testing.T, ns, ref string) string {
	t.Helper()
	o, err := c.ctr("-n", ns, "images", "ls", "name=="+ref)
	if err != nil {
		t.Fatalf("images ls: %v\n%s", err, o)
	}
	// REF TYPE DIGEST SIZE PLATFORMS LABELS
	for _, l := range strings.Split(o, "\n") {
		if f := strings.Fields(l); len(f) >= 3 && f[0] == ref {
			return f[2]
		}
	}
	return ""
}

type ociSpec struct {
	Process struct {
		User struct {
			UID uint32 `json:"uid"`
			GID uint32 `json:"gid"`
		} `json:"user"`
	} `json:"process"`
}

var runCount int

// run runs argv in a container of ref (host platform) and returns its
// output and the OCI runtime spec it ran with.
func (c *containerdProc) run(t *testing.T, ref string, argv ...string) (string, ociSpec, error) {
	t.Helper()
	runCount++
	id := fmt.Sprintf("run%d", runCount)
	specPath := filepath.Join(c.dir, id+".json")
	args := []string{"-n", "k8s.io", "run", "--rm",
		"--runc-root", filepath.Join(c.dir, "runc"), "--fifo-dir", filepath.Join(c.dir, "fifo"),
		"--cgroup", "", "--dump-config", specPath, ref, id}
	o, err := c.ctr(append(args, argv...)...)
	var spec ociSpec
	b, rerr := os.ReadFile(specPath)
	if rerr != nil {
		t.Fatalf("no spec for %v: %v (ctr: %v %s)", argv, rerr, err, o)
	}
	if err := json.Unmarshal(b, &spec); err != nil {
		t.Fatal(err)
	}
	return o, spec, err
}

// deleteTasks kills and deletes any task a failed test left behind, so no
// shim outlives containerd.
func (c *containerdProc) deleteTasks(t *testing.T) {
	for _, ns := range []string{"k8s.io", "load"} {
		o, err := c.ctr("-n", ns, "tasks", "ls", "-q")
		if err != nil {
			continue
		}
		for id := range strings.FieldsSeq(o) {
			if o, err := c.ctr("-n", ns, "tasks", "delete", "-f", id); err != nil {
				t.Errorf("deleting task %s: %v %s", id, err, o)
			}
		}
	}
}

// unmountUnder detaches every mount below dir (snapshots a failed run may
// have left mounted), deepest first.
func unmountUnder(t *testing.T, dir string) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Error(err)
		return
	}
	defer f.Close()
	var mounts []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		if fields := strings.Fields(s.Text()); len(fields) > 4 && strings.HasPrefix(fields[4], dir+"/") {
			mounts = append(mounts, fields[4])
		}
	}
	slices.SortFunc(mounts, func(a, b string) int { return len(b) - len(a) })
	for _, m := range mounts {
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil {
			t.Errorf("unmounting %s: %v", m, err)
		}
	}
}

var servingPort = regexp.MustCompile(`serving on port (\d+)`)

// startRegistry runs `crane registry serve` on a loopback port and returns
// its host:port.
func startRegistry(t *testing.T, bins string) string {
	dir := t.TempDir()
	p, err := childproc.Start("crane registry", filepath.Join(dir, "registry.log"), nil,
		filepath.Join(bins, "crane"), "registry", "serve", "--address", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop(5 * time.Second) })
	var addr string
	waitFor(t, "the registry", 30*time.Second, func() (bool, error) {
		if err := p.Running(); err != nil {
			return false, fmt.Errorf("%w\n%s", err, p.Tail(20))
		}
		b, _ := os.ReadFile(p.LogPath)
		m := servingPort.FindSubmatch(b)
		if m == nil {
			return false, nil
		}
		addr = "127.0.0.1:" + string(m[1])
		return true, nil
	})
	return addr
}
