// Package metrics defines the identity component's Prometheus metrics.
package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Reasons a Certify request is rejected: the values of the reason label.
const (
	ReasonOverloaded      = "overloaded"       // RESOURCE_EXHAUSTED: too many requests at once
	ReasonNoIssuer        = "no_issuer"        // UNAVAILABLE: no valid issuer
	ReasonBadRequest      = "bad_request"      // INVALID_ARGUMENT: missing or oversized field, malformed identity
	ReasonForeignIdentity = "foreign_identity" // INVALID_ARGUMENT: identity of another control plane or trust domain
	ReasonMalformedCSR    = "malformed_csr"    // INVALID_ARGUMENT: CSR does not parse or verify, or wrong key
	ReasonCSRNames        = "csr_names"        // FAILED_PRECONDITION: CSR names other than the identity
	ReasonMalformedToken  = "malformed_token"  // INVALID_ARGUMENT: token is not a JWT
	ReasonTokenReview     = "token_review"     // UNAVAILABLE: the Kubernetes API could not be asked
	ReasonUnauthenticated = "unauthenticated"  // UNAUTHENTICATED: the token was not accepted
	ReasonIdentityDenied  = "identity_denied"  // FAILED_PRECONDITION: the token is another ServiceAccount's, or none
	ReasonInternal        = "internal"         // INTERNAL: signing failed
)

// Reasons lists every rejection reason.
var Reasons = []string{
	ReasonOverloaded, ReasonNoIssuer, ReasonBadRequest, ReasonForeignIdentity, ReasonMalformedCSR,
	ReasonCSRNames, ReasonMalformedToken, ReasonTokenReview, ReasonUnauthenticated,
	ReasonIdentityDenied, ReasonInternal,
}

// Results of an issuer reload: the values of the result label.
const (
	IssuerUpdated = "updated" // a new issuer is in use
	IssuerRefused = "refused" // the files did not hold a valid issuer; the old one is kept
)

// Metrics are the identity component's own metrics.
type Metrics struct {
	// Issued counts leaf certificates issued.
	Issued prometheus.Counter
	// Rejected counts Certify requests refused, by reason.
	Rejected *prometheus.CounterVec
	// Duration is the time Certify takes, by result (issued or rejected).
	Duration *prometheus.HistogramVec
	// IssuerReloads counts issuer reloads, by result.
	IssuerReloads *prometheus.CounterVec
}

// New registers the metrics with reg. issuerExpiry returns the current
// issuer chain's expiry, or false when none is loaded; it feeds the issuer
// gauges at each scrape.
func New(reg prometheus.Registerer, issuerExpiry func() (time.Time, bool)) *Metrics {
	m := &Metrics{
		Issued: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "identity_certificates_issued_total",
			Help: "Leaf certificates issued.",
		}),
		Rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "identity_certificates_rejected_total",
			Help: "Certify requests refused, by reason.",
		}, []string{"reason"}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "identity_certify_duration_seconds",
			Help:    "Time to answer a Certify request (token review and signing included), by result.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"result"}),
		IssuerReloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "identity_issuer_reloads_total",
			Help: "Issuer files read after a change, by result: updated (now in use) or refused (old issuer kept).",
		}, []string{"result"}),
	}
	for _, r := range Reasons {
		m.Rejected.WithLabelValues(r)
	}
	for _, r := range []string{"issued", "rejected"} {
		m.Duration.WithLabelValues(r)
	}
	for _, r := range []string{IssuerUpdated, IssuerRefused} {
		m.IssuerReloads.WithLabelValues(r)
	}
	reg.MustRegister(m.Issued, m.Rejected, m.Duration, m.IssuerReloads, &issuerCollector{expiry: issuerExpiry, now: time.Now})
	return m
}

var (
	ttlDesc = prometheus.NewDesc("identity_issuer_cert_ttl_seconds",
		"Seconds until the issuer chain expires (the issuer or anything above it); absent while no issuer is loaded.", nil, nil)
	expiryDesc = prometheus.NewDesc("identity_issuer_cert_expiration_timestamp_seconds",
		"When the issuer chain expires, in Unix seconds; absent while no issuer is loaded.", nil, nil)
)

// issuerCollector reports the issuer's lifetime at scrape time.
type issuerCollector struct {
	expiry func() (time.Time, bool)
	now    func() time.Time
}

func (c *issuerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- ttlDesc
	ch <- expiryDesc
}

func (c *issuerCollector) Collect(ch chan<- prometheus.Metric) {
	exp, ok := c.expiry()
	if !ok {
		return
	}
	ch <- prometheus.MustNewConstMetric(ttlDesc, prometheus.GaugeValue, exp.Sub(c.now()).Seconds())
	ch <- prometheus.MustNewConstMetric(expiryDesc, prometheus.GaugeValue, float64(exp.UnixNano())/1e9)
}
