package certify

import (
	"context"
	"testing"

	identityv1 "github.com/linkerd-go/linkerd-go/api/linkerd/identity/v1"
	"github.com/linkerd-go/linkerd-go/tools/testkit/pkitest"
)

// BenchmarkCertifyLocal measures Certify without the network and without the
// API server (the token review is a map lookup): request checks, CSR parsing
// and signature check, and signing.
func BenchmarkCertifyLocal(b *testing.B) {
	f := newFixture(b, fixtureOptions{maxConcurrent: 1 << 10})
	web := name("web", "default")
	req := &identityv1.CertifyRequest{Identity: web, Token: []byte(tokenWeb), CertificateSigningRequest: pkitest.CSR{DNSNames: []string{web}}.DER(b)}
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := f.svc.Certify(ctx, req); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
