// Package pkitest is the one PKI of the project's tests: trust anchors and
// issuers, leaf certificates for mesh identities and for TLS servers (DNS
// names, IP addresses), CSRs of every shape a proxy (or an attacker) might
// send, keys of each kind, PEM, and a folder that is updated the way the
// kubelet updates a Secret volume. Every module's tests use it; a module
// adapts it to its own types (the proxy's meshtls stores, destination's
// fake identity service) rather than making certificates itself.
//
// The dev cluster's PKI (tools/dev/cluster) and the CLI's (tools/cli/pki,
// what linkerd install generates) are not tests' and stay apart: they
// write long-lived files for real components and report errors instead
// of failing a test.
package pkitest

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// CA is a certificate authority for tests: an anchor or an issuer.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	// Parents are the certificates above Cert, nearest first, not
	// including the root.
	Parents []*x509.Certificate
}

// Options shape a CA certificate.
type Options struct {
	// Default: an hour ago, and two years from now for a root, one year
	// for an issuer, so a parent always outlives the default child (times
	// in certificates are whole seconds: equal lifetimes made a moment
	// apart can end a second apart, in either order).
	NotBefore, NotAfter time.Time
	Key                 crypto.Signer
	NotCA               bool
}

// NewRoot returns a self-signed CA named cn.
func NewRoot(t testing.TB, cn string, o Options) *CA {
	t.Helper()
	return newCA(t, cn, nil, o)
}

// NewIssuer returns a CA named cn signed by parent.
func NewIssuer(t testing.TB, cn string, parent *CA, o Options) *CA {
	t.Helper()
	return newCA(t, cn, parent, o)
}

func newCA(t testing.TB, cn string, parent *CA, o Options) *CA {
	t.Helper()
	key := o.Key
	if key == nil {
		key = ECKey(t)
	}
	if o.NotBefore.IsZero() {
		o.NotBefore = time.Now().Add(-time.Hour)
	}
	if o.NotAfter.IsZero() {
		o.NotAfter = time.Now().Add(365 * 24 * time.Hour)
		if parent == nil {
			o.NotAfter = o.NotAfter.Add(365 * 24 * time.Hour)
		}
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             o.NotBefore,
		NotAfter:              o.NotAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  !o.NotCA,
	}
	if o.NotCA {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	}
	signerCert, signerKey := tmpl, key
	var parents []*x509.Certificate
	if parent != nil {
		signerCert, signerKey = parent.Cert, parent.Key
		if !bytes.Equal(parent.Cert.RawIssuer, parent.Cert.RawSubject) { // not a root
			parents = append([]*x509.Certificate{parent.Cert}, parent.Parents...)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signerCert, key.Public(), signerKey)
	if err != nil {
		t.Fatalf("pkitest: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("pkitest: %v", err)
	}
	return &CA{Cert: cert, Key: key, Parents: parents}
}

// serial returns a random certificate serial number: certificates made in
// the same instant must still differ.
func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		t.Fatal(err)
	}
	return n.Add(n, big.NewInt(1))
}

// ECKey returns a new ECDSA P-256 key.
func ECKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// CertPEM returns the CA's certificate followed by its parents, in PEM.
func (c *CA) CertPEM() []byte {
	out := CertsPEM(c.Cert)
	for _, p := range c.Parents {
		out = append(out, CertsPEM(p)...)
	}
	return out
}

// KeyPEM returns the CA's key in PKCS#8 PEM.
func (c *CA) KeyPEM(t testing.TB) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(c.Key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// CertsPEM encodes certificates in PEM, in order.
func CertsPEM(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

// CSR describes a certificate signing request.
type CSR struct {
	Key         crypto.Signer // default: a new P-256 key
	CommonName  string
	DNSNames    []string
	IPAddresses []net.IP
	URIs        []*url.URL
	Emails      []string
	// ExtraExtensions are added as they are (e.g. a hand-made SAN).
	ExtraExtensions []pkix.Extension
}

// DER returns the request signed with its key.
func (c CSR) DER(t testing.TB) []byte {
	t.Helper()
	key := c.Key
	if key == nil {
		key = ECKey(t)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:         pkix.Name{CommonName: c.CommonName},
		DNSNames:        c.DNSNames,
		IPAddresses:     c.IPAddresses,
		URIs:            c.URIs,
		EmailAddresses:  c.Emails,
		ExtraExtensions: c.ExtraExtensions,
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// RSAKey returns a new 2048-bit RSA key.
func RSAKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// P384Key returns a new ECDSA P-384 key.
func P384Key(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Ed25519Key returns a new Ed25519 key.
func Ed25519Key(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// WriteFile writes data to dir/name, failing t on error.
func WriteFile(t testing.TB, dir, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// Volume mimics a Kubernetes Secret or ConfigMap volume: files are published
// through a "..data" link to a hidden folder, and each update writes a new
// folder, swaps the link with one rename, and removes the old folder, as the
// kubelet does.
type Volume struct {
	Dir string
	gen int
	cur string
}

// NewVolume returns an empty volume in a new folder of t's.
func NewVolume(t testing.TB) *Volume {
	return &Volume{Dir: t.TempDir()}
}

// Publish replaces the volume's content with files (name → content).
func (v *Volume) Publish(t testing.TB, files map[string][]byte) {
	t.Helper()
	v.gen++
	ts := filepath.Join(v.Dir, "..2026_01_01_00_00_00."+big.NewInt(int64(v.gen)).String())
	if err := os.Mkdir(ts, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		WriteFile(t, ts, name, data)
	}
	tmp := filepath.Join(v.Dir, "..data_tmp")
	if err := os.Symlink(filepath.Base(ts), tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(v.Dir, "..data")); err != nil {
		t.Fatal(err)
	}
	for name := range files {
		link := filepath.Join(v.Dir, name)
		if _, err := os.Lstat(link); err == nil {
			continue
		}
		if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
			t.Fatal(err)
		}
	}
	if v.cur != "" {
		if err := os.RemoveAll(v.cur); err != nil {
			t.Fatal(err)
		}
	}
	v.cur = ts
}
