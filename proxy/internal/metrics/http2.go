package metrics

import "github.com/prometheus/client_golang/prometheus"

// registerHTTP2Floods makes and registers http2_flood_goaway_total.
func registerHTTP2Floods(reg *prometheus.Registry) *prometheus.CounterVec {
	v := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "http2_flood_goaway_total",
		Help: "HTTP/2 client connections closed with GOAWAY ENHANCE_YOUR_CALM because they exceeded a per-connection budget: reason=rst_stream (rapid resets), settings, ping, window_update, empty_frames, continuation, ignored_frames, stream_errors.",
	}, []string{"direction", "reason"})
	reg.MustRegister(v)
	return v
}

// HTTP2Floods counts one side's HTTP/2 client connections closed for a
// flood, by reason.
type HTTP2Floods struct{ v *prometheus.CounterVec }

// HTTP2Floods returns the flood counters of a direction (inbound or
// outbound).
func (m *Metrics) HTTP2Floods(direction string) *HTTP2Floods {
	return &HTTP2Floods{v: m.h2Floods.MustCurryWith(prometheus.Labels{"direction": direction})}
}

// Inc counts one connection closed for reason; a nil HTTP2Floods counts
// nothing.
func (f *HTTP2Floods) Inc(reason string) {
	if f != nil {
		f.v.WithLabelValues(reason).Inc()
	}
}
