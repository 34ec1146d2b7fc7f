// Package images builds the container image of every linkerd-go component
// (identity, destination, injector, proxy, proxy-init) without a Docker
// daemon: a static binary per platform, one layer holding only that binary,
// a non-root user, OCI labels, and one multi-platform image index per
// component, written as an OCI image layout tarball that `ctr images import`
// and (once extracted) `crane push` accept.
//
// Builds are reproducible: the same sources, tag, platforms, reference and
// revision give the same digests, whichever output folder or Go build cache
// is used.
package images

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// Components are the components that have an image, in build order.
var Components = []string{"identity", "destination", "injector", "proxy", "proxy-init"}

// Defaults of Options (and of the `dev images` flags). The Helm charts use
// the same repository and tag by default.
const (
	DefaultRepositoryPrefix = "ghcr.io/linkerd-go"
	DefaultTag              = "dev"
	// DefaultSource is the org.opencontainers.image.source label.
	DefaultSource = "https://github.com/linkerd-go/linkerd-go"
	// SummaryFile is written next to the tarballs.
	SummaryFile = "images.json"
)

// DefaultPlatforms are the platforms built unless told otherwise.
var DefaultPlatforms = []string{"linux/amd64", "linux/arm64"}

// Users the images run as (uid:gid). The proxy's uid is the one the
// injector's pod spec and proxy-init's redirection rules expect; proxy-init
// is run as root with NET_ADMIN and NET_RAW by the pod spec, but its image
// does not ask for it.
const (
	ProxyUser   = "2102:2102"
	NonrootUser = "65532:65532"
)

// User returns the uid:gid the component's image runs as.
func User(component string) string {
	if component == "proxy" {
		return ProxyUser
	}
	return NonrootUser
}

// Entrypoint is the path of the component's binary in its image, which is
// also the image's entrypoint.
func Entrypoint(component string) string { return "/" + component }

// Ref is the reference a component's image is tagged with, e.g.
// Ref("ghcr.io/linkerd-go", "proxy", "dev") = "ghcr.io/linkerd-go/proxy:dev".
func Ref(prefix, component, tag string) string {
	return strings.TrimSuffix(prefix, "/") + "/" + component + ":" + tag
}

// goArches are the Linux architectures Go builds for without extra
// settings (no GOARM/GOMIPS variant to choose).
var goArches = []string{"386", "amd64", "arm64", "loong64", "ppc64le", "riscv64", "s390x"}

// tagPattern is the OCI distribution spec's tag grammar.
var tagPattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)

// Platform is an os/arch pair.
type Platform struct{ OS, Arch string }

func (p Platform) String() string { return p.OS + "/" + p.Arch }

// splitList splits comma-separated items (from one or more strings),
// dropping blanks and refusing repeats; what names the items in errors.
func splitList(list []string, what string) ([]string, error) {
	var out []string
	for _, item := range list {
		for s := range strings.SplitSeq(item, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			if slices.Contains(out, s) {
				return nil, fmt.Errorf("%s %q given twice", what, s)
			}
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no %s given", what)
	}
	return out, nil
}

// ParsePlatforms parses "linux/amd64,linux/arm64" (or a list of such
// strings), refusing unknown or repeated platforms.
func ParsePlatforms(list []string) ([]Platform, error) {
	items, err := splitList(list, "platform")
	if err != nil {
		return nil, err
	}
	var out []Platform
	for _, s := range items {
		os, arch, ok := strings.Cut(s, "/")
		if !ok || os != "linux" || strings.Contains(arch, "/") {
			return nil, fmt.Errorf("platform %q: want linux/<arch>, e.g. linux/amd64", s)
		}
		if !slices.Contains(goArches, arch) {
			return nil, fmt.Errorf("platform %q: architecture %q is not one of %s", s, arch, strings.Join(goArches, ", "))
		}
		out = append(out, Platform{OS: os, Arch: arch})
	}
	return out, nil
}

// ParseComponents parses "identity,proxy" (or a list of such strings),
// refusing unknown or repeated names. The result keeps the order of
// Components.
func ParseComponents(list []string) ([]string, error) {
	items, err := splitList(list, "component")
	if err != nil {
		return nil, err
	}
	for _, s := range items {
		if !slices.Contains(Components, s) {
			return nil, fmt.Errorf("unknown component %q: want some of %s", s, strings.Join(Components, ", "))
		}
	}
	var out []string
	for _, c := range Components {
		if slices.Contains(items, c) {
			out = append(out, c)
		}
	}
	return out, nil
}

// ValidateTag checks a tag against the OCI tag grammar.
func ValidateTag(tag string) error {
	if !tagPattern.MatchString(tag) {
		return fmt.Errorf("tag %q: want 1-128 letters, digits, '_', '.' or '-', not starting with '.' or '-'", tag)
	}
	return nil
}

// ValidateRepositoryPrefix checks that prefix/<component>:<tag> is a valid
// reference whose first part is a registry host, so that the name
// containerd stores is the one the kubelet looks for.
func ValidateRepositoryPrefix(prefix string) error {
	if prefix == "" {
		return errors.New("empty repository prefix")
	}
	host, _, _ := strings.Cut(prefix, "/")
	if !strings.ContainsAny(host, ".:") && host != "localhost" {
		return fmt.Errorf("repository prefix %q must start with a registry host, e.g. ghcr.io/linkerd-go or localhost:5000/linkerd-go", prefix)
	}
	if _, err := name.NewTag(Ref(prefix, "proxy", DefaultTag), name.StrictValidation); err != nil {
		return fmt.Errorf("repository prefix %q: %w", prefix, err)
	}
	if strings.ToLower(prefix) != prefix {
		return fmt.Errorf("repository prefix %q: repository names are lower case", prefix)
	}
	return nil
}

// FindRoot returns the checkout root above dir: the first folder holding
// go.work and every component's module.
func FindRoot(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if isRoot(d) {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no linkerd-go checkout (a folder with go.work and the component modules) at or above %s", dir)
		}
	}
}

func isRoot(d string) bool {
	if _, err := os.Stat(filepath.Join(d, "go.work")); err != nil {
		return false
	}
	for _, c := range Components {
		if _, err := os.Stat(filepath.Join(d, c, "go.mod")); err != nil {
			return false
		}
	}
	return true
}
