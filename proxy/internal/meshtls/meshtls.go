// Package meshtls holds the proxy's mesh identity — its current workload
// certificate and the trust anchors — and builds the TLS configurations of
// mesh connections from it: TLS 1.3 only, the client checks that the server
// presents exactly the identity discovery promised, and the server learns the
// client's identity from its certificate.
//
// The identity client replaces the certificate with Set while traffic flows,
// and a trust bundle update replaces the anchors with SetBundle; new
// handshakes use the new certificate and verify against the new anchors,
// established connections keep what they were made with.
package meshtls

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Store is the proxy's mesh identity. It is safe for concurrent use.
type Store struct {
	localName string
	bundle    atomic.Pointer[Bundle]
	cert      atomic.Pointer[tls.Certificate]
	ready     chan struct{}
	readyOnce sync.Once
	now       func() time.Time
}

// NewStore returns a Store for the proxy's own identity name, trusting the
// PEM bundle of anchors (several anchors are allowed, for rotation).
func NewStore(localName string, anchorsPEM []byte) (*Store, error) {
	b, err := ParseBundle(anchorsPEM)
	if err != nil {
		return nil, err
	}
	if localName == "" {
		return nil, errors.New("empty local identity name")
	}
	s := &Store{localName: localName, ready: make(chan struct{}), now: time.Now}
	s.bundle.Store(b)
	return s, nil
}

// LocalName is the identity the proxy's certificates are for.
func (s *Store) LocalName() string { return s.localName }

// Roots are the trust anchors now.
func (s *Store) Roots() *x509.CertPool { return s.bundle.Load().pool }

// Bundle is the trust bundle now.
func (s *Store) Bundle() *Bundle { return s.bundle.Load() }

// SetBundle replaces the trust anchors. It refuses a bundle under which
// the certificate the proxy holds would no longer verify: its peers could
// then not verify it either, and the proxy would cut itself off. The
// identity client's next certificate must chain to the new anchors too.
func (s *Store) SetBundle(b *Bundle) error {
	if cert := s.cert.Load(); cert != nil {
		if _, err := chainTo(b.pool, cert.Leaf, cert.Certificate[1:], x509.ExtKeyUsageServerAuth, s.now()); err != nil {
			return fmt.Errorf("refusing trust bundle: the proxy's own certificate does not verify under it: %w", err)
		}
	}
	s.bundle.Store(b)
	return nil
}

// Set installs a new certificate after checking it is for the local name
// and chains to the anchors. cert.Leaf must be set.
func (s *Store) Set(cert *tls.Certificate) error {
	if cert == nil || cert.Leaf == nil || len(cert.Certificate) == 0 {
		return errors.New("certificate without a parsed leaf")
	}
	if err := s.verify(cert.Leaf, cert.Certificate[1:], x509.ExtKeyUsageServerAuth); err != nil {
		return fmt.Errorf("refusing certificate: %w", err)
	}
	s.cert.Store(cert)
	s.readyOnce.Do(func() { close(s.ready) })
	return nil
}

// Certificate returns the current certificate, or nil before the first Set.
func (s *Store) Certificate() *tls.Certificate { return s.cert.Load() }

// Ready is closed once the Store holds a certificate.
func (s *Store) Ready() <-chan struct{} { return s.ready }

// HasCertificate reports whether a certificate is held.
func (s *Store) HasCertificate() bool { return s.cert.Load() != nil }

// verify checks that leaf is valid now for name-independent use, chains to
// the anchors through intermediates, and names the local identity.
func (s *Store) verify(leaf *x509.Certificate, intermediatesDER [][]byte, usage x509.ExtKeyUsage) error {
	if err := checkSANs(leaf, s.localName); err != nil {
		return err
	}
	_, err := s.chain(leaf, intermediatesDER, usage)
	return err
}

func (s *Store) chain(leaf *x509.Certificate, intermediatesDER [][]byte, usage x509.ExtKeyUsage) ([][]*x509.Certificate, error) {
	return chainTo(s.Roots(), leaf, intermediatesDER, usage, s.now())
}

func chainTo(roots *x509.CertPool, leaf *x509.Certificate, intermediatesDER [][]byte, usage x509.ExtKeyUsage, now time.Time) ([][]*x509.Certificate, error) {
	inter := x509.NewCertPool()
	for _, der := range intermediatesDER {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("intermediate certificate: %w", err)
		}
		inter.AddCert(c)
	}
	return leaf.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{usage},
	})
}

// checkSANs requires exactly one DNS SAN equal to name and no other SANs:
// mesh identities are names, nothing else.
func checkSANs(leaf *x509.Certificate, name string) error {
	if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != name {
		return fmt.Errorf("certificate names %q, want exactly %q", leaf.DNSNames, name)
	}
	if len(leaf.IPAddresses) > 0 || len(leaf.URIs) > 0 || len(leaf.EmailAddresses) > 0 {
		return errors.New("certificate has IP, URI or e-mail SANs")
	}
	return nil
}

// PeerIdentity returns the mesh identity of a verified peer: the single DNS
// SAN of its leaf certificate. It is empty when the peer sent no
// certificate (a client outside the mesh does not authenticate).
func PeerIdentity(cs tls.ConnectionState) string {
	if len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return ""
	}
	leaf := cs.VerifiedChains[0][0]
	if len(leaf.DNSNames) != 1 {
		return ""
	}
	return leaf.DNSNames[0]
}

// ServerConfig is the inbound side's TLS: TLS 1.3 only, our current
// certificate, and a client certificate verified against the anchors when
// the client presents one (meshed clients do; PeerIdentity then names it).
// The anchors are those of the moment it is called: one config per
// connection.
func (s *Store) ServerConfig(nextProtos []string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		NextProtos: slices.Clone(nextProtos),
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			if c := s.cert.Load(); c != nil {
				return c, nil
			}
			return nil, errors.New("no certificate yet")
		},
		ClientAuth: tls.VerifyClientCertIfGiven,
		ClientCAs:  s.Roots(),
		// Mesh client certificates carry exactly one DNS SAN; check that
		// shape beyond the chain verification.
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return nil
			}
			leaf := cs.PeerCertificates[0]
			if len(leaf.DNSNames) != 1 || len(leaf.IPAddresses) > 0 || len(leaf.URIs) > 0 {
				return errors.New("client certificate is not a mesh identity")
			}
			return nil
		},
	}
}

// ClientConfig is the outbound side's TLS towards a peer that discovery
// says is serverID: SNI is serverID, and the handshake fails unless the
// server's certificate chains to the anchors and names exactly serverID.
// Our own certificate is presented so the server learns who we are.
func (s *Store) ClientConfig(serverID string, nextProtos []string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		ServerName: serverID,
		NextProtos: slices.Clone(nextProtos),
		// Verification is done in VerifyPeerCertificate: the standard
		// hostname check would also accept wildcard or extra names.
		InsecureSkipVerify: true, //nolint:gosec // replaced by the exact check below
		VerifyPeerCertificate: func(rawCerts [][]byte, _ [][]*x509.Certificate) error {
			if len(rawCerts) == 0 {
				return errors.New("server sent no certificate")
			}
			leaf, err := x509.ParseCertificate(rawCerts[0])
			if err != nil {
				return err
			}
			if err := checkSANs(leaf, serverID); err != nil {
				return fmt.Errorf("server identity: %w", err)
			}
			_, err = s.chain(leaf, rawCerts[1:], x509.ExtKeyUsageServerAuth)
			return err
		},
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if c := s.cert.Load(); c != nil {
				return c, nil
			}
			return &tls.Certificate{}, nil // no certificate yet: send none
		},
	}
}
