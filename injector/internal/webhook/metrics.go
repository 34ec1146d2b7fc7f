package webhook

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the webhook's Prometheus metrics. Every label has a bounded
// set of values.
type Metrics struct {
	requests  *prometheus.CounterVec
	responses *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	invalid   *prometheus.CounterVec
}

// Values of the result label.
const (
	resultInjected  = "injected"
	resultSkipped   = "skipped"
	resultPatched   = "patched"
	resultUnchanged = "unchanged"
	resultError     = "error"
)

// NewMetrics registers the webhook's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "proxy_inject_admission_requests_total",
			Help: "Admission requests received, by resource kind (pod, service, other, unknown).",
		}, []string{"kind"}),
		responses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "proxy_inject_admission_responses_total",
			Help: "Admission responses sent, by resource kind, result (injected, skipped, patched, unchanged, error) and reason (a skip reason or an error class).",
		}, []string{"kind", "result", "reason"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "proxy_inject_admission_duration_seconds",
			Help:    "Time from reading an admission request to writing its response, by resource kind.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}, []string{"kind"}),
		invalid: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "proxy_inject_invalid_annotations_total",
			Help: "Bad config.linkerd.io/* values found on pods or their namespaces, by annotation.",
		}, []string{"annotation"}),
	}
	reg.MustRegister(m.requests, m.responses, m.duration, m.invalid)
	return m
}
