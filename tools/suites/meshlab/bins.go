package meshlab

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
)

// Bins are the component binaries, in a folder every user may read (the
// proxies run as uid 2102).
type Bins struct {
	Dir                                     string
	Identity, Destination, Proxy, ProxyInit string
}

// BuildOptions change how the binaries are built.
type BuildOptions struct {
	// ProxyExtraFiles are Go files (name → source) added to the proxy's
	// main package at build time with `go build -overlay`, so a test build
	// can carry instrumentation without touching the proxy's source.
	ProxyExtraFiles map[string][]byte
}

// Build builds each component from its module in this checkout into dir, on
// its own (GOWORK=off) and static (CGO_ENABLED=0), like its image would.
func Build(dir string, opts BuildOptions) (Bins, error) {
	b := Bins{Dir: dir}
	if err := os.Chmod(dir, 0o755); err != nil {
		return b, err
	}
	root, err := CheckoutRoot()
	if err != nil {
		return b, err
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return b, err
	}
	for _, c := range []struct {
		module, cmd string
		out         *string
	}{
		{"identity", "identity", &b.Identity},
		{"destination", "destination", &b.Destination},
		{"proxy", "proxy", &b.Proxy},
		{"proxy-init", "proxy-init", &b.ProxyInit},
	} {
		*c.out = filepath.Join(dir, c.cmd)
		args := []string{"build", "-o", *c.out}
		if c.cmd == "proxy" && len(opts.ProxyExtraFiles) > 0 {
			overlay, err := writeOverlay(dir, filepath.Join(root, "proxy", "cmd", "proxy"), opts.ProxyExtraFiles)
			if err != nil {
				return b, err
			}
			args = append(args, "-overlay", overlay)
		}
		cmd := exec.Command(goBin, append(args, "./cmd/"+c.cmd)...)
		cmd.Dir = filepath.Join(root, c.module)
		cmd.Env = append(os.Environ(), "GOWORK=off", "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return b, fmt.Errorf("building %s: %w\n%s", c.cmd, err, out)
		}
	}
	return b, nil
}

// writeOverlay writes files into dir/overlay and the overlay description
// mapping pkgDir/<name> onto them.
func writeOverlay(dir, pkgDir string, files map[string][]byte) (string, error) {
	src := filepath.Join(dir, "overlay")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return "", err
	}
	replace := map[string]string{}
	for name, content := range files {
		p := filepath.Join(src, name)
		if err := os.WriteFile(p, content, 0o644); err != nil {
			return "", err
		}
		replace[filepath.Join(pkgDir, name)] = p
	}
	b, err := json.Marshal(map[string]any{"Replace": replace})
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "overlay.json")
	return path, os.WriteFile(path, b, 0o644)
}

// CheckoutRoot is the closest folder above the working directory holding
// go.work.
func CheckoutRoot() (string, error) {
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

// CopyFile copies src to dst, executable by everyone.
func CopyFile(src, dst string) error {
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
