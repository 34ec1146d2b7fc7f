package ociimage

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Annotations on the layout's index.json entry that name the image.
const (
	// AnnotationImageName is containerd's: `ctr images import` names the
	// image after it when it is a full reference.
	AnnotationImageName = "io.containerd.image.name"
	// AnnotationRefName is the OCI one; it holds the tag only.
	AnnotationRefName = "org.opencontainers.image.ref.name"
)

// Index returns an OCI image index of imgs, each described by the platform
// of its config (os/architecture[/variant]), in the order given.
func Index(imgs ...v1.Image) (v1.ImageIndex, error) {
	if len(imgs) == 0 {
		return nil, errors.New("an image index needs at least one image")
	}
	adds := make([]mutate.IndexAddendum, 0, len(imgs))
	seen := map[string]bool{}
	for _, img := range imgs {
		cf, err := img.ConfigFile()
		if err != nil {
			return nil, err
		}
		p := v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}
		if seen[p.String()] {
			return nil, fmt.Errorf("two images for platform %s", p.String())
		}
		seen[p.String()] = true
		mt, err := img.MediaType()
		if err != nil {
			return nil, err
		}
		if mt != types.OCIManifestSchema1 {
			return nil, fmt.Errorf("image for %s has media type %s; build it with Spec.OCI", p.String(), mt)
		}
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &p}})
	}
	return mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), adds...), nil
}

// epoch is the modification time of every entry of a layout tarball.
var epoch = time.Unix(0, 0).UTC()

// WriteLayoutTarball writes idx as a tar of an OCI image layout to path:
// oci-layout, index.json and blobs/sha256/*. index.json has one entry, idx
// itself, annotated with ref (a full reference such as
// "ghcr.io/linkerd-go/proxy:dev") and its tag, so that:
//
//   - `ctr images import` stores it under ref (for the platforms asked for);
//   - once extracted, `crane push DIR REF` pushes idx unchanged (same digest).
//
// The tarball is reproducible: entries sorted, fixed times and owners.
func WriteLayoutTarball(path string, idx v1.ImageIndex, ref, tag string) error {
	blobs, err := indexBlobs(idx)
	if err != nil {
		return err
	}
	desc, err := descriptorOf(idx)
	if err != nil {
		return err
	}
	desc.Annotations = map[string]string{AnnotationImageName: ref, AnnotationRefName: tag}
	top, err := json.Marshal(v1.IndexManifest{
		SchemaVersion: 2,
		MediaType:     types.OCIImageIndex,
		Manifests:     []v1.Descriptor{desc},
	})
	if err != nil {
		return err
	}

	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	defer os.Remove(tmp) // a no-op once renamed
	tw := tar.NewWriter(f)
	werr := writeLayout(tw, top, blobs)
	if werr == nil {
		werr = tw.Close()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return fmt.Errorf("writing %s: %w", path, werr)
	}
	return os.Rename(tmp, path)
}

// blob is one file under blobs/.
type blob struct {
	digest v1.Hash
	size   int64
	open   func() (io.ReadCloser, error)
}

func bytesBlob(b []byte) blob {
	h, n, _ := v1.SHA256(bytes.NewReader(b))
	return blob{digest: h, size: n, open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }}
}

// indexBlobs returns every blob idx needs (its manifest, its images'
// manifests, configs and layers), sorted by digest, each once.
func indexBlobs(idx v1.ImageIndex) ([]blob, error) {
	raw, err := idx.RawManifest()
	if err != nil {
		return nil, err
	}
	blobs := map[v1.Hash]blob{}
	add := func(b blob) { blobs[b.digest] = b }
	add(bytesBlob(raw))
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	for _, d := range im.Manifests {
		if !d.MediaType.IsImage() {
			return nil, fmt.Errorf("index entry %s is a %s, not an image", d.Digest, d.MediaType)
		}
		img, err := idx.Image(d.Digest)
		if err != nil {
			return nil, err
		}
		m, err := img.RawManifest()
		if err != nil {
			return nil, err
		}
		add(bytesBlob(m))
		c, err := img.RawConfigFile()
		if err != nil {
			return nil, err
		}
		add(bytesBlob(c))
		layers, err := img.Layers()
		if err != nil {
			return nil, err
		}
		for _, l := range layers {
			h, err := l.Digest()
			if err != nil {
				return nil, err
			}
			n, err := l.Size()
			if err != nil {
				return nil, err
			}
			add(blob{digest: h, size: n, open: l.Compressed})
		}
	}
	out := make([]blob, 0, len(blobs))
	for _, b := range blobs {
		out = append(out, b)
	}
	slices.SortFunc(out, func(a, b blob) int { return strings.Compare(a.digest.String(), b.digest.String()) })
	return out, nil
}

func descriptorOf(idx v1.ImageIndex) (v1.Descriptor, error) {
	mt, err := idx.MediaType()
	if err != nil {
		return v1.Descriptor{}, err
	}
	d, err := idx.Digest()
	if err != nil {
		return v1.Descriptor{}, err
	}
	n, err := idx.Size()
	if err != nil {
		return v1.Descriptor{}, err
	}
	return v1.Descriptor{MediaType: mt, Digest: d, Size: n}, nil
}

func writeLayout(tw *tar.Writer, indexJSON []byte, blobs []blob) error {
	dir := func(name string) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755, ModTime: epoch, Format: tar.FormatUSTAR})
	}
	file := func(name string, size int64, r io.Reader) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: size, ModTime: epoch, Format: tar.FormatUSTAR}); err != nil {
			return err
		}
		n, err := io.Copy(tw, r)
		if err != nil {
			return err
		}
		if n != size {
			return fmt.Errorf("%s: wrote %d bytes, want %d", name, n, size)
		}
		return nil
	}
	layoutJSON := []byte(`{"imageLayoutVersion":"1.0.0"}`)
	if err := file("oci-layout", int64(len(layoutJSON)), bytes.NewReader(layoutJSON)); err != nil {
		return err
	}
	if err := file("index.json", int64(len(indexJSON)), bytes.NewReader(indexJSON)); err != nil {
		return err
	}
	if err := dir("blobs/"); err != nil {
		return err
	}
	if err := dir("blobs/sha256/"); err != nil {
		return err
	}
	for _, b := range blobs {
		rc, err := b.open()
		if err != nil {
			return err
		}
		err = file("blobs/"+b.digest.Algorithm+"/"+b.digest.Hex, b.size, rc)
		rc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// Named is the image index of a layout tarball and the reference it is
// tagged with.
type Named struct {
	Ref   string
	Index v1.ImageIndex
}

// maxLayoutFile bounds each file extracted from a layout tarball.
const maxLayoutFile = 1 << 30

// ReadLayoutTarball extracts a tarball written by WriteLayoutTarball (or
// any OCI layout tarball) into dir, which must be empty or absent, and
// returns its entries that are image indexes, with their names. The
// returned indexes read their blobs from dir, so keep dir until done with
// them.
func ReadLayoutTarball(tarPath, dir string) ([]Named, error) {
	if err := extract(tarPath, dir); err != nil {
		return nil, fmt.Errorf("reading %s: %w", tarPath, err)
	}
	top, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("%s is not an OCI image layout: %w", tarPath, err)
	}
	im, err := top.IndexManifest()
	if err != nil {
		return nil, err
	}
	var out []Named
	for _, d := range im.Manifests {
		if !d.MediaType.IsIndex() {
			continue
		}
		idx, err := top.ImageIndex(d.Digest)
		if err != nil {
			return nil, err
		}
		ref := d.Annotations[AnnotationImageName]
		if ref == "" {
			ref = d.Annotations[AnnotationRefName]
		}
		out = append(out, Named{Ref: ref, Index: idx})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s holds no image index", tarPath)
	}
	return out, nil
}

// extract unpacks the regular files and folders of a tar into dir,
// refusing paths that leave it.
func extract(tarPath, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	if len(entries) > 0 {
		return fmt.Errorf("folder %s is not empty", dir)
	}
	f, err := os.Open(tarPath)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		name := path.Clean(h.Name)
		if path.IsAbs(name) || name == ".." || strings.HasPrefix(name, "../") {
			return fmt.Errorf("entry %q leaves the layout", h.Name)
		}
		target := filepath.Join(dir, filepath.FromSlash(name))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if h.Size > maxLayoutFile {
				return fmt.Errorf("entry %q is %d bytes, more than %d", h.Name, h.Size, maxLayoutFile)
			}
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			out, err := os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
			if err != nil {
				return err
			}
			_, err = io.Copy(out, io.LimitReader(tr, maxLayoutFile))
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		default:
			return fmt.Errorf("entry %q has unsupported type %q", h.Name, h.Typeflag)
		}
	}
}
