//go:build integration

package integration

import (
	"context"
	"crypto/x509"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	identityv1 "github.com/linkerd-go/linkerd-go/api/linkerd/identity/v1"
	"github.com/linkerd-go/linkerd-go/api/mesh"
	"github.com/linkerd-go/linkerd-go/tools/testkit/pkitest"
)

func csr(t testing.TB, id string) []byte {
	return pkitest.CSR{DNSNames: []string{id}}.DER(t)
}

// verifyLeaf checks the response's leaf against the anchors for id and
// returns it.
func verifyLeaf(t testing.TB, c *component, resp *identityv1.CertifyResponse, id string) *x509.Certificate {
	t.Helper()
	leaf, err := x509.ParseCertificate(resp.GetLeafCertificate())
	if err != nil {
		t.Fatal(err)
	}
	inter := x509.NewCertPool()
	for _, d := range resp.GetIntermediateCertificates() {
		ic, err := x509.ParseCertificate(d)
		if err != nil {
			t.Fatal(err)
		}
		inter.AddCert(ic)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: id, Roots: c.anchors, Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("the leaf for %s does not verify to the anchors: %v", id, err)
	}
	if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != id {
		t.Fatalf("leaf names %q, want %q", leaf.DNSNames, id)
	}
	return leaf
}

func TestCertifyWithRealTokenReviews(t *testing.T) {
	root := pkitest.NewRoot(t, "root", pkitest.Options{})
	iss := pkitest.NewIssuer(t, "issuer", root, pkitest.Options{})
	c := startComponent(t, componentOptions{
		anchors:      []*pkitest.CA{root},
		issuerFiles:  map[string][]byte{"crt.pem": iss.CertPEM(), "key.pem": iss.KeyPEM(t)},
		issuerSecret: "issuer-certify",
	})
	client := c.dial(t)
	ns := newNamespace(t, "web", "db", "gone")
	web, db := identityName("web", ns), identityName("db", ns)
	webToken := createToken(t, ns, "web", identityv1.TokenAudience)
	ctx := context.Background()

	t.Run("token of A gets a certificate for A", func(t *testing.T) {
		resp, err := client.Certify(ctx, &identityv1.CertifyRequest{Identity: web, Token: []byte(webToken), CertificateSigningRequest: csr(t, web)})
		if err != nil {
			t.Fatal(err)
		}
		leaf := verifyLeaf(t, c, resp, web)
		if leaf.Issuer.CommonName != "issuer" {
			t.Errorf("issued by %q", leaf.Issuer.CommonName)
		}
	})

	goneToken := createToken(t, ns, "gone", identityv1.TokenAudience)
	if err := admin.CoreV1().ServiceAccounts(ns).Delete(ctx, "gone", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	forged := strings.Split(webToken, ".")
	forged[2] = strings.Repeat("A", len(forged[2]))

	for _, tc := range []struct {
		name     string
		identity string
		token    string
		code     codes.Code
	}{
		{"the same token asking for B", db, webToken, codes.FailedPrecondition},
		{"the same token asking for A in another namespace", identityName("web", "default"), webToken, codes.FailedPrecondition},
		{"a token of A for another audience", web, createToken(t, ns, "web", "vault.example.org"), codes.Unauthenticated},
		{"a token of A for the API server's audience", web, createToken(t, ns, "web", ""), codes.Unauthenticated},
		{"a token of a deleted ServiceAccount", identityName("gone", ns), goneToken, codes.Unauthenticated},
		{"a token with a forged signature", web, strings.Join(forged, "."), codes.Unauthenticated},
		{"a cluster admin's static token (not a JWT)", web, env.Config.BearerToken, codes.InvalidArgument},
		{"a token that is not a JWT", web, "hello", codes.InvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := client.Certify(ctx, &identityv1.CertifyRequest{Identity: tc.identity, Token: []byte(tc.token), CertificateSigningRequest: csr(t, tc.identity)})
			if status.Code(err) != tc.code {
				t.Fatalf("%v, want %s", err, tc.code)
			}
		})
	}

	t.Run("the server presents a certificate for its own identity", func(t *testing.T) {
		var p peer.Peer
		if _, err := client.Certify(ctx, &identityv1.CertifyRequest{Identity: web, Token: []byte(webToken), CertificateSigningRequest: csr(t, web)}, grpc.Peer(&p)); err != nil {
			t.Fatal(err)
		}
		info := p.AuthInfo.(credentials.TLSInfo)
		got := info.State.PeerCertificates[0]
		if len(got.DNSNames) != 1 || got.DNSNames[0] != "linkerd-identity.linkerd.serviceaccount.identity.linkerd.cluster.local" {
			t.Errorf("server certificate names %q", got.DNSNames)
		}
	})
}

// The trust anchors and the issuer are rotated under a running component,
// kubelet-style: the new root joins the bundle, and new certificates come
// from the new issuer under it, with no restart; an issuer that does not
// chain to the anchors is refused and the current one kept.
func TestIssuerRotation(t *testing.T) {
	oldRoot := pkitest.NewRoot(t, "old root", pkitest.Options{})
	newRoot := pkitest.NewRoot(t, "new root", pkitest.Options{})
	first := pkitest.NewIssuer(t, "first issuer", oldRoot, pkitest.Options{})
	secret := fmt.Sprintf("issuer-rotation-%d", nsCounter.Add(1))
	events := watchEvents(t, secret)
	c := startComponent(t, componentOptions{
		anchors:      []*pkitest.CA{oldRoot},
		issuerFiles:  map[string][]byte{"crt.pem": first.CertPEM(), "key.pem": first.KeyPEM(t)},
		issuerSecret: secret,
	})
	ns := newNamespace(t, "web")
	web := identityName("web", ns)
	tok := []byte(createToken(t, ns, "web", identityv1.TokenAudience))
	ctx := context.Background()

	certify := func(client identityv1.IdentityServiceClient) (leafIssuer, serverIssuer string) {
		t.Helper()
		var p peer.Peer
		resp, err := client.Certify(ctx, &identityv1.CertifyRequest{Identity: web, Token: tok, CertificateSigningRequest: csr(t, web)}, grpc.Peer(&p))
		if err != nil {
			t.Fatal(err)
		}
		leaf := verifyLeaf(t, c, resp, web)
		return leaf.Issuer.CommonName, p.AuthInfo.(credentials.TLSInfo).State.PeerCertificates[0].Issuer.CommonName
	}
	if leafIss, srvIss := certify(c.dial(t)); leafIss != "first issuer" || srvIss != "first issuer" {
		t.Fatalf("before rotation: leaf by %q, server certificate by %q", leafIss, srvIss)
	}

	// As a platform team rotates: the new root joins the bundle (proxies
	// get it too), then the issuer under it replaces the old one.
	c.trustRoots.Publish(t, map[string][]byte{"ca-bundle.crt": pkitest.CertsPEM(oldRoot.Cert, newRoot.Cert)})
	c.anchors.AddCert(newRoot.Cert)
	second := pkitest.NewIssuer(t, "second issuer", newRoot, pkitest.Options{})
	c.issuer.Publish(t, map[string][]byte{"crt.pem": second.CertPEM(), "key.pem": second.KeyPEM(t)})
	ev := nextEvent(t, events, "IssuerUpdated")
	if !strings.Contains(ev.Message, "second issuer") || ev.Type != "Normal" || ev.InvolvedObject.Kind != "Secret" || ev.Source.Component != "linkerd-identity" {
		t.Errorf("event %+v", ev)
	}
	if leafIss, srvIss := certify(c.dial(t)); leafIss != "second issuer" || srvIss != "second issuer" {
		t.Fatalf("after rotation: leaf by %q, server certificate by %q", leafIss, srvIss)
	}

	foreignRoot := pkitest.NewRoot(t, "foreign root", pkitest.Options{})
	foreign := pkitest.NewIssuer(t, "foreign issuer", foreignRoot, pkitest.Options{})
	c.issuer.Publish(t, map[string][]byte{"crt.pem": foreign.CertPEM(), "key.pem": foreign.KeyPEM(t)})
	ev = nextEvent(t, events, "IssuerValidationFailed")
	if !strings.Contains(ev.Message, "does not chain to the trust anchors") || ev.Type != "Warning" {
		t.Errorf("event %+v", ev)
	}
	if leafIss, _ := certify(c.dial(t)); leafIss != "second issuer" {
		t.Fatalf("after a refused issuer: leaf by %q, want the second issuer", leafIss)
	}
	if !c.running() {
		t.Fatal("the component stopped")
	}
}

// cert-manager writes a kubernetes.io/tls Secret: tls.crt, tls.key and ca.crt.
func TestKubernetesTLSScheme(t *testing.T) {
	root := pkitest.NewRoot(t, "root", pkitest.Options{})
	iss := pkitest.NewIssuer(t, "cert-manager issuer", root, pkitest.Options{})
	c := startComponent(t, componentOptions{
		anchors:      []*pkitest.CA{root},
		scheme:       mesh.IssuerSchemeKubernetes,
		issuerFiles:  map[string][]byte{"tls.crt": iss.CertPEM(), "tls.key": iss.KeyPEM(t), "ca.crt": pkitest.CertsPEM(root.Cert)},
		issuerSecret: "issuer-kubernetes-tls",
	})
	ns := newNamespace(t, "web")
	web := identityName("web", ns)
	resp, err := c.dial(t).Certify(context.Background(), &identityv1.CertifyRequest{
		Identity: web, Token: []byte(createToken(t, ns, "web", identityv1.TokenAudience)), CertificateSigningRequest: csr(t, web),
	})
	if err != nil {
		t.Fatal(err)
	}
	if leaf := verifyLeaf(t, c, resp, web); leaf.Issuer.CommonName != "cert-manager issuer" {
		t.Errorf("issued by %q", leaf.Issuer.CommonName)
	}
}
