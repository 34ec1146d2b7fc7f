package images

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/linkerd-go/linkerd-go/tools/dev/internal/ociimage"
)

// PushOptions describe a push of built images.
type PushOptions struct {
	// OutDir holds the tarballs and images.json of a build. Required.
	OutDir string
	// Components to push; default every image in images.json.
	Components []string
	// RepositoryPrefix and Tag name the pushed images
	// (<prefix>/<component>:<tag>); default: those of the build.
	RepositoryPrefix string
	Tag              string
	// Insecure allows plain HTTP to the registry (loopback and private
	// addresses use HTTP anyway).
	Insecure bool
	// Log receives one line per pushed image. Default: discarded.
	Log io.Writer
	// Remote are extra go-containerregistry options (transport, auth);
	// default: credentials from the Docker config (~/.docker/config.json,
	// credential helpers), as `crane auth login` or `docker login` left them.
	Remote []remote.Option
}

// Pushed is one pushed image.
type Pushed struct {
	Component string
	Ref       string
	Digest    string
}

// Push pushes the multi-platform images of a build to a registry. Each
// index is pushed unchanged, so the registry's digest is the one in
// images.json.
func Push(ctx context.Context, opts PushOptions) ([]Pushed, error) {
	if opts.OutDir == "" {
		return nil, fmt.Errorf("no image folder given")
	}
	sum, err := ReadSummary(opts.OutDir)
	if err != nil {
		return nil, err
	}
	prefix, tag := opts.RepositoryPrefix, opts.Tag
	if prefix == "" {
		prefix = sum.RepositoryPrefix
	}
	if tag == "" {
		tag = sum.Tag
	}
	if err := ValidateRepositoryPrefix(prefix); err != nil {
		return nil, err
	}
	if err := ValidateTag(tag); err != nil {
		return nil, err
	}
	byComponent := map[string]Image{}
	var want []string
	for _, img := range sum.Images {
		byComponent[img.Component] = img
		want = append(want, img.Component)
	}
	if len(opts.Components) > 0 {
		if want, err = ParseComponents(opts.Components); err != nil {
			return nil, err
		}
		for _, c := range want {
			if _, ok := byComponent[c]; !ok {
				return nil, fmt.Errorf("%s has no image of %s: build it first", opts.OutDir, c)
			}
		}
	}
	if len(want) == 0 {
		return nil, fmt.Errorf("%s lists no images", filepath.Join(opts.OutDir, SummaryFile))
	}
	log := opts.Log
	if log == nil {
		log = io.Discard
	}
	ropts := append([]remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)}, opts.Remote...)
	var nameOpts []name.Option
	if opts.Insecure {
		nameOpts = append(nameOpts, name.Insecure)
	}
	var out []Pushed
	for _, c := range want {
		img := byComponent[c]
		ref := Ref(prefix, c, tag)
		digest, err := PushTarball(filepath.Join(opts.OutDir, img.File), ref, nameOpts, ropts)
		if err != nil {
			return out, err
		}
		if digest != img.Digest {
			return out, fmt.Errorf("%s: pushed digest %s differs from %s in %s", ref, digest, img.Digest, SummaryFile)
		}
		fmt.Fprintf(log, "pushed %s@%s\n", ref, digest)
		out = append(out, Pushed{Component: c, Ref: ref, Digest: digest})
	}
	return out, nil
}

// PushTarball pushes the image index of a layout tarball written by Build
// to ref and returns its digest.
func PushTarball(tarPath, ref string, nameOpts []name.Option, ropts []remote.Option) (string, error) {
	tag, err := name.NewTag(ref, nameOpts...)
	if err != nil {
		return "", fmt.Errorf("image name %q: %w", ref, err)
	}
	dir, err := os.MkdirTemp("", "linkerd-go-push-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	named, err := ociimage.ReadLayoutTarball(tarPath, dir)
	if err != nil {
		return "", err
	}
	if len(named) != 1 {
		return "", fmt.Errorf("%s holds %d image indexes, want 1", tarPath, len(named))
	}
	idx := named[0].Index
	if err := remote.WriteIndex(tag, idx, ropts...); err != nil {
		return "", fmt.Errorf("pushing %s to %s: %w", tarPath, ref, err)
	}
	d, err := idx.Digest()
	if err != nil {
		return "", err
	}
	return d.String(), nil
}
