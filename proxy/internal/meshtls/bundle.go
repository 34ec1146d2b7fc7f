package meshtls

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"time"
)

// MaxBundleBytes bounds a trust bundle: a few hundred anchors at most.
const MaxBundleBytes = 1 << 20

// Bundle is a parsed set of trust anchors.
type Bundle struct {
	pool  *x509.CertPool
	certs []*x509.Certificate
	sum   [sha256.Size]byte
}

// ParseBundle reads a PEM bundle of trust anchors: CERTIFICATE blocks, each
// a CA certificate that parses, at least one. Text between the blocks is
// ignored (as `openssl x509 -text` writes it); any other PEM block (a
// private key pasted by mistake) is refused. A bundle that does not hold
// together is refused whole, never applied in part.
func ParseBundle(pemBytes []byte) (*Bundle, error) {
	if len(pemBytes) > MaxBundleBytes {
		return nil, fmt.Errorf("trust bundle of %d bytes is over the %d-byte limit", len(pemBytes), MaxBundleBytes)
	}
	b := &Bundle{pool: x509.NewCertPool(), sum: sha256.Sum256(pemBytes)}
	rest := pemBytes
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("trust bundle holds a %q block; only CERTIFICATE blocks are allowed", block.Type)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("trust anchor %d: %w", len(b.certs)+1, err)
		}
		if !cert.IsCA {
			return nil, fmt.Errorf("trust anchor %d (%s) is not a CA certificate", len(b.certs)+1, cert.Subject)
		}
		b.pool.AddCert(cert)
		b.certs = append(b.certs, cert)
	}
	if len(b.certs) == 0 {
		return nil, errors.New("no trust anchor certificates in the PEM bundle")
	}
	return b, nil
}

// Len is the number of anchors.
func (b *Bundle) Len() int { return len(b.certs) }

// Fingerprint is the SHA-256 of the bundle's bytes, in hex: what an
// operator compares across proxies.
func (b *Bundle) Fingerprint() string { return hex.EncodeToString(b.sum[:]) }

// FirstExpiry is when the first of the anchors expires.
func (b *Bundle) FirstExpiry() time.Time {
	var first time.Time
	for _, c := range b.certs {
		if first.IsZero() || c.NotAfter.Before(first) {
			first = c.NotAfter
		}
	}
	return first
}

// Of reports whether b was parsed from data, without parsing data.
func (b *Bundle) Of(data []byte) bool { return b.sum == sha256.Sum256(data) }
