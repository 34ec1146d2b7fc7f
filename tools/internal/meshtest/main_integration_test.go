//go:build integration

package meshtest

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// bins holds the binaries: the four components and a copy of this test
// binary (the applications), in a folder every user may read, since the
// proxies run as uid 2102. The first startMesh builds them (needBins);
// TestMain removes them.
var bins struct {
	dir                                          string
	identity, destination, proxy, proxyInit, app string
}

var (
	buildOnce sync.Once
	buildErr  error
)

// needBins builds the binaries on first use.
func needBins(t testing.TB) {
	t.Helper()
	buildOnce.Do(func() { buildErr = buildBins(bins.dir) })
	if buildErr != nil {
		t.Fatal(buildErr)
	}
}

func TestMain(m *testing.M) {
	if name := os.Getenv(helperEnv); name != "" {
		runHelper(name)
		return
	}
	os.Exit(mainWithBins(m))
}

func mainWithBins(m *testing.M) int {
	dir, err := os.MkdirTemp("", "meshtest-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	bins.dir = dir
	return m.Run()
}

// buildBins builds each component from its module in this checkout, on its
// own (GOWORK=off) and static (CGO_ENABLED=0), like its image would.
func buildBins(dir string) error {
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	root, err := checkoutRoot()
	if err != nil {
		return err
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return err
	}
	for _, b := range []struct {
		module, cmd string
		out         *string
	}{
		{"identity", "identity", &bins.identity},
		{"destination", "destination", &bins.destination},
		{"proxy", "proxy", &bins.proxy},
		{"proxy-init", "proxy-init", &bins.proxyInit},
	} {
		*b.out = filepath.Join(dir, b.cmd)
		cmd := exec.Command(goBin, "build", "-o", *b.out, "./cmd/"+b.cmd)
		cmd.Dir = filepath.Join(root, b.module)
		cmd.Env = append(os.Environ(), "GOWORK=off", "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("building %s: %w\n%s", b.cmd, err, out)
		}
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	bins.app = filepath.Join(dir, "app")
	return copyFile(self, bins.app)
}

// checkoutRoot is the closest folder above the working directory holding
// go.work.
func checkoutRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.work above the working directory")
		}
		dir = parent
	}
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
