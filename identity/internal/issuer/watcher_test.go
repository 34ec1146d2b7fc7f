package issuer

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/record"

	"github.com/linkerd-go/linkerd-go/api/mesh"
	"github.com/linkerd-go/linkerd-go/identity/internal/metrics"
	"github.com/linkerd-go/linkerd-go/identity/internal/pki"
	"github.com/linkerd-go/linkerd-go/tools/testkit/pkitest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type fixture struct {
	w        *Watcher
	ca       *pki.CA
	recorder *record.FakeRecorder
	metrics  *metrics.Metrics
	root     *pkitest.CA
}

func newFixture(t *testing.T, cfg Config) *fixture {
	t.Helper()
	root := pkitest.NewRoot(t, "root", pkitest.Options{})
	anchors, err := pki.ParseAnchors(pkitest.CertsPEM(root.Cert))
	if err != nil {
		t.Fatal(err)
	}
	ca := pki.NewCA(anchors, time.Hour, time.Second, nil)
	rec := record.NewFakeRecorder(100)
	m := metrics.New(prometheus.NewRegistry(), func() (time.Time, bool) { return time.Time{}, false })
	if cfg.Scheme == "" {
		cfg.Scheme = mesh.IssuerSchemeLinkerd
	}
	cfg.Debounce = time.Millisecond
	w, err := New(cfg, ca, rec, &corev1.ObjectReference{Kind: "Secret", Namespace: "linkerd", Name: "linkerd-identity-issuer"}, m, logr.Discard())
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{w: w, ca: ca, recorder: rec, metrics: m, root: root}
}

func files(t *testing.T, c *pkitest.CA, scheme string) map[string][]byte {
	crt, key, err := pki.IssuerFiles(scheme)
	if err != nil {
		t.Fatal(err)
	}
	return map[string][]byte{crt: c.CertPEM(), key: c.KeyPEM(t)}
}

// nextEvent waits for the next recorded event.
func (f *fixture) nextEvent(t *testing.T) string {
	t.Helper()
	select {
	case e := <-f.recorder.Events:
		return e
	case <-time.After(30 * time.Second): // a deadline for a hung test, not a timing assumption
		t.Fatal("no event")
		return ""
	}
}

func (f *fixture) noEvent(t *testing.T) {
	t.Helper()
	select {
	case e := <-f.recorder.Events:
		t.Fatalf("unexpected event %q", e)
	default:
	}
}

func TestReloadAndRun(t *testing.T) {
	for _, scheme := range []string{mesh.IssuerSchemeLinkerd, mesh.IssuerSchemeKubernetes} {
		t.Run(scheme, func(t *testing.T) {
			vol := pkitest.NewVolume(t)
			f := newFixture(t, Config{Dir: vol.Dir, Scheme: scheme})
			first := pkitest.NewIssuer(t, "first", f.root, pkitest.Options{})
			vol.Publish(t, files(t, first, scheme))

			if err := f.w.Reload(); err != nil {
				t.Fatal(err)
			}
			if got := f.ca.Issuer(); got == nil || got.Cert.Subject.CommonName != "first" {
				t.Fatalf("issuer %v after the first load", got)
			}
			f.noEvent(t) // the first load is not an update
			if err := f.w.Reload(); err != nil {
				t.Fatal(err)
			}
			f.noEvent(t) // unchanged

			watching := make(chan struct{})
			var once sync.Once
			f.w.reloaded = func(error) { once.Do(func() { close(watching) }) }
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			wg.Go(func() { _ = f.w.Run(ctx) })
			defer func() { cancel(); wg.Wait() }()
			<-watching // Run reloads once its watch is in place

			// A kubelet-style update to an issuer that chains to the anchors.
			second := pkitest.NewIssuer(t, "second", f.root, pkitest.Options{})
			vol.Publish(t, files(t, second, scheme))
			if e := f.nextEvent(t); !strings.HasPrefix(e, "Normal IssuerUpdated") || !strings.Contains(e, "second") {
				t.Fatalf("event %q, want IssuerUpdated naming the second issuer", e)
			}
			if got := f.ca.Issuer().Cert.Subject.CommonName; got != "second" {
				t.Fatalf("issuer %q, want second", got)
			}

			// An issuer of another root is refused; the second stays.
			foreign := pkitest.NewIssuer(t, "foreign", pkitest.NewRoot(t, "stranger", pkitest.Options{}), pkitest.Options{})
			vol.Publish(t, files(t, foreign, scheme))
			if e := f.nextEvent(t); !strings.HasPrefix(e, "Warning IssuerValidationFailed") || !strings.Contains(e, "does not chain") || !strings.Contains(e, "still using CN=second") {
				t.Fatalf("event %q, want IssuerValidationFailed keeping the second issuer", e)
			}
			if got := f.ca.Issuer().Cert.Subject.CommonName; got != "second" {
				t.Fatalf("issuer %q after a refused update, want second", got)
			}

			// A certificate with another's key is refused too.
			third := pkitest.NewIssuer(t, "third", f.root, pkitest.Options{})
			crt, key, _ := pki.IssuerFiles(scheme)
			vol.Publish(t, map[string][]byte{crt: third.CertPEM(), key: second.KeyPEM(t)})
			if e := f.nextEvent(t); !strings.Contains(e, "IssuerValidationFailed") || !strings.Contains(e, "does not belong") {
				t.Fatalf("event %q", e)
			}

			// And a good one after the bad ones is taken.
			vol.Publish(t, files(t, third, scheme))
			if e := f.nextEvent(t); !strings.Contains(e, "IssuerUpdated") || !strings.Contains(e, "third") {
				t.Fatalf("event %q", e)
			}
			if got := f.ca.Issuer().Cert.Subject.CommonName; got != "third" {
				t.Fatalf("issuer %q, want third", got)
			}
			if got := testutil.ToFloat64(f.metrics.IssuerReloads.WithLabelValues(metrics.IssuerUpdated)); got != 3 {
				t.Errorf("reloads{updated} = %v, want 3 (first, second, third)", got)
			}
			if got := testutil.ToFloat64(f.metrics.IssuerReloads.WithLabelValues(metrics.IssuerRefused)); got != 2 {
				t.Errorf("reloads{refused} = %v, want 2", got)
			}
		})
	}
}

func TestRefusalReportedOnce(t *testing.T) {
	dir := t.TempDir()
	f := newFixture(t, Config{Dir: dir})
	if err := f.w.Reload(); err == nil {
		t.Fatal("an empty folder loaded")
	}
	if e := f.nextEvent(t); !strings.Contains(e, "IssuerValidationFailed") || !strings.Contains(e, "no issuer is loaded") {
		t.Fatalf("event %q", e)
	}
	_ = f.w.Reload()
	f.noEvent(t)
	if got := testutil.ToFloat64(f.metrics.IssuerReloads.WithLabelValues(metrics.IssuerRefused)); got != 1 {
		t.Errorf("reloads{refused} = %v, want 1", got)
	}
	foreign := pkitest.NewIssuer(t, "foreign", pkitest.NewRoot(t, "stranger", pkitest.Options{}), pkitest.Options{})
	for name, data := range files(t, foreign, mesh.IssuerSchemeLinkerd) {
		pkitest.WriteFile(t, dir, name, data)
	}
	_ = f.w.Reload()
	if e := f.nextEvent(t); !strings.Contains(e, "does not chain") {
		t.Fatalf("event %q", e)
	}
	_ = f.w.Reload()
	f.noEvent(t)
	if f.ca.Issuer() != nil {
		t.Fatal("an issuer was installed")
	}
}

// Without change notifications (the folder does not exist when the watch
// starts) the periodic resync still finds the issuer.
func TestResyncWithoutNotifications(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "issuer")
	f := newFixture(t, Config{Dir: dir, Resync: 10 * time.Millisecond})
	reloads := make(chan error, 1000)
	f.w.reloaded = func(err error) { reloads <- err }
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = f.w.Run(ctx) })
	defer func() { cancel(); wg.Wait() }()

	<-reloads // a resync that found nothing
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	iss := pkitest.NewIssuer(t, "late", f.root, pkitest.Options{})
	for name, data := range files(t, iss, mesh.IssuerSchemeLinkerd) {
		pkitest.WriteFile(t, dir, name+".tmp", data)
		if err := os.Rename(filepath.Join(dir, name+".tmp"), filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	for err := range reloads {
		if err == nil {
			break
		}
	}
	if got := f.ca.Issuer(); got == nil || got.Cert.Subject.CommonName != "late" {
		t.Fatalf("issuer %v", got)
	}
}

func TestNewRefusesUnknownScheme(t *testing.T) {
	if _, err := New(Config{Dir: t.TempDir(), Scheme: "opaque"}, nil, nil, nil, nil, logr.Discard()); err == nil {
		t.Fatal("no error")
	}
}

// The trust anchors bundle is reloaded with the issuer: new anchors are taken
// only together with an issuer that chains to them.
func TestAnchorsRotation(t *testing.T) {
	oldRoot := pkitest.NewRoot(t, "old root", pkitest.Options{})
	newRoot := pkitest.NewRoot(t, "new root", pkitest.Options{})
	anchorsVol, issuerVol := pkitest.NewVolume(t), pkitest.NewVolume(t)
	publishAnchors := func(roots ...*pkitest.CA) {
		var bundle []byte
		for _, r := range roots {
			bundle = append(bundle, pkitest.CertsPEM(r.Cert)...)
		}
		anchorsVol.Publish(t, map[string][]byte{"ca-bundle.crt": bundle})
	}
	publishAnchors(oldRoot)
	initial, err := pki.LoadAnchors(filepath.Join(anchorsVol.Dir, "ca-bundle.crt"))
	if err != nil {
		t.Fatal(err)
	}
	ca := pki.NewCA(initial, time.Hour, time.Second, nil)
	rec := record.NewFakeRecorder(100)
	m := metrics.New(prometheus.NewRegistry(), func() (time.Time, bool) { return time.Time{}, false })
	w, err := New(Config{Dir: issuerVol.Dir, Scheme: mesh.IssuerSchemeLinkerd, AnchorsFile: filepath.Join(anchorsVol.Dir, "ca-bundle.crt")},
		ca, rec, &corev1.ObjectReference{Kind: "Secret"}, m, logr.Discard())
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{w: w, ca: ca, recorder: rec, metrics: m}
	underOld := pkitest.NewIssuer(t, "under old", oldRoot, pkitest.Options{})
	issuerVol.Publish(t, files(t, underOld, mesh.IssuerSchemeLinkerd))
	if err := w.Reload(); err != nil {
		t.Fatal(err)
	}

	// Dropping the old root while the issuer is under it is refused.
	publishAnchors(newRoot)
	if err := w.Reload(); err == nil {
		t.Fatal("anchors the issuer does not chain to were taken")
	}
	if e := f.nextEvent(t); !strings.Contains(e, "IssuerValidationFailed") || !strings.Contains(e, "does not chain") {
		t.Fatalf("event %q", e)
	}
	if n := len(ca.Anchors().Certificates()); n != 1 || !ca.Anchors().Certificates()[0].Equal(oldRoot.Cert) {
		t.Fatal("the anchors changed")
	}

	// Adding the new root is taken quietly.
	publishAnchors(oldRoot, newRoot)
	if err := w.Reload(); err != nil {
		t.Fatal(err)
	}
	f.noEvent(t)
	if n := len(ca.Anchors().Certificates()); n != 2 {
		t.Fatalf("%d anchors, want 2", n)
	}

	// Then an issuer under the new root.
	underNew := pkitest.NewIssuer(t, "under new", newRoot, pkitest.Options{})
	issuerVol.Publish(t, files(t, underNew, mesh.IssuerSchemeLinkerd))
	if err := w.Reload(); err != nil {
		t.Fatal(err)
	}
	if e := f.nextEvent(t); !strings.Contains(e, "IssuerUpdated") || !strings.Contains(e, "under new") {
		t.Fatalf("event %q", e)
	}

	// Now the old root can go.
	publishAnchors(newRoot)
	if err := w.Reload(); err != nil {
		t.Fatal(err)
	}
	if n := len(ca.Anchors().Certificates()); n != 1 || !ca.Anchors().Certificates()[0].Equal(newRoot.Cert) {
		t.Fatal("the old root was not dropped")
	}

	// A broken bundle is refused; the anchors stay.
	anchorsVol.Publish(t, map[string][]byte{"ca-bundle.crt": []byte("garbage")})
	if err := w.Reload(); err == nil {
		t.Fatal("a broken bundle was taken")
	}
	if e := f.nextEvent(t); !strings.Contains(e, "no PEM certificate") {
		t.Fatalf("event %q", e)
	}
	if ca.Issuer().Cert.Subject.CommonName != "under new" || len(ca.Anchors().Certificates()) != 1 {
		t.Fatal("issuer or anchors changed")
	}
}
