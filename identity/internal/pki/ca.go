package pki

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"sync/atomic"
	"time"
)

// ErrNoIssuer is returned by Sign when no issuer is loaded.
var ErrNoIssuer = errors.New("no issuer loaded")

// CA signs leaf certificates with the current issuer. The issuer and the
// trust anchors it is checked against can be swapped at any time; every
// signature uses one issuer consistently.
type CA struct {
	anchors  atomic.Pointer[Anchors]
	lifetime time.Duration
	skew     time.Duration
	now      func() time.Time
	issuer   atomic.Pointer[Issuer]
}

// NewCA returns a CA without an issuer. Leaves live for lifetime from the
// moment they are signed, and are back-dated by skew for clocks that lag.
// now is the clock (time.Now when nil).
func NewCA(anchors *Anchors, lifetime, skew time.Duration, now func() time.Time) *CA {
	if now == nil {
		now = time.Now
	}
	c := &CA{lifetime: lifetime, skew: skew, now: now}
	c.anchors.Store(anchors)
	return c
}

// Anchors returns the trust anchors the CA's issuers must chain to.
func (c *CA) Anchors() *Anchors { return c.anchors.Load() }

// SetAnchors replaces the trust anchors new issuers are checked against.
func (c *CA) SetAnchors(a *Anchors) { c.anchors.Store(a) }

// Now returns the CA's clock reading.
func (c *CA) Now() time.Time { return c.now() }

// Issuer returns the current issuer, or nil.
func (c *CA) Issuer() *Issuer { return c.issuer.Load() }

// SetIssuer makes iss (verified by NewIssuer) the issuer of new leaves.
func (c *CA) SetIssuer(iss *Issuer) { c.issuer.Store(iss) }

// LoadIssuer verifies a certificate and key against the CA's anchors (see
// NewIssuer) without installing it.
func (c *CA) LoadIssuer(certPEM, keyPEM []byte) (*Issuer, error) {
	return NewIssuer(certPEM, keyPEM, c.Anchors(), c.now())
}

// Leaf is a signed leaf certificate.
type Leaf struct {
	// DER is the leaf certificate.
	DER []byte
	// Cert is DER, parsed.
	Cert *x509.Certificate
	// Chain are the certificates from the leaf's issuer up to, not including,
	// a trust anchor (DER).
	Chain [][]byte
}

// Sign issues a leaf certificate for the DNS name identity and the public key
// pub with the current issuer: usable for TLS server and client
// authentication, valid from now minus the clock skew allowance to now plus
// the lifetime, and never after the issuer chain's expiry.
func (c *CA) Sign(pub *ecdsa.PublicKey, identity string) (*Leaf, error) {
	iss := c.Issuer()
	if iss == nil {
		return nil, ErrNoIssuer
	}
	return c.signWith(iss, pub, identity)
}

func (c *CA) signWith(iss *Issuer, pub *ecdsa.PublicKey, identity string) (*Leaf, error) {
	now := c.now()
	if err := iss.ValidAt(now); err != nil {
		return nil, err
	}
	notAfter := now.Add(c.lifetime)
	if notAfter.After(iss.NotAfter) {
		notAfter = iss.NotAfter
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial.Add(serial, big.NewInt(1)), // positive, never zero
		Subject:               pkix.Name{CommonName: identity},
		DNSNames:              []string{identity},
		NotBefore:             now.Add(-c.skew),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, iss.Cert, pub, iss.signer)
	if err != nil {
		return nil, fmt.Errorf("signing the leaf certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parsing the signed leaf certificate: %w", err)
	}
	return &Leaf{DER: der, Cert: cert, Chain: iss.Chain}, nil
}
