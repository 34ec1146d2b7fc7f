package images

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/linkerd-go/linkerd-go/tools/dev/internal/ociimage"
)

// Options describe a build. Zero values take the defaults.
type Options struct {
	// Root is the checkout holding the component modules; default: found
	// above the working folder (FindRoot).
	Root string
	// OutDir receives <component>.tar and images.json. Required.
	OutDir string
	// Tag of every image, and the version linked into the binaries
	// (-X main.version). Default DefaultTag.
	Tag string
	// RepositoryPrefix: images are named <prefix>/<component>:<tag>.
	// Default DefaultRepositoryPrefix.
	RepositoryPrefix string
	// Platforms, "linux/<arch>". Default DefaultPlatforms.
	Platforms []string
	// Components to build. Default Components.
	Components []string
	// Revision is the org.opencontainers.image.revision label. Default:
	// `git rev-parse HEAD` of Root, with "-dirty" when `git status` shows
	// changes (Revision() says how). Set it to make a build independent of
	// the checkout's state.
	Revision string
	// Source is the org.opencontainers.image.source label. Default
	// DefaultSource.
	Source string
	// Go is the go command. Default: "go" on PATH.
	Go string
	// Log receives one progress line per step. Default: discarded.
	Log io.Writer
}

// resolved is Options with defaults applied and values parsed.
type resolved struct {
	Options
	platforms  []Platform
	components []string
}

func (o Options) resolve() (resolved, error) {
	r := resolved{Options: o}
	if r.OutDir == "" {
		return r, errors.New("no output folder given")
	}
	if r.Tag == "" {
		r.Tag = DefaultTag
	}
	if err := ValidateTag(r.Tag); err != nil {
		return r, err
	}
	if r.RepositoryPrefix == "" {
		r.RepositoryPrefix = DefaultRepositoryPrefix
	}
	if err := ValidateRepositoryPrefix(r.RepositoryPrefix); err != nil {
		return r, err
	}
	var err error
	if len(r.Platforms) == 0 {
		r.Platforms = DefaultPlatforms
	}
	if r.platforms, err = ParsePlatforms(r.Platforms); err != nil {
		return r, err
	}
	if len(r.Components) == 0 {
		r.Components = Components
	}
	if r.components, err = ParseComponents(r.Components); err != nil {
		return r, err
	}
	if strings.ContainsAny(r.Revision, " \t\r\n") {
		return r, fmt.Errorf("revision %q contains white space", r.Revision)
	}
	if r.Source == "" {
		r.Source = DefaultSource
	}
	if r.Go == "" {
		r.Go = "go"
	}
	if r.Log == nil {
		r.Log = io.Discard
	}
	if r.Root == "" {
		wd, err := os.Getwd()
		if err != nil {
			return r, err
		}
		if r.Root, err = FindRoot(wd); err != nil {
			return r, err
		}
	} else if !isRoot(r.Root) {
		return r, fmt.Errorf("%s is not a linkerd-go checkout (go.work and the component modules)", r.Root)
	}
	return r, nil
}

// Result is what Build made.
type Result struct {
	Tag              string  `json:"tag"`
	RepositoryPrefix string  `json:"repositoryPrefix"`
	Revision         string  `json:"revision"`
	Images           []Image `json:"images"`
}

// Image is one component's image.
type Image struct {
	Component string `json:"component"`
	// Ref is the name the tarball is tagged with.
	Ref string `json:"ref"`
	// File is the tarball, relative to the output folder.
	File string `json:"file"`
	// Digest is the image index's.
	Digest    string             `json:"digest"`
	Platforms []PlatformManifest `json:"platforms"`
}

// PlatformManifest is one platform's image manifest in an index.
type PlatformManifest struct {
	Platform string `json:"platform"`
	Digest   string `json:"digest"`
}

// Build builds the images asked for into opts.OutDir: <component>.tar for
// each component, and images.json describing them (ref, index digest,
// per-platform digests).
func Build(ctx context.Context, opts Options) (Result, error) {
	o, err := opts.resolve()
	if err != nil {
		return Result{}, err
	}
	if o.Revision == "" {
		if o.Revision, err = Revision(ctx, o.Root); err != nil {
			return Result{}, fmt.Errorf("%w (or give the revision label explicitly)", err)
		}
	}
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return Result{}, err
	}
	binDir, err := os.MkdirTemp("", "linkerd-go-images-")
	if err != nil {
		return Result{}, err
	}
	defer os.RemoveAll(binDir)

	res := Result{Tag: o.Tag, RepositoryPrefix: o.RepositoryPrefix, Revision: o.Revision}
	for _, c := range o.components {
		img, err := o.buildComponent(ctx, c, binDir)
		if err != nil {
			return Result{}, err
		}
		res.Images = append(res.Images, img)
	}
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return Result{}, err
	}
	if err := writeFileAtomic(filepath.Join(o.OutDir, SummaryFile), append(b, '\n')); err != nil {
		return Result{}, err
	}
	return res, nil
}

func (o resolved) buildComponent(ctx context.Context, component, binDir string) (Image, error) {
	ref := Ref(o.RepositoryPrefix, component, o.Tag)
	labels := map[string]string{
		"org.opencontainers.image.title":    "linkerd-go-" + component,
		"org.opencontainers.image.version":  o.Tag,
		"org.opencontainers.image.source":   o.Source,
		"org.opencontainers.image.revision": o.Revision,
	}
	var imgs []v1.Image
	for _, p := range o.platforms {
		bin := filepath.Join(binDir, component+"-"+p.OS+"-"+p.Arch)
		start := time.Now()
		if err := o.goBuild(ctx, component, p, bin); err != nil {
			return Image{}, err
		}
		fmt.Fprintf(o.Log, "built %s for %s in %.1fs\n", component, p, time.Since(start).Seconds())
		img, err := ociimage.Build(ociimage.Spec{
			Ref:        ref,
			OS:         p.OS,
			Arch:       p.Arch,
			Entrypoint: []string{Entrypoint(component)},
			User:       User(component),
			Labels:     labels,
			Files:      []ociimage.File{{Path: Entrypoint(component), Source: bin, Mode: 0o755}},
			OCI:        true,
		})
		if err != nil {
			return Image{}, fmt.Errorf("image of %s for %s: %w", component, p, err)
		}
		imgs = append(imgs, img)
	}
	idx, err := ociimage.Index(imgs...)
	if err != nil {
		return Image{}, err
	}
	file := component + ".tar"
	if err := ociimage.WriteLayoutTarball(filepath.Join(o.OutDir, file), idx, ref, o.Tag); err != nil {
		return Image{}, err
	}
	d, err := idx.Digest()
	if err != nil {
		return Image{}, err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return Image{}, err
	}
	out := Image{Component: component, Ref: ref, File: file, Digest: d.String()}
	for _, m := range im.Manifests {
		out.Platforms = append(out.Platforms, PlatformManifest{Platform: m.Platform.String(), Digest: m.Digest.String()})
	}
	fmt.Fprintf(o.Log, "wrote %s (%s)\n", filepath.Join(o.OutDir, file), out.Digest)
	return out, nil
}

// goBuild builds the component's command as a static binary for p, in the
// component's own module (GOWORK=off), with nothing from the environment
// that would change the output.
func (o resolved) goBuild(ctx context.Context, component string, p Platform, out string) error {
	cmd := exec.CommandContext(ctx, o.Go, "build",
		"-trimpath", "-buildvcs=false",
		"-ldflags", "-s -w -X main.version="+o.Tag,
		"-o", out, "./cmd/"+component)
	cmd.Dir = filepath.Join(o.Root, component)
	cmd.Env = append(os.Environ(),
		"CGO_ENABLED=0", "GOWORK=off", "GOOS="+p.OS, "GOARCH="+p.Arch,
		// Flags and micro-architecture levels a user's environment might
		// set would change the binary: pin them.
		"GOFLAGS=", "GOAMD64=v1", "GOARM64=v8.0", "GO386=sse2", "GOPPC64=power8", "GORISCV64=rva20u64",
	)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build of %s for %s: %w\n%s", component, p, err, strings.TrimSpace(buf.String()))
	}
	return nil
}

// Revision is the checkout's commit (`git rev-parse HEAD`), with "-dirty"
// added when `git status --porcelain` lists any change.
func Revision(ctx context.Context, root string) (string, error) {
	git := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Dir = root
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		b, err := cmd.Output()
		if err != nil {
			return "", fmt.Errorf("git %s in %s: %w: %s", strings.Join(args, " "), root, err, strings.TrimSpace(stderr.String()))
		}
		return strings.TrimSpace(string(b)), nil
	}
	head, err := git("rev-parse", "HEAD")
	if err != nil {
		return "", err
	}
	status, err := git("status", "--porcelain")
	if err != nil {
		return "", err
	}
	if status != "" {
		head += "-dirty"
	}
	return head, nil
}

func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// ReadSummary reads the images.json a build wrote into dir.
func ReadSummary(dir string) (Result, error) {
	b, err := os.ReadFile(filepath.Join(dir, SummaryFile))
	if err != nil {
		return Result{}, fmt.Errorf("%w (build the images first: dev images --out %s)", err, dir)
	}
	var r Result
	if err := json.Unmarshal(b, &r); err != nil {
		return Result{}, fmt.Errorf("%s: %w", filepath.Join(dir, SummaryFile), err)
	}
	return r, nil
}

// WriteTable prints one row per image and platform: reference, platform
// ("index" for the image index) and digest.
func WriteTable(w io.Writer, r Result) error {
	var b strings.Builder
	width := len("REF")
	for _, img := range r.Images {
		width = max(width, len(img.Ref))
	}
	row := func(ref, platform, digest string) {
		fmt.Fprintf(&b, "%-*s  %-13s  %s\n", width, ref, platform, digest)
	}
	row("REF", "PLATFORM", "DIGEST")
	for _, img := range r.Images {
		row(img.Ref, "index", img.Digest)
		for _, p := range img.Platforms {
			row("", p.Platform, p.Digest)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
