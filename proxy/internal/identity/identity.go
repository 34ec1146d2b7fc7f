package identity

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	mathrand "math/rand/v2"
	"os"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	identityv1 "github.com/linkerd-go/linkerd-go/api/linkerd/identity/v1"
	"github.com/linkerd-go/linkerd-go/proxy/internal/meshtls"
)

// Defaults of the Config fields left zero.
const (
	DefaultMinRefresh  = 10 * time.Second
	DefaultMaxRefresh  = 24 * time.Hour
	DefaultBackoffBase = 500 * time.Millisecond
	// DefaultUncertifiedBackoffMax caps the retry delay of a proxy that holds
	// no valid certificate: it is not ready, and its pod waits for it (the
	// injector's startup probe gives it two minutes).
	DefaultUncertifiedBackoffMax = 2 * time.Second
	// DefaultBackoffMax caps the retry delay of a proxy that still holds a
	// valid certificate: it serves meanwhile, and renewal starts with hours
	// of validity left.
	DefaultBackoffMax     = 10 * time.Second
	DefaultCertifyTimeout = 10 * time.Second
	// DefaultTokenPath is where the injector mounts the projected token.
	DefaultTokenPath = "/var/run/secrets/tokens/linkerd-identity-token"
)

const (
	// maxTokenBytes bounds the token file read: a ServiceAccount JWT is a
	// few KiB.
	maxTokenBytes = 64 << 10
	// maxIntermediates bounds the chain accepted from the identity service.
	maxIntermediates = 8
	// refreshPercent is the share of the remaining lifetime after which the
	// certificate is renewed.
	refreshPercent = 70
	// failureLogEvery bounds how often a failure that repeats the previous
	// one is logged; a different error is logged at once.
	failureLogEvery = 10 * time.Second
)

// Config is the identity client's configuration. Zero durations take the
// defaults above; call Validate after filling it.
type Config struct {
	// TokenPath is the file holding the ServiceAccount token (audience
	// identity.l5d.io) that authenticates the proxy to identity.
	TokenPath string
	// MinRefresh and MaxRefresh bound the delay before renewing a
	// certificate.
	MinRefresh, MaxRefresh time.Duration
	// BackoffBase is the first retry delay after a failure; it doubles on
	// each further consecutive failure up to a cap: UncertifiedBackoffMax
	// while the proxy holds no valid certificate, BackoffMax while it holds
	// one (and never past that certificate's expiry). Jitter takes each
	// delay down by up to half.
	BackoffBase, UncertifiedBackoffMax, BackoffMax time.Duration
	// CertifyTimeout bounds one Certify call.
	CertifyTimeout time.Duration
}

func (c *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.MinRefresh, DefaultMinRefresh)
	def(&c.MaxRefresh, DefaultMaxRefresh)
	def(&c.BackoffBase, DefaultBackoffBase)
	def(&c.UncertifiedBackoffMax, DefaultUncertifiedBackoffMax)
	def(&c.BackoffMax, DefaultBackoffMax)
	def(&c.CertifyTimeout, DefaultCertifyTimeout)
}

// Validate fills in the defaults and reports a configuration that cannot
// work.
func (c *Config) Validate() error {
	c.setDefaults()
	var errs []error
	if c.TokenPath == "" {
		errs = append(errs, errors.New("identity token path is empty"))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"min refresh", c.MinRefresh}, {"max refresh", c.MaxRefresh}, {"backoff base", c.BackoffBase}, {"uncertified backoff max", c.UncertifiedBackoffMax}, {"backoff max", c.BackoffMax}, {"certify timeout", c.CertifyTimeout}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("identity %s %v is negative", d.name, d.v))
		}
	}
	if c.MinRefresh > c.MaxRefresh {
		errs = append(errs, fmt.Errorf("identity min refresh %v exceeds max refresh %v", c.MinRefresh, c.MaxRefresh))
	}
	if c.BackoffBase > c.UncertifiedBackoffMax {
		errs = append(errs, fmt.Errorf("identity backoff base %v exceeds uncertified backoff max %v", c.BackoffBase, c.UncertifiedBackoffMax))
	}
	if c.UncertifiedBackoffMax > c.BackoffMax {
		// A proxy without a certificate is the one that cannot serve.
		errs = append(errs, fmt.Errorf("identity uncertified backoff max %v exceeds backoff max %v", c.UncertifiedBackoffMax, c.BackoffMax))
	}
	return errors.Join(errs...)
}

// Client obtains and renews the proxy's certificate. Create it with New and
// start it with Run.
type Client struct {
	cfg     Config
	store   *meshtls.Store
	svc     identityv1.IdentityServiceClient
	log     logr.Logger
	metrics *metrics
	key     *ecdsa.PrivateKey
	csr     []byte

	clock  clock
	jitter func() float64 // in [0, 1)
}

// New returns a Client that certifies store's local identity through conn
// (see Dial) and installs the certificates in store. It makes the private
// key and the signing request, and registers the metrics on reg.
func New(cfg Config, store *meshtls.Store, conn grpc.ClientConnInterface, reg prometheus.Registerer, log logr.Logger) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if store == nil || conn == nil || reg == nil {
		return nil, errors.New("identity client needs a store, a connection and a registerer")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating the private key: %w", err)
	}
	csr, err := newCSR(key, store.LocalName())
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	return &Client{
		cfg:     cfg,
		store:   store,
		svc:     identityv1.NewIdentityServiceClient(conn),
		log:     log.WithValues("identity", store.LocalName()),
		metrics: m,
		key:     key,
		csr:     csr,
		clock:   realClock{},
		jitter:  mathrand.Float64,
	}, nil
}

// newCSR makes the signing request: the name as its one DNS SAN and as
// Common Name, nothing else.
func newCSR(key *ecdsa.PrivateKey, name string) ([]byte, error) {
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
// serverName, the identity service's own identity; TLS 1.3 only; the proxy
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
	creds := credentials.NewTLS(clientTLSConfig(c.serverName, c.roots()))
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

func clientTLSConfig(serverName string, roots *x509.CertPool) *tls.Config {
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

// Run certifies the local identity, then renews the certificate until ctx
// ends, when it returns nil. Failures are retried with backoff; they are
// logged and counted, never returned.
func (c *Client) Run(ctx context.Context) error {
	started := c.clock.Now()
	var (
		expiry   time.Time // of the certificate held; zero before the first
		failures int       // consecutive
		attempts int
		flog     failureLog
	)
	for {
		attempts++
		newExpiry, err := c.certify(ctx)
		if ctx.Err() != nil {
			c.logStop(expiry, attempts, c.clock.Now().Sub(started), flog.last)
			return nil
		}
		now := c.clock.Now()
		var wait time.Duration
		if err != nil {
			holding := now.Before(expiry)
			wait = c.retryDelay(failures, holding, expiry.Sub(now))
			failures++
			c.metrics.refresh.WithLabelValues("error").Inc()
			flog.failed(c.log, now, err, failures, wait, holding)
		} else {
			wait = refreshDelay(now, newExpiry, c.cfg.MinRefresh, c.cfg.MaxRefresh)
			c.metrics.refresh.WithLabelValues("ok").Inc()
			c.metrics.expiration.Set(float64(newExpiry.Unix()))
			kv := []any{"expiry", newExpiry, "refreshIn", wait}
			if failures > 0 {
				kv = append(kv, "afterFailures", failures, "failingFor", now.Sub(flog.since))
			}
			c.log.Info("certificate installed", kv...)
			expiry, failures = newExpiry, 0
			flog = failureLog{}
		}
		c.metrics.refreshIn.Set(wait.Seconds())
		t := c.clock.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			c.logStop(expiry, attempts, c.clock.Now().Sub(started), flog.last)
			return nil
		case <-t.C():
		}
	}
}

// retryDelay is the wait after the failures+1-th consecutive failure: the
// jittered backoff, capped by UncertifiedBackoffMax without a valid
// certificate, else by BackoffMax and by what is left of the certificate's
// validity (left).
func (c *Client) retryDelay(failures int, holding bool, left time.Duration) time.Duration {
	if !holding {
		return backoff(failures, c.cfg.BackoffBase, c.cfg.UncertifiedBackoffMax, c.jitter())
	}
	return min(backoff(failures, c.cfg.BackoffBase, c.cfg.BackoffMax, c.jitter()), left)
}

// logStop says why the client stops; when it never held a certificate,
// loudly: the proxy is being stopped without ever having been ready (the
// kubelet does so when the startup probe's budget runs out).
func (c *Client) logStop(expiry time.Time, attempts int, running time.Duration, lastErr error) {
	if expiry.IsZero() {
		c.log.Error(lastErr, "stopping without a certificate: identity did not certify this proxy",
			"attempts", attempts, "running", running)
		return
	}
	c.log.Info("identity client stopped", "expiry", expiry)
}

// failureLog rate-limits the failure lines of one run of failures: the
// first, any whose error differs from the previous one, and otherwise one
// per failureLogEvery, each saying how many it stands for.
type failureLog struct {
	since      time.Time // first failure of the run
	last       error
	loggedAt   time.Time
	suppressed int
}

func (l *failureLog) failed(log logr.Logger, now time.Time, err error, failures int, wait time.Duration, holding bool) {
	if failures == 1 {
		l.since = now
	}
	changed := l.last == nil || l.last.Error() != err.Error()
	l.last = err
	if !changed && now.Sub(l.loggedAt) < failureLogEvery {
		l.suppressed++
		return
	}
	kv := []any{"failures", failures, "retryIn", wait, "nextAttempt", now.Add(wait).Round(0), "holdingCertificate", holding}
	if l.suppressed > 0 {
		kv = append(kv, "sameErrorSinceLastLine", l.suppressed)
	}
	if !holding {
		kv = append(kv, "waitingFor", now.Sub(l.since))
	}
	log.Error(err, "certification failed", kv...)
	l.loggedAt, l.suppressed = now, 0
}

// certify makes one attempt: read the token, call Certify, install the
// certificate. It returns when the installed chain expires.
func (c *Client) certify(ctx context.Context) (time.Time, error) {
	token, err := readToken(c.cfg.TokenPath)
	if err != nil {
		return time.Time{}, err
	}
	callCtx, cancel := context.WithTimeout(ctx, c.cfg.CertifyTimeout)
	defer cancel()
	resp, err := c.svc.Certify(callCtx, &identityv1.CertifyRequest{
		Identity:                  c.store.LocalName(),
		Token:                     token,
		CertificateSigningRequest: c.csr,
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("certify: %w", err)
	}
	cert, expiry, err := certificateFromResponse(resp, c.key)
	if err != nil {
		return time.Time{}, err
	}
	if err := c.store.Set(cert); err != nil {
		return time.Time{}, err
	}
	return expiry, nil
}

// readToken reads the ServiceAccount token, at most maxTokenBytes of it.
func readToken(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading the identity token: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxTokenBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading the identity token: %w", err)
	}
	if len(b) > maxTokenBytes {
		return nil, fmt.Errorf("identity token file %s is larger than %d bytes", path, maxTokenBytes)
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil, fmt.Errorf("identity token file %s is empty", path)
	}
	return b, nil
}

// certificateFromResponse turns a Certify reply into a certificate for key.
// The chain's names and trust are checked by the Store; this checks the
// shape: parsable DER, a bounded chain, and a leaf for our own key. The
// returned time is when the first certificate of the chain, or the reply's
// valid_until if earlier, expires.
func certificateFromResponse(resp *identityv1.CertifyResponse, key *ecdsa.PrivateKey) (*tls.Certificate, time.Time, error) {
	leafDER := resp.GetLeafCertificate()
	if len(leafDER) == 0 {
		return nil, time.Time{}, errors.New("identity reply has no leaf certificate")
	}
	inter := resp.GetIntermediateCertificates()
	if len(inter) > maxIntermediates {
		return nil, time.Time{}, fmt.Errorf("identity reply has %d intermediate certificates, more than %d", len(inter), maxIntermediates)
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

// refreshDelay is how long to wait before renewing a certificate that
// expires at expiry: refreshPercent of the remaining lifetime, within
// [lo, hi].
func refreshDelay(now, expiry time.Time, lo, hi time.Duration) time.Duration {
	d := expiry.Sub(now) / 100 * refreshPercent
	return min(max(d, lo), hi)
}

// backoff is the delay after the failures+1-th consecutive failure: base
// doubled per earlier failure, capped at most, then reduced by up to half
// by jitter (r in [0, 1)). It is never below base/2, so never zero for a
// positive base.
func backoff(failures int, base, most time.Duration, r float64) time.Duration {
	d := base
	for i := 0; i < failures && d < most; i++ {
		d *= 2
	}
	d = min(d, most)
	return d - time.Duration(float64(d/2)*r)
}

type metrics struct {
	expiration prometheus.Gauge
	refreshIn  prometheus.Gauge
	refresh    *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		expiration: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "identity_cert_expiration_timestamp_seconds",
			Help: "When the proxy's certificate chain expires, in seconds since the Unix epoch (0 until it holds one).",
		}),
		refreshIn: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "identity_cert_refresh_seconds",
			Help: "Seconds from the last certification attempt to the next one.",
		}),
		refresh: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "identity_cert_refresh_total",
			Help: "Certification attempts, by result (ok or error).",
		}, []string{"result"}),
	}
	for _, c := range []prometheus.Collector{m.expiration, m.refreshIn, m.refresh} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering identity metrics: %w", err)
		}
	}
	// Both series exist from the start, so a rate over them is defined.
	m.refresh.WithLabelValues("ok")
	m.refresh.WithLabelValues("error")
	return m, nil
}

// clock is the time seam: the renewal schedule runs on it, so tests drive
// it without sleeping.
type clock interface {
	Now() time.Time
	NewTimer(d time.Duration) timer
}

type timer interface {
	C() <-chan time.Time
	Stop() bool
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) NewTimer(d time.Duration) timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (t realTimer) C() <-chan time.Time { return t.t.C }

func (t realTimer) Stop() bool { return t.t.Stop() }
