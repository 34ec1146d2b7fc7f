package trustbundle_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/linkerd-go/linkerd-go/proxy/internal/meshtlstest"
	"github.com/linkerd-go/linkerd-go/proxy/internal/trustbundle"
)

const name = "web.default.serviceaccount.identity.linkerd.cluster.local"

func TestWatcherAppliesAndRefuses(t *testing.T) {
	oldCA, newCA := meshtlstest.NewCA(t), meshtlstest.NewCA(t)
	store := oldCA.Store(t, name)
	path := filepath.Join(t.TempDir(), "ca-bundle.crt")
	write := func(b []byte) {
		// As the kubelet does: a new file renamed over the old one.
		tmp := path + ".new"
		if err := os.WriteFile(tmp, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	reg := prometheus.NewRegistry()
	w := trustbundle.New(trustbundle.Config{Path: path}, store, reg, logr.Discard())
	count := func(result string) float64 {
		return value(t, reg, "identity_trust_bundle_updates_total", "result", result)
	}

	if got := w.Check(); got != trustbundle.Unreadable {
		t.Fatalf("no file: %q", got)
	}
	write(oldCA.PEM)
	if got := w.Check(); got != "" {
		t.Fatalf("the bundle in use: %q", got)
	}
	both := append(append([]byte{}, oldCA.PEM...), newCA.PEM...)
	write(both)
	if got := w.Check(); got != trustbundle.Applied || store.Bundle().Len() != 2 {
		t.Fatalf("both anchors: %q, %d roots", got, store.Bundle().Len())
	}
	applied := store.Bundle()
	for _, bad := range [][]byte{nil, []byte("not PEM"), newCA.PEM} {
		write(bad)
		if got := w.Check(); got != trustbundle.Refused || store.Bundle() != applied {
			t.Fatalf("bundle %.20q: %q, and the anchors in use changed: %v", bad, got, store.Bundle() != applied)
		}
	}
	if count(trustbundle.Applied) != 1 || count(trustbundle.Refused) != 3 || count(trustbundle.Unreadable) != 1 {
		t.Errorf("counts: applied %v refused %v unreadable %v", count(trustbundle.Applied), count(trustbundle.Refused), count(trustbundle.Unreadable))
	}
	if got := value(t, reg, "identity_trust_bundle_roots", "", ""); got != 2 {
		t.Errorf("roots gauge %v, want 2", got)
	}
	if got := value(t, reg, "identity_trust_bundle_info", "fingerprint", applied.Fingerprint()); got != 1 {
		t.Errorf("info of the bundle in use = %v", got)
	}
	if n, err := testutil.GatherAndCount(reg, "identity_trust_bundle_info"); err != nil || n != 1 {
		t.Errorf("%d info series (%v), want only the bundle in use", n, err)
	}
}

// Run reads at start and at every tick, and stops with its context.
func TestWatcherRun(t *testing.T) {
	oldCA, newCA := meshtlstest.NewCA(t), meshtlstest.NewCA(t)
	store := oldCA.Store(t, name)
	path := filepath.Join(t.TempDir(), "ca-bundle.crt")
	if err := os.WriteFile(path, oldCA.PEM, 0o644); err != nil {
		t.Fatal(err)
	}
	tick := make(chan time.Time)
	w := trustbundle.New(trustbundle.Config{Path: path, Tick: tick}, store, prometheus.NewRegistry(), logr.Discard())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	tick <- time.Now() // the first read is done once Run takes a tick
	if err := os.WriteFile(path, append(append([]byte{}, oldCA.PEM...), newCA.PEM...), 0o644); err != nil {
		t.Fatal(err)
	}
	tick <- time.Now() // read after this tick...
	tick <- time.Now() // ...is done once the next tick is taken
	if store.Bundle().Len() != 2 {
		t.Errorf("after a tick: %d roots, want 2", store.Bundle().Len())
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// value is the sample of family name whose label key is val (key "": the
// only sample).
func value(t *testing.T, reg *prometheus.Registry, name, key, val string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := key == ""
			for _, l := range m.GetLabel() {
				if l.GetName() == key && l.GetValue() == val {
					match = true
				}
			}
			if !match {
				continue
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no %s{%s=%q}", name, key, val)
	return 0
}
