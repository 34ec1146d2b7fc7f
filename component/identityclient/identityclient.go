// Package identityclient is the client side of the identity service that
// every meshed process shares (the proxy, and destination for its own
// certificate): a connection that dials afresh for each Certify, the
// signing request, the token read, the reply turned into a certificate, and
// the renewal and retry schedule's arithmetic. What a client does with the
// certificate, and how it logs and counts its attempts, stays its own.
package identityclient

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	identityv1 "github.com/linkerd-go/linkerd-go/api/linkerd/identity/v1"
)

const (
	// MaxTokenBytes bounds the token file read: a ServiceAccount JWT is a
	// few KiB.
	MaxTokenBytes = 64 << 10
	// MaxIntermediates bounds the chain accepted from the identity service.
	MaxIntermediates = 8
	// RefreshPercent is the share of the remaining lifetime after which a
	// certificate is renewed.
	RefreshPercent = 70
)

// NewCSR makes the signing request: the name as its one DNS SAN and as
// Common Name, nothing else.
func NewCSR(key *ecdsa.PrivateKey, name string) ([]byte, error) {
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:            pkix.Name{CommonName: name},
		DNSNames:           []string{name},
		SignatureAlgorithm: x509.ECDSAWithSHA256,
	}, key)
	if err != nil {
		return nil, fmt.Errorf("creating the certificate signing request: %w", err)
	}
	return der, nil
}

// Dial returns the connection to the identity service at addr (a gRPC
// target, e.g. "linkerd-identity-headless.linkerd.svc.cluster.local:8080").
// The server must present a certificate chaining to the anchors roots returns
// at each call (they change with the trust bundle) that names exactly
// serverName, the identity service's own identity; TLS 1.3 only; the client
// presents no certificate. See Conn for how calls reach the service. The
// caller closes the connection.
func Dial(addr, serverName string, roots func() *x509.CertPool, opts ...grpc.DialOption) (*Conn, error) {
	if addr == "" || serverName == "" || roots == nil || roots() == nil {
		return nil, errors.New("identity address, server name and trust anchors are required")
	}
	c := &Conn{target: addr, serverName: serverName, roots: roots, opts: append([]grpc.DialOption{
		// The identity service publishes no service config: no TXT lookups.
		grpc.WithDisableServiceConfig(),
	}, opts...)}
	// Refuse a bad target now rather than at the first call.
	cc, err := c.channel()
	if err != nil {
		return nil, err
	}
	_ = cc.Close()
	return c, nil
}

// Conn is the connection to the identity service. Each call gets a gRPC
// channel of its own, made for it and closed after it: the service's name is
// resolved and a connection made afresh for every Certify, so that no
// backoff of gRPC's carries from one attempt to the next. A channel that
// failed would wait out gRPC's own backoffs before trying again, up to two
// minutes each, and one of them (the DNS resolver's, after a lookup with no
// addresses, as for a headless Service scaled to zero) cannot be configured.
// The identity client's own schedule decides when the next attempt comes.
// Certify is called once a day, or every few seconds while identity is
// unreachable, so a TLS handshake per call costs nothing that matters.
type Conn struct {
	target     string
	serverName string
	roots      func() *x509.CertPool // the anchors now: they change with the trust bundle
	opts       []grpc.DialOption

	mu     sync.Mutex
	closed bool
	open   map[*grpc.ClientConn]struct{} // channels of calls in flight
}

var _ grpc.ClientConnInterface = (*Conn)(nil)

func (c *Conn) channel() (*grpc.ClientConn, error) {
	creds := credentials.NewTLS(ClientTLSConfig(c.serverName, c.roots()))
	cc, err := grpc.NewClient(c.target, append([]grpc.DialOption{grpc.WithTransportCredentials(creds)}, c.opts...)...)
	if err != nil {
		return nil, fmt.Errorf("identity service %q: %w", c.target, err)
	}
	return cc, nil
}

// Invoke makes one unary call on a new channel. It fails fast: a channel
// whose first connection fails (no address, refused, TLS refused) ends the
// call with Unavailable and that connection's error.
func (c *Conn) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return status.Error(codes.Canceled, "identity connection closed")
	}
	cc, err := c.channel()
	if err != nil {
		c.mu.Unlock()
		return err
	}
	if c.open == nil {
		c.open = make(map[*grpc.ClientConn]struct{})
	}
	c.open[cc] = struct{}{}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.open, cc)
		c.mu.Unlock()
		_ = cc.Close()
	}()
	return cc.Invoke(ctx, method, args, reply, opts...)
}

// NewStream is refused: the identity API is unary, and a channel per call
// has no stream to outlive.
func (c *Conn) NewStream(context.Context, *grpc.StreamDesc, string, ...grpc.CallOption) (grpc.ClientStream, error) {
	return nil, status.Error(codes.Unimplemented, "the identity connection carries unary calls only")
}

// Close ends the calls in flight and refuses further ones.
func (c *Conn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for cc := range c.open {
		_ = cc.Close()
	}
	return nil
}

// ClientTLSConfig is the TLS configuration of a call to the identity
// service: TLS 1.3, the server chaining to roots and naming exactly
// serverName.
func ClientTLSConfig(serverName string, roots *x509.CertPool) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		ServerName: serverName,
		RootCAs:    roots,
		// The standard check accepts any matching name (wildcards, extra
		// SANs); a mesh identity is exactly one DNS SAN.
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("identity service sent no certificate")
			}
			leaf := cs.PeerCertificates[0]
			if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != serverName ||
				len(leaf.IPAddresses) > 0 || len(leaf.URIs) > 0 || len(leaf.EmailAddresses) > 0 {
				return fmt.Errorf("identity service certificate names %q, want exactly %q", leaf.DNSNames, serverName)
			}
			return nil
		},
	}
}

// ReadToken reads the ServiceAccount token, at most MaxTokenBytes of it.
func ReadToken(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading the identity token: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxTokenBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading the identity token: %w", err)
	}
	if len(b) > MaxTokenBytes {
		return nil, fmt.Errorf("identity token file %s is larger than %d bytes", path, MaxTokenBytes)
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil, fmt.Errorf("identity token file %s is empty", path)
	}
	return b, nil
}

// CertificateFromResponse turns a Certify reply into a certificate for key.
// The chain's names and trust are the caller's to check (the proxy's Store,
// destination's verify); this checks the shape: parsable DER, a bounded chain, and a leaf for our own key. The
// returned time is when the first certificate of the chain, or the reply's
// valid_until if earlier, expires.
func CertificateFromResponse(resp *identityv1.CertifyResponse, key *ecdsa.PrivateKey) (*tls.Certificate, time.Time, error) {
	leafDER := resp.GetLeafCertificate()
	if len(leafDER) == 0 {
		return nil, time.Time{}, errors.New("identity reply has no leaf certificate")
	}
	inter := resp.GetIntermediateCertificates()
	if len(inter) > MaxIntermediates {
		return nil, time.Time{}, fmt.Errorf("identity reply has %d intermediate certificates, more than %d", len(inter), MaxIntermediates)
	}
	leaf, err := x509.ParseCertificate(leafDER)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("identity reply leaf certificate: %w", err)
	}
	if !key.PublicKey.Equal(leaf.PublicKey) {
		return nil, time.Time{}, errors.New("identity reply leaf certificate is not for our key")
	}
	chain := make([][]byte, 0, 1+len(inter))
	chain = append(chain, leafDER)
	expiry := leaf.NotAfter
	for i, der := range inter {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, time.Time{}, fmt.Errorf("identity reply intermediate certificate %d: %w", i, err)
		}
		if c.NotAfter.Before(expiry) {
			expiry = c.NotAfter
		}
		chain = append(chain, der)
	}
	if vu := resp.GetValidUntil(); vu != nil {
		if err := vu.CheckValid(); err != nil {
			return nil, time.Time{}, fmt.Errorf("identity reply valid_until: %w", err)
		}
		if t := vu.AsTime(); t.Before(expiry) {
			expiry = t
		}
	}
	return &tls.Certificate{Certificate: chain, PrivateKey: key, Leaf: leaf}, expiry, nil
}

// The bounds of RefreshDelay that every component uses by default: never
// renew sooner than DefaultMinRefresh after a certificate arrived (nor
// retry slower than it after a failure), never wait longer than
// DefaultMaxRefresh.
const (
	DefaultMinRefresh = 10 * time.Second
	DefaultMaxRefresh = 24 * time.Hour
)

// RefreshDelay is how long to wait before renewing a certificate that
// expires at expiry: RefreshPercent of the remaining lifetime, within
// [lo, hi].
func RefreshDelay(now, expiry time.Time, lo, hi time.Duration) time.Duration {
	d := expiry.Sub(now) / 100 * RefreshPercent
	return min(max(d, lo), hi)
}

// Backoff is the delay after the failures+1-th consecutive failure: base
// doubled per earlier failure, capped at most, then reduced by up to half
// by jitter (r in [0, 1)). It is never below base/2, so never zero for a
// positive base.
func Backoff(failures int, base, most time.Duration, r float64) time.Duration {
	d := base
	for i := 0; i < failures && d < most; i++ {
		d *= 2
	}
	d = min(d, most)
	return d - time.Duration(float64(d/2)*r)
}
