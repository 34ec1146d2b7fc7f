package deploy

import (
	"io/fs"
	"testing"
)

// The charts the CLI renders must be in the binary, including the helper
// templates whose names start with an underscore.
func TestChartsEmbedded(t *testing.T) {
	for _, chart := range []string{"linkerd-crds", "linkerd-control-plane"} {
		if _, err := fs.Stat(Charts, "charts/"+chart+"/Chart.yaml"); err != nil {
			t.Errorf("chart %s is not embedded: %v", chart, err)
		}
	}
	helpers, err := fs.Glob(Charts, "charts/*/templates/_*.tpl")
	if err != nil {
		t.Fatal(err)
	}
	nested, err := fs.Glob(Charts, "charts/*/charts/*/templates/_*.tpl")
	if err != nil {
		t.Fatal(err)
	}
	if len(helpers)+len(nested) == 0 {
		t.Error("no _*.tpl helper templates embedded: the all: prefix of go:embed is missing")
	}
}
