package identity

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	identityv1 "github.com/linkerd-go/linkerd-go/api/linkerd/identity/v1"
	"github.com/linkerd-go/linkerd-go/component/clock"
	"github.com/linkerd-go/linkerd-go/component/identityclient"
	"github.com/linkerd-go/linkerd-go/proxy/internal/meshtls"
)

// Defaults of the Config fields left zero.
const (
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
	def(&c.MinRefresh, identityclient.DefaultMinRefresh)
	def(&c.MaxRefresh, identityclient.DefaultMaxRefresh)
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

	clock  clock.Clock
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
	csr, err := identityclient.NewCSR(key, store.LocalName())
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
		clock:   clock.Real,
		jitter:  mathrand.Float64,
	}, nil
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
			wait = identityclient.RefreshDelay(now, newExpiry, c.cfg.MinRefresh, c.cfg.MaxRefresh)
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
		fired, stop := c.clock.NewTimer(wait)
		select {
		case <-ctx.Done():
			stop()
			c.logStop(expiry, attempts, c.clock.Now().Sub(started), flog.last)
			return nil
		case <-fired:
		}
	}
}

// retryDelay is the wait after the failures+1-th consecutive failure: the
// jittered backoff, capped by UncertifiedBackoffMax without a valid
// certificate, else by BackoffMax and by what is left of the certificate's
// validity (left).
func (c *Client) retryDelay(failures int, holding bool, left time.Duration) time.Duration {
	if !holding {
		return identityclient.Backoff(failures, c.cfg.BackoffBase, c.cfg.UncertifiedBackoffMax, c.jitter())
	}
	return min(identityclient.Backoff(failures, c.cfg.BackoffBase, c.cfg.BackoffMax, c.jitter()), left)
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
	token, err := identityclient.ReadToken(c.cfg.TokenPath)
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
	cert, expiry, err := identityclient.CertificateFromResponse(resp, c.key)
	if err != nil {
		return time.Time{}, err
	}
	if err := c.store.Set(cert); err != nil {
		return time.Time{}, err
	}
	return expiry, nil
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
