// Package metrics defines destination's Prometheus metrics. One Metrics is
// made per process (or per test) on its own registry.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// RPC label values.
const (
	RPCGet        = "get"
	RPCGetProfile = "get_profile"
	// RPCWatchPort is the inbound policy API's WatchPort.
	RPCWatchPort = "watch_port"
)

// Metrics are destination's own metrics (the gRPC server's come from the
// go-grpc-middleware provider).
type Metrics struct {
	// StreamsOpen counts the streams open now, by rpc.
	StreamsOpen *prometheus.GaugeVec
	// UpdatesSent counts the updates sent on streams, by rpc (an add split
	// into several messages counts once).
	UpdatesSent *prometheus.CounterVec
	// StreamResets counts the streams ended because their queue overflowed.
	StreamResets *prometheus.CounterVec
	// Watchers counts the shared watchers alive now, by rpc.
	Watchers *prometheus.GaugeVec
	// InformerEvents counts the informer events received, by resource.
	InformerEvents *prometheus.CounterVec
	// UpdateDelay is the time from an informer event to the resulting
	// updates sitting in every affected stream's queue.
	UpdateDelay prometheus.Histogram
	// ProfileProblems counts the ServiceProfile parts that could not be
	// served (bad regex, timeout or budget).
	ProfileProblems prometheus.Counter
	// PolicyInvalid counts the policy objects found unusable and left out,
	// by kind (once per change of the object).
	PolicyInvalid *prometheus.CounterVec
}

// New makes the metrics and registers them on reg.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		StreamsOpen: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "destination_streams_open", Help: "Streams open now.",
		}, []string{"rpc"}),
		UpdatesSent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "destination_updates_sent_total", Help: "Updates sent on streams (an add split into several messages counts once).",
		}, []string{"rpc"}),
		StreamResets: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "destination_stream_resets_total", Help: "Streams reset because they could not keep up (queue overflow).",
		}, []string{"rpc"}),
		Watchers: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "destination_watchers", Help: "Shared per-target watchers alive now.",
		}, []string{"rpc"}),
		InformerEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "destination_informer_events_total", Help: "Informer events received.",
		}, []string{"resource"}),
		UpdateDelay: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "destination_update_delay_seconds",
			Help:    "Time from an informer event to the resulting updates being queued on every affected stream (informer lag inside destination).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}),
		ProfileProblems: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "destination_profile_problems_total", Help: "ServiceProfile parts left out because they could not be served.",
		}),
		PolicyInvalid: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "destination_policy_invalid_objects_total", Help: "Policy objects (by kind) left out of the inbound policy because they cannot be used; counted on each change.",
		}, []string{"kind"}),
	}
	for _, rpc := range []string{RPCGet, RPCGetProfile, RPCWatchPort} {
		m.StreamsOpen.WithLabelValues(rpc)
		m.UpdatesSent.WithLabelValues(rpc)
		m.StreamResets.WithLabelValues(rpc)
		m.Watchers.WithLabelValues(rpc)
	}
	reg.MustRegister(m.StreamsOpen, m.UpdatesSent, m.StreamResets, m.Watchers, m.InformerEvents, m.UpdateDelay, m.ProfileProblems, m.PolicyInvalid)
	return m
}
