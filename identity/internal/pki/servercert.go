package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"sync"
	"time"
)

// ServerCert is the certificate the identity server presents to proxies: a
// leaf for its own identity name, issued by the CA's current issuer, so that
// proxies verify it against the trust anchors like any other mesh identity.
// It is issued on first use, again when the issuer changes, and again once
// 70% of its lifetime has passed.
type ServerCert struct {
	ca       *CA
	identity string

	mu      sync.Mutex
	cert    *tls.Certificate
	issuer  *Issuer
	renewAt time.Time
}

// NewServerCert returns the server certificate source for identity.
func NewServerCert(ca *CA, identity string) *ServerCert {
	return &ServerCert{ca: ca, identity: identity}
}

// GetCertificate is a tls.Config.GetCertificate callback.
func (s *ServerCert) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return s.Get()
}

// Get returns a current certificate, issuing one if needed.
func (s *ServerCert) Get() (*tls.Certificate, error) {
	iss := s.ca.Issuer()
	if iss == nil {
		return nil, ErrNoIssuer
	}
	now := s.ca.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cert != nil && s.issuer == iss && now.Before(s.renewAt) {
		return s.cert, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	leaf, err := s.ca.signWith(iss, &key.PublicKey, s.identity)
	if err != nil {
		return nil, err
	}
	chain := append([][]byte{leaf.DER}, leaf.Chain...)
	s.cert = &tls.Certificate{Certificate: chain, PrivateKey: key, Leaf: leaf.Cert}
	s.issuer = iss
	s.renewAt = leaf.Cert.NotBefore.Add(leaf.Cert.NotAfter.Sub(leaf.Cert.NotBefore) * 7 / 10)
	return s.cert, nil
}
