//go:build integration

package meshtest

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
	"testing"
	"time"
)

// writePKI writes a trust anchor and an issuer signed by it, as the
// linkerd-identity-issuer Secret (scheme linkerd.io/tls: crt.pem, key.pem)
// and the trust-roots ConfigMap (ca-bundle.crt) would be mounted. It returns
// the issuer folder, the anchors file and the anchors PEM.
func writePKI(t testing.TB, dir string) (issuerDir, anchorsFile string, anchorsPEM []byte) {
	t.Helper()
	rootDER, rootCert, rootKey := newCA(t, "root.linkerd.cluster.local", nil, nil)
	issuerDER, _, issuerKey := newCA(t, "identity.linkerd.cluster.local", rootCert, rootKey)
	keyDER, err := x509.MarshalECPrivateKey(issuerKey)
	if err != nil {
		t.Fatal(err)
	}
	issuerDir = filepath.Join(dir, "issuer")
	rootsDir := filepath.Join(dir, "trust-roots")
	for _, d := range []string{issuerDir, rootsDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	anchorsPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rootDER})
	anchorsFile = filepath.Join(rootsDir, "ca-bundle.crt")
	for name, data := range map[string][]byte{
		filepath.Join(issuerDir, "crt.pem"): pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: issuerDER}),
		filepath.Join(issuerDir, "key.pem"): pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
		anchorsFile:                         anchorsPEM,
	} {
		if err := os.WriteFile(name, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return issuerDir, anchorsFile, anchorsPEM
}

// newCA makes a P-256 CA certificate valid for two days, signed by parent
// (self-signed when parent is nil). Only the anchor may sign other CAs.
func newCA(t testing.TB, cn string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) ([]byte, *x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
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
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return der, cert, key
}
