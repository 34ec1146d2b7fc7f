package kubebins

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFindReportsMissingBinaries(t *testing.T) {
	t.Setenv(EnvCacheDir, t.TempDir())
	_, err := Find()
	if err == nil || !strings.Contains(err.Error(), "make k8s-bins") || !strings.Contains(err.Error(), "kube-apiserver") {
		t.Fatalf("Find on an empty cache: %v", err)
	}
}

func TestLinkAndFind(t *testing.T) {
	root := t.TempDir()
	t.Setenv(EnvCacheDir, root)
	// Fake a complete cache: one file per binary in its component folder.
	for _, c := range Components() {
		dir := componentDir(root, c)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, b := range c.Binaries {
			if err := os.WriteFile(filepath.Join(dir, b), []byte(b), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if complete(dir, c) {
			t.Fatalf("%s complete without its marker", c.Name)
		}
		if err := os.WriteFile(filepath.Join(dir, completeMarker), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if !complete(dir, c) {
			t.Fatalf("%s not complete with its marker", c.Name)
		}
	}
	set := Dir(root)
	if err := link(root, set); err != nil {
		t.Fatal(err)
	}
	got, err := Find()
	if err != nil || got != set {
		t.Fatalf("Find = %q, %v; want %q", got, err, set)
	}
	data, err := os.ReadFile(filepath.Join(set, "kubectl"))
	if err != nil || string(data) != "kubectl" {
		t.Errorf("kubectl through the set folder: %q, %v", data, err)
	}
	// Linking again replaces the set atomically.
	if err := link(root, set); err != nil {
		t.Fatal(err)
	}
}

func TestVersionsArePinned(t *testing.T) {
	for _, c := range Components() {
		if !strings.HasPrefix(c.Version, "v") || strings.Contains(c.Version, "latest") {
			t.Errorf("%s version %q is not a pinned semver", c.Name, c.Version)
		}
	}
}
