package app

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	identityv1 "github.com/linkerd-go/linkerd-go/api/linkerd/identity/v1"
	"github.com/linkerd-go/linkerd-go/api/mesh"
	"github.com/linkerd-go/linkerd-go/tools/testkit/pkitest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestParseFlags(t *testing.T) {
	c, err := ParseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c != DefaultConfig() {
		t.Errorf("no flags: %+v, want the defaults", c)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
	if got := c.SelfName().String(); got != "linkerd-identity.linkerd.serviceaccount.identity.linkerd.cluster.local" {
		t.Errorf("self name %q", got)
	}
	c, err = ParseFlags([]string{
		"--trust-domain=example.org", "--control-plane-namespace", "mesh", "--issuance-lifetime=1h",
		"--clock-skew-allowance=0s", "--issuer-scheme=kubernetes.io/tls", "--max-concurrent-streams=4", "--log-format=json",
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.TrustDomain != "example.org" || c.ControlPlaneNamespace != "mesh" || c.IssuanceLifetime != time.Hour ||
		c.ClockSkewAllowance != 0 || c.IssuerScheme != mesh.IssuerSchemeKubernetes || c.MaxConcurrentStreams != 4 || c.LogFormat != "json" {
		t.Errorf("parsed %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Error(err)
	}
	var stderr bytes.Buffer
	if _, err := ParseFlags([]string{"--nope"}, &stderr); err == nil || !strings.Contains(stderr.String(), "nope") {
		t.Errorf("unknown flag: %v %q", err, stderr.String())
	}
	if _, err := ParseFlags([]string{"extra"}, io.Discard); err == nil {
		t.Error("a stray argument was accepted")
	}
	if _, err := ParseFlags([]string{"-h"}, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v", err)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"bad addr", func(c *Config) { c.Addr = "8080" }, "--addr"},
		{"bad admin addr", func(c *Config) { c.AdminAddr = "" }, "--admin-addr"},
		{"bad trust domain", func(c *Config) { c.TrustDomain = "Cluster.Local" }, "trust domain"},
		{"bad namespace", func(c *Config) { c.ControlPlaneNamespace = "a.b" }, `"a.b" is not an RFC 1123 label`},
		{"zero lifetime", func(c *Config) { c.IssuanceLifetime = 0 }, "--issuance-lifetime"},
		{"negative skew", func(c *Config) { c.ClockSkewAllowance = -time.Second }, "--clock-skew-allowance"},
		{"bad scheme", func(c *Config) { c.IssuerScheme = "tls" }, "--issuer-scheme"},
		{"no issuer dir", func(c *Config) { c.IssuerDir = "" }, "--issuer-dir"},
		{"no anchors", func(c *Config) { c.TrustAnchorsFile = "" }, "--trust-anchors-file"},
		{"negative resync", func(c *Config) { c.IssuerResync = -1 }, "--issuer-resync"},
		{"no concurrency", func(c *Config) { c.MaxConcurrentCertify = 0 }, "--max-concurrent-certify"},
		{"no streams", func(c *Config) { c.MaxConcurrentStreams = 0 }, "--max-concurrent-streams"},
		{"tiny requests", func(c *Config) { c.MaxRequestBytes = 10 }, "--max-request-bytes"},
		{"no review timeout", func(c *Config) { c.TokenReviewTimeout = 0 }, "--token-review-timeout"},
		{"no shutdown timeout", func(c *Config) { c.ShutdownTimeout = 0 }, "--shutdown-timeout"},
		{"no qps", func(c *Config) { c.KubeAPIQPS = 0 }, "--kube-api-qps"},
		{"bad level", func(c *Config) { c.LogLevel = "loud" }, "--log-level"},
		{"bad format", func(c *Config) { c.LogFormat = "xml" }, "--log-format"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.edit(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

func TestNewLogger(t *testing.T) {
	var buf bytes.Buffer
	c := DefaultConfig()
	c.LogFormat = "json"
	log, err := NewLogger(c, &buf)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("hello", "identity", "x")
	log.V(1).Info("hidden at info")
	if !strings.Contains(buf.String(), `"msg":"hello"`) || strings.Contains(buf.String(), "hidden") {
		t.Errorf("log %q", buf.String())
	}
}

// env is a running App against a fake clientset.
type env struct {
	app     *App
	anchors *x509.CertPool
	vol     *pkitest.Volume
	root    *pkitest.CA
	events  chan *corev1.Event
	cancel  context.CancelFunc
	done    chan error
}

const goodToken = "eyJ.web.sig"

func startApp(t *testing.T, withIssuer bool) *env {
	t.Helper()
	dir := t.TempDir()
	root := pkitest.NewRoot(t, "root", pkitest.Options{})
	old := pkitest.NewRoot(t, "old root", pkitest.Options{})
	anchorsFile := filepath.Join(dir, "ca-bundle.crt")
	pkitest.WriteFile(t, dir, "ca-bundle.crt", pkitest.CertsPEM(old.Cert, root.Cert))
	vol := pkitest.NewVolume(t)
	if withIssuer {
		iss := pkitest.NewIssuer(t, "issuer-1", root, pkitest.Options{})
		vol.Publish(t, map[string][]byte{"crt.pem": iss.CertPEM(), "key.pem": iss.KeyPEM(t)})
	}

	client := fake.NewClientset()
	client.PrependReactor("create", "tokenreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		tr := a.(k8stesting.CreateAction).GetObject().(*authnv1.TokenReview).DeepCopy()
		if tr.Spec.Token == goodToken {
			tr.Status = authnv1.TokenReviewStatus{Authenticated: true, Audiences: tr.Spec.Audiences,
				User: authnv1.UserInfo{Username: "system:serviceaccount:default:web"}}
		}
		return true, tr, nil
	})
	events := make(chan *corev1.Event, 100)
	client.PrependReactor("create", "events", func(a k8stesting.Action) (bool, runtime.Object, error) {
		events <- a.(k8stesting.CreateAction).GetObject().(*corev1.Event)
		return false, nil, nil
	})

	cfg := DefaultConfig()
	cfg.Addr, cfg.AdminAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.TrustAnchorsFile = anchorsFile
	cfg.IssuerDir = vol.Dir
	cfg.MaxRequestBytes = 8 << 10
	a, err := New(cfg, Deps{Kube: client, Log: logr.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	e := &env{app: a, vol: vol, root: root, events: events, cancel: cancel, done: done, anchors: x509.NewCertPool()}
	e.anchors.AddCert(old.Cert)
	e.anchors.AddCert(root.Cert)
	t.Cleanup(e.stop)
	return e
}

func (e *env) stop() {
	if e.cancel == nil {
		return
	}
	e.cancel()
	e.cancel = nil
	<-e.done
}

func (e *env) dial(t *testing.T) identityv1.IdentityServiceClient {
	t.Helper()
	creds := credentials.NewTLS(&tls.Config{
		RootCAs:    e.anchors,
		ServerName: "linkerd-identity.linkerd.serviceaccount.identity.linkerd.cluster.local",
		MinVersion: tls.VersionTLS13,
	})
	conn, err := grpc.NewClient(e.app.GRPCAddr().String(), grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return identityv1.NewIdentityServiceClient(conn)
}

func (e *env) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + e.app.AdminAddr().String() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestRunServesCertify(t *testing.T) {
	e := startApp(t, true)
	client := e.dial(t)
	web := "web.default.serviceaccount.identity.linkerd.cluster.local"
	ctx := context.Background()
	resp, err := client.Certify(ctx, &identityv1.CertifyRequest{
		Identity: web, Token: []byte(goodToken), CertificateSigningRequest: pkitest.CSR{DNSNames: []string{web}}.DER(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(resp.GetLeafCertificate())
	if err != nil {
		t.Fatal(err)
	}
	inter := x509.NewCertPool()
	for _, d := range resp.GetIntermediateCertificates() {
		c, _ := x509.ParseCertificate(d)
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: web, Roots: e.anchors, Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("leaf does not verify: %v", err)
	}

	for _, tc := range []struct {
		name string
		req  *identityv1.CertifyRequest
		code codes.Code
	}{
		{"another identity", &identityv1.CertifyRequest{Identity: "db.default.serviceaccount.identity.linkerd.cluster.local", Token: []byte(goodToken),
			CertificateSigningRequest: pkitest.CSR{DNSNames: []string{"db.default.serviceaccount.identity.linkerd.cluster.local"}}.DER(t)}, codes.FailedPrecondition},
		{"unknown token", &identityv1.CertifyRequest{Identity: web, Token: []byte("eyJ.x.y"),
			CertificateSigningRequest: pkitest.CSR{DNSNames: []string{web}}.DER(t)}, codes.Unauthenticated},
		{"message too large", &identityv1.CertifyRequest{Identity: web, Token: bytes.Repeat([]byte("a"), 9<<10)}, codes.ResourceExhausted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := client.Certify(ctx, tc.req); status.Code(err) != tc.code {
				t.Fatalf("%v, want %s", err, tc.code)
			}
		})
	}

	if code, _ := e.get(t, "/ready"); code != http.StatusOK {
		t.Errorf("/ready %d", code)
	}
	if code, _ := e.get(t, "/live"); code != http.StatusOK {
		t.Errorf("/live %d", code)
	}
	code, metrics := e.get(t, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics %d", code)
	}
	for _, want := range []string{
		"identity_certificates_issued_total 1",
		`identity_certificates_rejected_total{reason="identity_denied"} 1`,
		`identity_certificates_rejected_total{reason="unauthenticated"} 1`,
		`identity_certify_duration_seconds_count{result="issued"} 1`,
		"identity_issuer_cert_ttl_seconds ",
		"identity_issuer_cert_expiration_timestamp_seconds ",
		`identity_issuer_reloads_total{result="updated"} 1`,
		`grpc_server_handled_total{grpc_code="OK",grpc_method="Certify",grpc_service="linkerd.identity.v1.IdentityService",grpc_type="unary"} 1`,
		"go_goroutines ",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+e.app.AdminAddr().String()+"/metrics", nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /metrics: %v %v", resp, err)
	} else {
		_ = resp.Body.Close()
	}
	http.DefaultClient.CloseIdleConnections()

	e.stop()
	if _, err := os.Stat(e.vol.Dir); err != nil {
		t.Fatal(err)
	}
}

func TestRunWaitsForIssuer(t *testing.T) {
	e := startApp(t, false)
	ev := <-e.events
	if ev.Reason != "IssuerValidationFailed" || ev.InvolvedObject.Kind != "Secret" || ev.InvolvedObject.Name != "linkerd-identity-issuer" ||
		ev.InvolvedObject.Namespace != "linkerd" || ev.Type != corev1.EventTypeWarning || ev.Source.Component != EventComponent {
		t.Fatalf("event %+v", ev)
	}
	if code, _ := e.get(t, "/ready"); code != http.StatusServiceUnavailable {
		t.Errorf("/ready %d without an issuer", code)
	}
	iss := pkitest.NewIssuer(t, "late", e.root, pkitest.Options{})
	e.vol.Publish(t, map[string][]byte{"crt.pem": iss.CertPEM(), "key.pem": iss.KeyPEM(t)})
	// The first issuer is a load, not an update: no event. Wait for it by
	// asking for a certificate until the TLS handshake succeeds.
	client := e.dial(t)
	web := "web.default.serviceaccount.identity.linkerd.cluster.local"
	resp, err := client.Certify(context.Background(), &identityv1.CertifyRequest{
		Identity: web, Token: []byte(goodToken), CertificateSigningRequest: pkitest.CSR{DNSNames: []string{web}}.DER(t),
	}, grpc.WaitForReady(true))
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(resp.GetLeafCertificate())
	if leaf.Issuer.CommonName != "late" {
		t.Errorf("issued by %q", leaf.Issuer.CommonName)
	}
	if code, _ := e.get(t, "/ready"); code != http.StatusOK {
		t.Errorf("/ready %d with an issuer", code)
	}
	http.DefaultClient.CloseIdleConnections()
}

func TestNewFailures(t *testing.T) {
	c := DefaultConfig()
	c.TrustAnchorsFile = filepath.Join(t.TempDir(), "missing")
	if _, err := New(c, Deps{Kube: fake.NewClientset()}); err == nil || !strings.Contains(err.Error(), "trust anchors") {
		t.Errorf("missing anchors: %v", err)
	}
	if _, err := New(c, Deps{}); err == nil {
		t.Error("no client accepted")
	}
	c.Addr = "bad"
	if _, err := New(c, Deps{Kube: fake.NewClientset()}); err == nil {
		t.Error("bad config accepted")
	}
}
