package certfile

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-logr/logr"
)

// selfSigned returns a PEM certificate and key for name.
func selfSigned(t *testing.T, name string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
}

// replace writes data to path in one rename, as the kubelet updates a
// Secret volume.
func replace(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func served(t *testing.T, r *Reloader) string {
	t.Helper()
	c, err := r.GetCertificate(&tls.ClientHelloInfo{})
	if err != nil || c == nil || c.Leaf == nil {
		t.Fatalf("GetCertificate: %v, %v", c, err)
	}
	return c.Leaf.Subject.CommonName
}

func TestReloadsAndKeepsTheLastGoodPair(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	c1, k1 := selfSigned(t, "first")
	replace(t, certFile, c1)
	replace(t, keyFile, k1)
	var results []error
	r, err := New(certFile, keyFile, logr.Discard(), func(err error) { results = append(results, err) })
	if err != nil {
		t.Fatal(err)
	}
	if got := served(t, r); got != "first" {
		t.Fatalf("served %q, want first", got)
	}

	c2, k2 := selfSigned(t, "second")
	replace(t, certFile, c2)
	replace(t, keyFile, k2)
	if got := served(t, r); got != "second" {
		t.Fatalf("after the files changed, served %q, want second", got)
	}

	// A key that does not match the certificate: the second pair stays.
	_, k3 := selfSigned(t, "third")
	replace(t, keyFile, k3)
	if got := served(t, r); got != "second" {
		t.Fatalf("after a bad pair, served %q, want second", got)
	}
	// Missing files (a volume being swapped): still served.
	if err := os.Remove(certFile); err != nil {
		t.Fatal(err)
	}
	if got := served(t, r); got != "second" {
		t.Fatalf("with the files gone, served %q, want second", got)
	}
	if len(results) != 2 || results[0] != nil || results[1] == nil {
		t.Fatalf("reload results %v, want [nil, an error]", results)
	}
}

func TestNewRefusesABadPair(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if _, err := New(certFile, keyFile, logr.Discard(), nil); err == nil {
		t.Fatal("New with no files: want an error")
	}
	c, _ := selfSigned(t, "a")
	_, k := selfSigned(t, "b")
	replace(t, certFile, c)
	replace(t, keyFile, k)
	if _, err := New(certFile, keyFile, logr.Discard(), nil); err == nil {
		t.Fatal("New with a mismatched key: want an error")
	}
}
