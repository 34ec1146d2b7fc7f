// Package issuer keeps the CA's issuer in step with the mounted issuer
// Secret: it loads it at start, reloads it whenever the folder changes (and
// periodically, in case a change notification is lost), installs a new
// issuer only if it chains to the trust anchors, and reports each outcome as
// a Kubernetes Event and a metric.
package issuer

import (
	"context"
	"crypto/sha256"
	"fmt"
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
	// Scheme is pki.SchemeLinkerd or pki.SchemeKubernetes.
	Scheme string
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
	certPEM, keyPEM, err := pki.ReadIssuerDir(w.cfg.Dir, w.cfg.Scheme)
	if err != nil {
		return w.refuse([sha256.Size]byte{}, err)
	}
	digest := pki.ContentDigest(certPEM, keyPEM)
	if cur := w.ca.Issuer(); cur != nil && cur.Digest == digest {
		w.lastRefusal = ""
		return nil // unchanged
	}
	iss, err := w.ca.LoadIssuer(certPEM, keyPEM)
	if err != nil {
		return w.refuse(digest, err)
	}
	initial := w.ca.Issuer() == nil
	w.ca.SetIssuer(iss)
	w.lastRefusal = ""
	w.metrics.IssuerReloads.WithLabelValues(metrics.IssuerUpdated).Inc()
	kv := []any{"subject", iss.Cert.Subject.String(), "serial", iss.Cert.SerialNumber.Text(16), "notAfter", iss.NotAfter.UTC().Format(time.RFC3339)}
	if initial {
		w.log.Info("issuer loaded", kv...)
		return nil
	}
	w.log.Info("issuer updated", kv...)
	w.recorder.Eventf(w.ref, corev1.EventTypeNormal, EventUpdated,
		"Updated the identity issuer: %s (serial %s), valid until %s",
		iss.Cert.Subject.String(), iss.Cert.SerialNumber.Text(16), iss.NotAfter.UTC().Format(time.RFC3339))
	return nil
}

// refuse records a failed reload; the same failure of the same content is
// logged and reported once.
func (w *Watcher) refuse(digest [sha256.Size]byte, err error) error {
	key := fmt.Sprintf("%x %v", digest, err)
	if key == w.lastRefusal {
		return err
	}
	w.lastRefusal = key
	w.metrics.IssuerReloads.WithLabelValues(metrics.IssuerRefused).Inc()
	kept := "no issuer is loaded: certificates cannot be issued"
	if cur := w.ca.Issuer(); cur != nil {
		kept = fmt.Sprintf("still using %s (serial %s)", cur.Cert.Subject.String(), cur.Cert.SerialNumber.Text(16))
	}
	w.log.Error(err, "refusing the issuer files", "dir", w.cfg.Dir, "scheme", w.cfg.Scheme, "kept", kept)
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
	events, errs := fw.Events, fw.Errors
	if err := fw.Add(w.cfg.Dir); err != nil {
		// The folder may appear later; the resync still finds it.
		w.log.Error(err, "cannot watch the issuer folder; relying on periodic reloads", "dir", w.cfg.Dir, "every", w.cfg.Resync)
		events, errs = nil, nil
	}
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
