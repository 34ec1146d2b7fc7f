// Package ociimage builds small container images from files on disk (static
// binaries, config files) without a Docker daemon or a registry, and writes
// them as tarballs that `ctr images import` and `crane push` accept.
//
// Images are reproducible: file times, owners and the image creation time
// are fixed, so the same inputs give the same digest.
package ociimage

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// File is one file of the image's single layer.
type File struct {
	// Path inside the image, absolute (e.g. "/pause").
	Path string
	// Source is a file on disk to copy; Data is used when Source is empty.
	Source string
	Data   []byte
	// Mode is the permission bits (0o755 for binaries).
	Mode int64
}

// Spec describes an image.
type Spec struct {
	// Ref is the name the tarball is tagged with, e.g. "kc.local/pause:dev".
	Ref string
	// OS and Arch of the binaries; default linux/amd64.
	OS, Arch   string
	Entrypoint []string
	Cmd        []string
	// User, e.g. "65532:65532"; empty means root (only for images that need it).
	User   string
	Env    []string
	Labels map[string]string
	Files  []File
	// OCI selects OCI media types for the manifest, config and layer
	// instead of Docker's. Images that go into an OCI image index (see
	// Index and WriteLayoutTarball) use them.
	OCI bool
}

// Build returns the image described by spec.
func Build(spec Spec) (v1.Image, error) {
	layerTar, err := layer(spec.Files)
	if err != nil {
		return nil, err
	}
	var layerOpts []tarball.LayerOption
	base := empty.Image
	if spec.OCI {
		layerOpts = append(layerOpts, tarball.WithMediaType(types.OCILayer))
		base = mutate.ConfigMediaType(mutate.MediaType(base, types.OCIManifestSchema1), types.OCIConfigJSON)
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, layerOpts...)
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(base, l)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = spec.OS, spec.Arch
	if cf.OS == "" {
		cf.OS = "linux"
	}
	if cf.Architecture == "" {
		cf.Architecture = "amd64"
	}
	cf.Config.Entrypoint = spec.Entrypoint
	cf.Config.Cmd = spec.Cmd
	cf.Config.User = spec.User
	cf.Config.Env = spec.Env
	cf.Config.Labels = spec.Labels
	return mutate.ConfigFile(img, cf)
}

// WriteTarball builds the image and writes it, tagged spec.Ref, to path.
func WriteTarball(spec Spec, path string) error {
	ref, err := name.ParseReference(spec.Ref)
	if err != nil {
		return fmt.Errorf("image name %q: %w", spec.Ref, err)
	}
	img, err := Build(spec)
	if err != nil {
		return fmt.Errorf("building %s: %w", spec.Ref, err)
	}
	tmp := path + ".tmp"
	if err := tarball.WriteToFile(tmp, ref, img); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return os.Rename(tmp, path)
}

// layer returns a tar of files with their parent folders, sorted, with
// fixed times and root ownership.
func layer(files []File) ([]byte, error) {
	files = slices.Clone(files)
	slices.SortFunc(files, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	for _, f := range files {
		if !path.IsAbs(f.Path) || path.Clean(f.Path) != f.Path || f.Path == "/" {
			return nil, fmt.Errorf("image file path %q must be absolute and clean", f.Path)
		}
		// Parent folders first, each once.
		var parents []string
		for d := path.Dir(f.Path); d != "/"; d = path.Dir(d) {
			parents = append(parents, d)
		}
		slices.Reverse(parents)
		for _, d := range parents {
			if dirs[d] {
				continue
			}
			dirs[d] = true
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: strings.TrimPrefix(d, "/") + "/", Mode: 0o755, Format: tar.FormatPAX}); err != nil {
				return nil, err
			}
		}
		data := f.Data
		if f.Source != "" {
			var err error
			if data, err = os.ReadFile(f.Source); err != nil {
				return nil, err
			}
		}
		mode := f.Mode
		if mode == 0 {
			mode = 0o644
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(f.Path, "/"), Mode: mode, Size: int64(len(data)), Format: tar.FormatPAX}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
