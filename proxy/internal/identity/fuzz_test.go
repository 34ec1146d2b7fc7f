package identity

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	identityv1 "github.com/linkerd-go/linkerd-go/api/linkerd/identity/v1"
	"github.com/linkerd-go/linkerd-go/component/identityclient"
)

// fuzzKey is a fixed key, so that the committed seed corpus holds leaf
// certificates for it and the fuzzer reaches past the key check.
func fuzzKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	d := sha256.Sum256([]byte("linkerd-go proxy identity fuzz key"))
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d[:])
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// FuzzCertificateFromResponse feeds arbitrary Certify replies (they come
// from the network) to the conversion into a certificate: errors, never
// panics, and a returned certificate is consistent with the reply.
func FuzzCertificateFromResponse(f *testing.F) {
	key := fuzzKey(f)
	p := newPKI(f)
	leaf := p.issuer.Issue(f, &key.PublicKey, localName, time.Hour)
	f.Add(leaf, p.issuer.Cert.Raw, true, time.Now().Add(time.Hour).Unix(), int32(0), true)
	f.Add(leaf, []byte{}, false, int64(0), int32(0), false)
	f.Add(leaf[:len(leaf)/2], p.issuer.Cert.Raw, true, int64(0), int32(-1), true)

	f.Fuzz(func(t *testing.T, leafDER, interDER []byte, withInter bool, secs int64, nanos int32, withValidUntil bool) {
		resp := &identityv1.CertifyResponse{LeafCertificate: leafDER}
		if withInter {
			resp.IntermediateCertificates = [][]byte{interDER}
		}
		if withValidUntil {
			resp.ValidUntil = &timestamppb.Timestamp{Seconds: secs, Nanos: nanos}
		}
		cert, expiry, err := identityclient.CertificateFromResponse(resp, key)
		if err != nil {
			if cert != nil {
				t.Fatal("certificate returned with an error")
			}
			return
		}
		if cert.Leaf == nil || cert.PrivateKey != key || !key.PublicKey.Equal(cert.Leaf.PublicKey) {
			t.Fatal("certificate without its parsed leaf or for another key")
		}
		if want := 1 + len(resp.IntermediateCertificates); len(cert.Certificate) != want {
			t.Fatalf("chain of %d certificates, want %d", len(cert.Certificate), want)
		}
		if expiry.After(cert.Leaf.NotAfter) {
			t.Fatalf("expiry %v after the leaf's NotAfter %v", expiry, cert.Leaf.NotAfter)
		}
		if withValidUntil && expiry.After(resp.ValidUntil.AsTime()) {
			t.Fatalf("expiry %v after valid_until %v", expiry, resp.ValidUntil.AsTime())
		}
	})
}
