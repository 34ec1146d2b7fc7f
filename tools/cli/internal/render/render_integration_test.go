//go:build integration

package render

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/linkerd-go/linkerd-go/tools/cli/internal/clitest"
	"github.com/linkerd-go/linkerd-go/tools/testkit/kubebins"
)

// TestSameAsHelmTemplate renders each value set with Render and with the
// real helm binary of the k8s-bins set (helm template, from the chart
// folders of the checkout, where charts/partials is a symbolic link), and
// wants byte-identical output.
func TestSameAsHelmTemplate(t *testing.T) {
	bins, err := kubebins.Find()
	if err != nil {
		t.Fatal(err)
	}
	helm := filepath.Join(bins, "helm")
	for _, vs := range valueSets {
		t.Run(vs.name, func(t *testing.T) {
			dir, err := filepath.Abs(filepath.Join(chartsDir, vs.chart))
			if err != nil {
				t.Fatal(err)
			}
			args := append([]string{"template", vs.chart, ".", "-n", "linkerd", "--kube-version", DefaultKubeVersion}, vs.helmArgs()...)
			cmd := exec.Command(helm, args...)
			cmd.Dir = dir
			tmp := t.TempDir()
			cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+filepath.Join(tmp, "cache"), "HELM_CONFIG_HOME="+filepath.Join(tmp, "config"), "HELM_DATA_HOME="+filepath.Join(tmp, "data"))
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
			}
			got := renderSet(t, vs)
			if got != stdout.String() {
				t.Errorf("Render differs from helm template:\n%s", clitest.FirstDiff(stdout.String(), got))
			}
		})
	}
}
