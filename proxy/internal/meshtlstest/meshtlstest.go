// Package meshtlstest adapts the test kit's PKI (tools/testkit/pkitest) to the
// proxy's tests: a trust anchor that signs mesh identity certificates
// directly, and meshtls stores holding them. It is imported only by _test
// files.
package meshtlstest

import (
	"crypto/tls"
	"testing"
	"time"

	"github.com/linkerd-go/linkerd-go/proxy/internal/meshtls"
	"github.com/linkerd-go/linkerd-go/tools/testkit/pkitest"
)

// CA is a trust anchor that signs leaf certificates directly.
type CA struct {
	*pkitest.CA
	// PEM is the anchor's certificate, as the proxy's trust anchors.
	PEM []byte
}

// NewCA returns a fresh anchor, valid for a day.
func NewCA(t testing.TB) *CA {
	t.Helper()
	ca := pkitest.NewRoot(t, "root.linkerd.cluster.local", pkitest.Options{NotAfter: time.Now().Add(24 * time.Hour)})
	return &CA{CA: ca, PEM: ca.CertPEM()}
}

// Leaf issues a mesh certificate for name, valid for lifetime.
func (ca *CA) Leaf(t testing.TB, name string, lifetime time.Duration) *tls.Certificate {
	t.Helper()
	return ca.CA.Leaf(t, pkitest.LeafOptions{DNSNames: []string{name}, Lifetime: lifetime})
}

// Store returns a meshtls.Store for name holding a fresh certificate.
func (ca *CA) Store(t testing.TB, name string) *meshtls.Store {
	t.Helper()
	s, err := meshtls.NewStore(name, ca.PEM)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Set(ca.Leaf(t, name, time.Hour)); err != nil {
		t.Fatal(err)
	}
	return s
}
