// Package render renders the mesh's Helm charts (embedded in the deploy
// module) the way `helm template` does, with Helm's own Go packages: the
// same value merging (-f, --set, --set-file), values schema validation,
// templates, manifest order and output format.
package render

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/releaseutil"
	"helm.sh/helm/v3/pkg/strvals"
	"sigs.k8s.io/yaml"

	"github.com/linkerd-go/linkerd-go/deploy"
)

// Chart names, as folders of deploy.Charts.
const (
	CRDsChart         = "linkerd-crds"
	ControlPlaneChart = "linkerd-control-plane"
	partialsChart     = "partials"
)

// DefaultKubeVersion is the Kubernetes version the charts are rendered for
// when none is given (as helm template --kube-version): the version of the
// Kubernetes libraries this tool is built with, so the chart's kubeVersion
// check (native sidecars) passes.
const DefaultKubeVersion = "v1.37.2"

// Values are the value sources of one render, applied in Helm's order:
// value files, then --set, then --set-file.
type Values struct {
	// Files are value files (-f), read in order, later ones winning.
	Files []string
	// Set are --set expressions (a.b=c,d=e).
	Set []string
	// SetFile are --set-file expressions (key=path): the value is the
	// file's contents.
	SetFile []string
	// ReadFile reads the files above; nil = os.ReadFile.
	ReadFile func(name string) ([]byte, error)
}

// Merge returns the merged user values (not the chart's defaults), as
// helm's values.Options.MergeValues does for local files.
func (v Values) Merge() (map[string]any, error) {
	read := v.ReadFile
	if read == nil {
		read = os.ReadFile
	}
	base := map[string]any{}
	for _, name := range v.Files {
		b, err := read(name)
		if err != nil {
			return nil, err
		}
		current := map[string]any{}
		if err := yaml.Unmarshal(b, &current); err != nil {
			return nil, fmt.Errorf("failed to parse %s: %w", name, err)
		}
		base = MergeMaps(base, current)
	}
	for _, s := range v.Set {
		if err := strvals.ParseInto(s, base); err != nil {
			return nil, fmt.Errorf("failed parsing --set data: %w", err)
		}
	}
	for _, s := range v.SetFile {
		reader := func(rs []rune) (any, error) {
			b, err := read(string(rs))
			if err != nil {
				return nil, err
			}
			return string(b), nil
		}
		if err := strvals.ParseIntoFile(s, base, reader); err != nil {
			return nil, fmt.Errorf("failed parsing --set-file data: %w", err)
		}
	}
	return base, nil
}

// MergeMaps merges b over a recursively (maps merge, anything else is
// replaced), as helm does with value files.
func MergeMaps(a, b map[string]any) map[string]any {
	out := make(map[string]any, len(a))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		if bm, ok := v.(map[string]any); ok {
			if am, ok := out[k].(map[string]any); ok {
				out[k] = MergeMaps(am, bm)
				continue
			}
		}
		out[k] = v
	}
	return out
}

// Options describe one render.
type Options struct {
	// Chart is CRDsChart or ControlPlaneChart.
	Chart string
	// ReleaseName as in helm template NAME; "" = the chart's name.
	ReleaseName string
	// Namespace of the release ("" = linkerd).
	Namespace string
	// KubeVersion the templates see ("" = DefaultKubeVersion).
	KubeVersion string
	// Values are the user's values, merged over the chart's defaults.
	Values map[string]any
	// Charts is the file system holding the charts ("" root folder
	// "charts"); nil = deploy.Charts.
	Charts fs.FS
}

// Load loads a chart from the embedded charts (or fsys). The control-plane
// chart's charts/partials is a symbolic link in the repository, which the
// embed directive does not follow, so the partials library chart is
// attached from charts/partials.
func Load(fsys fs.FS, name string) (*chart.Chart, error) {
	if fsys == nil {
		fsys = deploy.Charts
	}
	files, err := chartFiles(fsys, path.Join("charts", name), "")
	if err != nil {
		return nil, err
	}
	if name == ControlPlaneChart {
		has := false
		for _, f := range files {
			has = has || strings.HasPrefix(f.Name, "charts/"+partialsChart+"/")
		}
		if !has {
			partials, err := chartFiles(fsys, path.Join("charts", partialsChart), "charts/"+partialsChart+"/")
			if err != nil {
				return nil, err
			}
			files = append(files, partials...)
		}
	}
	ch, err := loader.LoadFiles(files)
	if err != nil {
		return nil, fmt.Errorf("load chart %s: %w", name, err)
	}
	return ch, nil
}

func chartFiles(fsys fs.FS, root, prefix string) ([]*loader.BufferedFile, error) {
	var files []*loader.BufferedFile
	err := fs.WalkDir(fsys, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		files = append(files, &loader.BufferedFile{Name: prefix + strings.TrimPrefix(p, root+"/"), Data: data})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read chart %s: %w", root, err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("read chart %s: no files", root)
	}
	return files, nil
}

// ChartFile returns one file of a chart (e.g. values-ha.yaml).
func ChartFile(fsys fs.FS, name, file string) ([]byte, error) {
	if fsys == nil {
		fsys = deploy.Charts
	}
	return fs.ReadFile(fsys, path.Join("charts", name, file))
}

// Render renders a chart as `helm template RELEASE CHART -n NAMESPACE
// --kube-version KUBEVERSION` with the given values, and returns the
// manifests in helm template's output format and order.
func Render(opts Options) (string, error) {
	if opts.Namespace == "" {
		opts.Namespace = "linkerd"
	}
	if opts.ReleaseName == "" {
		opts.ReleaseName = opts.Chart
	}
	if opts.KubeVersion == "" {
		opts.KubeVersion = DefaultKubeVersion
	}
	if opts.Values == nil {
		opts.Values = map[string]any{}
	}
	ch, err := Load(opts.Charts, opts.Chart)
	if err != nil {
		return "", err
	}
	if deps := ch.Metadata.Dependencies; deps != nil {
		if err := checkDependencies(ch, deps); err != nil {
			return "", err
		}
	}
	if err := chartutil.ProcessDependenciesWithMerge(ch, opts.Values); err != nil {
		return "", err
	}
	kv, err := chartutil.ParseKubeVersion(opts.KubeVersion)
	if err != nil {
		return "", fmt.Errorf("invalid kube version %q: %w", opts.KubeVersion, err)
	}
	caps := chartutil.DefaultCapabilities.Copy()
	caps.KubeVersion = *kv
	if ch.Metadata.KubeVersion != "" && !chartutil.IsCompatibleRange(ch.Metadata.KubeVersion, caps.KubeVersion.String()) {
		return "", fmt.Errorf("chart requires kubeVersion: %s which is incompatible with Kubernetes %s", ch.Metadata.KubeVersion, caps.KubeVersion.String())
	}
	release := chartutil.ReleaseOptions{Name: opts.ReleaseName, Namespace: opts.Namespace, Revision: 1, IsInstall: true}
	vals, err := chartutil.ToRenderValuesWithSchemaValidation(ch, opts.Values, release, caps, false)
	if err != nil {
		return "", err
	}
	var e engine.Engine
	files, err := e.Render(ch, vals)
	if err != nil {
		return "", err
	}
	for k := range files {
		if strings.HasSuffix(k, "NOTES.txt") {
			delete(files, k)
		}
	}
	hooks, manifests, err := releaseutil.SortManifests(files, nil, releaseutil.InstallOrder)
	if err != nil {
		return "", fmt.Errorf("rendered manifests do not parse: %w", err)
	}
	var doc bytes.Buffer
	for _, m := range manifests {
		fmt.Fprintf(&doc, "---\n# Source: %s\n%s\n", m.Name, m.Content)
	}
	var out bytes.Buffer
	fmt.Fprintln(&out, strings.TrimSpace(doc.String()))
	for _, h := range hooks {
		fmt.Fprintf(&out, "---\n# Source: %s\n%s\n", h.Path, h.Manifest)
	}
	return out.String(), nil
}

// checkDependencies refuses a chart whose declared dependencies are not
// all present (helm's action.CheckDependencies).
func checkDependencies(ch *chart.Chart, deps []*chart.Dependency) error {
	var missing []string
	for _, d := range deps {
		found := false
		for _, c := range ch.Dependencies() {
			if c.Name() == d.Name {
				found = true
			}
		}
		if !found {
			missing = append(missing, d.Name)
		}
	}
	if len(missing) > 0 {
		return errors.New("found in Chart.yaml, but missing in charts/ directory: " + strings.Join(missing, ", "))
	}
	return nil
}
