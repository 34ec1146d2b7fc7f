// Package identity obtains and renews destination's own certificate from the
// identity service, like any meshed workload: an in-memory ECDSA P-256 key,
// a CSR for its identity name, Certify with its ServiceAccount token over TLS
// verified against the trust anchors, and renewal well before expiry. The
// connection, CSR, token, reply and schedule are the shared
// component/identityclient's; the schedule's loop and what becomes of the
// certificate (destination's servers present it) are destination's.
package identity

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"

	identityv1 "github.com/linkerd-go/linkerd-go/api/linkerd/identity/v1"
	"github.com/linkerd-go/linkerd-go/component/clock"
	"github.com/linkerd-go/linkerd-go/component/identityclient"
)

// certifyTimeout bounds one Certify call. The renewal bounds default to
// identityclient's.
const certifyTimeout = 10 * time.Second

// Config configures a Client.
type Config struct {
	// Name is the identity to ask for.
	Name identityv1.Name
	// TrustAnchors verify the identity service and the issued chain.
	TrustAnchors *x509.CertPool
	// TokenFile holds the ServiceAccount token (audience identity.l5d.io);
	// it is read before each request, as the kubelet rotates it.
	TokenFile string
	// MinRefresh and MaxRefresh bound the wait before a renewal; after a
	// failure the next attempt comes after a backoff from one second up to
	// MinRefresh.
	MinRefresh, MaxRefresh time.Duration
}

// Client holds the current certificate.
type Client struct {
	log    logr.Logger
	cfg    Config
	rpc    identityv1.IdentityServiceClient
	key    *ecdsa.PrivateKey
	csr    []byte
	cert   atomic.Pointer[tls.Certificate]
	ready  chan struct{}
	once   sync.Once
	expiry prometheus.Gauge
	fails  prometheus.Counter
	// clock schedules renewals and retries; tests replace it to drive the
	// schedule without waiting. Certificates are always verified against the
	// real time.
	clock clock.Clock
}

// New makes a Client that certifies through rpc and registers its metrics
// on reg.
func New(log logr.Logger, cfg Config, rpc identityv1.IdentityServiceClient, reg prometheus.Registerer) (*Client, error) {
	if err := cfg.Name.Validate(); err != nil {
		return nil, err
	}
	if cfg.TrustAnchors == nil {
		return nil, errors.New("no trust anchors")
	}
	if cfg.MinRefresh <= 0 {
		cfg.MinRefresh = identityclient.DefaultMinRefresh
	}
	if cfg.MaxRefresh < cfg.MinRefresh {
		cfg.MaxRefresh = max(identityclient.DefaultMaxRefresh, cfg.MinRefresh)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	csr, err := identityclient.NewCSR(key, cfg.Name.String())
	if err != nil {
		return nil, err
	}
	c := &Client{
		log: log, cfg: cfg, rpc: rpc, key: key, csr: csr, ready: make(chan struct{}), clock: clock.Real,
		expiry: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "destination_identity_cert_expiry_timestamp_seconds",
			Help: "When the server certificate destination holds expires (Unix time); 0 before the first.",
		}),
		fails: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "destination_identity_certify_failures_total",
			Help: "Failed attempts to obtain or renew destination's certificate.",
		}),
	}
	reg.MustRegister(c.expiry, c.fails)
	return c, nil
}

// ReadTrustAnchors reads a PEM bundle of one or more certificates.
func ReadTrustAnchors(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificate", path)
	}
	return pool, nil
}

// Ready reports whether a certificate is held.
func (c *Client) Ready() bool { return c.cert.Load() != nil }

// WaitReady blocks until a certificate is held or ctx is done.
func (c *Client) WaitReady(ctx context.Context) error {
	select {
	case <-c.ready:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// Certificate returns the current certificate, or nil.
func (c *Client) Certificate() *tls.Certificate { return c.cert.Load() }

// ServerTLSConfig returns the TLS configuration of a server presenting the
// current certificate: TLS 1.3, client certificates verified against the
// trust anchors when presented.
func (c *Client) ServerTLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			if cert := c.cert.Load(); cert != nil {
				return cert, nil
			}
			return nil, errors.New("no certificate yet")
		},
		ClientAuth: tls.VerifyClientCertIfGiven,
		ClientCAs:  c.cfg.TrustAnchors,
	}
}

// Run obtains a certificate and renews it until ctx is done.
func (c *Client) Run(ctx context.Context) error {
	backoff := time.Second
	for {
		var wait time.Duration
		notAfter, err := c.certify(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			c.fails.Inc()
			wait = min(backoff, c.cfg.MinRefresh)
			backoff = min(2*backoff, c.cfg.MinRefresh)
			c.log.Error(err, "could not obtain a certificate", "identity", c.cfg.Name.String(), "retryIn", wait)
		} else {
			backoff = time.Second
			wait = identityclient.RefreshDelay(c.clock.Now(), notAfter, c.cfg.MinRefresh, c.cfg.MaxRefresh)
			c.log.V(1).Info("certificate obtained", "identity", c.cfg.Name.String(), "notAfter", notAfter, "renewIn", wait)
		}
		timer, stop := c.clock.NewTimer(wait)
		select {
		case <-ctx.Done():
			stop()
			return nil
		case <-timer:
		}
	}
}

func (c *Client) certify(ctx context.Context) (time.Time, error) {
	token, err := identityclient.ReadToken(c.cfg.TokenFile)
	if err != nil {
		return time.Time{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, certifyTimeout)
	defer cancel()
	rsp, err := c.rpc.Certify(ctx, &identityv1.CertifyRequest{
		Identity:                  c.cfg.Name.String(),
		Token:                     token,
		CertificateSigningRequest: c.csr,
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("certify: %w", err)
	}
	cert, err := c.verify(rsp)
	if err != nil {
		return time.Time{}, fmt.Errorf("refusing the issued certificate: %w", err)
	}
	c.cert.Store(cert)
	c.once.Do(func() { close(c.ready) })
	c.expiry.Set(float64(cert.Leaf.NotAfter.Unix()))
	return cert.Leaf.NotAfter, nil
}

// verify checks that the response holds a certificate for our key and name
// that chains to the trust anchors.
func (c *Client) verify(rsp *identityv1.CertifyResponse) (*tls.Certificate, error) {
	cert, _, err := identityclient.CertificateFromResponse(rsp, c.key)
	if err != nil {
		return nil, err
	}
	inter := x509.NewCertPool()
	for _, der := range cert.Certificate[1:] {
		ic, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, err
		}
		inter.AddCert(ic)
	}
	if _, err := cert.Leaf.Verify(x509.VerifyOptions{
		Roots:         c.cfg.TrustAnchors,
		Intermediates: inter,
		DNSName:       c.cfg.Name.String(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}); err != nil {
		return nil, err
	}
	return cert, nil
}
