package ociimage

import (
	"path/filepath"
	"slices"
	"testing"
)

func TestTarballNames(t *testing.T) {
	dir := t.TempDir()

	docker := filepath.Join(dir, "docker.tar")
	if err := WriteTarball(testSpec(), docker); err != nil {
		t.Fatal(err)
	}
	got, err := TarballNames(docker)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{testSpec().Ref}; !slices.Equal(got, want) {
		t.Errorf("docker tarball names = %q, want %q", got, want)
	}

	idx, err := Index(ociImage(t, "amd64"), ociImage(t, "arm64"))
	if err != nil {
		t.Fatal(err)
	}
	oci := filepath.Join(dir, "oci.tar")
	if err := WriteLayoutTarball(oci, idx, "ghcr.io/linkerd-go/proxy-init:dev", "dev"); err != nil {
		t.Fatal(err)
	}
	got, err = TarballNames(oci)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"ghcr.io/linkerd-go/proxy-init:dev"}; !slices.Equal(got, want) {
		t.Errorf("layout tarball names = %q, want %q", got, want)
	}

	if _, err := TarballNames(filepath.Join(dir, "missing.tar")); err == nil {
		t.Error("a missing tarball gave no error")
	}
}
