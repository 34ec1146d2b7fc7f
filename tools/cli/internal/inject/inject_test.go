package inject

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/linkerd-go/linkerd-go/api/mesh"
	"github.com/linkerd-go/linkerd-go/tools/cli/internal/clitest"
)

func summary(entries []Entry) []byte {
	var b bytes.Buffer
	for _, e := range entries {
		b.WriteString(e.String() + "\n")
	}
	return b.Bytes()
}

// docs decodes every document of a manifest into generic values.
func docs(t *testing.T, data []byte) []any {
	t.Helper()
	var out []any
	for _, d := range strings.Split(string(data), "\n---\n") {
		var v any
		if err := yaml.Unmarshal([]byte(d), &v); err != nil {
			t.Fatal(err)
		}
		if v != nil {
			out = append(out, v)
		}
	}
	return out
}

// TestGolden injects and uninjects each input, compares output and
// summary with golden files, and checks that uninjecting the injected
// output gives back the input's values exactly (for objects that had no
// annotation to begin with) — so nothing but the annotation changes.
func TestGolden(t *testing.T) {
	for _, in := range []string{"workloads.yaml", "list.json"} {
		t.Run(in, func(t *testing.T) {
			src, err := os.ReadFile(filepath.Join("testdata", in))
			if err != nil {
				t.Fatal(err)
			}
			base := strings.TrimSuffix(in, filepath.Ext(in))
			var injected bytes.Buffer
			entries, err := Transform(bytes.NewReader(src), &injected, Inject)
			if err != nil {
				t.Fatal(err)
			}
			clitest.Golden(t, base+".injected.yaml", injected.Bytes())
			clitest.Golden(t, base+".inject-summary.txt", summary(entries))

			// Injecting again changes nothing.
			var twice bytes.Buffer
			if _, err := Transform(bytes.NewReader(injected.Bytes()), &twice, Inject); err != nil {
				t.Fatal(err)
			}
			if twice.String() != injected.String() {
				t.Error("inject is not idempotent")
			}

			var uninjected bytes.Buffer
			entries, err = Transform(bytes.NewReader(injected.Bytes()), &uninjected, Uninject)
			if err != nil {
				t.Fatal(err)
			}
			clitest.Golden(t, base+".uninjected.yaml", uninjected.Bytes())
			clitest.Golden(t, base+".uninject-summary.txt", summary(entries))
		})
	}
}

// TestOnlyTheAnnotationChanges compares the values of every document
// before and after inject, with the annotation taken out of both.
func TestOnlyTheAnnotationChanges(t *testing.T) {
	for file, want := range map[string]int{"workloads.yaml": 5, "list.json": 1} {
		t.Run(file, func(t *testing.T) { onlyTheAnnotationChanges(t, filepath.Join("testdata", file), want) })
	}
}

func onlyTheAnnotationChanges(t *testing.T, file string, want int) {
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := Transform(bytes.NewReader(src), &out, Inject); err != nil {
		t.Fatal(err)
	}
	before, after := docs(t, src), docs(t, out.Bytes())
	if len(before) != len(after) {
		t.Fatalf("%d documents in, %d out", len(before), len(after))
	}
	injected := strings.Count(out.String(), mesh.AnnotationInject+": enabled") - strings.Count(strings.ReplaceAll(string(src), `"`+mesh.AnnotationInject+`": "enabled"`, mesh.AnnotationInject+": enabled"), mesh.AnnotationInject+": enabled")
	for i := range before {
		kind := before[i].(map[string]any)["kind"]
		bj, _ := json.Marshal(normalize(before[i]))
		aj, _ := json.Marshal(normalize(after[i]))
		if !reflect.DeepEqual(normalizeJSON(t, bj), normalizeJSON(t, aj)) {
			t.Errorf("document %d (%s) changed beyond the annotation:\n%s\n%s", i, kind, bj, aj)
		}
	}
	if injected != want {
		t.Errorf("%d objects injected, want %d", injected, want)
	}
}

// normalize removes linkerd.io/inject: enabled, then empty annotations
// and metadata maps, so a manifest before and after inject compare equal
// when nothing else changed.
func normalize(v any) any {
	switch x := v.(type) {
	case map[string]any:
		if x[mesh.AnnotationInject] == mesh.InjectEnabled {
			delete(x, mesh.AnnotationInject)
		}
		for k, e := range x {
			x[k] = normalize(e)
			if m, ok := x[k].(map[string]any); ok && len(m) == 0 && (k == "annotations" || k == "metadata") {
				delete(x, k)
			}
		}
	case []any:
		for i := range x {
			x[i] = normalize(x[i])
		}
	}
	return v
}

func normalizeJSON(t *testing.T, b []byte) any {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestErrors(t *testing.T) {
	for _, in := range []string{"- a\n- b\n", "kind: Deployment\n  bad: [\n"} {
		if _, err := Transform(strings.NewReader(in), new(bytes.Buffer), Inject); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
}
