// Package pki makes the mesh's trust anchor and identity issuer for
// `linkerd install` when none are given, and reads certificates back for
// `linkerd check`.
//
// The choices follow Linkerd's documented manual setup: ECDSA P-256 keys, a
// self-signed root "root.linkerd.<trust-domain>" and an intermediate issuer
// "identity.linkerd.<trust-domain>" signed by it (path length 0, so it can
// sign only leaves), both valid for one year (8760h).
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// DefaultLifetime is the validity of generated certificates.
const DefaultLifetime = 365 * 24 * time.Hour

// backdate is how far before now generated certificates start, so that
// clocks a little behind still accept them (the proxies' clock-skew
// allowance is 20s).
const backdate = time.Minute

// Credentials are a trust anchor and an issuer signed by it, PEM-encoded.
type Credentials struct {
	TrustAnchorPEM []byte
	IssuerCertPEM  []byte
	IssuerKeyPEM   []byte // SEC 1 ("EC PRIVATE KEY")
}

// Generate makes a root and an issuer for the trust domain (e.g.
// "cluster.local") and control-plane namespace (e.g. "linkerd"), both valid
// from now-1m for lifetime (0 = DefaultLifetime).
func Generate(controlPlaneNS, trustDomain string, now time.Time, lifetime time.Duration) (Credentials, error) {
	return GenerateLifetimes(controlPlaneNS, trustDomain, now, lifetime, lifetime)
}

// GenerateLifetimes is Generate with the root and the issuer valid for
// different lifetimes (0 = DefaultLifetime); an issuer outliving its root
// is refused. It makes, for example, a long-lived root with an issuer that
// is about to expire, as a rotation is due.
func GenerateLifetimes(controlPlaneNS, trustDomain string, now time.Time, rootLifetime, issuerLifetime time.Duration) (Credentials, error) {
	if rootLifetime <= 0 {
		rootLifetime = DefaultLifetime
	}
	if issuerLifetime <= 0 {
		issuerLifetime = DefaultLifetime
	}
	if issuerLifetime > rootLifetime {
		return Credentials{}, fmt.Errorf("issuer lifetime %v is longer than the root's %v", issuerLifetime, rootLifetime)
	}
	notBefore := now.Add(-backdate)
	notAfter := now.Add(rootLifetime)
	rootKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Credentials{}, err
	}
	rootTmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "root." + controlPlaneNS + "." + trustDomain},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            1,
	}
	rootDER, root, err := sign(rootTmpl, rootTmpl, &rootKey.PublicKey, rootKey)
	if err != nil {
		return Credentials{}, err
	}
	issuerKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Credentials{}, err
	}
	issuerTmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "identity." + controlPlaneNS + "." + trustDomain},
		NotBefore:             notBefore,
		NotAfter:              now.Add(issuerLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	issuerDER, _, err := sign(issuerTmpl, root, &issuerKey.PublicKey, rootKey)
	if err != nil {
		return Credentials{}, err
	}
	keyDER, err := x509.MarshalECPrivateKey(issuerKey)
	if err != nil {
		return Credentials{}, err
	}
	return Credentials{
		TrustAnchorPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rootDER}),
		IssuerCertPEM:  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: issuerDER}),
		IssuerKeyPEM:   pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

func sign(tmpl, parent *x509.Certificate, pub *ecdsa.PublicKey, key *ecdsa.PrivateKey) ([]byte, *x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	tmpl.SerialNumber = serial
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return der, cert, err
}

// ParseCertificates returns every CERTIFICATE block of a PEM bundle, and an
// error if there is none or one does not parse.
func ParseCertificates(pemData []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for rest := pemData; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM certificate found")
	}
	return certs, nil
}

// CheckIssuer checks that the issuer certificate (first of issuerPEM, with
// any intermediates after it) chains to one of the anchors, is a CA, and
// matches the private key in keyPEM (if keyPEM is not nil).
func CheckIssuer(anchorsPEM, issuerPEM, keyPEM []byte, now time.Time) error {
	anchors, err := ParseCertificates(anchorsPEM)
	if err != nil {
		return fmt.Errorf("trust anchors: %w", err)
	}
	chain, err := ParseCertificates(issuerPEM)
	if err != nil {
		return fmt.Errorf("issuer certificate: %w", err)
	}
	issuer := chain[0]
	if !issuer.IsCA {
		return fmt.Errorf("issuer certificate %q is not a CA", issuer.Subject.CommonName)
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	for _, a := range anchors {
		roots.AddCert(a)
	}
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := issuer.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return fmt.Errorf("issuer certificate %q does not chain to the trust anchors: %w", issuer.Subject.CommonName, err)
	}
	if keyPEM != nil {
		if err := matchKey(issuer, keyPEM); err != nil {
			return err
		}
	}
	return nil
}

func matchKey(cert *x509.Certificate, keyPEM []byte) error {
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		return errors.New("issuer key: no PEM block")
	}
	var key any
	var err error
	switch block.Type {
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	}
	if err != nil {
		return fmt.Errorf("issuer key: %w", err)
	}
	pub, ok := key.(interface{ Public() crypto.PublicKey })
	if !ok {
		return errors.New("issuer key: unsupported key type")
	}
	eq, ok := pub.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !eq.Equal(cert.PublicKey) {
		return errors.New("issuer key does not match the issuer certificate")
	}
	return nil
}
