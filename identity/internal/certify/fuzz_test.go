package certify

import (
	"context"
	"crypto/x509"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	identityv1 "github.com/linkerd-go/linkerd-go/api/linkerd/identity/v1"
	"github.com/linkerd-go/linkerd-go/tools/testkit/pkitest"
)

var writeCorpus = flag.Bool("write-corpus", false, "rewrite the seed corpus of FuzzCertify in testdata/fuzz")

// TestWriteFuzzCorpus rewrites the committed seed corpus when run with
// -write-corpus; otherwise it does nothing.
func TestWriteFuzzCorpus(t *testing.T) {
	if !*writeCorpus {
		return
	}
	web := name("web", "default")
	good := pkitest.CSR{DNSNames: []string{web}}.DER(t)
	seeds := []struct {
		name            string
		identity, token string
		csr             []byte
	}{
		{"valid", web, tokenWeb, good},
		{"valid-cn", web, tokenWeb, pkitest.CSR{CommonName: web, DNSNames: []string{web}}.DER(t)},
		{"other-sa", web, tokenOtherSA, good},
		{"not-sa", web, tokenNotSA, good},
		{"unauthenticated", web, "eyJ.x.y", good},
		{"review-down", web, tokenReviewDown, good},
		{"wrong-san", web, tokenWeb, pkitest.CSR{DNSNames: []string{name("db", "default")}}.DER(t)},
		{"extra-san", web, tokenWeb, pkitest.CSR{DNSNames: []string{web, "x.example"}}.DER(t)},
		{"ip-san", web, tokenWeb, pkitest.CSR{DNSNames: []string{web}, IPAddresses: []net.IP{net.IPv4(10, 1, 2, 3)}}.DER(t)},
		{"cn-mismatch", web, tokenWeb, pkitest.CSR{CommonName: "admin", DNSNames: []string{web}}.DER(t)},
		{"p384", web, tokenWeb, pkitest.CSR{Key: pkitest.P384Key(t), DNSNames: []string{web}}.DER(t)},
		{"garbage", web, tokenWeb, []byte("\x30\x03\x02\x01\x00")},
		{"empty", "", "", nil},
		{"foreign-domain", "web.default.serviceaccount.identity.linkerd.example.org", tokenWeb, good},
		{"bad-token", web, "..", good},
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzCertify")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, s := range seeds {
		body := fmt.Sprintf("go test fuzz v1\nstring(%s)\n[]byte(%s)\n[]byte(%s)\n",
			strconv.Quote(s.identity), strconv.Quote(s.token), strconv.Quote(string(s.csr)))
		if err := os.WriteFile(filepath.Join(dir, s.name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// FuzzCertify feeds arbitrary requests to Certify: it must never panic, must
// answer with one of the documented status codes, and may issue a
// certificate only for the identity the token entitles the caller to, with
// that identity as the only name.
func FuzzCertify(f *testing.F) {
	fx := newFixture(f, fixtureOptions{maxConcurrent: 1 << 20})
	close(fx.reviewer.block)
	allowed := map[codes.Code]bool{
		codes.InvalidArgument: true, codes.FailedPrecondition: true, codes.Unauthenticated: true,
		codes.Unavailable: true, codes.ResourceExhausted: true,
	}
	f.Fuzz(func(t *testing.T, identity string, token, csr []byte) {
		resp, err := fx.svc.Certify(context.Background(), &identityv1.CertifyRequest{
			Identity: identity, Token: token, CertificateSigningRequest: csr,
		})
		if err != nil {
			if code := status.Code(err); !allowed[code] {
				t.Fatalf("code %s: %v", code, err)
			}
			if resp != nil {
				t.Fatal("a response with an error")
			}
			return
		}
		if (string(token) != tokenWeb && string(token) != tokenBlock) || identity != name("web", "default") {
			t.Fatalf("issued %q for token %q", identity, token)
		}
		leaf, err := x509.ParseCertificate(resp.GetLeafCertificate())
		if err != nil {
			t.Fatal(err)
		}
		if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != identity || len(leaf.IPAddresses)+len(leaf.URIs)+len(leaf.EmailAddresses) != 0 {
			t.Fatalf("leaf names %q %v %v %q", leaf.DNSNames, leaf.IPAddresses, leaf.URIs, leaf.EmailAddresses)
		}
	})
}
