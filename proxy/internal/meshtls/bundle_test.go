package meshtls_test

import (
	"bytes"
	"crypto/tls"
	"encoding/pem"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/linkerd-go/linkerd-go/proxy/internal/meshtls"
	"github.com/linkerd-go/linkerd-go/proxy/internal/meshtlstest"
)

func TestParseBundle(t *testing.T) {
	a, b := meshtlstest.NewCA(t), meshtlstest.NewCA(t)
	leaf := a.Leaf(t, serverID, time.Hour)
	leafPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Certificate[0]})
	both := append(append([]byte{}, a.PEM...), b.PEM...)
	withText := append([]byte("Certificate:\n    Data: ...\n"), both...)

	for _, tc := range []struct {
		name  string
		pem   []byte
		roots int
		err   string
	}{
		{"one anchor", a.PEM, 1, ""},
		{"two anchors", both, 2, ""},
		{"text between blocks", withText, 2, ""},
		{"empty", nil, 0, "no trust anchor"},
		{"no PEM", []byte("hello"), 0, "no trust anchor"},
		{"a private key", append(append([]byte{}, a.PEM...), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: []byte{1}})...), 0, `"EC PRIVATE KEY" block`},
		{"not a CA", leafPEM, 0, "not a CA"},
		{"broken DER", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{0x30, 0x03, 1, 2, 3}}), 0, "trust anchor 1"},
		{"too large", bytes.Repeat([]byte(" "), meshtls.MaxBundleBytes+1), 0, "over the"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := meshtls.ParseBundle(tc.pem)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one saying %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Len() != tc.roots {
				t.Errorf("%d roots, want %d", got.Len(), tc.roots)
			}
		})
	}
	one, _ := meshtls.ParseBundle(a.PEM)
	two, _ := meshtls.ParseBundle(both)
	if !one.Of(append([]byte{}, a.PEM...)) || one.Of(both) || one.Fingerprint() == two.Fingerprint() {
		t.Error("Of or Fingerprint does not follow the bytes")
	}
	if !two.FirstExpiry().Equal(minTime(a.Cert.NotAfter, b.Cert.NotAfter)) {
		t.Errorf("first expiry %v", two.FirstExpiry())
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// A rotation, step by step: the new anchor joins the bundle, the proxy's
// certificate moves to it, the old anchor leaves. New handshakes follow
// each bundle; a connection made before keeps working; a bundle that would
// leave the proxy's own certificate unverifiable is refused.
func TestRotateAnchors(t *testing.T) {
	oldCA, newCA := meshtlstest.NewCA(t), meshtlstest.NewCA(t)
	srv := oldCA.Store(t, serverID)
	oldPeer := oldCA.Store(t, clientID)
	newPeer, err := meshtls.NewStore(clientID, newCA.PEM)
	if err != nil {
		t.Fatal(err)
	}
	if err := newPeer.Set(newCA.Leaf(t, clientID, time.Hour)); err != nil {
		t.Fatal(err)
	}
	bundle := func(pems ...[]byte) *meshtls.Bundle {
		b, err := meshtls.ParseBundle(bytes.Join(pems, nil))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	accepts := func(peer *meshtls.Store) bool {
		st, serr, cerr := drainedHandshake(srv.ServerConfig(nil), peer.ClientConfig(serverID, nil))
		return serr == nil && cerr == nil && meshtls.PeerIdentity(st) == clientID
	}
	if !accepts(oldPeer) || accepts(newPeer) {
		t.Fatal("before the rotation: want the old peer's certificate accepted only")
	}
	// An established connection from the old peer, kept across the steps.
	conn := establish(t, srv, oldPeer)

	if err := srv.SetBundle(bundle(newCA.PEM)); err == nil {
		t.Fatal("a bundle without the root of the proxy's own certificate was applied")
	}
	// Step 1: every proxy gets both anchors.
	for _, s := range []*meshtls.Store{srv, oldPeer, newPeer} {
		if err := s.SetBundle(bundle(oldCA.PEM, newCA.PEM)); err != nil {
			t.Fatal(err)
		}
	}
	if !accepts(oldPeer) || !accepts(newPeer) {
		t.Fatal("with both anchors: want both peers accepted")
	}
	// Step 2: the proxy's certificate comes from the new anchor; step 3:
	// the old anchor leaves its bundle.
	if err := srv.Set(newCA.Leaf(t, serverID, time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := srv.SetBundle(bundle(newCA.PEM)); err != nil {
		t.Fatal(err)
	}
	if accepts(oldPeer) || !accepts(newPeer) {
		t.Fatal("after the rotation: want the new peer's certificate accepted only")
	}
	conn.roundTrip(t)
}

// drainedHandshake is a handshake over a pipe where the server may refuse
// the client after the client is done (TLS 1.3): the client side keeps
// reading, so the server's alert never blocks on the pipe.
func drainedHandshake(server, client *tls.Config) (tls.ConnectionState, error, error) {
	a, b := net.Pipe()
	defer b.Close()
	sc, cc := tls.Server(a, server), tls.Client(b, client)
	errc := make(chan error, 1)
	go func() {
		err := sc.Handshake()
		a.Close()
		errc <- err
	}()
	cerr := cc.Handshake()
	if cerr == nil {
		go func() { _, _ = io.Copy(io.Discard, cc) }()
	} else {
		b.Close()
	}
	serr := <-errc
	return sc.ConnectionState(), serr, cerr
}

type established struct {
	client, server *tls.Conn
}

// establish opens a mesh TLS connection from peer to srv.
func establish(t *testing.T, srv, peer *meshtls.Store) *established {
	t.Helper()
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	e := &established{server: tls.Server(a, srv.ServerConfig(nil)), client: tls.Client(b, peer.ClientConfig(serverID, nil))}
	errc := make(chan error, 1)
	go func() { errc <- e.server.Handshake() }()
	if err := e.client.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	e.roundTrip(t)
	return e
}

// roundTrip sends bytes one way and back.
func (e *established) roundTrip(t *testing.T) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		buf := make([]byte, 4)
		if _, err := io.ReadFull(e.server, buf); err != nil {
			errc <- err
			return
		}
		_, err := e.server.Write(buf)
		errc <- err
	}()
	if _, err := e.client.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(e.client, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo %q, %v", buf, err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}
