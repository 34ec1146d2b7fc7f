package identity

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	identityv1 "github.com/linkerd-go/linkerd-go/api/linkerd/identity/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	ourName      = identityv1.Name{ServiceAccount: "linkerd-destination", Namespace: "linkerd", ControlPlaneNamespace: "linkerd", TrustDomain: "cluster.local"}
	identityName = identityv1.Name{ServiceAccount: "linkerd-identity", Namespace: "linkerd", ControlPlaneNamespace: "linkerd", TrustDomain: "cluster.local"}
)

type ca struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	der  []byte
}

var serial int64

func newCA(t *testing.T, parent *ca, cn string) *ca {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	signer, signerKey := tmpl, key
	if parent != nil {
		signer, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &ca{cert: cert, key: key, der: der}
}

func (c *ca) issue(t *testing.T, pub any, name string, lifetime time.Duration) []byte {
	t.Helper()
	serial++
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(serial), DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(lifetime),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}, c.cert, pub, c.key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// fakeIdentity signs CSRs with an issuer under the root, and reports each
// call on calls.
type fakeIdentity struct {
	identityv1.UnimplementedIdentityServiceServer
	t        *testing.T
	issuer   *ca
	lifetime time.Duration
	token    string
	calls    chan string // "ok" or the error code
	mu       sync.Mutex
	fail     error
}

func (f *fakeIdentity) Certify(_ context.Context, req *identityv1.CertifyRequest) (*identityv1.CertifyResponse, error) {
	f.mu.Lock()
	fail, token := f.fail, f.token
	f.mu.Unlock()
	if fail == nil && string(req.GetToken()) != token {
		fail = status.Error(codes.Unauthenticated, "bad token")
	}
	csr, err := x509.ParseCertificateRequest(req.GetCertificateSigningRequest())
	if fail == nil && (err != nil || csr.CheckSignature() != nil || len(csr.DNSNames) != 1 || csr.DNSNames[0] != req.GetIdentity()) {
		fail = status.Error(codes.InvalidArgument, "bad CSR")
	}
	if fail != nil {
		f.calls <- status.Code(fail).String()
		return nil, fail
	}
	leaf := f.issuer.issue(f.t, csr.PublicKey, req.GetIdentity(), f.lifetime)
	cert, _ := x509.ParseCertificate(leaf)
	f.calls <- "ok"
	return &identityv1.CertifyResponse{LeafCertificate: leaf, IntermediateCertificates: [][]byte{f.issuer.der}, ValidUntil: timestamppb.New(cert.NotAfter)}, nil
}

type fixture struct {
	root   *ca
	fake   *fakeIdentity
	client *Client
	reg    *prometheus.Registry
	token  string
}

// start serves a fake identity service over TLS on loopback, dials it as
// destination does, and runs a Client until the test ends.
func start(t *testing.T, lifetime time.Duration, signer func(root *ca) *ca) *fixture {
	t.Helper()
	root := newCA(t, nil, "root")
	issuer := newCA(t, root, "issuer")
	if signer != nil {
		issuer = signer(root)
	}
	f := &fixture{root: root, reg: prometheus.NewRegistry(), token: filepath.Join(t.TempDir(), "token")}
	if err := os.WriteFile(f.token, []byte("the-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f.fake = &fakeIdentity{t: t, issuer: issuer, lifetime: lifetime, token: "the-token", calls: make(chan string, 100)}

	// The identity service's own certificate, from the root.
	serverKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serverCert := tls.Certificate{Certificate: [][]byte{root.issue(t, &serverKey.PublicKey, identityName.String(), time.Hour)}, PrivateKey: serverKey}
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{serverCert}})))
	identityv1.RegisterIdentityServiceServer(srv, f.fake)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(lis)
	}()

	anchors := x509.NewCertPool()
	anchors.AddCert(root.cert)
	conn, err := Dial(lis.Addr().String(), identityName.String(), anchors)
	if err != nil {
		t.Fatal(err)
	}
	f.client, err = New(testr.New(t), Config{Name: ourName, TrustAnchors: anchors, TokenFile: f.token, MinRefresh: time.Millisecond, MaxRefresh: time.Hour}, identityv1.NewIdentityServiceClient(conn), f.reg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = f.client.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		_ = conn.Close()
		srv.Stop()
		<-served
	})
	return f
}

func (f *fixture) nextCall(t *testing.T) string {
	t.Helper()
	select {
	case c := <-f.fake.calls:
		return c
	case <-time.After(20 * time.Second):
		t.Fatal("no Certify call")
	}
	return ""
}

func TestObtainsAndRenews(t *testing.T) {
	// A short lifetime: renewal comes after MinRefresh.
	f := start(t, time.Second, nil)
	if got := f.nextCall(t); got != "ok" {
		t.Fatalf("first call %s", got)
	}
	if got := f.nextCall(t); got != "ok" {
		t.Fatalf("renewal %s", got)
	}
	cert := f.client.Certificate()
	if cert == nil || !f.client.Ready() {
		t.Fatal("no certificate held")
	}
	if got := cert.Leaf.DNSNames; len(got) != 1 || got[0] != ourName.String() {
		t.Fatalf("leaf names %v", got)
	}
	if len(cert.Certificate) != 2 {
		t.Fatalf("chain of %d certificates, want leaf and issuer", len(cert.Certificate))
	}

	// A TLS client that trusts the root accepts the server configuration.
	pool := x509.NewCertPool()
	pool.AddCert(f.root.cert)
	srvConf := f.client.ServerTLSConfig()
	got, err := srvConf.GetCertificate(nil)
	if err != nil || got.Leaf == nil {
		t.Fatalf("GetCertificate: %v", err)
	}
	inter := x509.NewCertPool()
	for _, der := range got.Certificate[1:] {
		c, _ := x509.ParseCertificate(der)
		inter.AddCert(c)
	}
	if _, err := got.Leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, DNSName: ourName.String()}); err != nil {
		t.Fatal(err)
	}
}

func TestRefusesUntrustedChain(t *testing.T) {
	// The identity service signs with an issuer that does not chain to the
	// anchors: the certificate is refused and retried.
	f := start(t, time.Hour, func(*ca) *ca { return newCA(t, nil, "rogue") })
	f.nextCall(t)
	f.nextCall(t)
	if f.client.Ready() {
		t.Fatal("holding a certificate that does not chain to the anchors")
	}
	if got := testutil.ToFloat64(f.client.fails); got < 1 {
		t.Fatalf("failures %v", got)
	}
}

func TestRetriesAfterErrorsAndReadsTheTokenEachTime(t *testing.T) {
	f := start(t, time.Hour, nil)
	// The first attempt fails (wrong token); the token file is then fixed.
	f.fake.mu.Lock()
	f.fake.token = "rotated"
	f.fake.mu.Unlock()
	if got := f.nextCall(t); got != codes.Unauthenticated.String() {
		t.Fatalf("first call %s, want Unauthenticated", got)
	}
	if err := os.WriteFile(f.token, []byte("rotated"), 0o600); err != nil {
		t.Fatal(err)
	}
	for f.nextCall(t) != "ok" {
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := f.client.WaitReady(ctx); err != nil {
		t.Fatal("no certificate after the token was fixed")
	}
}
