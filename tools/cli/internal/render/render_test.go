package render

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// chartsDir is the checkout's charts folder; value files and certificates
// of the value sets are relative to the chart's folder in it.
const chartsDir = "../../../../deploy/charts"

type valueSet struct {
	name  string
	chart string
	files []string
	set   []string
	// setFile are key=path, path relative to the chart's folder.
	setFile []string
}

func (vs valueSet) helmArgs() []string {
	var args []string
	for _, f := range vs.files {
		args = append(args, "-f", f)
	}
	for _, s := range vs.set {
		args = append(args, "--set", s)
	}
	for _, s := range vs.setFile {
		args = append(args, "--set-file", s)
	}
	return args
}

var (
	anchors = []string{"identityTrustAnchorsPEM=testdata/ca.crt"}
	issuer  = []string{"identity.issuer.tls.crtPEM=testdata/issuer.crt", "identity.issuer.tls.keyPEM=testdata/issuer.key"}
	webhook = []string{
		"proxyInjector.crtPEM=testdata/webhook.crt", "proxyInjector.keyPEM=testdata/webhook.key", "proxyInjector.caBundle=testdata/webhook-ca.crt",
		"policyValidator.crtPEM=testdata/webhook.crt", "policyValidator.keyPEM=testdata/webhook.key", "policyValidator.caBundle=testdata/webhook-ca.crt",
	}
)

func concat(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// valueSets have a fixed webhook certificate, so their renders are the
// same every time.
var valueSets = []valueSet{
	{name: "crds", chart: CRDsChart},
	{name: "default", chart: ControlPlaneChart, setFile: concat(anchors, issuer, webhook)},
	{name: "ha", chart: ControlPlaneChart, files: []string{"values-ha.yaml"}, setFile: concat(anchors, issuer, webhook)},
	{name: "cert-manager", chart: ControlPlaneChart, files: []string{"testdata/values-cert-manager.yaml"}, setFile: anchors},
	{name: "overrides", chart: ControlPlaneChart, set: []string{"destination.image.tag=v9.9.9,proxy.logLevel=debug", "controllerReplicas=2"}, setFile: concat(anchors, issuer, webhook)},
}

func chartReader(chart string) func(string) ([]byte, error) {
	return func(name string) ([]byte, error) {
		return os.ReadFile(filepath.Join(chartsDir, chart, name))
	}
}

func renderSet(t *testing.T, vs valueSet) string {
	t.Helper()
	vals, err := Values{Files: vs.files, Set: vs.set, SetFile: vs.setFile, ReadFile: chartReader(vs.chart)}.Merge()
	if err != nil {
		t.Fatal(err)
	}
	out, err := Render(Options{Chart: vs.chart, Values: vals})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRender checks what every render must hold without pinning the
// charts' contents (their golden renders live with the chart tests in
// internal/charts; TestSameAsHelmTemplate compares with helm itself).
func TestRender(t *testing.T) {
	for _, vs := range valueSets {
		t.Run(vs.name, func(t *testing.T) {
			got := renderSet(t, vs)
			if again := renderSet(t, vs); again != got {
				t.Fatal("two renders of the same values differ")
			}
			if !strings.HasPrefix(got, "---\n# Source: "+vs.chart+"/templates/") {
				t.Errorf("render does not start with a source line: %.100q", got)
			}
			want := []string{"kind: CustomResourceDefinition", "name: servers.policy.linkerd.io", "name: serviceprofiles.linkerd.io"}
			if vs.chart == ControlPlaneChart {
				want = []string{"kind: Deployment\nmetadata:\n  name: linkerd-identity\n  namespace: linkerd\n", "name: linkerd-destination\n", "name: linkerd-proxy-injector\n", "kind: MutatingWebhookConfiguration", "name: linkerd-identity-trust-roots"}
			}
			for _, w := range want {
				if !strings.Contains(got, w) {
					t.Errorf("render lacks %q", w)
				}
			}
		})
	}
}

// TestBadValues renders every bad value set of the chart's
// testdata/bad-values.tsv: Render refuses it with helm's message.
func TestBadValues(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(chartsDir, ControlPlaneChart, "testdata", "bad-values.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(data), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 3 {
			t.Fatalf("bad-values.tsv: %q", line)
		}
		n++
		t.Run(f[0], func(t *testing.T) {
			var v Values
			args := strings.Fields(f[2])
			for i := 0; i+1 < len(args); i += 2 {
				switch args[i] {
				case "-f", "--values":
					v.Files = append(v.Files, args[i+1])
				case "--set":
					v.Set = append(v.Set, args[i+1])
				case "--set-file":
					v.SetFile = append(v.SetFile, args[i+1])
				default:
					t.Fatalf("flag %s not handled", args[i])
				}
			}
			v.ReadFile = chartReader(ControlPlaneChart)
			vals, err := v.Merge()
			if err == nil {
				_, err = Render(Options{Chart: ControlPlaneChart, Values: vals})
			}
			if err == nil || !strings.Contains(err.Error(), f[1]) {
				t.Errorf("error %v; want one saying %q", err, f[1])
			}
		})
	}
	if n == 0 {
		t.Fatal("no cases")
	}
}

func TestMergeMaps(t *testing.T) {
	a := map[string]any{"x": map[string]any{"y": 1, "z": 2}, "k": "v"}
	b := map[string]any{"x": map[string]any{"y": 3}, "k": map[string]any{"n": 1}}
	got := fmt.Sprint(MergeMaps(a, b))
	if want := "map[k:map[n:1] x:map[y:3 z:2]]"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestKubeVersionRefused(t *testing.T) {
	_, err := Render(Options{Chart: CRDsChart, KubeVersion: "1.20.0"})
	if err == nil || !strings.Contains(err.Error(), "chart requires kubeVersion") {
		t.Errorf("got %v", err)
	}
}
