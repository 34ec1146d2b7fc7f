package certify

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	identityv1 "github.com/linkerd-go/linkerd-go/api/linkerd/identity/v1"
	"github.com/linkerd-go/linkerd-go/identity/internal/metrics"
	"github.com/linkerd-go/linkerd-go/identity/internal/pki"
	"github.com/linkerd-go/linkerd-go/identity/internal/token"
	"github.com/linkerd-go/linkerd-go/tools/testkit/pkitest"
)

const (
	trustDomain = "cluster.local"
	cpns        = "linkerd"
	lifetime    = 24 * time.Hour
	skew        = 20 * time.Second
)

func name(sa, ns string) string {
	return identityv1.Name{ServiceAccount: sa, Namespace: ns, ControlPlaneNamespace: cpns, TrustDomain: trustDomain}.String()
}

// Tokens the fake reviewer knows. They are compact-JWT shaped.
const (
	tokenWeb        = "eyJ.web.sig"        // default/web
	tokenNotSA      = "eyJ.user.sig"       // a user's token
	tokenRejected   = "eyJ.rejected.sig"   // not authenticated
	tokenReviewDown = "eyJ.apidown.sig"    // the API cannot be reached
	tokenBlock      = "eyJ.blocks.sig"     // blocks until released (concurrency test)
	tokenOtherSA    = "eyJ.otherweb.sig"   // default/other
	tokenMalformed  = "eyJ.malformed.sig"  // refused as malformed by the reviewer
	tokenWrongLabel = "eyJ.badlabel.sig"   // a username whose names are no DNS labels
	tokenUnknownErr = "eyJ.unexpected.sig" // some other error
)

type fakeReviewer struct {
	block   chan struct{}
	entered chan struct{}
	mu      sync.Mutex
	calls   int
}

func (f *fakeReviewer) Review(ctx context.Context, tok []byte) (token.ServiceAccount, error) {
	f.mu.Lock()
	f.calls++
	f.mu.Unlock()
	switch string(tok) {
	case tokenWeb:
		return token.ServiceAccount{Namespace: "default", Name: "web"}, nil
	case tokenOtherSA:
		return token.ServiceAccount{Namespace: "default", Name: "other"}, nil
	case tokenNotSA, tokenWrongLabel:
		return token.ServiceAccount{}, token.ErrNotServiceAccount
	case tokenReviewDown:
		return token.ServiceAccount{}, errors.Join(token.ErrUnavailable, errors.New("connection refused"))
	case tokenMalformed:
		return token.ServiceAccount{}, token.ErrMalformed
	case tokenBlock:
		if ctx.Err() == nil {
			select {
			case f.entered <- struct{}{}:
			default:
			}
		}
		select {
		case <-f.block:
			return token.ServiceAccount{Namespace: "default", Name: "web"}, nil
		case <-ctx.Done():
			return token.ServiceAccount{}, errors.Join(token.ErrUnavailable, ctx.Err())
		}
	case tokenUnknownErr:
		return token.ServiceAccount{}, errors.New("surprise")
	default:
		return token.ServiceAccount{}, token.ErrUnauthenticated
	}
}

type fixture struct {
	svc      *Service
	ca       *pki.CA
	reviewer *fakeReviewer
	metrics  *metrics.Metrics
	reg      *prometheus.Registry
	anchors  *pki.Anchors
	now      time.Time
	clock    *time.Time
	issuer   *pkitest.CA
}

type fixtureOptions struct {
	noIssuer       bool
	issuerNotAfter time.Time
	intermediate   bool // root → intermediate → issuer
	secondAnchor   bool // the issuer chains to the second of two anchors
	maxConcurrent  int
}

func newFixture(t testing.TB, o fixtureOptions) *fixture {
	t.Helper()
	now := time.Now().Truncate(time.Second)
	other := pkitest.NewRoot(t, "other root", pkitest.Options{})
	root := pkitest.NewRoot(t, "root.linkerd.cluster.local", pkitest.Options{})
	bundle := pkitest.CertsPEM(root.Cert)
	if o.secondAnchor {
		bundle = pkitest.CertsPEM(other.Cert, root.Cert)
	}
	anchors, err := pki.ParseAnchors(bundle)
	if err != nil {
		t.Fatal(err)
	}
	parent := root
	if o.intermediate {
		parent = pkitest.NewIssuer(t, "intermediate", root, pkitest.Options{})
	}
	iss := pkitest.NewIssuer(t, "identity.linkerd.cluster.local", parent, pkitest.Options{NotAfter: o.issuerNotAfter})
	clock := now
	ca := pki.NewCA(anchors, lifetime, skew, func() time.Time { return clock })
	if !o.noIssuer {
		loaded, err := ca.LoadIssuer(iss.CertPEM(), iss.KeyPEM(t))
		if err != nil {
			t.Fatal(err)
		}
		ca.SetIssuer(loaded)
	}
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, func() (time.Time, bool) { return time.Time{}, false })
	rev := &fakeReviewer{block: make(chan struct{}), entered: make(chan struct{}, 16)}
	if o.maxConcurrent == 0 {
		o.maxConcurrent = 8
	}
	svc := New(Config{TrustDomain: trustDomain, ControlPlaneNamespace: cpns, MaxConcurrent: o.maxConcurrent}, ca, rev, m, logr.Discard())
	return &fixture{svc: svc, ca: ca, reviewer: rev, metrics: m, reg: reg, anchors: anchors, now: now, clock: &clock, issuer: iss}
}

func sanExtension(t *testing.T, names ...asn1.RawValue) pkix.Extension {
	t.Helper()
	v, err := asn1.Marshal(names)
	if err != nil {
		t.Fatal(err)
	}
	return pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 17}, Value: v}
}

func TestCertifyRefusals(t *testing.T) {
	web := name("web", "default")
	goodCSR := pkitest.CSR{DNSNames: []string{web}}.DER(t)
	tampered := append([]byte(nil), goodCSR...)
	tampered[len(tampered)-3] ^= 0xff

	cases := []struct {
		name     string
		fixture  fixtureOptions
		expire   bool // move the clock past the issuer's expiry
		identity string
		token    string
		csr      []byte
		code     codes.Code
		reason   string
		contains string
	}{
		{name: "no issuer loaded", fixture: fixtureOptions{noIssuer: true}, identity: web, token: tokenWeb, csr: goodCSR, code: codes.Unavailable, reason: metrics.ReasonNoIssuer},
		{name: "expired issuer", expire: true, identity: web, token: tokenWeb, csr: goodCSR, code: codes.Unavailable, reason: metrics.ReasonNoIssuer, contains: "expired"},
		{name: "identity missing", token: tokenWeb, csr: goodCSR, code: codes.InvalidArgument, reason: metrics.ReasonBadRequest},
		{name: "identity too long", identity: strings.Repeat("a", 300), token: tokenWeb, csr: goodCSR, code: codes.InvalidArgument, reason: metrics.ReasonBadRequest},
		{name: "identity malformed", identity: "web.default.svc.cluster.local", token: tokenWeb, csr: goodCSR, code: codes.InvalidArgument, reason: metrics.ReasonBadRequest},
		{name: "identity with upper case", identity: name("Web", "default"), token: tokenWeb, csr: goodCSR, code: codes.InvalidArgument, reason: metrics.ReasonBadRequest},
		{name: "identity of another trust domain", identity: "web.default.serviceaccount.identity.linkerd.example.org", token: tokenWeb,
			csr: pkitest.CSR{DNSNames: []string{"web.default.serviceaccount.identity.linkerd.example.org"}}.DER(t), code: codes.InvalidArgument, reason: metrics.ReasonForeignIdentity},
		{name: "identity of another control plane", identity: "web.default.serviceaccount.identity.other.cluster.local", token: tokenWeb,
			csr: pkitest.CSR{DNSNames: []string{"web.default.serviceaccount.identity.other.cluster.local"}}.DER(t), code: codes.InvalidArgument, reason: metrics.ReasonForeignIdentity},
		{name: "token missing", identity: web, csr: goodCSR, code: codes.InvalidArgument, reason: metrics.ReasonBadRequest},
		{name: "token too long", identity: web, token: "a." + strings.Repeat("b", MaxTokenLength) + ".c", csr: goodCSR, code: codes.InvalidArgument, reason: metrics.ReasonBadRequest},
		{name: "csr missing", identity: web, token: tokenWeb, code: codes.InvalidArgument, reason: metrics.ReasonBadRequest},
		{name: "csr too long", identity: web, token: tokenWeb, csr: make([]byte, MaxCSRLength+1), code: codes.InvalidArgument, reason: metrics.ReasonBadRequest},
		{name: "garbage DER", identity: web, token: tokenWeb, csr: []byte("\x30\x82\x01\x00garbage"), code: codes.InvalidArgument, reason: metrics.ReasonMalformedCSR},
		{name: "PEM instead of DER", identity: web, token: tokenWeb, csr: []byte("-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n"), code: codes.InvalidArgument, reason: metrics.ReasonMalformedCSR},
		{name: "signature does not verify", identity: web, token: tokenWeb, csr: tampered, code: codes.InvalidArgument, reason: metrics.ReasonMalformedCSR},
		{name: "wrong algorithm: RSA", identity: web, token: tokenWeb, csr: pkitest.CSR{Key: pkitest.RSAKey(t), DNSNames: []string{web}}.DER(t), code: codes.InvalidArgument, reason: metrics.ReasonMalformedCSR, contains: "not ECDSA P-256"},
		{name: "wrong algorithm: P-384", identity: web, token: tokenWeb, csr: pkitest.CSR{Key: pkitest.P384Key(t), DNSNames: []string{web}}.DER(t), code: codes.InvalidArgument, reason: metrics.ReasonMalformedCSR, contains: "P-384"},
		{name: "wrong algorithm: Ed25519", identity: web, token: tokenWeb, csr: pkitest.CSR{Key: pkitest.Ed25519Key(t), DNSNames: []string{web}}.DER(t), code: codes.InvalidArgument, reason: metrics.ReasonMalformedCSR},
		{name: "no SAN", identity: web, token: tokenWeb, csr: pkitest.CSR{CommonName: web}.DER(t), code: codes.FailedPrecondition, reason: metrics.ReasonCSRNames},
		{name: "wrong SAN", identity: web, token: tokenWeb, csr: pkitest.CSR{DNSNames: []string{name("db", "default")}}.DER(t), code: codes.FailedPrecondition, reason: metrics.ReasonCSRNames},
		{name: "extra DNS SAN", identity: web, token: tokenWeb, csr: pkitest.CSR{DNSNames: []string{web, "kubernetes.default.svc"}}.DER(t), code: codes.FailedPrecondition, reason: metrics.ReasonCSRNames},
		{name: "same DNS SAN twice", identity: web, token: tokenWeb, csr: pkitest.CSR{DNSNames: []string{web, web}}.DER(t), code: codes.FailedPrecondition, reason: metrics.ReasonCSRNames},
		{name: "IP SAN", identity: web, token: tokenWeb, csr: pkitest.CSR{DNSNames: []string{web}, IPAddresses: []net.IP{net.IPv4(10, 0, 0, 1)}}.DER(t), code: codes.FailedPrecondition, reason: metrics.ReasonCSRNames},
		{name: "URI SAN", identity: web, token: tokenWeb, csr: pkitest.CSR{DNSNames: []string{web}, URIs: []*url.URL{{Scheme: "spiffe", Host: "cluster.local", Path: "/ns/default/sa/web"}}}.DER(t), code: codes.FailedPrecondition, reason: metrics.ReasonCSRNames},
		{name: "e-mail SAN", identity: web, token: tokenWeb, csr: pkitest.CSR{DNSNames: []string{web}, Emails: []string{"web@example.org"}}.DER(t), code: codes.FailedPrecondition, reason: metrics.ReasonCSRNames},
		{name: "otherName SAN", identity: web, token: tokenWeb, csr: pkitest.CSR{ExtraExtensions: []pkix.Extension{sanExtension(t,
			asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 2, Bytes: []byte(web)},
			asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: []byte{0x06, 0x01, 0x2a, 0xa0, 0x03, 0x0c, 0x01, 0x78}},
		)}}.DER(t), code: codes.FailedPrecondition, reason: metrics.ReasonCSRNames},
		{name: "CN mismatch", identity: web, token: tokenWeb, csr: pkitest.CSR{CommonName: "system:masters", DNSNames: []string{web}}.DER(t), code: codes.FailedPrecondition, reason: metrics.ReasonCSRNames},
		{name: "token not a JWT", identity: web, token: "not a token", csr: goodCSR, code: codes.InvalidArgument, reason: metrics.ReasonMalformedToken},
		{name: "token malformed per the reviewer", identity: web, token: tokenMalformed, csr: goodCSR, code: codes.InvalidArgument, reason: metrics.ReasonMalformedToken},
		{name: "token not authenticated", identity: web, token: "eyJ.unknown.sig", csr: goodCSR, code: codes.Unauthenticated, reason: metrics.ReasonUnauthenticated},
		{name: "token rejected", identity: web, token: tokenRejected, csr: goodCSR, code: codes.Unauthenticated, reason: metrics.ReasonUnauthenticated},
		{name: "token of a user, not a ServiceAccount", identity: web, token: tokenNotSA, csr: goodCSR, code: codes.FailedPrecondition, reason: metrics.ReasonIdentityDenied},
		{name: "token with names that are not labels", identity: web, token: tokenWrongLabel, csr: goodCSR, code: codes.FailedPrecondition, reason: metrics.ReasonIdentityDenied},
		{name: "token review unavailable", identity: web, token: tokenReviewDown, csr: goodCSR, code: codes.Unavailable, reason: metrics.ReasonTokenReview},
		{name: "token review unexpected error", identity: web, token: tokenUnknownErr, csr: goodCSR, code: codes.Unavailable, reason: metrics.ReasonTokenReview},
		{name: "name of another ServiceAccount", identity: web, token: tokenOtherSA, csr: goodCSR, code: codes.FailedPrecondition, reason: metrics.ReasonIdentityDenied, contains: "default/other"},
		{name: "name of the same ServiceAccount in another namespace", identity: name("web", "prod"), token: tokenWeb,
			csr: pkitest.CSR{DNSNames: []string{name("web", "prod")}}.DER(t), code: codes.FailedPrecondition, reason: metrics.ReasonIdentityDenied},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.fixture)
			if tc.expire {
				*f.clock = f.issuer.Cert.NotAfter.Add(time.Second)
			}
			resp, err := f.svc.Certify(context.Background(), &identityv1.CertifyRequest{
				Identity: tc.identity, Token: []byte(tc.token), CertificateSigningRequest: tc.csr,
			})
			if resp != nil {
				t.Fatalf("got a certificate, want %s", tc.code)
			}
			st, _ := status.FromError(err)
			if st.Code() != tc.code {
				t.Fatalf("code %s (%v), want %s", st.Code(), err, tc.code)
			}
			if !strings.Contains(st.Message(), tc.contains) {
				t.Errorf("message %q does not mention %q", st.Message(), tc.contains)
			}
			if got := testutil.ToFloat64(f.metrics.Rejected.WithLabelValues(tc.reason)); got != 1 {
				t.Errorf("rejected{reason=%q} = %v, want 1", tc.reason, got)
			}
			if got := testutil.ToFloat64(f.metrics.Issued); got != 0 {
				t.Errorf("issued = %v, want 0", got)
			}
			// Anything refused before the token check must not reach the API.
			if tc.reason != metrics.ReasonTokenReview && tc.reason != metrics.ReasonUnauthenticated &&
				tc.reason != metrics.ReasonIdentityDenied && tc.token != tokenMalformed && f.reviewer.calls != 0 {
				t.Errorf("the token was reviewed %d times for a request refused before", f.reviewer.calls)
			}
		})
	}
}

func TestCertifyIssues(t *testing.T) {
	web := name("web", "default")
	cases := []struct {
		name    string
		fixture fixtureOptions
		// clamp: the issuer expires before the leaf would.
		clamp bool
		csr   pkitest.CSR
	}{
		{name: "CSR with empty common name", csr: pkitest.CSR{DNSNames: []string{web}}},
		{name: "CSR with common name equal to the identity", csr: pkitest.CSR{CommonName: web, DNSNames: []string{web}}},
		{name: "issuer under an intermediate", fixture: fixtureOptions{intermediate: true}, csr: pkitest.CSR{DNSNames: []string{web}}},
		{name: "issuer under the second of two anchors", fixture: fixtureOptions{secondAnchor: true}, csr: pkitest.CSR{DNSNames: []string{web}}},
		{name: "leaf never outlives the issuer", fixture: fixtureOptions{issuerNotAfter: time.Now().Add(time.Hour).Truncate(time.Second)}, clamp: true, csr: pkitest.CSR{DNSNames: []string{web}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.fixture)
			key := pkitest.ECKey(t)
			tc.csr.Key = key
			resp, err := f.svc.Certify(context.Background(), &identityv1.CertifyRequest{
				Identity: web, Token: []byte(tokenWeb), CertificateSigningRequest: tc.csr.DER(t),
			})
			if err != nil {
				t.Fatal(err)
			}
			leaf, err := x509.ParseCertificate(resp.GetLeafCertificate())
			if err != nil {
				t.Fatal(err)
			}
			if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != web || len(leaf.IPAddresses)+len(leaf.URIs)+len(leaf.EmailAddresses) != 0 {
				t.Errorf("SANs: DNS %q IP %v URI %v e-mail %q, want only DNS %q", leaf.DNSNames, leaf.IPAddresses, leaf.URIs, leaf.EmailAddresses, web)
			}
			if !leaf.PublicKey.(*ecdsa.PublicKey).Equal(&key.PublicKey) {
				t.Error("the leaf does not carry the CSR's key")
			}
			if leaf.PublicKeyAlgorithm != x509.ECDSA || leaf.SignatureAlgorithm != x509.ECDSAWithSHA256 {
				t.Errorf("algorithms %s / %s", leaf.PublicKeyAlgorithm, leaf.SignatureAlgorithm)
			}
			if len(leaf.ExtKeyUsage) != 2 || leaf.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth || leaf.ExtKeyUsage[1] != x509.ExtKeyUsageClientAuth {
				t.Errorf("EKUs %v, want serverAuth, clientAuth", leaf.ExtKeyUsage)
			}
			if leaf.IsCA || leaf.KeyUsage != x509.KeyUsageDigitalSignature {
				t.Errorf("IsCA %v, KeyUsage %v", leaf.IsCA, leaf.KeyUsage)
			}
			if want := f.now.Add(-skew); !leaf.NotBefore.Equal(want) {
				t.Errorf("NotBefore %s, want now - skew = %s", leaf.NotBefore, want)
			}
			wantNotAfter := f.now.Add(lifetime)
			if tc.clamp {
				wantNotAfter = f.issuer.Cert.NotAfter
			}
			if !leaf.NotAfter.Equal(wantNotAfter) {
				t.Errorf("NotAfter %s, want %s", leaf.NotAfter, wantNotAfter)
			}
			if leaf.NotAfter.After(f.issuer.Cert.NotAfter) {
				t.Errorf("the leaf (%s) outlives the issuer (%s)", leaf.NotAfter, f.issuer.Cert.NotAfter)
			}
			if !resp.GetValidUntil().AsTime().Equal(leaf.NotAfter) {
				t.Errorf("valid_until %s, want the leaf's NotAfter %s", resp.GetValidUntil().AsTime(), leaf.NotAfter)
			}
			// The chain: issuer first, up to but not including an anchor.
			chain := resp.GetIntermediateCertificates()
			wantLen := 1
			if tc.fixture.intermediate {
				wantLen = 2
			}
			if len(chain) != wantLen || string(chain[0]) != string(f.issuer.Cert.Raw) {
				t.Fatalf("%d intermediates, want %d starting with the issuer", len(chain), wantLen)
			}
			inter := x509.NewCertPool()
			for _, der := range chain {
				c, err := x509.ParseCertificate(der)
				if err != nil {
					t.Fatal(err)
				}
				for _, a := range f.anchors.Certificates() {
					if c.Equal(a) {
						t.Error("the chain includes a trust anchor")
					}
				}
				inter.AddCert(c)
			}
			for _, eku := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
				if _, err := leaf.Verify(x509.VerifyOptions{
					DNSName: web, Roots: f.anchors.Pool(), Intermediates: inter, CurrentTime: f.now, KeyUsages: []x509.ExtKeyUsage{eku},
				}); err != nil {
					t.Errorf("the leaf does not verify to the anchors for %v: %v", eku, err)
				}
			}
			if got := testutil.ToFloat64(f.metrics.Issued); got != 1 {
				t.Errorf("issued = %v, want 1", got)
			}
			if n := testutil.CollectAndCount(f.metrics.Duration, "identity_certify_duration_seconds"); n != 2 {
				t.Errorf("%d duration series, want 2", n)
			}
		})
	}
}

func TestCertifySerialsDiffer(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	web := name("web", "default")
	seen := map[string]bool{}
	for range 3 {
		resp, err := f.svc.Certify(context.Background(), &identityv1.CertifyRequest{
			Identity: web, Token: []byte(tokenWeb), CertificateSigningRequest: pkitest.CSR{DNSNames: []string{web}}.DER(t),
		})
		if err != nil {
			t.Fatal(err)
		}
		leaf, _ := x509.ParseCertificate(resp.GetLeafCertificate())
		if seen[leaf.SerialNumber.String()] {
			t.Fatalf("serial %s issued twice", leaf.SerialNumber)
		}
		seen[leaf.SerialNumber.String()] = true
	}
}

func TestCertifyConcurrencyLimit(t *testing.T) {
	f := newFixture(t, fixtureOptions{maxConcurrent: 2})
	web := name("web", "default")
	req := &identityv1.CertifyRequest{Identity: web, Token: []byte(tokenBlock), CertificateSigningRequest: pkitest.CSR{DNSNames: []string{web}}.DER(t)}
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for range 2 {
		wg.Go(func() {
			_, err := f.svc.Certify(context.Background(), req)
			errs <- err
		})
	}
	// Wait until both calls hold a slot (they block in the reviewer).
	<-f.reviewer.entered
	<-f.reviewer.entered
	_, err := f.svc.Certify(context.Background(), req)
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("third call: %v, want ResourceExhausted", err)
	}
	close(f.reviewer.block)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("blocked call: %v", err)
		}
	}
	if got := testutil.ToFloat64(f.metrics.Rejected.WithLabelValues(metrics.ReasonOverloaded)); got != 1 {
		t.Errorf("rejected{overloaded} = %v", got)
	}
	// The slots are free again.
	req.Token = []byte(tokenWeb)
	if _, err := f.svc.Certify(context.Background(), req); err != nil {
		t.Errorf("after the blocked calls: %v", err)
	}
}

func TestCertifyCancelledReview(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	web := name("web", "default")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := f.svc.Certify(ctx, &identityv1.CertifyRequest{Identity: web, Token: []byte(tokenBlock), CertificateSigningRequest: pkitest.CSR{DNSNames: []string{web}}.DER(t)})
	if status.Code(err) != codes.Canceled {
		t.Fatalf("%v, want Canceled", err)
	}
}
