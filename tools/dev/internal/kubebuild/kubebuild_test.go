package kubebuild

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/linkerd-go/linkerd-go/tools/testkit/kubebins"
)

func TestLinkAndFind(t *testing.T) {
	root := t.TempDir()
	t.Setenv(kubebins.EnvCacheDir, root)
	// Fake a complete cache: one file per binary in its component folder.
	for _, c := range kubebins.Components() {
		dir := kubebins.ComponentDir(root, c)
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
	set := kubebins.Dir(root)
	if err := link(root, set); err != nil {
		t.Fatal(err)
	}
	got, err := kubebins.Find()
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

// TestEveryComponentHasARecipe: a component added to the pinned set without
// a recipe, or a recipe left for a component that is gone, is a mistake.
func TestEveryComponentHasARecipe(t *testing.T) {
	names := map[string]bool{}
	for _, c := range kubebins.Components() {
		names[c.Name] = true
		if recipes[c.Name] == nil {
			t.Errorf("no recipe builds %s", c.Name)
		}
	}
	for name := range recipes {
		if !names[name] {
			t.Errorf("recipe %s builds no pinned component", name)
		}
	}
}
