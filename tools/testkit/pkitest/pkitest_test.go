package pkitest

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"testing"
	"time"
)

// A leaf from an issuer verifies against the root alone, for its names
// and addresses, and its PEM pair loads as a server's.
func TestLeafChainsToTheRoot(t *testing.T) {
	root := NewRoot(t, "root", Options{})
	issuer := NewIssuer(t, "issuer", root, Options{})
	leaf := issuer.Leaf(t, LeafOptions{DNSNames: []string{"web.example"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if len(leaf.Certificate) != 2 {
		t.Fatalf("chain of %d certificates, want leaf and issuer", len(leaf.Certificate))
	}
	inter := x509.NewCertPool()
	inter.AddCert(issuer.Cert)
	for _, name := range []string{"web.example", "127.0.0.1"} {
		if _, err := leaf.Leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: root.Pool(), Intermediates: inter}); err != nil {
			t.Errorf("verify for %s: %v", name, err)
		}
	}
	crt, key := PairPEM(t, leaf)
	if _, err := tls.X509KeyPair(crt, key); err != nil {
		t.Errorf("PEM pair: %v", err)
	}
	if root.IsRoot() == issuer.IsRoot() {
		t.Error("IsRoot does not tell the root from the issuer")
	}
}

// SignCSR certifies the CSR's key for the name, and refuses a CSR whose
// signature does not hold.
func TestSignCSR(t *testing.T) {
	ca := NewRoot(t, "root", Options{})
	key := ECKey(t)
	csr := CSR{Key: key, DNSNames: []string{"web.default.serviceaccount.identity.linkerd.cluster.local"}}.DER(t)
	der, err := ca.SignCSR(csr, "web.default.serviceaccount.identity.linkerd.cluster.local", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil || !key.PublicKey.Equal(cert.PublicKey) || cert.DNSNames[0] != "web.default.serviceaccount.identity.linkerd.cluster.local" {
		t.Fatalf("certificate %v for another key or name (%v)", cert, err)
	}
	csr[len(csr)-1] ^= 0xff
	if _, err := ca.SignCSR(csr, "web", time.Hour); err == nil {
		t.Error("a CSR with a broken signature was signed")
	}
}
