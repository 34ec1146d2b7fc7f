package ociimage

import (
	"archive/tar"
	"errors"
	"io"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func testSpec() Spec {
	return Spec{
		Ref:        "kc.local/example:dev",
		Entrypoint: []string{"/bin/app"},
		User:       "65532:65532",
		Labels:     map[string]string{"org.opencontainers.image.version": "dev"},
		Files: []File{
			{Path: "/etc/app/config.yaml", Data: []byte("a: 1\n")},
			{Path: "/bin/app", Data: []byte("#!binary"), Mode: 0o755},
		},
	}
}

func TestBuildIsReproducible(t *testing.T) {
	a, err := Build(testSpec())
	if err != nil {
		t.Fatal(err)
	}
	b, err := Build(testSpec())
	if err != nil {
		t.Fatal(err)
	}
	da, _ := a.Digest()
	db, _ := b.Digest()
	if da != db {
		t.Errorf("same spec, different digests: %s vs %s", da, db)
	}
}

func TestWriteTarballRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "img.tar")
	if err := WriteTarball(testSpec(), path); err != nil {
		t.Fatal(err)
	}
	tag, _ := name.NewTag("kc.local/example:dev")
	img, err := tarball.ImageFromPath(path, &tag)
	if err != nil {
		t.Fatalf("reading back: %v", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture != "amd64" || cf.Config.User != "65532:65532" || cf.Config.Entrypoint[0] != "/bin/app" {
		t.Errorf("config = %+v", cf.Config)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers = %d, %v", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var names []string
	modes := map[string]int64{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		modes[h.Name] = h.Mode
		if !h.ModTime.IsZero() && h.ModTime.Unix() != 0 {
			t.Errorf("%s has a modification time %v", h.Name, h.ModTime)
		}
	}
	want := []string{"bin/", "bin/app", "etc/", "etc/app/", "etc/app/config.yaml"}
	if len(names) != len(want) {
		t.Fatalf("layer entries = %v, want %v", names, want)
	}
	for i := range want {
		if names[i] != want[i] {
			t.Errorf("entry %d = %q, want %q", i, names[i], want[i])
		}
	}
	if modes["bin/app"] != 0o755 {
		t.Errorf("bin/app mode = %o", modes["bin/app"])
	}
}

func TestBadInput(t *testing.T) {
	s := testSpec()
	s.Files = append(s.Files, File{Path: "relative/file"})
	if _, err := Build(s); err == nil {
		t.Error("relative path accepted")
	}
	s = testSpec()
	s.Ref = "Not A Ref"
	if err := WriteTarball(s, filepath.Join(t.TempDir(), "x.tar")); err == nil {
		t.Error("bad reference accepted")
	}
}
