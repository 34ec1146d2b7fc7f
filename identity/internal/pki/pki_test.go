package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linkerd-go/linkerd-go/api/mesh"
	"github.com/linkerd-go/linkerd-go/tools/testkit/pkitest"
)

func TestParseAnchors(t *testing.T) {
	a := pkitest.NewRoot(t, "a", pkitest.Options{})
	b := pkitest.NewRoot(t, "b", pkitest.Options{})
	leafLike := pkitest.NewRoot(t, "not a CA", pkitest.Options{NotCA: true})
	got, err := ParseAnchors(pkitest.CertsPEM(a.Cert, b.Cert))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Certificates()) != 2 {
		t.Errorf("%d anchors, want 2", len(got.Certificates()))
	}
	for _, tc := range []struct {
		name, want string
		bundle     []byte
	}{
		{"empty", "no PEM certificate", nil},
		{"not PEM", "no PEM certificate", []byte("hello")},
		{"a key", "not a CERTIFICATE", a.KeyPEM(t)},
		{"garbage certificate", "certificate 1", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("junk")})},
		{"not a CA", "not a CA", pkitest.CertsPEM(a.Cert, leafLike.Cert)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseAnchors(tc.bundle)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one mentioning %q", err, tc.want)
			}
		})
	}
	if _, err := LoadAnchors(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("a missing file loaded")
	}
}

func mustAnchors(t *testing.T, cas ...*pkitest.CA) *Anchors {
	t.Helper()
	var bundle []byte
	for _, c := range cas {
		bundle = append(bundle, pkitest.CertsPEM(c.Cert)...)
	}
	a, err := ParseAnchors(bundle)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestNewIssuer(t *testing.T) {
	now := time.Now()
	root := pkitest.NewRoot(t, "root", pkitest.Options{})
	otherRoot := pkitest.NewRoot(t, "other root", pkitest.Options{})
	anchors := mustAnchors(t, otherRoot, root) // several anchors: the second one signs
	inter := pkitest.NewIssuer(t, "intermediate", root, pkitest.Options{})
	iss := pkitest.NewIssuer(t, "issuer", root, pkitest.Options{})
	underInter := pkitest.NewIssuer(t, "issuer under intermediate", inter, pkitest.Options{})
	foreign := pkitest.NewIssuer(t, "foreign", pkitest.NewRoot(t, "stranger", pkitest.Options{}), pkitest.Options{})
	notCA := pkitest.NewIssuer(t, "not a CA", root, pkitest.Options{NotCA: true})
	expired := pkitest.NewIssuer(t, "expired", root, pkitest.Options{NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-time.Hour)})
	shortRoot := pkitest.NewRoot(t, "short root", pkitest.Options{NotAfter: now.Add(2 * time.Hour)})
	underShortRoot := pkitest.NewIssuer(t, "under short root", shortRoot, pkitest.Options{})

	t.Run("issuer signed by an anchor", func(t *testing.T) {
		got, err := NewIssuer(iss.CertPEM(), iss.KeyPEM(t), anchors, now)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Chain) != 1 || string(got.Chain[0]) != string(iss.Cert.Raw) {
			t.Errorf("chain of %d, want just the issuer", len(got.Chain))
		}
		if !got.NotAfter.Equal(iss.Cert.NotAfter) {
			t.Errorf("NotAfter %s, want %s", got.NotAfter, iss.Cert.NotAfter)
		}
		if got.ValidAt(now) != nil || got.ValidAt(iss.Cert.NotAfter) == nil || got.ValidAt(iss.Cert.NotBefore.Add(-time.Second)) == nil {
			t.Error("ValidAt is wrong at now, at expiry or before NotBefore")
		}
	})
	t.Run("issuer under an intermediate, with the anchor in the file", func(t *testing.T) {
		certPEM := append(underInter.CertPEM(), pkitest.CertsPEM(root.Cert)...)
		got, err := NewIssuer(certPEM, underInter.KeyPEM(t), anchors, now)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Chain) != 2 || string(got.Chain[0]) != string(underInter.Cert.Raw) || string(got.Chain[1]) != string(inter.Cert.Raw) {
			t.Errorf("chain of %d, want the issuer and the intermediate, without the anchor", len(got.Chain))
		}
	})
	t.Run("expiry is the earliest in the chain", func(t *testing.T) {
		got, err := NewIssuer(underShortRoot.CertPEM(), underShortRoot.KeyPEM(t), mustAnchors(t, shortRoot), now)
		if err != nil {
			t.Fatal(err)
		}
		if !got.NotAfter.Equal(shortRoot.Cert.NotAfter) {
			t.Errorf("NotAfter %s, want the anchor's %s", got.NotAfter, shortRoot.Cert.NotAfter)
		}
	})
	t.Run("key formats", func(t *testing.T) {
		k := iss.Key.(*ecdsa.PrivateKey)
		sec1, _ := x509.MarshalECPrivateKey(k)
		params := pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}})
		keyPEM := append(params, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})...)
		if _, err := NewIssuer(iss.CertPEM(), keyPEM, anchors, now); err != nil {
			t.Errorf("SEC 1 key after EC PARAMETERS: %v", err)
		}
		rsaIss := pkitest.NewIssuer(t, "rsa issuer", root, pkitest.Options{Key: pkitest.RSAKey(t)})
		pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaIss.Key.(*rsa.PrivateKey))})
		if _, err := NewIssuer(rsaIss.CertPEM(), pkcs1, anchors, now); err != nil {
			t.Errorf("PKCS#1 RSA key: %v", err)
		}
		edIss := pkitest.NewIssuer(t, "ed25519 issuer", root, pkitest.Options{Key: pkitest.Ed25519Key(t)})
		if _, err := NewIssuer(edIss.CertPEM(), edIss.KeyPEM(t), anchors, now); err != nil {
			t.Errorf("PKCS#8 Ed25519 key: %v", err)
		}
	})

	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	otherDER, _ := x509.MarshalPKCS8PrivateKey(other)
	otherPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: otherDER})
	for _, tc := range []struct {
		name         string
		certPEM, key []byte
		anchors      *Anchors
		want         string
	}{
		{"does not chain to the anchors", foreign.CertPEM(), foreign.KeyPEM(t), anchors, "does not chain to the trust anchors"},
		{"intermediate missing from the file", underInter.CertPEM()[:len(pkitest.CertsPEM(underInter.Cert))], underInter.KeyPEM(t), anchors, "does not chain"},
		{"not a CA", notCA.CertPEM(), notCA.KeyPEM(t), anchors, "not a CA"},
		{"expired", expired.CertPEM(), expired.KeyPEM(t), anchors, "does not chain"},
		{"key of another certificate", iss.CertPEM(), otherPEM, anchors, "does not belong"},
		{"no certificate", nil, iss.KeyPEM(t), anchors, "no PEM certificate"},
		{"no key", iss.CertPEM(), nil, anchors, "no PEM private key"},
		{"key file holds a certificate", iss.CertPEM(), iss.CertPEM(), anchors, "not a private key"},
		{"garbage key", iss.CertPEM(), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("junk")}), anchors, "issuer key file"},
		{"certificate file holds a key", iss.KeyPEM(t), iss.KeyPEM(t), anchors, "not a CERTIFICATE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewIssuer(tc.certPEM, tc.key, tc.anchors, now)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

func TestReadIssuerDir(t *testing.T) {
	for _, scheme := range []struct{ scheme, crt, key string }{
		{mesh.IssuerSchemeLinkerd, "crt.pem", "key.pem"},
		{mesh.IssuerSchemeKubernetes, "tls.crt", "tls.key"},
	} {
		t.Run(scheme.scheme, func(t *testing.T) {
			dir := t.TempDir()
			pkitest.WriteFile(t, dir, scheme.crt, []byte("cert"))
			pkitest.WriteFile(t, dir, scheme.key, []byte("key"))
			c, k, err := ReadIssuerDir(dir, scheme.scheme)
			if err != nil || string(c) != "cert" || string(k) != "key" {
				t.Fatalf("got %q %q %v", c, k, err)
			}
		})
	}
	t.Run("kubelet volume", func(t *testing.T) {
		v := pkitest.NewVolume(t)
		v.Publish(t, map[string][]byte{"crt.pem": []byte("cert 1"), "key.pem": []byte("key 1")})
		c, k, err := ReadIssuerDir(v.Dir, mesh.IssuerSchemeLinkerd)
		if err != nil || string(c) != "cert 1" || string(k) != "key 1" {
			t.Fatalf("got %q %q %v", c, k, err)
		}
		v.Publish(t, map[string][]byte{"crt.pem": []byte("cert 2"), "key.pem": []byte("key 2")})
		c, k, err = ReadIssuerDir(v.Dir, mesh.IssuerSchemeLinkerd)
		if err != nil || string(c) != "cert 2" || string(k) != "key 2" {
			t.Fatalf("after the swap: got %q %q %v", c, k, err)
		}
	})
	t.Run("link to a folder that is gone", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.Symlink("..gone", filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
		if _, _, err := ReadIssuerDir(dir, mesh.IssuerSchemeLinkerd); !errors.Is(err, ErrIssuerFilesChanging) {
			t.Fatalf("error %v, want ErrIssuerFilesChanging", err)
		}
	})
	t.Run("missing file", func(t *testing.T) {
		dir := t.TempDir()
		pkitest.WriteFile(t, dir, "crt.pem", []byte("cert"))
		if _, _, err := ReadIssuerDir(dir, mesh.IssuerSchemeLinkerd); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("error %v, want not found", err)
		}
	})
	t.Run("unknown scheme", func(t *testing.T) {
		if _, _, err := ReadIssuerDir(t.TempDir(), "example.org/tls"); err == nil {
			t.Fatal("no error")
		}
	})
}

func TestServerCert(t *testing.T) {
	root := pkitest.NewRoot(t, "root", pkitest.Options{})
	anchors := mustAnchors(t, root)
	now := time.Now()
	ca := NewCA(anchors, time.Hour, 10*time.Second, func() time.Time { return now })
	sc := NewServerCert(ca, "linkerd-identity.linkerd.serviceaccount.identity.linkerd.cluster.local")
	if _, err := sc.Get(); !errors.Is(err, ErrNoIssuer) {
		t.Fatalf("without an issuer: %v", err)
	}
	load := func(c *pkitest.CA) {
		t.Helper()
		iss, err := ca.LoadIssuer(c.CertPEM(), c.KeyPEM(t))
		if err != nil {
			t.Fatal(err)
		}
		ca.SetIssuer(iss)
	}
	first := pkitest.NewIssuer(t, "first", root, pkitest.Options{})
	load(first)
	c1, err := sc.Get()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c1.Leaf.Verify(x509.VerifyOptions{DNSName: "linkerd-identity.linkerd.serviceaccount.identity.linkerd.cluster.local", Roots: anchors.Pool(),
		Intermediates: poolOf(t, c1.Certificate[1:]), CurrentTime: now}); err != nil {
		t.Fatalf("server certificate does not verify: %v", err)
	}
	if c2, _ := sc.Get(); c2 != c1 {
		t.Error("reissued without a reason")
	}
	second := pkitest.NewIssuer(t, "second", root, pkitest.Options{})
	load(second)
	c3, _ := sc.Get()
	if c3 == c1 || c3.Leaf.Issuer.CommonName != "second" {
		t.Errorf("not reissued by the new issuer (issuer %q)", c3.Leaf.Issuer.CommonName)
	}
	now = now.Add(43 * time.Minute) // past 70% of the hour
	if c4, _ := sc.Get(); c4 == c3 {
		t.Error("not renewed after 70% of its lifetime")
	}
}

func poolOf(t *testing.T, ders [][]byte) *x509.CertPool {
	t.Helper()
	p := x509.NewCertPool()
	for _, d := range ders {
		c, err := x509.ParseCertificate(d)
		if err != nil {
			t.Fatal(err)
		}
		p.AddCert(c)
	}
	return p
}
