package discovery

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// kind is what a stream watches.
type kind int

const (
	kindEndpoints kind = iota
	kindProfile
	numKinds
)

func (k kind) String() string {
	if k == kindProfile {
		return "profile"
	}
	return "endpoints"
}

// Reasons of discovery_target_refusals_total.
const (
	reasonTooMany = "too_many_targets"
	reasonInvalid = "invalid_target"
	reasonClosed  = "closed"
)

// kindMetrics are the metrics of one kind of stream.
type kindMetrics struct {
	streamsOpen prometheus.Gauge
	updates     prometheus.Counter
	invalid     prometheus.Counter
	reconnects  prometheus.Counter
	evictions   prometheus.Counter
	targets     prometheus.Gauge
	refusals    *prometheus.CounterVec // by reason
}

func newMetrics(reg prometheus.Registerer) (m [numKinds]kindMetrics) {
	streamsOpen := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "discovery_streams_open",
		Help: "Streams to the destination service open now.",
	}, []string{"kind"})
	updates := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "discovery_updates_total",
		Help: "Messages received from the destination service.",
	}, []string{"kind"})
	invalid := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "discovery_invalid_updates_total",
		Help: "Messages, or parts of messages, from the destination service dropped as invalid.",
	}, []string{"kind"})
	reconnects := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "discovery_reconnects_total",
		Help: "Streams to the destination service reopened after a failure.",
	}, []string{"kind"})
	evictions := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "discovery_evictions_total",
		Help: "Targets evicted from the discovery cache (idle, or to make room).",
	}, []string{"kind"})
	targets := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "discovery_targets",
		Help: "Targets in the discovery cache now.",
	}, []string{"kind"})
	refusals := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "discovery_target_refusals_total",
		Help: "Watches refused, by reason (too_many_targets, invalid_target, closed).",
	}, []string{"kind", "reason"})
	if reg != nil {
		streamsOpen = register(reg, streamsOpen)
		updates = register(reg, updates)
		invalid = register(reg, invalid)
		reconnects = register(reg, reconnects)
		evictions = register(reg, evictions)
		targets = register(reg, targets)
		refusals = register(reg, refusals)
	}
	for k := range numKinds {
		l := k.String()
		m[k] = kindMetrics{
			streamsOpen: streamsOpen.WithLabelValues(l),
			updates:     updates.WithLabelValues(l),
			invalid:     invalid.WithLabelValues(l),
			reconnects:  reconnects.WithLabelValues(l),
			evictions:   evictions.WithLabelValues(l),
			targets:     targets.WithLabelValues(l),
			refusals:    refusals.MustCurryWith(prometheus.Labels{"kind": l}),
		}
	}
	return m
}

// register registers c, or returns the collector already registered under
// its name (a second Client on the same registry shares the series).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		if are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
	}
	return c
}
