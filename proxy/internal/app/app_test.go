package app

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/types/known/timestamppb"

	identityv1 "github.com/linkerd-go/linkerd-go/api/linkerd/identity/v1"
	"github.com/linkerd-go/linkerd-go/proxy/internal/config"
	"github.com/linkerd-go/linkerd-go/proxy/internal/meshtlstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	localName    = "web.default.serviceaccount.identity.linkerd.cluster.local"
	identityName = "linkerd-identity.linkerd.serviceaccount.identity.linkerd.cluster.local"
)

type fakeIdentity struct {
	identityv1.UnimplementedIdentityServiceServer
	ca *meshtlstest.CA
}

func (f *fakeIdentity) Certify(_ context.Context, req *identityv1.CertifyRequest) (*identityv1.CertifyResponse, error) {
	der, err := f.ca.SignCSR(req.GetCertificateSigningRequest(), req.GetIdentity(), time.Hour)
	if err != nil {
		return nil, err
	}
	return &identityv1.CertifyResponse{LeafCertificate: der, ValidUntil: timestamppb.New(time.Now().Add(time.Hour))}, nil
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// The whole proxy starts, gets its certificate from identity, turns ready,
// serves metrics, and stops cleanly on POST /shutdown.
func TestRunCertifiesAndShutsDown(t *testing.T) {
	ca := meshtlstest.NewCA(t)
	idLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srvCert := ca.Leaf(t, identityName, time.Hour)
	gs := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{*srvCert}, MinVersion: tls.VersionTLS13})))
	identityv1.RegisterIdentityServiceServer(gs, &fakeIdentity{ca: ca})
	go gs.Serve(idLn)
	defer gs.Stop()

	token := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(token, []byte("a-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	admin := freeAddr(t)
	env := map[string]string{
		"LINKERD2_PROXY_IDENTITY_LOCAL_NAME":       localName,
		"LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS":    string(ca.PEM),
		"LINKERD2_PROXY_IDENTITY_TOKEN_FILE":       token,
		"LINKERD2_PROXY_IDENTITY_SVC_ADDR":         idLn.Addr().String(),
		"LINKERD2_PROXY_IDENTITY_SVC_NAME":         identityName,
		"LINKERD2_PROXY_DESTINATION_SVC_ADDR":      "127.0.0.1:1",
		"LINKERD2_PROXY_DESTINATION_SVC_NAME":      "linkerd-destination.linkerd.serviceaccount.identity.linkerd.cluster.local",
		"LINKERD2_PROXY_INBOUND_LISTEN_ADDR":       freeAddr(t),
		"LINKERD2_PROXY_OUTBOUND_LISTEN_ADDRS":     freeAddr(t),
		"LINKERD2_PROXY_ADMIN_LISTEN_ADDR":         admin,
		"LINKERD2_PROXY_SHUTDOWN_ENDPOINT_ENABLED": "true",
		"LINKERD2_PROXY_SHUTDOWN_GRACE_PERIOD":     "1s",
	}
	cfg, err := config.FromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	a, err := New(cfg, Deps{Log: logr.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	go func() { done <- a.Run(context.Background()) }()

	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.After(30 * time.Second)
	for {
		resp, err := client.Get("http://" + admin + "/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		select {
		case err := <-done:
			t.Fatalf("Run returned before ready: %v", err)
		case <-deadline:
			t.Fatal("not ready after 30s")
		case <-time.After(20 * time.Millisecond): // polling the admin endpoint
		}
	}
	resp, err := client.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `identity_cert_refresh_total{result="ok"} 1`) {
		t.Errorf("metrics lack the certificate refresh:\n%s", body)
	}
	resp, err = client.Post("http://"+admin+"/shutdown", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}
