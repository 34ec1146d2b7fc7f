package pki

import (
	"strings"
	"testing"
	"time"
)

func TestGenerate(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c, err := Generate("linkerd", "example.org", now, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckIssuer(c.TrustAnchorPEM, c.IssuerCertPEM, c.IssuerKeyPEM, now); err != nil {
		t.Fatal(err)
	}
	roots, _ := ParseCertificates(c.TrustAnchorPEM)
	issuer, _ := ParseCertificates(c.IssuerCertPEM)
	if roots[0].Subject.CommonName != "root.linkerd.example.org" || issuer[0].Subject.CommonName != "identity.linkerd.example.org" {
		t.Errorf("names %s %s", roots[0].Subject.CommonName, issuer[0].Subject.CommonName)
	}
	if !issuer[0].NotAfter.Equal(now.Add(DefaultLifetime)) || !issuer[0].NotBefore.Equal(now.Add(-time.Minute)) {
		t.Errorf("validity %s – %s", issuer[0].NotBefore, issuer[0].NotAfter)
	}
	// Past its lifetime the issuer no longer verifies.
	if err := CheckIssuer(c.TrustAnchorPEM, c.IssuerCertPEM, nil, now.Add(DefaultLifetime+time.Hour)); err == nil {
		t.Error("an expired issuer verified")
	}
}

func TestCheckIssuerRefuses(t *testing.T) {
	now := time.Now()
	a, err := Generate("linkerd", "cluster.local", now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Generate("linkerd", "cluster.local", now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name              string
		anchors, crt, key []byte
		want              string
	}{
		{"other root", b.TrustAnchorPEM, a.IssuerCertPEM, a.IssuerKeyPEM, "does not chain to the trust anchors"},
		{"other key", a.TrustAnchorPEM, a.IssuerCertPEM, b.IssuerKeyPEM, "does not match"},
		{"no anchors", []byte("junk"), a.IssuerCertPEM, nil, "trust anchors: no PEM certificate"},
		{"no issuer", a.TrustAnchorPEM, nil, nil, "issuer certificate: no PEM certificate"},
		{"bad key", a.TrustAnchorPEM, a.IssuerCertPEM, []byte("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n"), "issuer key"},
	} {
		err := CheckIssuer(tc.anchors, tc.crt, tc.key, now)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestGenerateLifetimes(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c, err := GenerateLifetimes("linkerd", "cluster.local", now, DefaultLifetime, 12*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	roots, _ := ParseCertificates(c.TrustAnchorPEM)
	issuer, _ := ParseCertificates(c.IssuerCertPEM)
	if !roots[0].NotAfter.Equal(now.Add(DefaultLifetime)) {
		t.Errorf("root expires %s, want %s", roots[0].NotAfter, now.Add(DefaultLifetime))
	}
	if !issuer[0].NotAfter.Equal(now.Add(12 * time.Hour)) {
		t.Errorf("issuer expires %s, want %s", issuer[0].NotAfter, now.Add(12*time.Hour))
	}
	if err := CheckIssuer(c.TrustAnchorPEM, c.IssuerCertPEM, c.IssuerKeyPEM, now); err != nil {
		t.Fatal(err)
	}
	if _, err := GenerateLifetimes("linkerd", "cluster.local", now, time.Hour, 2*time.Hour); err == nil || !strings.Contains(err.Error(), "longer than the root") {
		t.Errorf("an issuer outliving its root: err = %v", err)
	}
}
