//go:build integration

package meshtest

import (
	"context"
	"testing"
	"time"

	"github.com/linkerd-go/linkerd-go/tools/suites/meshlab"
)

// startMesh starts the mesh of meshlab with this test binary as the server
// app and tears it down in t.Cleanup, pass or fail; on failure it prints the
// tail of every log and the nftables rules first.
func startMesh(t testing.TB) *meshlab.Mesh {
	t.Helper()
	needBins(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	m, err := meshlab.Start(ctx, meshlab.Options{
		Tag:      "l5dmt",
		Bins:     bins.Bins,
		App:      []string{bins.app},
		AppEnv:   []string{helperEnv + "=server"},
		AppReady: "listening on",
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s\n%s", m.Logs(40), m.Rules())
		}
		if err := m.Close(); err != nil {
			t.Errorf("cleaning up: %v", err)
		}
	})
	return m
}
