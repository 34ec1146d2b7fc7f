// Package pki holds the certificate authority's cryptography: the trust
// anchors, the issuer (certificate, key and the chain up to an anchor), the
// checks a certificate signing request must pass, and the signing of leaf
// certificates. It does no I/O beyond reading the files it is pointed at.
package pki

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
)

// Anchors are the mesh's trust anchors: the root certificates every proxy
// trusts. A bundle may hold several (during a rotation, the old and the new).
type Anchors struct {
	// Digest identifies the bundle the anchors were parsed from.
	Digest [sha256.Size]byte

	pool  *x509.CertPool
	certs []*x509.Certificate
}

// ParseAnchors parses a PEM bundle of CA certificates. Every block must be a
// CERTIFICATE of a CA, and there must be at least one.
func ParseAnchors(bundle []byte) (*Anchors, error) {
	a := &Anchors{pool: x509.NewCertPool(), Digest: sha256.Sum256(bundle)}
	for rest := bundle; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("trust anchors: PEM block %q is not a CERTIFICATE", b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("trust anchors: certificate %d: %w", len(a.certs)+1, err)
		}
		if !c.BasicConstraintsValid || !c.IsCA {
			return nil, fmt.Errorf("trust anchors: certificate %d (%q) is not a CA", len(a.certs)+1, c.Subject.String())
		}
		a.pool.AddCert(c)
		a.certs = append(a.certs, c)
	}
	if len(a.certs) == 0 {
		return nil, errors.New("trust anchors: no PEM certificate found")
	}
	return a, nil
}

// LoadAnchors reads and parses the PEM bundle at path.
func LoadAnchors(path string) (*Anchors, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("trust anchors: %w", err)
	}
	return ParseAnchors(data)
}

// Pool returns the anchors as a certificate pool, for verification. The
// caller must not change it.
func (a *Anchors) Pool() *x509.CertPool { return a.pool }

// Certificates returns the anchors in bundle order.
func (a *Anchors) Certificates() []*x509.Certificate { return a.certs }

// contains reports whether c is one of the anchors, byte for byte.
func (a *Anchors) contains(c *x509.Certificate) bool {
	want := sha256.Sum256(c.Raw)
	for _, x := range a.certs {
		if sha256.Sum256(x.Raw) == want {
			return true
		}
	}
	return false
}
