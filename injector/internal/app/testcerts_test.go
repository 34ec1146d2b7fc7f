package app

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/linkerd-go/linkerd-go/tools/testkit/pkitest"
)

// testPKI is a CA and a serving certificate for 127.0.0.1 signed by it.
type testPKI struct {
	caPEM, certPEM, keyPEM []byte
	pool                   *x509.CertPool
}

func newTestPKI(t testing.TB) *testPKI {
	t.Helper()
	ca := pkitest.NewRoot(t, "injector test CA", pkitest.Options{NotAfter: time.Now().Add(24 * time.Hour)})
	leaf := ca.Leaf(t, pkitest.LeafOptions{
		DNSNames: []string{"linkerd-proxy-injector.linkerd.svc"},
		IPs:      []net.IP{net.IPv4(127, 0, 0, 1)},
		Lifetime: 24 * time.Hour,
	})
	certPEM, keyPEM := pkitest.PairPEM(t, leaf)
	return &testPKI{caPEM: ca.CertPEM(), certPEM: certPEM, keyPEM: keyPEM, pool: ca.Pool()}
}

// write puts the pair at certFile and keyFile, each replaced in one rename
// (as the kubelet swaps a Secret volume's files).
func (p *testPKI) write(t testing.TB, certFile, keyFile string) {
	t.Helper()
	for _, f := range []struct {
		path string
		data []byte
	}{{certFile, p.certPEM}, {keyFile, p.keyPEM}} {
		tmp := filepath.Join(filepath.Dir(f.path), "."+filepath.Base(f.path)+".tmp")
		if err := os.WriteFile(tmp, f.data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, f.path); err != nil {
			t.Fatal(err)
		}
	}
}

// client returns an HTTPS client that trusts only this CA and opens a new
// connection (a new handshake) for every request.
func (p *testPKI) client() *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: p.pool, MinVersion: tls.VersionTLS12},
			DisableKeepAlives: true,
		},
	}
}
