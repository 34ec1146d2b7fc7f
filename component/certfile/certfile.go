// Package certfile serves a TLS certificate from a PEM certificate and key
// on disk, and reads them again when they change: a Secret volume that the
// kubelet updates, or a certificate that cert-manager renews, takes effect
// on the next handshake without a restart.
package certfile

import (
	"crypto/tls"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/go-logr/logr"
)

// Reloader holds the last good certificate of a file pair. Each TLS
// handshake checks the files' identity, size and modification time (two
// stats); a pair that fails to load is logged and the previous one kept.
type Reloader struct {
	certFile, keyFile string
	log               logr.Logger
	onReload          func(error)

	mu        sync.Mutex
	cert      *tls.Certificate
	certStamp stamp
	keyStamp  stamp
}

// stamp identifies one version of a file.
type stamp struct {
	info os.FileInfo
}

func (s stamp) same(o stamp) bool {
	if s.info == nil || o.info == nil {
		return s.info == o.info
	}
	return os.SameFile(s.info, o.info) && s.info.Size() == o.info.Size() && s.info.ModTime().Equal(o.info.ModTime())
}

// New loads the pair; it fails when the files are missing or do not hold a
// matching certificate and key. onReload, when not nil, is called after
// every reload attempt with its error (nil: the new pair is served).
func New(certFile, keyFile string, log logr.Logger, onReload func(error)) (*Reloader, error) {
	r := &Reloader{certFile: certFile, keyFile: keyFile, log: log, onReload: onReload}
	cs, ks, err := r.stamps()
	if err != nil {
		return nil, err
	}
	if err := r.load(cs, ks); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Reloader) stamps() (stamp, stamp, error) {
	ci, err := os.Stat(r.certFile)
	if err != nil {
		return stamp{}, stamp{}, err
	}
	ki, err := os.Stat(r.keyFile)
	if err != nil {
		return stamp{}, stamp{}, err
	}
	return stamp{ci}, stamp{ki}, nil
}

// load reads the pair; r.mu is held or r is not shared yet. On failure the
// previous certificate stays.
func (r *Reloader) load(cs, ks stamp) error {
	r.certStamp, r.keyStamp = cs, ks
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("loading certificate %s and key %s: %w", r.certFile, r.keyFile, err)
	}
	r.cert = &cert
	return nil
}

// GetCertificate is the tls.Config hook.
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cs, ks, err := r.stamps()
	if err != nil {
		// Files briefly missing while a volume is updated: keep serving.
		return r.cert, nil
	}
	if cs.same(r.certStamp) && ks.same(r.keyStamp) {
		return r.cert, nil
	}
	err = r.load(cs, ks)
	if err != nil {
		r.log.Error(err, "keeping the previous certificate")
	} else {
		r.log.Info("certificate reloaded", "file", r.certFile, "notAfter", r.cert.Leaf.NotAfter.Format(time.RFC3339))
	}
	if r.onReload != nil {
		r.onReload(err)
	}
	return r.cert, nil
}
