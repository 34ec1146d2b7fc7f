package identity

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	identityv1 "github.com/linkerd-go/linkerd-go/api/linkerd/identity/v1"
	"github.com/linkerd-go/linkerd-go/component/identityclient"
	"github.com/linkerd-go/linkerd-go/proxy/internal/meshtls"
	"github.com/linkerd-go/linkerd-go/tools/testkit/pkitest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func leafOf(t *testing.T, s *meshtls.Store) *x509.Certificate {
	t.Helper()
	c := s.Certificate()
	if c == nil || c.Leaf == nil {
		t.Fatal("no certificate installed")
	}
	return c.Leaf
}

func (h *harness) checkMetrics(ok, failed float64, refresh time.Duration) {
	h.t.Helper()
	c := h.client.metrics
	if got := testutil.ToFloat64(c.refresh.WithLabelValues("ok")); got != ok {
		h.t.Errorf("identity_cert_refresh_total{result=ok} = %v, want %v", got, ok)
	}
	if got := testutil.ToFloat64(c.refresh.WithLabelValues("error")); got != failed {
		h.t.Errorf("identity_cert_refresh_total{result=error} = %v, want %v", got, failed)
	}
	if got := testutil.ToFloat64(c.refreshIn); got != refresh.Seconds() {
		h.t.Errorf("identity_cert_refresh_seconds = %v, want %v", got, refresh.Seconds())
	}
}

func TestFirstCertificate(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	select {
	case <-h.store.Ready():
		t.Fatal("store ready before the client ran")
	default:
	}
	h.start()
	tm := h.nextTimer()

	select {
	case <-h.store.Ready():
	default:
		t.Fatal("store not ready after the first certificate")
	}
	cert := h.store.Certificate()
	leaf := leafOf(t, h.store)
	if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != localName {
		t.Errorf("leaf names %q", leaf.DNSNames)
	}
	if len(cert.Certificate) != 2 || !bytes.Equal(cert.Certificate[1], h.pki.issuer.Cert.Raw) {
		t.Errorf("chain has %d certificates, want leaf and issuer", len(cert.Certificate))
	}
	if _, ok := cert.PrivateKey.(*ecdsa.PrivateKey); !ok {
		t.Errorf("private key is %T", cert.PrivateKey)
	}

	reqs := h.fake.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d Certify calls, want 1", len(reqs))
	}
	req := reqs[0]
	if req.GetIdentity() != localName {
		t.Errorf("requested identity %q", req.GetIdentity())
	}
	if string(req.GetToken()) != "token-1" {
		t.Errorf("token %q, want the file's content without the newline", req.GetToken())
	}
	csr, err := x509.ParseCertificateRequest(req.GetCertificateSigningRequest())
	if err != nil {
		t.Fatal(err)
	}
	if err := csr.CheckSignature(); err != nil {
		t.Error(err)
	}
	if len(csr.DNSNames) != 1 || csr.DNSNames[0] != localName || len(csr.IPAddresses)+len(csr.URIs)+len(csr.EmailAddresses) != 0 {
		t.Errorf("CSR SANs: DNS %q IP %v URI %v email %q", csr.DNSNames, csr.IPAddresses, csr.URIs, csr.EmailAddresses)
	}
	if cn := csr.Subject.CommonName; cn != "" && cn != localName {
		t.Errorf("CSR CN %q", cn)
	}
	if pub, ok := csr.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("CSR key %T, want ECDSA P-256", csr.PublicKey)
	}

	want := identityclient.RefreshDelay(h.clk.Now(), leaf.NotAfter, identityclient.DefaultMinRefresh, identityclient.DefaultMaxRefresh)
	if tm.D != want {
		t.Errorf("renewal scheduled in %v, want %v", tm.D, want)
	}
	h.checkMetrics(1, 0, want)
	if got := testutil.ToFloat64(h.client.metrics.expiration); got != float64(leaf.NotAfter.Unix()) {
		t.Errorf("identity_cert_expiration_timestamp_seconds = %v, want %v", got, leaf.NotAfter.Unix())
	}
	names, err := testutil.GatherAndCount(h.reg)
	if err != nil || names != 4 {
		t.Errorf("gathered %d series (%v), want 4", names, err)
	}
}

// tlsPair makes a mesh TLS connection from the store to itself (the proxy
// as both client and server) over an in-memory pipe. The server side echoes
// until the client closes.
func tlsPair(t *testing.T, s *meshtls.Store) (client *tls.Conn, serverDone <-chan error) {
	t.Helper()
	a, b := net.Pipe()
	done := make(chan error, 1)
	go func() {
		srv := tls.Server(b, s.ServerConfig(nil))
		defer srv.Close()
		if err := srv.Handshake(); err != nil {
			done <- err
			return
		}
		_, err := io.Copy(srv, srv)
		done <- err
	}()
	c := tls.Client(a, s.ClientConfig(s.LocalName(), nil))
	if err := c.Handshake(); err != nil {
		t.Fatal(err)
	}
	return c, done
}

func echo(t *testing.T, c *tls.Conn, msg string) {
	t.Helper()
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
	if string(buf) != msg {
		t.Fatalf("echoed %q, want %q", buf, msg)
	}
}

func TestRenewalDuringTraffic(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.start()
	tm := h.nextTimer()
	first := h.store.Certificate()

	before, beforeDone := tlsPair(t, h.store)
	echo(t, before, "before")

	writeToken(t, h.tokenPath, "token-2") // the kubelet rotated it
	tm.Fire()
	tm = h.nextTimer()
	second := h.store.Certificate()
	if second == first {
		t.Fatal("renewal kept the first certificate")
	}
	if leafOf(t, h.store).SerialNumber.Cmp(first.Leaf.SerialNumber) == 0 {
		t.Fatal("renewed certificate has the first one's serial")
	}
	if reqs := h.fake.requests(); len(reqs) != 2 || string(reqs[1].GetToken()) != "token-2" {
		t.Errorf("renewal did not read the rotated token")
	}
	want := identityclient.RefreshDelay(h.clk.Now(), second.Leaf.NotAfter, identityclient.DefaultMinRefresh, identityclient.DefaultMaxRefresh)
	if tm.D != want {
		t.Errorf("second renewal in %v, want %v", tm.D, want)
	}
	h.checkMetrics(2, 0, want)

	// A handshake after renewal presents the new certificate...
	after, afterDone := tlsPair(t, h.store)
	if got := after.ConnectionState().PeerCertificates[0]; !got.Equal(second.Leaf) {
		t.Errorf("new connection's server certificate has serial %v, want the renewed %v", got.SerialNumber, second.Leaf.SerialNumber)
	}
	echo(t, after, "after")
	// ...while the connection made before keeps working with the old one.
	if got := before.ConnectionState().PeerCertificates[0]; !got.Equal(first.Leaf) {
		t.Errorf("old connection's server certificate changed")
	}
	echo(t, before, "still there")

	for _, p := range []struct {
		c    *tls.Conn
		done <-chan error
	}{{before, beforeDone}, {after, afterDone}} {
		_ = p.c.Close()
		if err := <-p.done; err != nil {
			t.Errorf("server side: %v", err)
		}
	}
}

func TestBackoffThenSuccess(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	good := signCSR(t, h.pki.issuer, time.Hour, "")
	h.fake.setRespond(func(context.Context, *identityv1.CertifyRequest) (*identityv1.CertifyResponse, error) {
		return nil, status.Error(codes.Unavailable, "no issuer loaded")
	})
	h.start()
	// jitter 0: the full exponential delays, up to the cap of a proxy
	// without a certificate.
	delays := []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 2 * time.Second}
	for i, want := range delays {
		tm := h.nextTimer()
		if tm.D != want {
			t.Errorf("retry %d in %v, want %v", i+1, tm.D, want)
		}
		if h.store.HasCertificate() {
			t.Fatal("certificate installed from a failed attempt")
		}
		h.checkMetrics(0, float64(i+1), want)
		if i == len(delays)-1 {
			h.fake.setRespond(good)
		}
		tm.Fire()
	}
	tm := h.nextTimer()
	<-h.store.Ready()
	want := identityclient.RefreshDelay(h.clk.Now(), leafOf(t, h.store).NotAfter, identityclient.DefaultMinRefresh, identityclient.DefaultMaxRefresh)
	if tm.D != want {
		t.Errorf("after recovering, renewal in %v, want %v", tm.D, want)
	}
	h.checkMetrics(1, float64(len(delays)), want)

	// The backoff starts over after a success; holding a valid
	// certificate, it grows up to BackoffMax.
	h.fake.setRespond(func(context.Context, *identityv1.CertifyRequest) (*identityv1.CertifyResponse, error) {
		return nil, status.Error(codes.Unavailable, "gone")
	})
	for i, want := range []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second} {
		tm.Fire()
		if tm = h.nextTimer(); tm.D != want {
			t.Errorf("retry %d after a success in %v, want %v", i+1, tm.D, want)
		}
	}
}

func TestRefusedReplies(t *testing.T) {
	cases := []struct {
		name    string
		respond func(t *testing.T, h *harness) func(context.Context, *identityv1.CertifyRequest) (*identityv1.CertifyResponse, error)
	}{
		{"another identity", func(t *testing.T, h *harness) func(context.Context, *identityv1.CertifyRequest) (*identityv1.CertifyResponse, error) {
			return signCSR(t, h.pki.issuer, time.Hour, "db.emojivoto.serviceaccount.identity.linkerd.cluster.local")
		}},
		{"not chaining to the anchors", func(t *testing.T, _ *harness) func(context.Context, *identityv1.CertifyRequest) (*identityv1.CertifyResponse, error) {
			other := newCA(t, "other-root", nil)
			return signCSR(t, newCA(t, "other-issuer", other), time.Hour, "")
		}},
		{"already expired", func(t *testing.T, h *harness) func(context.Context, *identityv1.CertifyRequest) (*identityv1.CertifyResponse, error) {
			return signCSR(t, h.pki.issuer, -time.Second, "")
		}},
		{"for another key", func(t *testing.T, h *harness) func(context.Context, *identityv1.CertifyRequest) (*identityv1.CertifyResponse, error) {
			return func(context.Context, *identityv1.CertifyRequest) (*identityv1.CertifyResponse, error) {
				return &identityv1.CertifyResponse{
					LeafCertificate:          h.pki.issuer.Issue(t, &newKey(t).PublicKey, localName, time.Hour),
					IntermediateCertificates: [][]byte{h.pki.issuer.Cert.Raw},
				}, nil
			}
		}},
		{"malformed leaf", func(*testing.T, *harness) func(context.Context, *identityv1.CertifyRequest) (*identityv1.CertifyResponse, error) {
			return func(context.Context, *identityv1.CertifyRequest) (*identityv1.CertifyResponse, error) {
				return &identityv1.CertifyResponse{LeafCertificate: []byte("-----BEGIN CERTIFICATE-----")}, nil
			}
		}},
		{"no leaf", func(*testing.T, *harness) func(context.Context, *identityv1.CertifyRequest) (*identityv1.CertifyResponse, error) {
			return func(context.Context, *identityv1.CertifyRequest) (*identityv1.CertifyResponse, error) {
				return &identityv1.CertifyResponse{}, nil
			}
		}},
		{"refused by the service", func(*testing.T, *harness) func(context.Context, *identityv1.CertifyRequest) (*identityv1.CertifyResponse, error) {
			return func(context.Context, *identityv1.CertifyRequest) (*identityv1.CertifyResponse, error) {
				return nil, status.Error(codes.FailedPrecondition, "token does not match")
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, harnessOpts{})
			good := signCSR(t, h.pki.issuer, time.Hour, "")
			bad := tc.respond(t, h)

			// Before any certificate: refused, retried, then installed.
			h.fake.setRespond(bad)
			h.start()
			tm := h.nextTimer()
			if h.store.HasCertificate() {
				t.Fatal("refused certificate installed")
			}
			if tm.D != DefaultBackoffBase {
				t.Errorf("retry in %v, want the backoff base %v", tm.D, DefaultBackoffBase)
			}
			h.fake.setRespond(good)
			tm.Fire()
			tm = h.nextTimer()
			installed := h.store.Certificate()
			if installed == nil {
				t.Fatal("no certificate after the service recovered")
			}

			// With a certificate held: refused, and the old one kept.
			h.fake.setRespond(bad)
			tm.Fire()
			if tm = h.nextTimer(); tm.D != DefaultBackoffBase {
				t.Errorf("retry in %v, want %v", tm.D, DefaultBackoffBase)
			}
			if h.store.Certificate() != installed {
				t.Error("a refused reply replaced the held certificate")
			}
			h.checkMetrics(1, 2, DefaultBackoffBase)
		})
	}
}

func TestToken(t *testing.T) {
	t.Run("missing, then written", func(t *testing.T) {
		h := newHarness(t, harnessOpts{noToken: true})
		h.start()
		tm := h.nextTimer()
		if n := len(h.fake.requests()); n != 0 {
			t.Errorf("%d Certify calls without a token", n)
		}
		h.checkMetrics(0, 1, DefaultBackoffBase)
		writeToken(t, h.tokenPath, "token-late")
		tm.Fire()
		h.nextTimer()
		if !h.store.HasCertificate() {
			t.Fatal("no certificate once the token exists")
		}
	})
	t.Run("too large or empty", func(t *testing.T) {
		h := newHarness(t, harnessOpts{})
		writeToken(t, h.tokenPath, strings.Repeat("x", identityclient.MaxTokenBytes+1))
		h.start()
		tm := h.nextTimer()
		writeToken(t, h.tokenPath, " \n")
		tm.Fire()
		h.nextTimer()
		if n := len(h.fake.requests()); n != 0 || h.store.HasCertificate() {
			t.Errorf("%d Certify calls with an oversized or empty token", n)
		}
		h.checkMetrics(0, 2, 2*DefaultBackoffBase)
	})
	t.Run("exactly the limit", func(t *testing.T) {
		path := t.TempDir() + "/token"
		writeToken(t, path, strings.Repeat("x", identityclient.MaxTokenBytes))
		if b, err := identityclient.ReadToken(path); err != nil || len(b) != identityclient.MaxTokenBytes {
			t.Errorf("readToken: %d bytes, %v", len(b), err)
		}
	})
}

func TestWrongIdentityServer(t *testing.T) {
	// The service's certificate does not name what the client expects.
	h := newHarness(t, harnessOpts{dialName: "linkerd-destination.linkerd.serviceaccount.identity.linkerd.cluster.local"})
	h.start()
	h.nextTimer()
	if n := len(h.fake.requests()); n != 0 || h.store.HasCertificate() {
		t.Errorf("talked to an identity server with the wrong name: %d calls", n)
	}
	h.checkMetrics(0, 1, DefaultBackoffBase)
}

func TestStop(t *testing.T) {
	t.Run("while waiting to renew", func(t *testing.T) {
		h := newHarness(t, harnessOpts{})
		h.start()
		tm := h.nextTimer()
		h.stop()
		if !tm.Stopped() {
			t.Error("timer not stopped")
		}
	})
	t.Run("during a Certify call", func(t *testing.T) {
		h := newHarness(t, harnessOpts{})
		called := make(chan struct{})
		h.fake.setRespond(func(ctx context.Context, _ *identityv1.CertifyRequest) (*identityv1.CertifyResponse, error) {
			close(called)
			<-ctx.Done() // the client's cancellation reaches the server
			return nil, ctx.Err()
		})
		h.start()
		<-called
		h.stop()
		if tm, ok := h.clk.TryNext(); ok {
			t.Errorf("scheduled another attempt in %v after the context ended", tm.D)
		}
	})
}

// The proxy's backoff defaults: never above the cap, never below half the
// base.
func TestBackoffDefaults(t *testing.T) {
	for failures := range 100 {
		for _, r := range []float64{0, 0.5, 0.999} {
			for _, most := range []time.Duration{DefaultUncertifiedBackoffMax, DefaultBackoffMax} {
				d := identityclient.Backoff(failures, DefaultBackoffBase, most, r)
				if d > most || d < DefaultBackoffBase/2 {
					t.Fatalf("identityclient.Backoff(%d, %v, %v, %v) = %v, out of [%v, %v]", failures, DefaultBackoffBase, most, r, d, DefaultBackoffBase/2, most)
				}
			}
		}
	}
}

func TestConfigValidate(t *testing.T) {
	c := Config{TokenPath: "/t"}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.MinRefresh != identityclient.DefaultMinRefresh || c.MaxRefresh != identityclient.DefaultMaxRefresh || c.BackoffBase != DefaultBackoffBase ||
		c.UncertifiedBackoffMax != DefaultUncertifiedBackoffMax || c.BackoffMax != DefaultBackoffMax || c.CertifyTimeout != DefaultCertifyTimeout {
		t.Errorf("defaults not applied: %+v", c)
	}
	for name, bad := range map[string]Config{
		"no token path":       {},
		"min above max":       {TokenPath: "/t", MinRefresh: time.Hour, MaxRefresh: time.Minute},
		"backoff base > max":  {TokenPath: "/t", BackoffBase: time.Hour},
		"uncertified > max":   {TokenPath: "/t", UncertifiedBackoffMax: time.Minute},
		"negative min":        {TokenPath: "/t", MinRefresh: -time.Second},
		"negative certify tm": {TokenPath: "/t", CertifyTimeout: -time.Second},
	} {
		if err := bad.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", name, bad)
		}
	}
}

func TestNew(t *testing.T) {
	p := newPKI(t)
	store, err := meshtls.NewStore(localName, p.anchor.CertPEM())
	if err != nil {
		t.Fatal(err)
	}
	conn, err := identityclient.Dial("127.0.0.1:1", identityName, store.Roots)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	reg := prometheus.NewRegistry()
	if _, err := New(Config{}, store, conn, reg, logr.Discard()); err == nil {
		t.Error("New accepted a config without a token path")
	}
	if _, err := New(Config{TokenPath: "/t"}, store, conn, reg, logr.Discard()); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{TokenPath: "/t"}, store, conn, reg, logr.Discard()); err == nil {
		t.Error("New registered the metrics twice on one registry")
	}
	if _, err := identityclient.Dial("", identityName, store.Roots); err == nil {
		t.Error("Dial accepted an empty address")
	}
}

// The identity service must present exactly its one name: a certificate
// that also names something else passes the standard hostname check but
// not the client's.
func TestIdentityServerNamesExactly(t *testing.T) {
	p := newPKI(t)
	leaf := p.issuer.Leaf(t, pkitest.LeafOptions{DNSNames: []string{identityName, "other.example.com"}})
	roots := x509.NewCertPool()
	roots.AddCert(p.anchor.Cert)

	a, b := net.Pipe()
	srvDone := make(chan error, 1)
	go func() {
		srv := tls.Server(b, &tls.Config{
			MinVersion:   tls.VersionTLS13,
			Certificates: []tls.Certificate{*leaf},
		})
		defer srv.Close()
		srvDone <- srv.Handshake()
	}()
	c := tls.Client(a, identityclient.ClientTLSConfig(identityName, roots))
	err := c.Handshake()
	_ = c.Close()
	<-srvDone
	if err == nil || !strings.Contains(err.Error(), "want exactly") {
		t.Errorf("handshake with a two-name identity certificate: %v, want a refusal", err)
	}
}
