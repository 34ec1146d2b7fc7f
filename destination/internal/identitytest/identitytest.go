// Package identitytest answers Certify the way the identity service does,
// with certificates from the test kit's PKI, for tests of destination's own
// certificate and of the servers that present it.
package identitytest

import (
	"context"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	identityv1 "github.com/linkerd-go/linkerd-go/api/linkerd/identity/v1"
	"github.com/linkerd-go/linkerd-go/tools/testkit/pkitest"
)

// Certify answers a Certify request with a leaf for the requested identity
// signed by issuer, and issuer as the chain; a malformed CSR is an error.
func Certify(t testing.TB, issuer *pkitest.CA, req *identityv1.CertifyRequest, lifetime time.Duration) (*identityv1.CertifyResponse, error) {
	csr, err := x509.ParseCertificateRequest(req.GetCertificateSigningRequest())
	if err != nil || csr.CheckSignature() != nil || len(csr.DNSNames) != 1 || csr.DNSNames[0] != req.GetIdentity() {
		return nil, errors.New("bad CSR")
	}
	leaf := issuer.Issue(t, csr.PublicKey, req.GetIdentity(), lifetime)
	cert, err := x509.ParseCertificate(leaf)
	if err != nil {
		return nil, err
	}
	return &identityv1.CertifyResponse{LeafCertificate: leaf, IntermediateCertificates: [][]byte{issuer.Cert.Raw}, ValidUntil: timestamppb.New(cert.NotAfter)}, nil
}

// Client is an in-process identity client whose every Certify is answered
// by Issuer.
type Client struct {
	T      testing.TB
	Issuer *pkitest.CA
}

// Certify implements identityv1.IdentityServiceClient.
func (c Client) Certify(_ context.Context, req *identityv1.CertifyRequest, _ ...grpc.CallOption) (*identityv1.CertifyResponse, error) {
	return Certify(c.T, c.Issuer, req, time.Hour)
}
