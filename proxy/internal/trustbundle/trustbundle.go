// Package trustbundle keeps the proxy's trust anchors current from a file:
// the linkerd-identity-trust-roots ConfigMap, mounted into the pod, which
// the kubelet updates in place when the ConfigMap changes. A new bundle is
// swapped in atomically (new handshakes verify against it, established
// connections keep going); a bundle that does not parse, is empty, or no
// longer verifies the proxy's own certificate is refused, logged and
// counted, and the anchors the proxy has stay.
package trustbundle

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/linkerd-go/linkerd-go/proxy/internal/meshtls"
)

// DefaultInterval is how often the file is read. The kubelet itself
// refreshes ConfigMap volumes about once a minute, so a rotation step is
// seen within about a minute of the ConfigMap's change.
const DefaultInterval = 10 * time.Second

// Config is where the bundle comes from.
type Config struct {
	// Path is the bundle's file.
	Path string
	// Interval between reads (0: DefaultInterval).
	Interval time.Duration
	// Tick, when set, replaces the ticker (tests).
	Tick <-chan time.Time
}

// Watcher applies the file's bundle to a store.
type Watcher struct {
	cfg   Config
	store *meshtls.Store
	log   logr.Logger

	updates     *prometheus.CounterVec
	roots       prometheus.Gauge
	firstExpiry prometheus.Gauge
	info        *prometheus.GaugeVec
	shown       string // fingerprint in info
	lastErr     string // the refusal last logged, so a bad file is logged once
}

// Results of a read, the result label of identity_trust_bundle_updates_total.
const (
	Applied    = "applied"
	Refused    = "refused"
	Unreadable = "unreadable"
)

// New returns a watcher of cfg.Path for store, its metrics on reg.
func New(cfg Config, store *meshtls.Store, reg prometheus.Registerer, log logr.Logger) *Watcher {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	w := &Watcher{
		cfg: cfg, store: store, log: log,
		updates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "identity_trust_bundle_updates_total",
			Help: "Reads of the trust bundle file that did not find the bundle in use, by result: applied, refused (does not parse, is empty, or no longer verifies the proxy's own certificate; counted at every read until the file changes) or unreadable.",
		}, []string{"result"}),
		roots: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "identity_trust_bundle_roots", Help: "Trust anchors the proxy verifies peers against now.",
		}),
		firstExpiry: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "identity_trust_bundle_first_expiry_timestamp_seconds", Help: "When the first of the trust anchors expires (Unix time).",
		}),
		info: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "identity_trust_bundle_info", Help: "The trust bundle in use: its SHA-256 fingerprint, 1 for the current one.",
		}, []string{"fingerprint"}),
	}
	for _, r := range []string{Applied, Refused, Unreadable} {
		w.updates.WithLabelValues(r)
	}
	reg.MustRegister(w.updates, w.roots, w.firstExpiry, w.info)
	w.show(store.Bundle())
	return w
}

// show publishes the bundle in use.
func (w *Watcher) show(b *meshtls.Bundle) {
	w.roots.Set(float64(b.Len()))
	w.firstExpiry.Set(float64(b.FirstExpiry().Unix()))
	if w.shown != "" {
		w.info.DeleteLabelValues(w.shown)
	}
	w.shown = b.Fingerprint()
	w.info.WithLabelValues(w.shown).Set(1)
}

// Run reads the file now and then at every interval until ctx ends.
func (w *Watcher) Run(ctx context.Context) error {
	tick := w.cfg.Tick
	if tick == nil {
		t := time.NewTicker(w.cfg.Interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		w.Check()
		select {
		case <-ctx.Done():
			return nil
		case <-tick:
		}
	}
}

// Check reads the file once and applies its bundle if it changed. It
// returns the result ("" when the bundle is the one in use).
func (w *Watcher) Check() string {
	data, err := readBounded(w.cfg.Path)
	if err != nil {
		return w.refuse(Unreadable, err)
	}
	if w.store.Bundle().Of(data) {
		// The bundle in use: nothing to parse (the common case, every
		// interval).
		w.lastErr = ""
		return ""
	}
	b, err := meshtls.ParseBundle(data)
	if err != nil {
		return w.refuse(Refused, err)
	}
	if err := w.store.SetBundle(b); err != nil {
		return w.refuse(Refused, err)
	}
	w.lastErr = ""
	w.updates.WithLabelValues(Applied).Inc()
	w.show(b)
	w.log.Info("trust bundle updated", "roots", b.Len(), "fingerprint", b.Fingerprint(), "firstExpiry", b.FirstExpiry().UTC().Format(time.RFC3339))
	return Applied
}

// refuse counts and logs a bundle not applied; the same error is logged
// once, not at every read, but counted each time the file is read.
func (w *Watcher) refuse(result string, err error) string {
	w.updates.WithLabelValues(result).Inc()
	if msg := err.Error(); msg != w.lastErr {
		w.lastErr = msg
		w.log.Error(err, "trust bundle not applied; keeping the anchors in use", "path", w.cfg.Path, "result", result, "fingerprint", w.shown)
	}
	return result
}

// readBounded reads at most meshtls.MaxBundleBytes of path, and fails on a
// longer file rather than cutting it.
func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, meshtls.MaxBundleBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > meshtls.MaxBundleBytes {
		return nil, fmt.Errorf("%s is over %d bytes", path, meshtls.MaxBundleBytes)
	}
	return data, nil
}
