// Package issuer keeps the CA's issuer in step with the mounted issuer
// Secret (and the trust anchors with the mounted bundle): it loads them at
// start, reloads them whenever a folder changes (and periodically, in case a
// change notification is lost), installs a new issuer only if it chains to
// the trust anchors, and reports each outcome as a Kubernetes Event and a
// metric.
package issuer

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/record"

	"github.com/linkerd-go/linkerd-go/identity/internal/metrics"
	"github.com/linkerd-go/linkerd-go/identity/internal/pki"
)

// Event reasons.
const (
	// EventUpdated: a new issuer is in use.
	EventUpdated = "IssuerUpdated"
	// EventValidationFailed: the issuer files hold no valid issuer; the
	// previous issuer (if any) stays in use.
	EventValidationFailed = "IssuerValidationFailed"
)

// Config configures a Watcher.
type Config struct {
	// Dir is the folder where the issuer Secret is mounted.
	Dir string
	// Scheme is mesh.IssuerSchemeLinkerd or mesh.IssuerSchemeKubernetes.
	Scheme string
	// AnchorsFile, if set, is the trust anchors bundle. It is read again
	// with the issuer: new anchors are taken together with an issuer that
	// chains to them, or not at all.
	AnchorsFile string
	// Resync is how often the files are read even without a change
	// notification (0: never).
	Resync time.Duration
	// Debounce is how long to wait after a change notification for the
	// folder to settle before reading it.
	Debounce time.Duration
}

// Watcher loads the issuer into a CA and keeps it current.
type Watcher struct {
	cfg      Config
	ca       *pki.CA
	recorder record.EventRecorder
	ref      *corev1.ObjectReference
	metrics  *metrics.Metrics
	log      logr.Logger

	// The last refusal reported (content digest and error), so that the
	// same refusal of the same content is reported once.
	lastRefusal string
	// reloaded, if set, is called after each reload attempt (tests).
	reloaded func(error)
}

// New returns a Watcher for ca. Events are recorded on ref (the issuer
// Secret) through recorder.
func New(cfg Config, ca *pki.CA, recorder record.EventRecorder, ref *corev1.ObjectReference, m *metrics.Metrics, log logr.Logger) (*Watcher, error) {
	if _, _, err := pki.IssuerFiles(cfg.Scheme); err != nil {
		return nil, err
	}
	return &Watcher{cfg: cfg, ca: ca, recorder: recorder, ref: ref, metrics: m, log: log}, nil
}

// Reload reads the issuer folder and, if its content changed since the last
// read (or the last read failed), verifies it and installs it. An invalid
// issuer is refused and the current one kept. It returns why the content
// was refused, or nil.
func (w *Watcher) Reload() error {
	err := w.reload()
	if w.reloaded != nil {
		w.reloaded(err)
	}
	return err
}

func (w *Watcher) reload() error {
	anchors := w.ca.Anchors()
	if w.cfg.AnchorsFile != "" {
		bundle, err := os.ReadFile(w.cfg.AnchorsFile)
		if err != nil {
			return w.refuse("", fmt.Errorf("trust anchors: %w", err))
		}
		if d := sha256.Sum256(bundle); anchors == nil || d != anchors.Digest {
			if anchors, err = pki.ParseAnchors(bundle); err != nil {
				return w.refuse(fmt.Sprintf("%x", d), err)
			}
		}
	}
	certPEM, keyPEM, err := pki.ReadIssuerDir(w.cfg.Dir, w.cfg.Scheme)
	if err != nil {
		return w.refuse("", err)
	}
	digest := pki.ContentDigest(certPEM, keyPEM)
	cur := w.ca.Issuer()
	anchorsChanged := anchors != w.ca.Anchors()
	if cur != nil && cur.Digest == digest && !anchorsChanged {
		w.lastRefusal = ""
		return nil // unchanged
	}
	iss, err := pki.NewIssuer(certPEM, keyPEM, anchors, w.ca.Now())
	if err != nil {
		return w.refuse(fmt.Sprintf("%x %x", anchors.Digest, digest), err)
	}
	w.ca.SetAnchors(anchors)
	w.ca.SetIssuer(iss)
	w.lastRefusal = ""
	if anchorsChanged {
		w.log.Info("trust anchors updated", "file", w.cfg.AnchorsFile, "anchors", len(anchors.Certificates()))
	}
	if cur != nil && cur.Digest == digest {
		return nil // only the anchors changed
	}
	w.metrics.IssuerReloads.WithLabelValues(metrics.IssuerUpdated).Inc()
	kv := []any{"subject", iss.Cert.Subject.String(), "serial", iss.Cert.SerialNumber.Text(16), "notAfter", iss.NotAfter.UTC().Format(time.RFC3339)}
	if cur == nil {
		w.log.Info("issuer loaded", kv...)
		return nil
	}
	w.log.Info("issuer updated", kv...)
	w.recorder.Eventf(w.ref, corev1.EventTypeNormal, EventUpdated,
		"Updated the identity issuer: %s (serial %s), valid until %s",
		iss.Cert.Subject.String(), iss.Cert.SerialNumber.Text(16), iss.NotAfter.UTC().Format(time.RFC3339))
	return nil
}

// refuse records a failed reload; the same failure of the same content
// (identified by key) is logged and reported once.
func (w *Watcher) refuse(key string, err error) error {
	key += " " + err.Error()
	if key == w.lastRefusal {
		return err
	}
	w.lastRefusal = key
	w.metrics.IssuerReloads.WithLabelValues(metrics.IssuerRefused).Inc()
	kept := "no issuer is loaded: certificates cannot be issued"
	if cur := w.ca.Issuer(); cur != nil {
		kept = fmt.Sprintf("still using %s (serial %s)", cur.Cert.Subject.String(), cur.Cert.SerialNumber.Text(16))
	}
	w.log.Error(err, "refusing the issuer files", "dir", w.cfg.Dir, "scheme", w.cfg.Scheme, "anchors", w.cfg.AnchorsFile, "kept", kept)
	w.recorder.Eventf(w.ref, corev1.EventTypeWarning, EventValidationFailed, "Refused the issuer in %s: %v; %s", w.cfg.Dir, err, kept)
	return err
}

// Run watches the folder until ctx ends. It reloads once the watch is in
// place, after every change (once the folder has been quiet for the
// debounce interval) and every resync interval. Call Reload once before Run
// to load the first issuer before serving.
func (w *Watcher) Run(ctx context.Context) error {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watching %s: %w", w.cfg.Dir, err)
	}
	defer func() { _ = fw.Close() }()
	dirs := []string{w.cfg.Dir}
	if w.cfg.AnchorsFile != "" && filepath.Dir(w.cfg.AnchorsFile) != filepath.Clean(w.cfg.Dir) {
		dirs = append(dirs, filepath.Dir(w.cfg.AnchorsFile))
	}
	for _, dir := range dirs {
		if err := fw.Add(dir); err != nil {
			// The folder may appear later; the resync still finds it.
			w.log.Error(err, "cannot watch a folder; relying on periodic reloads", "dir", dir, "every", w.cfg.Resync)
		}
	}
	events, errs := fw.Events, fw.Errors
	// Whatever changed between the first load and the watch is read now.
	_ = w.Reload()
	var resync <-chan time.Time
	if w.cfg.Resync > 0 {
		t := time.NewTicker(w.cfg.Resync)
		defer t.Stop()
		resync = t.C
	}
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	defer debounce.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			w.log.V(2).Info("issuer folder changed", "name", ev.Name, "op", ev.Op.String())
			debounce.Reset(w.cfg.Debounce)
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			// Typically an overflowed event queue: read the folder now.
			w.log.Error(err, "watching the issuer folder", "dir", w.cfg.Dir)
			debounce.Reset(w.cfg.Debounce)
		case <-debounce.C:
			_ = w.Reload()
		case <-resync:
			_ = w.Reload()
		}
	}
}
