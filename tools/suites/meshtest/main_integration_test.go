//go:build integration

package meshtest

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/linkerd-go/linkerd-go/tools/suites/meshlab"
)

// bins holds the binaries: the four components and a copy of this test
// binary (the applications), in a folder every user may read, since the
// proxies run as uid 2102. The first startMesh builds them (needBins);
// TestMain removes them.
var bins struct {
	meshlab.Bins
	app string
}

var (
	buildOnce sync.Once
	buildErr  error
)

// needBins builds the binaries on first use.
func needBins(t testing.TB) {
	t.Helper()
	buildOnce.Do(func() {
		b, err := meshlab.Build(bins.Dir, meshlab.BuildOptions{})
		if err != nil {
			buildErr = err
			return
		}
		bins.Bins = b
		self, err := os.Executable()
		if err != nil {
			buildErr = err
			return
		}
		bins.app = filepath.Join(b.Dir, "app")
		buildErr = meshlab.CopyFile(self, bins.app)
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
}

func TestMain(m *testing.M) {
	if name := os.Getenv(helperEnv); name != "" {
		runHelper(name)
		return
	}
	os.Exit(mainWithBins(m))
}

func mainWithBins(m *testing.M) int {
	dir, err := os.MkdirTemp("", "meshtest-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	bins.Dir = dir
	return m.Run()
}
