package meshtls_test

import (
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/linkerd-go/linkerd-go/proxy/internal/meshtls"
	"github.com/linkerd-go/linkerd-go/proxy/internal/meshtlstest"
)

const (
	serverID = "web.default.serviceaccount.identity.linkerd.cluster.local"
	clientID = "client.default.serviceaccount.identity.linkerd.cluster.local"
)

// handshake runs a TLS handshake over a pipe and returns both sides'
// results.
func handshake(t *testing.T, server, client *tls.Config) (tls.ConnectionState, error, error) {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	sc := tls.Server(a, server)
	errc := make(chan error, 1)
	go func() { errc <- sc.Handshake() }()
	cc := tls.Client(b, client)
	cerr := cc.Handshake()
	if cerr != nil {
		b.Close()
	}
	serr := <-errc
	return sc.ConnectionState(), serr, cerr
}

func TestMutualIdentity(t *testing.T) {
	ca := meshtlstest.NewCA(t)
	srv, cli := ca.Store(t, serverID), ca.Store(t, clientID)
	st, serr, cerr := handshake(t, srv.ServerConfig([]string{"h2"}), cli.ClientConfig(serverID, []string{"h2"}))
	if serr != nil || cerr != nil {
		t.Fatalf("handshake: server %v, client %v", serr, cerr)
	}
	if st.Version != tls.VersionTLS13 {
		t.Errorf("version %x, want TLS 1.3", st.Version)
	}
	if got := meshtls.PeerIdentity(st); got != clientID {
		t.Errorf("server learned client %q, want %q", got, clientID)
	}
}

// The client refuses a server that presents another identity than the one
// discovery promised, even though it chains to the anchors.
func TestWrongServerIdentityRefused(t *testing.T) {
	ca := meshtlstest.NewCA(t)
	impostor, cli := ca.Store(t, "other.default.serviceaccount.identity.linkerd.cluster.local"), ca.Store(t, clientID)
	_, _, cerr := handshake(t, impostor.ServerConfig(nil), cli.ClientConfig(serverID, nil))
	if cerr == nil || !strings.Contains(cerr.Error(), "server identity") {
		t.Fatalf("client accepted the wrong identity: %v", cerr)
	}
}

// A server with a certificate from another anchor is refused.
func TestForeignAnchorRefused(t *testing.T) {
	srv := meshtlstest.NewCA(t).Store(t, serverID)
	cli := meshtlstest.NewCA(t).Store(t, clientID)
	_, _, cerr := handshake(t, srv.ServerConfig(nil), cli.ClientConfig(serverID, nil))
	if cerr == nil {
		t.Fatal("client accepted a server from another trust anchor")
	}
}

// A client without a certificate is allowed, with no identity.
func TestAnonymousClient(t *testing.T) {
	ca := meshtlstest.NewCA(t)
	srv := ca.Store(t, serverID)
	st, serr, cerr := handshake(t, srv.ServerConfig(nil), &tls.Config{ServerName: serverID, RootCAs: srv.Roots(), MinVersion: tls.VersionTLS13})
	if serr != nil || cerr != nil {
		t.Fatalf("handshake: %v %v", serr, cerr)
	}
	if id := meshtls.PeerIdentity(st); id != "" {
		t.Errorf("anonymous client has identity %q", id)
	}
}

// TLS 1.2 is refused.
func TestTLS12Refused(t *testing.T) {
	ca := meshtlstest.NewCA(t)
	srv := ca.Store(t, serverID)
	_, _, cerr := handshake(t, srv.ServerConfig(nil), &tls.Config{ServerName: serverID, RootCAs: srv.Roots(), MaxVersion: tls.VersionTLS12})
	if cerr == nil {
		t.Fatal("TLS 1.2 accepted")
	}
}

// Set refuses certificates for another name or another anchor, and a new
// certificate is used by later handshakes.
func TestSetAndRotate(t *testing.T) {
	ca := meshtlstest.NewCA(t)
	s, err := meshtls.NewStore(serverID, ca.PEM)
	if err != nil {
		t.Fatal(err)
	}
	if s.HasCertificate() {
		t.Fatal("certificate before Set")
	}
	if err := s.Set(ca.Leaf(t, "wrong.name", time.Hour)); err == nil {
		t.Error("Set accepted a certificate for another name")
	}
	if err := s.Set(meshtlstest.NewCA(t).Leaf(t, serverID, time.Hour)); err == nil {
		t.Error("Set accepted a certificate from another anchor")
	}
	first := ca.Leaf(t, serverID, time.Hour)
	if err := s.Set(first); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Ready():
	default:
		t.Fatal("not ready after Set")
	}
	second := ca.Leaf(t, serverID, time.Hour)
	if err := s.Set(second); err != nil {
		t.Fatal(err)
	}
	cli := ca.Store(t, clientID)
	cfg := cli.ClientConfig(serverID, nil)
	var seen []byte
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		seen = cs.PeerCertificates[0].Raw
		return nil
	}
	if _, serr, cerr := handshake(t, s.ServerConfig(nil), cfg); serr != nil || cerr != nil {
		t.Fatalf("handshake: %v %v", serr, cerr)
	}
	if string(seen) != string(second.Certificate[0]) {
		t.Error("handshake after rotation did not use the new certificate")
	}
}

func TestNewStoreErrors(t *testing.T) {
	if _, err := meshtls.NewStore(serverID, []byte("not pem")); err == nil {
		t.Error("garbage anchors accepted")
	}
	if _, err := meshtls.NewStore("", meshtlstest.NewCA(t).PEM); err == nil {
		t.Error("empty name accepted")
	}
}
