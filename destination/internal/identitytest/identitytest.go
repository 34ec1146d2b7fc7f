// Package identitytest makes certificate authorities and answers Certify
// the way the identity service does, for tests of destination's own
// certificate and of the servers that present it.
package identitytest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	identityv1 "github.com/linkerd-go/linkerd-go/api/linkerd/identity/v1"
)

// CA is a certificate authority: a root, or an issuer under one.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
	DER  []byte
}

var serial atomic.Int64

// NewCA makes a CA valid for an hour either side of now, signed by parent
// (self-signed when nil).
func NewCA(t testing.TB, parent *CA, cn string) *CA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial.Add(1)), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	signer, signerKey := tmpl, key
	if parent != nil {
		signer, signerKey = parent.Cert, parent.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &CA{Cert: cert, Key: key, DER: der}
}

// Issue returns a leaf certificate (DER) for name with pub, valid for
// lifetime, for server and client authentication.
func (c *CA) Issue(t testing.TB, pub any, name string, lifetime time.Duration) []byte {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(serial.Add(1)), DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(lifetime),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}, c.Cert, pub, c.Key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// Certify answers a Certify request with a leaf for the requested identity
// signed by c, and c as the chain; a malformed CSR is an error.
func (c *CA) Certify(t testing.TB, req *identityv1.CertifyRequest, lifetime time.Duration) (*identityv1.CertifyResponse, error) {
	csr, err := x509.ParseCertificateRequest(req.GetCertificateSigningRequest())
	if err != nil || csr.CheckSignature() != nil || len(csr.DNSNames) != 1 || csr.DNSNames[0] != req.GetIdentity() {
		return nil, errors.New("bad CSR")
	}
	leaf := c.Issue(t, csr.PublicKey, req.GetIdentity(), lifetime)
	cert, _ := x509.ParseCertificate(leaf)
	return &identityv1.CertifyResponse{LeafCertificate: leaf, IntermediateCertificates: [][]byte{c.DER}, ValidUntil: timestamppb.New(cert.NotAfter)}, nil
}

// Client is an in-process identity client whose every Certify is answered
// by Issuer.
type Client struct {
	T      testing.TB
	Issuer *CA
}

// Certify implements identityv1.IdentityServiceClient.
func (c Client) Certify(_ context.Context, req *identityv1.CertifyRequest, _ ...grpc.CallOption) (*identityv1.CertifyResponse, error) {
	return c.Issuer.Certify(c.T, req, time.Hour)
}
