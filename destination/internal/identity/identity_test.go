package identity

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
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

	identityv1 "github.com/linkerd-go/linkerd-go/api/linkerd/identity/v1"
	"github.com/linkerd-go/linkerd-go/component/identityclient"
	"github.com/linkerd-go/linkerd-go/destination/internal/identitytest"
	"github.com/linkerd-go/linkerd-go/tools/testkit/clocktest"
	"github.com/linkerd-go/linkerd-go/tools/testkit/pkitest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	ourName      = identityv1.Name{ServiceAccount: "linkerd-destination", Namespace: "linkerd", ControlPlaneNamespace: "linkerd", TrustDomain: "cluster.local"}
	identityName = identityv1.Name{ServiceAccount: "linkerd-identity", Namespace: "linkerd", ControlPlaneNamespace: "linkerd", TrustDomain: "cluster.local"}
)

// fakeIdentity signs CSRs with an issuer under the root, and reports each
// call on calls.
type fakeIdentity struct {
	identityv1.UnimplementedIdentityServiceServer
	t        *testing.T
	issuer   *pkitest.CA
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
	if fail != nil {
		f.calls <- status.Code(fail).String()
		return nil, fail
	}
	rsp, err := identitytest.Certify(f.t, f.issuer, req, f.lifetime)
	if err != nil {
		f.calls <- codes.InvalidArgument.String()
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	f.calls <- "ok"
	return rsp, nil
}

type fixture struct {
	root   *pkitest.CA
	fake   *fakeIdentity
	client *Client
	clk    *clocktest.Clock
	reg    *prometheus.Registry
	token  string
	gate   *gate // with startGated
}

// gate is a listener in front of the identity server. Closed, it accepts
// each connection and resets it at once (nothing serves the port); open,
// it hands connections to the server.
type gate struct {
	net.Listener
	open    atomic.Bool
	refused chan struct{} // one per connection reset while closed
}

func (g *gate) Accept() (net.Conn, error) {
	for {
		c, err := g.Listener.Accept()
		if err != nil || g.open.Load() {
			return c, err
		}
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		_ = c.Close()
		select {
		case g.refused <- struct{}{}:
		default:
		}
	}
}

// start serves a fake identity service over TLS on loopback, dials it as
// destination does, and runs a Client on a fake clock until the test ends.
func start(t *testing.T, lifetime time.Duration, signer func(root *pkitest.CA) *pkitest.CA) *fixture {
	t.Helper()
	return startServer(t, lifetime, signer, false)
}

// startGated is start with the server behind a closed gate.
func startGated(t *testing.T) *fixture {
	t.Helper()
	return startServer(t, time.Hour, nil, true)
}

func startServer(t *testing.T, lifetime time.Duration, signer func(root *pkitest.CA) *pkitest.CA, gated bool) *fixture {
	t.Helper()
	root := pkitest.NewRoot(t, "root", pkitest.Options{})
	issuer := pkitest.NewIssuer(t, "issuer", root, pkitest.Options{})
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
	serverCert := tls.Certificate{Certificate: [][]byte{root.Issue(t, &serverKey.PublicKey, identityName.String(), time.Hour)}, PrivateKey: serverKey}
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{serverCert}})))
	identityv1.RegisterIdentityServiceServer(srv, f.fake)
	var lis net.Listener
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if gated {
		f.gate = &gate{Listener: lis, refused: make(chan struct{}, 64)}
		lis = f.gate
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(lis)
	}()

	anchors := x509.NewCertPool()
	anchors.AddCert(root.Cert)
	conn, err := identityclient.Dial(lis.Addr().String(), identityName.String(), func() *x509.CertPool { return anchors })
	if err != nil {
		t.Fatal(err)
	}
	f.client, err = New(testr.New(t), Config{Name: ourName, TrustAnchors: anchors, TokenFile: f.token}, identityv1.NewIdentityServiceClient(conn), f.reg)
	if err != nil {
		t.Fatal(err)
	}
	f.clk = clocktest.New(time.Now())
	f.client.clock = f.clk
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

// hangGuard turns a deadlock into a failure with a message; no outcome
// depends on it.
const hangGuard = 2 * time.Minute

func (f *fixture) nextCall(t *testing.T) string {
	t.Helper()
	select {
	case c := <-f.fake.calls:
		return c
	case <-time.After(hangGuard):
		t.Fatal("no Certify call")
	}
	return ""
}

// nextTimer waits until the client schedules its next attempt: the
// previous one is then complete (certificate held, metrics updated).
func (f *fixture) nextTimer(t *testing.T) *clocktest.Timer {
	t.Helper()
	return f.clk.Next(t)
}

func TestObtainsAndRenews(t *testing.T) {
	// An hour-long certificate, renewed when the test fires the renewal
	// timer: nothing here races with the certificate's whole-second expiry.
	f := start(t, time.Hour, nil)
	if got := f.nextCall(t); got != "ok" {
		t.Fatalf("first call %s", got)
	}
	tm := f.nextTimer(t)
	first := f.client.Certificate()
	if first == nil || !f.client.Ready() {
		t.Fatal("no certificate held after the first call")
	}
	// 70% of what is left of the hour: the whole-second NotAfter and the
	// moments between the clock's start and the issuance move it by less
	// than a second.
	if lo, hi := 41*time.Minute+58*time.Second, 42*time.Minute+time.Second; tm.D <= lo || tm.D >= hi {
		t.Errorf("renewal scheduled in %v, want 70%% of the remaining hour, in (%v, %v)", tm.D, lo, hi)
	}
	if want := identityclient.RefreshDelay(f.clk.Now(), first.Leaf.NotAfter, identityclient.DefaultMinRefresh, identityclient.DefaultMaxRefresh); tm.D != want {
		t.Errorf("renewal scheduled in %v, want %v", tm.D, want)
	}
	if got := testutil.ToFloat64(f.client.expiry); got != float64(first.Leaf.NotAfter.Unix()) {
		t.Errorf("expiry gauge %v, want %v", got, first.Leaf.NotAfter.Unix())
	}

	tm.Fire()
	if got := f.nextCall(t); got != "ok" {
		t.Fatalf("renewal %s", got)
	}
	f.nextTimer(t)
	cert := f.client.Certificate()
	if cert == nil || !f.client.Ready() {
		t.Fatal("no certificate held")
	}
	if cert == first || cert.Leaf.SerialNumber.Cmp(first.Leaf.SerialNumber) == 0 {
		t.Fatal("renewal kept the first certificate")
	}
	if got := cert.Leaf.DNSNames; len(got) != 1 || got[0] != ourName.String() {
		t.Fatalf("leaf names %v", got)
	}
	if len(cert.Certificate) != 2 {
		t.Fatalf("chain of %d certificates, want leaf and issuer", len(cert.Certificate))
	}

	// A TLS client that trusts the root accepts the server configuration.
	pool := x509.NewCertPool()
	pool.AddCert(f.root.Cert)
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
	// anchors: the certificate is refused and retried, backing off.
	f := start(t, time.Hour, func(*pkitest.CA) *pkitest.CA { return pkitest.NewRoot(t, "rogue", pkitest.Options{}) })
	for i, want := range []time.Duration{time.Second, 2 * time.Second} {
		f.nextCall(t)
		tm := f.nextTimer(t)
		if f.client.Ready() {
			t.Fatal("holding a certificate that does not chain to the anchors")
		}
		if tm.D != want {
			t.Errorf("retry %d in %v, want %v", i+1, tm.D, want)
		}
		tm.Fire()
	}
	f.nextCall(t)
	f.nextTimer(t)
	if got := testutil.ToFloat64(f.client.fails); got != 3 {
		t.Fatalf("failures %v, want 3", got)
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
	tm := f.nextTimer(t)
	if f.client.Ready() {
		t.Fatal("ready after a refused call")
	}
	if err := os.WriteFile(f.token, []byte("rotated"), 0o600); err != nil {
		t.Fatal(err)
	}
	tm.Fire()
	if got := f.nextCall(t); got != "ok" {
		t.Fatalf("call after the token was fixed: %s", got)
	}
	f.nextTimer(t)
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	if err := f.client.WaitReady(ctx); err != nil {
		t.Fatal("no certificate after the token was fixed")
	}
}

// destination started while identity is down: every failed attempt is a new
// connection, and the first attempt after identity serves again gets the
// certificate, whatever backoff gRPC would keep on a long-lived channel.
func TestCertifiesOnTheFirstAttemptAfterIdentityReturns(t *testing.T) {
	f := startGated(t)
	const down = 5
	for i := 1; i <= down; i++ {
		tm := f.nextTimer(t)
		select {
		case <-f.gate.refused:
		case <-time.After(hangGuard):
			t.Fatal("no connection reached the identity service")
		}
		if f.client.Ready() {
			t.Fatal("ready while identity is down")
		}
		if i == down {
			f.gate.open.Store(true)
		}
		tm.Fire()
	}
	if got := f.nextCall(t); got != "ok" {
		t.Fatalf("first call after identity returned: %s", got)
	}
	f.nextTimer(t)
	if !f.client.Ready() {
		t.Fatal("no certificate after the first attempt once identity returned")
	}
	if got := testutil.ToFloat64(f.client.fails); got != down {
		t.Errorf("failures %v, want %d", got, down)
	}
}
