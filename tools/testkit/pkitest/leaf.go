package pkitest

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"testing"
	"time"
)

// LeafOptions shape a leaf certificate.
type LeafOptions struct {
	// DNSNames are the names the certificate is for: a mesh identity
	// ("web.default.serviceaccount.identity.linkerd.cluster.local") or a
	// server's host names.
	DNSNames []string
	// IPs are the server addresses it is for.
	IPs []net.IP
	// Lifetime from a minute ago; default an hour.
	Lifetime time.Duration
	// Key is the certificate's key; default a new P-256 key.
	Key crypto.Signer
}

// Leaf issues a certificate for server and client authentication, with
// its key, and the chain up to (not including) the root, as a TLS peer
// presents it.
func (c *CA) Leaf(t testing.TB, o LeafOptions) *tls.Certificate {
	t.Helper()
	key := o.Key
	if key == nil {
		key = ECKey(t)
	}
	der := c.issue(t, key.Public(), o)
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("pkitest: %v", err)
	}
	chain := [][]byte{der}
	if !c.IsRoot() {
		chain = append(chain, c.Cert.Raw)
	}
	for _, p := range c.Parents {
		chain = append(chain, p.Raw)
	}
	return &tls.Certificate{Certificate: chain, PrivateKey: key, Leaf: leaf}
}

// Issue returns a leaf certificate (DER) for the mesh identity name with
// the public key pub, valid for lifetime, as identity issues it for a CSR.
func (c *CA) Issue(t testing.TB, pub crypto.PublicKey, name string, lifetime time.Duration) []byte {
	t.Helper()
	return c.issue(t, pub, LeafOptions{DNSNames: []string{name}, Lifetime: lifetime})
}

func (c *CA) issue(t testing.TB, pub crypto.PublicKey, o LeafOptions) []byte {
	t.Helper()
	der, err := c.sign(serial(t), pub, o)
	if err != nil {
		t.Fatalf("pkitest: %v", err)
	}
	return der
}

func (c *CA) sign(sn *big.Int, pub crypto.PublicKey, o LeafOptions) ([]byte, error) {
	if o.Lifetime == 0 {
		o.Lifetime = time.Hour
	}
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(o.Lifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:     o.DNSNames,
		IPAddresses:  o.IPs,
	}
	return x509.CreateCertificate(rand.Reader, tmpl, c.Cert, pub, c.Key)
}

// SignCSR issues a certificate for the mesh identity name to the key of a
// DER CSR, after checking the CSR's signature. It returns an error rather
// than failing a test, for fake identity services answering from their own
// goroutines.
func (c *CA) SignCSR(csrDER []byte, name string, lifetime time.Duration) ([]byte, error) {
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nil, err
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, err
	}
	sn, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		return nil, err
	}
	if name == "" {
		return nil, errors.New("pkitest: no name to certify")
	}
	return c.sign(sn.Add(sn, big.NewInt(1)), csr.PublicKey, LeafOptions{DNSNames: []string{name}, Lifetime: lifetime})
}

// IsRoot reports whether the CA is self-issued: a trust anchor.
func (c *CA) IsRoot() bool { return bytes.Equal(c.Cert.RawIssuer, c.Cert.RawSubject) }

// Pool is a pool holding the CA's certificate alone, as trust anchors.
func (c *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c.Cert)
	return p
}

// PairPEM returns a leaf's certificate chain and its key (PKCS#8) in PEM,
// as a server reads them from tls.crt and tls.key.
func PairPEM(t testing.TB, c *tls.Certificate) (certPEM, keyPEM []byte) {
	t.Helper()
	for _, der := range c.Certificate {
		certPEM = append(certPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	der, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		t.Fatalf("pkitest: %v", err)
	}
	return certPEM, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}
