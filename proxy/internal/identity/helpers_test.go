package identity

import (
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/testr"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/types/known/timestamppb"

	identityv1 "github.com/linkerd-go/linkerd-go/api/linkerd/identity/v1"
	"github.com/linkerd-go/linkerd-go/component/identityclient"
	"github.com/linkerd-go/linkerd-go/proxy/internal/meshtls"
	"github.com/linkerd-go/linkerd-go/tools/testkit/clocktest"
	"github.com/linkerd-go/linkerd-go/tools/testkit/pkitest"
)

const (
	localName    = "web.emojivoto.serviceaccount.identity.linkerd.cluster.local"
	identityName = "linkerd-identity.linkerd.serviceaccount.identity.linkerd.cluster.local"
	// hangGuard only turns a deadlock into a failure with a message; no
	// test outcome depends on timing.
	hangGuard = 2 * time.Minute
)

func newKey(t testing.TB) *ecdsa.PrivateKey { return pkitest.ECKey(t) }

// newCA makes a CA from the test kit's PKI, self-signed when parent is nil.
func newCA(t testing.TB, name string, parent *pkitest.CA) *pkitest.CA {
	t.Helper()
	if parent == nil {
		return pkitest.NewRoot(t, name, pkitest.Options{})
	}
	return pkitest.NewIssuer(t, name, parent, pkitest.Options{})
}

// pki is the mesh's trust: one anchor and an issuer under it.
type pki struct {
	anchor, issuer *pkitest.CA
}

func newPKI(t testing.TB) *pki {
	root := newCA(t, "root.linkerd.cluster.local", nil)
	return &pki{anchor: root, issuer: newCA(t, "identity.linkerd.cluster.local", root)}
}

// fakeIdentity is an IdentityService whose answers the test sets.
type fakeIdentity struct {
	identityv1.UnimplementedIdentityServiceServer

	mu      sync.Mutex
	respond func(ctx context.Context, req *identityv1.CertifyRequest) (*identityv1.CertifyResponse, error)
	reqs    []*identityv1.CertifyRequest
}

func (f *fakeIdentity) Certify(ctx context.Context, req *identityv1.CertifyRequest) (*identityv1.CertifyResponse, error) {
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	respond := f.respond
	f.mu.Unlock()
	return respond(ctx, req)
}

func (f *fakeIdentity) setRespond(r func(ctx context.Context, req *identityv1.CertifyRequest) (*identityv1.CertifyResponse, error)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.respond = r
}

func (f *fakeIdentity) requests() []*identityv1.CertifyRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*identityv1.CertifyRequest(nil), f.reqs...)
}

// signCSR answers like the real identity service: a leaf for the CSR's
// key, named as the CSR names it, signed by issuer and carrying the chain.
func signCSR(t testing.TB, issuer *pkitest.CA, lifetime time.Duration, name string) func(context.Context, *identityv1.CertifyRequest) (*identityv1.CertifyResponse, error) {
	return func(_ context.Context, req *identityv1.CertifyRequest) (*identityv1.CertifyResponse, error) {
		csr, err := x509.ParseCertificateRequest(req.GetCertificateSigningRequest())
		if err != nil {
			return nil, err
		}
		if err := csr.CheckSignature(); err != nil {
			return nil, err
		}
		if name == "" {
			name = csr.DNSNames[0]
		}
		leaf := issuer.Issue(t, csr.PublicKey, name, lifetime)
		cert, err := x509.ParseCertificate(leaf)
		if err != nil {
			return nil, err
		}
		return &identityv1.CertifyResponse{
			LeafCertificate:          leaf,
			IntermediateCertificates: [][]byte{issuer.Cert.Raw},
			ValidUntil:               timestamppb.New(cert.NotAfter),
		}, nil
	}
}

// harness runs a Client against a fakeIdentity served over gRPC with TLS
// on loopback.
type harness struct {
	t         *testing.T
	pki       *pki
	fake      *fakeIdentity
	store     *meshtls.Store
	clk       *clocktest.Clock
	reg       *prometheus.Registry
	client    *Client
	tokenPath string
	addr      string // the identity server's
	gate      *gate  // in front of the server, with harnessOpts.gated
	done      chan error
	cancel    context.CancelFunc
}

type harnessOpts struct {
	// dialName is the server name the client expects; identityName if empty.
	dialName string
	// noToken leaves the token file absent.
	noToken bool
	// gated puts the server behind a gate that starts closed (identity
	// down) until the test opens it.
	gated bool
	// log receives the client's log lines; the test log if nil.
	log *recorder
}

// gate is a listener in front of the identity server. Closed, it accepts
// each connection and resets it at once, as a port with nothing behind it
// does; open, it hands connections to the server.
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
			_ = tc.SetLinger(0) // a reset, not an orderly close
		}
		_ = c.Close()
		select {
		case g.refused <- struct{}{}:
		default: // the test counts no further
		}
	}
}

// waitRefused waits for a connection the closed gate reset.
func (g *gate) waitRefused(t *testing.T) {
	t.Helper()
	select {
	case <-g.refused:
	case <-time.After(hangGuard):
		t.Fatal("no connection reached the identity service")
	}
}

// recorder is a logr sink that keeps every line, for tests of what the
// client logs.
type recorder struct {
	mu    sync.Mutex
	lines []logLine
}

type logLine struct {
	msg string
	err error // for error lines
	kv  map[string]any
}

func (r *recorder) logger() logr.Logger { return logr.New(&recordSink{r: r}) }

func (r *recorder) all() []logLine {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]logLine(nil), r.lines...)
}

type recordSink struct {
	r  *recorder
	kv []any
}

func (s *recordSink) Init(logr.RuntimeInfo)  {}
func (s *recordSink) Enabled(level int) bool { return level == 0 }
func (s *recordSink) Info(_ int, msg string, kv ...any) {
	s.add(logLine{msg: msg}, kv)
}
func (s *recordSink) Error(err error, msg string, kv ...any) {
	s.add(logLine{msg: msg, err: err}, kv)
}
func (s *recordSink) WithValues(kv ...any) logr.LogSink {
	return &recordSink{r: s.r, kv: append(append([]any(nil), s.kv...), kv...)}
}
func (s *recordSink) WithName(string) logr.LogSink { return s }

func (s *recordSink) add(l logLine, kv []any) {
	l.kv = map[string]any{}
	all := append(append([]any(nil), s.kv...), kv...)
	for i := 0; i+1 < len(all); i += 2 {
		l.kv[fmt.Sprint(all[i])] = all[i+1]
	}
	s.r.mu.Lock()
	s.r.lines = append(s.r.lines, l)
	s.r.mu.Unlock()
}

func newHarness(t *testing.T, o harnessOpts) *harness {
	t.Helper()
	p := newPKI(t)
	fake := &fakeIdentity{}
	fake.setRespond(signCSR(t, p.issuer, time.Hour, ""))

	// The identity service's own certificate, as it would be issued.
	srvKey := newKey(t)
	srvLeaf := p.issuer.Issue(t, &srvKey.PublicKey, identityName, time.Hour)
	srvTLS := &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{{Certificate: [][]byte{srvLeaf, p.issuer.Cert.Raw}, PrivateKey: srvKey}},
	}
	var lis net.Listener
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	var g *gate
	if o.gated {
		g = &gate{Listener: lis, refused: make(chan struct{}, 64)}
		lis = g
	}
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(srvTLS)))
	identityv1.RegisterIdentityServiceServer(srv, fake)
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(lis)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-served
	})

	store, err := meshtls.NewStore(localName, p.anchor.CertPEM())
	if err != nil {
		t.Fatal(err)
	}
	dialName := o.dialName
	if dialName == "" {
		dialName = identityName
	}
	conn, err := identityclient.Dial(addr, dialName, store.Roots)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })

	tokenPath := filepath.Join(t.TempDir(), "token")
	if !o.noToken {
		writeToken(t, tokenPath, "token-1\n")
	}
	reg := prometheus.NewRegistry()
	log := testr.New(t)
	if o.log != nil {
		log = o.log.logger()
	}
	c, err := New(Config{TokenPath: tokenPath}, store, conn, reg, log)
	if err != nil {
		t.Fatal(err)
	}
	clk := clocktest.New(time.Now())
	c.clock = clk
	c.jitter = func() float64 { return 0 }
	return &harness{t: t, pki: p, fake: fake, store: store, clk: clk, reg: reg, client: c, tokenPath: tokenPath, addr: addr, gate: g}
}

func writeToken(t testing.TB, path, token string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
}

// start runs the client until the test ends.
func (h *harness) start() {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.done = make(chan error, 1)
	go func() { h.done <- h.client.Run(ctx) }()
	h.t.Cleanup(h.stop)
}

// stop cancels Run and waits for it to return nil.
func (h *harness) stop() {
	h.t.Helper()
	h.cancel()
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("Run returned %v, want nil", err)
		}
		h.done <- nil // stop may run twice (explicitly and in Cleanup)
	case <-time.After(hangGuard):
		h.t.Fatal("Run did not return after its context ended")
	}
}

// nextTimer waits for the client to schedule its next attempt: by then the
// previous attempt is complete (certificate installed, metrics updated).
func (h *harness) nextTimer() *clocktest.Timer {
	h.t.Helper()
	return h.clk.Next(h.t)
}
