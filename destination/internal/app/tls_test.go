package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	policyv1 "github.com/linkerd-go/linkerd-go/api/linkerd/policy/v1"
	"github.com/linkerd-go/linkerd-go/destination/internal/identitytest"
	"github.com/linkerd-go/linkerd-go/tools/testkit/pkitest"
)

// TestPolicyServedOverTLS runs destination with its certificate from an
// in-process identity: the policy port presents that certificate (TLS 1.3,
// destination's identity name, chained to the anchors) and refuses
// plaintext, as the discovery port does.
func TestPolicyServedOverTLS(t *testing.T) {
	root := pkitest.NewRoot(t, "root", pkitest.Options{})
	issuer := pkitest.NewIssuer(t, "issuer", root, pkitest.Options{})
	dir := t.TempDir()
	anchors := filepath.Join(dir, "ca-bundle.crt")
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(anchors, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(token, []byte("the-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseFlags([]string{"--identity-trust-anchors-file=" + anchors, "--identity-token-file=" + token}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	d := fakeDeps(t)
	d.Identity = identitytest.Client{T: t, Issuer: issuer}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- newAndRun(ctx, cfg, d) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	pool := x509.NewCertPool()
	pool.AddCert(root.Cert)
	// The first call waits until destination serves (caches synced,
	// certificate held); the plaintext one comes after and must fail fast.
	watch := func(creds credentials.TransportCredentials, waitForReady bool) (*policyv1.WatchPortResponse, error) {
		conn, err := grpc.NewClient(d.PolicyListener.Addr().String(), grpc.WithTransportCredentials(creds))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		s, err := policyv1.NewInboundPolicyServiceClient(conn).WatchPort(ctx, &policyv1.WatchPortRequest{
			Workload: &policyv1.Workload{Kind: &policyv1.Workload_Pod{Pod: &policyv1.Workload_PodRef{Namespace: "ns", Name: "web-1"}}}, Port: 8080,
		}, grpc.WaitForReady(waitForReady))
		if err != nil {
			return nil, err
		}
		return s.Recv()
	}
	m, err := watch(credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS13, RootCAs: pool, ServerName: cfg.OwnName().String()}), true)
	if err != nil || m.GetServer().GetLabels()["name"] != "all-unauthenticated" {
		t.Fatalf("over TLS: %v, %v; want the default policy", m, err)
	}
	if _, err := watch(insecure.NewCredentials(), false); status.Code(err) != codes.Unavailable {
		t.Fatalf("in plaintext: %v, want Unavailable", err)
	}
}
