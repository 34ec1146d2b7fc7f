package ociimage

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func ociImage(t *testing.T, arch string) v1.Image {
	t.Helper()
	s := testSpec()
	s.OCI, s.Arch = true, arch
	img, err := Build(s)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestLayoutRoundTrip(t *testing.T) {
	idx, err := Index(ociImage(t, "amd64"), ociImage(t, "arm64"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.tar"), filepath.Join(dir, "b.tar")
	for _, p := range []string{a, b} {
		if err := WriteLayoutTarball(p, idx, "kc.local/example:dev", "dev"); err != nil {
			t.Fatal(err)
		}
	}
	ba, _ := os.ReadFile(a)
	bb, _ := os.ReadFile(b)
	if !bytes.Equal(ba, bb) {
		t.Error("the same index written twice gives different tarballs")
	}
	named, err := ReadLayoutTarball(a, filepath.Join(dir, "x"))
	if err != nil {
		t.Fatal(err)
	}
	if len(named) != 1 || named[0].Ref != "kc.local/example:dev" {
		t.Fatalf("read back %+v", named)
	}
	want, _ := idx.Digest()
	got, err := named[0].Index.Digest()
	if err != nil || got != want {
		t.Errorf("digest %s (%v), want %s", got, err, want)
	}
	im, err := named[0].Index.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for i, arch := range []string{"amd64", "arm64"} {
		if p := im.Manifests[i].Platform; p == nil || p.OS != "linux" || p.Architecture != arch {
			t.Errorf("entry %d platform %+v, want linux/%s", i, p, arch)
		}
		if _, err := named[0].Index.Image(im.Manifests[i].Digest); err != nil {
			t.Errorf("entry %d: %v", i, err)
		}
	}
	if _, err := ReadLayoutTarball(a, filepath.Join(dir, "x")); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("extracting into a used folder: %v", err)
	}
}

func TestIndexRefuses(t *testing.T) {
	if _, err := Index(); err == nil {
		t.Error("empty index accepted")
	}
	if _, err := Index(ociImage(t, "amd64"), ociImage(t, "amd64")); err == nil || !strings.Contains(err.Error(), "two images for platform linux/amd64") {
		t.Errorf("same platform twice: %v", err)
	}
	docker, err := Build(testSpec())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Index(docker); err == nil || !strings.Contains(err.Error(), "Spec.OCI") {
		t.Errorf("docker media types: %v", err)
	}
}

func TestReadLayoutTarballRefuses(t *testing.T) {
	// An absolute path the test owns, so that a regression writes nowhere
	// else.
	abs := filepath.Join(t.TempDir(), "evil")
	for name, entries := range map[string][]tar.Header{
		"escape":    {{Name: "../evil", Typeflag: tar.TypeReg}},
		"absolute":  {{Name: abs, Typeflag: tar.TypeReg}},
		"symlink":   {{Name: "link", Typeflag: tar.TypeSymlink, Linkname: "/etc"}},
		"no layout": {{Name: "hello", Typeflag: tar.TypeReg}},
	} {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			tw := tar.NewWriter(&buf)
			for _, h := range entries {
				if err := tw.WriteHeader(&h); err != nil {
					t.Fatal(err)
				}
			}
			if err := tw.Close(); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(t.TempDir(), "bad.tar")
			if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(t.TempDir(), "out")
			if _, err := ReadLayoutTarball(p, out); err == nil {
				t.Error("accepted")
			}
			for _, f := range []string{abs, filepath.Join(filepath.Dir(out), "evil")} {
				if _, err := os.Stat(f); err == nil {
					t.Errorf("%s was written", f)
				}
			}
		})
	}
}
