package meshlab

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"time"
)

// PKI is the mesh's trust anchor and issuer, written as the
// linkerd-identity-issuer Secret (scheme linkerd.io/tls: crt.pem, key.pem)
// and the trust-roots ConfigMap (ca-bundle.crt) would be mounted.
//
// It is made here rather than with the test kit's pkitest because meshlab
// also runs outside tests (the data-plane benchmark's command), where
// there is no testing.TB to fail: it returns errors instead.
type PKI struct {
	IssuerDir   string
	AnchorsFile string
	AnchorsPEM  []byte
}

// WritePKI writes a P-256 trust anchor and an issuer signed by it under dir.
func WritePKI(dir string) (PKI, error) {
	var p PKI
	rootDER, rootCert, rootKey, err := newCA("root.linkerd.cluster.local", nil, nil)
	if err != nil {
		return p, err
	}
	issuerDER, _, issuerKey, err := newCA("identity.linkerd.cluster.local", rootCert, rootKey)
	if err != nil {
		return p, err
	}
	keyDER, err := x509.MarshalECPrivateKey(issuerKey)
	if err != nil {
		return p, err
	}
	p.IssuerDir = filepath.Join(dir, "issuer")
	rootsDir := filepath.Join(dir, "trust-roots")
	for _, d := range []string{p.IssuerDir, rootsDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return p, err
		}
	}
	p.AnchorsPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rootDER})
	p.AnchorsFile = filepath.Join(rootsDir, "ca-bundle.crt")
	for name, data := range map[string][]byte{
		filepath.Join(p.IssuerDir, "crt.pem"): pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: issuerDER}),
		filepath.Join(p.IssuerDir, "key.pem"): pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
		p.AnchorsFile:                         p.AnchorsPEM,
	} {
		if err := os.WriteFile(name, data, 0o600); err != nil {
			return p, err
		}
	}
	return p, nil
}

// newCA makes a P-256 CA certificate valid for two days, signed by parent
// (self-signed when parent is nil). Only the anchor may sign other CAs.
func newCA(cn string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) ([]byte, *x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		return nil, nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(48 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        parent != nil,
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		return nil, nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, nil, err
	}
	return der, cert, key, nil
}
