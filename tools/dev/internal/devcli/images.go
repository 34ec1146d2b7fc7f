package devcli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/linkerd-go/linkerd-go/tools/dev/images"
)

func runImages(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "push" {
		return runImagesPush(ctx, args[1:], stdout, stderr)
	}
	fs := newFlagSet("images", "images [flags]\n"+
		"       dev images push [flags]    (see dev images push --help)\n\n"+
		"Builds one container image per component ("+strings.Join(images.Components, ", ")+")\n"+
		"without a Docker daemon: each platform's binary is a static Go build\n"+
		"(CGO_ENABLED=0, -trimpath, -ldflags \"-s -w -X main.version=<tag>\") and the\n"+
		"image's only file; the image runs as a non-root user (proxy 2102:2102, the\n"+
		"others 65532:65532), its entrypoint is /<component>, and it carries the\n"+
		"org.opencontainers.image.{title,version,source,revision} labels.\n\n"+
		"Writes into --out:\n"+
		"  <component>.tar  an OCI image layout with one image index (all platforms),\n"+
		"                   named <repository-prefix>/<component>:<tag>\n"+
		"  images.json      reference, index digest and per-platform digests\n\n"+
		"The same sources and flags give the same digests. Load a tarball into the\n"+
		"dev cluster with `dev cluster load <out>/<component>.tar`, import it anywhere\n"+
		"with `ctr -n k8s.io images import <tar>`, and push with `dev images push` or,\n"+
		"after `tar -xf <tar> -C DIR`, `crane push DIR <ref>`.", stderr)
	out := fs.String("out", "", "`folder` to write the tarballs and images.json into (required)")
	tag := fs.String("tag", images.DefaultTag, "image `tag`, also linked into the binaries as their version")
	platforms := fs.String("platforms", strings.Join(images.DefaultPlatforms, ","), "comma-separated `platforms` to build, linux/<arch>")
	components := fs.String("components", strings.Join(images.Components, ","), "comma-separated `components` to build")
	prefix := fs.String("repository-prefix", images.DefaultRepositoryPrefix, "images are named `<prefix>`/<component>:<tag>")
	revision := fs.String("revision", "", "org.opencontainers.image.revision `label`; default: git rev-parse HEAD, plus -dirty when the checkout has changes")
	root := fs.String("root", "", "linkerd-go checkout `folder`; default: found above the working folder")
	if err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("%w: --out is required", errUsage)
	}
	opts := images.Options{
		Root:             *root,
		OutDir:           *out,
		Tag:              *tag,
		RepositoryPrefix: *prefix,
		Platforms:        []string{*platforms},
		Components:       []string{*components},
		Revision:         *revision,
		Log:              stderr,
	}
	if err := checkImageFlags(opts); err != nil {
		return err
	}
	start := time.Now()
	res, err := images.Build(ctx, opts)
	if err != nil {
		return err
	}
	if err := images.WriteTable(stdout, res); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "built %d image(s) in %.1fs; revision %s; summary in %s\n", len(res.Images), time.Since(start).Seconds(), res.Revision, *out+"/"+images.SummaryFile)
	return nil
}

// checkImageFlags reports wrong flag values as usage errors before any
// build starts.
func checkImageFlags(o images.Options) error {
	checks := []error{
		images.ValidateTag(o.Tag),
		images.ValidateRepositoryPrefix(o.RepositoryPrefix),
	}
	if _, err := images.ParsePlatforms(o.Platforms); err != nil {
		checks = append(checks, fmt.Errorf("--platforms: %w", err))
	}
	if _, err := images.ParseComponents(o.Components); err != nil {
		checks = append(checks, fmt.Errorf("--components: %w", err))
	}
	if err := errors.Join(checks...); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	return nil
}

func runImagesPush(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("images push", "images push [flags]\n\n"+
		"Pushes the multi-platform images that `dev images` wrote into --out to a\n"+
		"registry, each index unchanged (the registry reports the digests in\n"+
		"images.json). By default the images keep the names they were built with;\n"+
		"--repository-prefix and --tag push them elsewhere, e.g.\n\n"+
		"  dev images push --out out/images --repository-prefix localhost:5000/linkerd-go\n\n"+
		"Credentials come from the Docker config (~/.docker/config.json and its\n"+
		"credential helpers), as `crane auth login` or `docker login` leave them.\n"+
		"Loopback and private-address registries are spoken to over plain HTTP.", stderr)
	out := fs.String("out", "", "`folder` holding the tarballs and images.json of a build (required)")
	components := fs.String("components", "", "comma-separated `components` to push; default: every image in images.json")
	prefix := fs.String("repository-prefix", "", "push as `<prefix>`/<component>:<tag>; default: the build's")
	tag := fs.String("tag", "", "push with this `tag`; default: the build's")
	insecure := fs.Bool("insecure", false, "allow plain HTTP to any registry")
	if err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("%w: --out is required", errUsage)
	}
	var checks []error
	if *tag != "" {
		checks = append(checks, images.ValidateTag(*tag))
	}
	if *prefix != "" {
		checks = append(checks, images.ValidateRepositoryPrefix(*prefix))
	}
	var comps []string
	if *components != "" {
		comps = []string{*components}
		if _, err := images.ParseComponents(comps); err != nil {
			checks = append(checks, fmt.Errorf("--components: %w", err))
		}
	}
	if err := errors.Join(checks...); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	pushed, err := images.Push(ctx, images.PushOptions{
		OutDir:           *out,
		Components:       comps,
		RepositoryPrefix: *prefix,
		Tag:              *tag,
		Insecure:         *insecure,
		Log:              stderr,
	})
	for _, p := range pushed {
		fmt.Fprintf(stdout, "%s@%s\n", p.Ref, p.Digest)
	}
	return err
}
