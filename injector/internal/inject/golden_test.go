package inject

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	jsonpatch "github.com/evanphx/json-patch"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/linkerd-go/linkerd-go/api/mesh"
	"github.com/linkerd-go/linkerd-go/injector/internal/config"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// testCase is one file of testdata/cases: a pod, its namespace, and
// optionally changes to the base config (testdata/config.yaml).
type testCase struct {
	Name      string `json:"-"`
	Namespace struct {
		Name        string            `json:"name"`
		Annotations map[string]string `json:"annotations"`
	} `json:"namespace"`
	Config json.RawMessage `json:"config,omitempty"`
	Pod    corev1.Pod      `json:"pod"`
	// Raw is the pod as JSON, for applying the patch.
	Raw []byte `json:"-"`
	Cfg *config.Config
}

// golden is what a case must produce.
type golden struct {
	Skip     SkipReason `json:"skip,omitempty"`
	Message  string     `json:"message,omitempty"`
	Problems []string   `json:"problems,omitempty"`
	Patch    Patch      `json:"patch,omitempty"`
}

const createdBy = "linkerd/proxy-injector test"

func loadCases(t testing.TB) []*testCase {
	t.Helper()
	base, err := os.ReadFile("testdata/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob("testdata/cases/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no cases: %v", err)
	}
	var cases []*testCase
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		tc := &testCase{Name: strings.TrimSuffix(filepath.Base(f), ".yaml")}
		if err := yaml.UnmarshalStrict(data, tc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		cfg, err := config.Parse(base)
		if err != nil {
			t.Fatal(err)
		}
		if len(tc.Config) > 0 {
			if err := yaml.UnmarshalStrict(tc.Config, &cfg); err != nil {
				t.Fatalf("%s: config: %v", f, err)
			}
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("%s: config: %v", f, err)
		}
		tc.Cfg = &cfg
		if tc.Raw, err = json.Marshal(tc.Pod); err != nil {
			t.Fatal(err)
		}
		cases = append(cases, tc)
	}
	return cases
}

func (tc *testCase) run() Result {
	return New(tc.Cfg, createdBy).Inject(Request{Pod: tc.Pod.DeepCopy(), Namespace: tc.Namespace.Name, NamespaceAnnotations: tc.Namespace.Annotations})
}

// applyPatch applies a patch to the case's pod with an independent JSON
// patch implementation.
func applyPatch(t testing.TB, raw []byte, p Patch) *corev1.Pod {
	t.Helper()
	pj, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	ops, err := jsonpatch.DecodePatch(pj)
	if err != nil {
		t.Fatalf("decoding patch: %v", err)
	}
	out, err := ops.Apply(raw)
	if err != nil {
		t.Fatalf("applying patch: %v", err)
	}
	var pod corev1.Pod
	if err := json.Unmarshal(out, &pod); err != nil {
		t.Fatal(err)
	}
	return &pod
}

func TestGolden(t *testing.T) {
	for _, tc := range loadCases(t) {
		t.Run(tc.Name, func(t *testing.T) {
			res := tc.run()
			g := golden{Skip: res.Skip, Message: res.Message, Patch: res.Patch}
			for _, p := range res.Problems {
				g.Problems = append(g.Problems, p.String())
			}
			got, err := json.MarshalIndent(g, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			path := filepath.Join("testdata", "golden", tc.Name+".json")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("result differs from %s (run with -update and read the diff):\n%s", path, got)
			}
			if !res.Injected() {
				if len(res.Patch) != 0 {
					t.Errorf("skipped pod has a patch")
				}
				return
			}
			checkInjected(t, tc, res)
		})
	}
}

// checkInjected checks what must hold for every injected pod, beyond the
// golden file.
func checkInjected(t *testing.T, tc *testCase, res Result) {
	pod := applyPatch(t, tc.Raw, res.Patch)
	all := slices.Concat(pod.Spec.InitContainers, pod.Spec.Containers)
	count := func(name string) int {
		n := 0
		for _, c := range all {
			if c.Name == name {
				n++
			}
		}
		return n
	}
	if count(mesh.ProxyContainerName) != 1 || count(mesh.InitContainerName) != 1 {
		t.Fatalf("want one %s and one %s, got containers %v", mesh.ProxyContainerName, mesh.InitContainerName, names(all))
	}
	// The original containers are all there, in order.
	var orig []string
	for _, c := range slices.Concat(tc.Pod.Spec.InitContainers, tc.Pod.Spec.Containers) {
		orig = append(orig, c.Name)
	}
	var kept []string
	for _, c := range all {
		if c.Name != mesh.ProxyContainerName && c.Name != mesh.InitContainerName {
			kept = append(kept, c.Name)
		}
	}
	if !slices.Equal(orig, kept) {
		t.Errorf("containers %v, want the pod's own %v kept in order", kept, orig)
	}
	if res.NativeSidecar {
		if pod.Spec.InitContainers[0].Name != mesh.InitContainerName || pod.Spec.InitContainers[1].Name != mesh.ProxyContainerName {
			t.Errorf("native layout: init containers %v, want %s, %s first", names(pod.Spec.InitContainers), mesh.InitContainerName, mesh.ProxyContainerName)
		}
		p := pod.Spec.InitContainers[1]
		if p.RestartPolicy == nil || *p.RestartPolicy != corev1.ContainerRestartPolicyAlways || p.StartupProbe == nil {
			t.Errorf("native layout: proxy without restartPolicy Always and a startup probe")
		}
	} else {
		if pod.Spec.Containers[0].Name != mesh.ProxyContainerName {
			t.Errorf("legacy layout: containers %v, want %s first", names(pod.Spec.Containers), mesh.ProxyContainerName)
		}
		if n := len(pod.Spec.InitContainers); pod.Spec.InitContainers[n-1].Name != mesh.InitContainerName {
			t.Errorf("legacy layout: init containers %v, want %s last", names(pod.Spec.InitContainers), mesh.InitContainerName)
		}
	}
	// Injecting the result again adds nothing.
	again := New(tc.Cfg, createdBy).Inject(Request{Pod: pod, Namespace: tc.Namespace.Name, NamespaceAnnotations: tc.Namespace.Annotations})
	if again.Skip != SkipAlreadyInjected || len(again.Patch) != 0 {
		t.Errorf("second injection: skip %q with %d operations, want %q and none", again.Skip, len(again.Patch), SkipAlreadyInjected)
	}
}

func names(cs []corev1.Container) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return out
}
