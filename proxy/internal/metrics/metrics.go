// Package metrics defines the proxy's Prometheus families, with the names
// and labels Linkerd's dashboards expect (request_total, response_total,
// response_latency_ms, tcp_*), on a registry the proxy owns.
//
// Label values are resolved once per connection or endpoint into a Handles
// value (a cache keyed by the label set), so the per-request cost is a few
// atomic adds rather than a label hash.
package metrics

import (
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Labels identify a traffic stream. All fields are label values; empty
// values are exported as empty labels.
type Labels struct {
	Direction  string // inbound | outbound
	Authority  string // HTTP authority (empty for TCP)
	TargetAddr string // ip:port the traffic goes to
	TLS        string // "true", "false" or "no_identity"
	ClientID   string // inbound: the client's mesh identity
	ServerID   string // outbound: the server's mesh identity
	Dst        DstLabels
}

// DstLabels describe the destination workload, from discovery's metric
// labels.
type DstLabels struct {
	Namespace, Service, Pod, ServiceAccount string
	Deployment, StatefulSet, DaemonSet, Job string
	Zone                                    string
}

// DstFromMap maps discovery's metric labels (namespace, service, pod,
// serviceaccount, deployment, statefulset, daemonset, job, zone) onto
// DstLabels; other keys are dropped to keep the label set fixed.
func DstFromMap(m map[string]string) DstLabels {
	return DstLabels{
		Namespace: m["namespace"], Service: m["service"], Pod: m["pod"],
		ServiceAccount: m["serviceaccount"], Deployment: m["deployment"],
		StatefulSet: m["statefulset"], DaemonSet: m["daemonset"], Job: m["job"],
		Zone: m["zone"],
	}
}

var labelNames = []string{
	"direction", "authority", "target_addr", "tls", "client_id", "server_id",
	"dst_namespace", "dst_service", "dst_pod", "dst_serviceaccount",
	"dst_deployment", "dst_statefulset", "dst_daemonset", "dst_job", "dst_zone",
}

func (l Labels) values() []string {
	return []string{
		l.Direction, l.Authority, l.TargetAddr, l.TLS, l.ClientID, l.ServerID,
		l.Dst.Namespace, l.Dst.Service, l.Dst.Pod, l.Dst.ServiceAccount,
		l.Dst.Deployment, l.Dst.StatefulSet, l.Dst.DaemonSet, l.Dst.Job, l.Dst.Zone,
	}
}

// latencyBuckets are Linkerd's response_latency_ms buckets.
var latencyBuckets = []float64{1, 2, 3, 4, 5, 10, 20, 30, 40, 50, 100, 200, 300, 400, 500, 1000, 2000, 3000, 4000, 5000, 10000, 20000, 30000, 40000, 50000}

// Metrics are the proxy's traffic metrics.
type Metrics struct {
	Registry *prometheus.Registry

	requests  *prometheus.CounterVec
	responses *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	tcpOpen   *prometheus.CounterVec
	tcpClose  *prometheus.CounterVec
	tcpConns  *prometheus.GaugeVec
	tcpRead   *prometheus.CounterVec
	tcpWrite  *prometheus.CounterVec
	h2Floods  *prometheus.CounterVec

	loadShed    *prometheus.CounterVec
	pending     *prometheus.GaugeVec
	connections *prometheus.GaugeVec
	refused     *prometheus.CounterVec
	acceptErrs  *prometheus.CounterVec

	mu      sync.RWMutex
	handles map[Labels]*Handles
}

// New registers the families, plus the Go and process collectors, on a new
// registry.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	responseLabels := append(append([]string{}, labelNames...), "status_code", "classification", "grpc_status", "error")
	m := &Metrics{
		Registry:  reg,
		requests:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "request_total", Help: "HTTP requests received (inbound) or sent (outbound)."}, labelNames),
		responses: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "response_total", Help: "HTTP responses, by status, classification and gRPC status."}, responseLabels),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "response_latency_ms", Help: "Time from a request's headers to its response's headers, in milliseconds.", Buckets: latencyBuckets,
		}, append(append([]string{}, labelNames...), "status_code")),
		tcpOpen:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tcp_open_total", Help: "TCP connections opened."}, labelNames),
		tcpClose: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tcp_close_total", Help: "TCP connections closed."}, append(append([]string{}, labelNames...), "errno")),
		tcpConns: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tcp_open_connections", Help: "TCP connections open now."}, labelNames),
		tcpRead:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tcp_read_bytes_total", Help: "Bytes read from peers."}, labelNames),
		tcpWrite: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tcp_write_bytes_total", Help: "Bytes written to peers."}, labelNames),
		loadShed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "load_shed_total",
			Help: "Work refused because a limit was reached: HTTP requests answered 503 (kind=request), accepted connections closed at once (kind=connection).",
		}, []string{"direction", "kind"}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "http_requests_pending",
			Help: "HTTP requests waiting for their response's headers (the max-in-flight limit counts these).",
		}, []string{"direction"}),
		connections: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "accepted_connections_open",
			Help: "Accepted connections open now, HTTP and opaque (the max-connections limit counts these).",
		}, []string{"direction"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "connections_refused_total",
			Help: "Accepted connections closed without being forwarded: reason=loop when their target is one of the proxy's own listeners.",
		}, []string{"direction", "reason"}),
		acceptErrs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "accept_errors_total",
			Help: "Failed accepts on a listener (e.g. EMFILE: out of file descriptors); the listener backs off and keeps accepting.",
		}, []string{"direction", "errno"}),
		handles: map[Labels]*Handles{},
	}
	reg.MustRegister(m.requests, m.responses, m.latency, m.tcpOpen, m.tcpClose, m.tcpConns, m.tcpRead, m.tcpWrite,
		m.loadShed, m.pending, m.connections, m.refused, m.acceptErrs)
	m.h2Floods = registerHTTP2Floods(reg)
	return m
}

// Handles are the label-bound metrics of one traffic stream.
type Handles struct {
	m        *Metrics
	labels   Labels
	values   []string
	Requests prometheus.Counter
	TCPOpen  prometheus.Counter
	TCPConns prometheus.Gauge
	TCPRead  prometheus.Counter
	TCPWrite prometheus.Counter

	mu        sync.RWMutex
	responses map[responseKey]*responseHandles
}

type responseKey struct {
	status         int
	classification string
	grpcStatus     string
	err            string
}

type responseHandles struct {
	count   prometheus.Counter
	latency prometheus.Observer
}

// For returns the handles of a label set, creating them once.
func (m *Metrics) For(l Labels) *Handles {
	m.mu.RLock()
	h := m.handles[l]
	m.mu.RUnlock()
	if h != nil {
		return h
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if h := m.handles[l]; h != nil {
		return h
	}
	v := l.values()
	h = &Handles{
		m: m, labels: l, values: v,
		Requests:  m.requests.WithLabelValues(v...),
		TCPOpen:   m.tcpOpen.WithLabelValues(v...),
		TCPConns:  m.tcpConns.WithLabelValues(v...),
		TCPRead:   m.tcpRead.WithLabelValues(v...),
		TCPWrite:  m.tcpWrite.WithLabelValues(v...),
		responses: map[responseKey]*responseHandles{},
	}
	m.handles[l] = h
	return h
}

// Response records one response: its status, whether it counts as a
// failure (classification "success" or "failure"), its gRPC status when
// it has one, an error name when the proxy failed it, and its latency.
func (h *Handles) Response(status int, failure bool, grpcStatus string, errName string, latencyMs float64) {
	class := "success"
	if failure {
		class = "failure"
	}
	k := responseKey{status: status, classification: class, grpcStatus: grpcStatus, err: errName}
	h.mu.RLock()
	r := h.responses[k]
	h.mu.RUnlock()
	if r == nil {
		h.mu.Lock()
		if r = h.responses[k]; r == nil {
			code := ""
			if status > 0 {
				code = strconv.Itoa(status)
			}
			rv := append(append([]string{}, h.values...), code, class, grpcStatus, errName)
			lv := append(append([]string{}, h.values...), code)
			r = &responseHandles{count: h.m.responses.WithLabelValues(rv...), latency: h.m.latency.WithLabelValues(lv...)}
			h.responses[k] = r
		}
		h.mu.Unlock()
	}
	r.count.Inc()
	r.latency.Observe(latencyMs)
}

// Load is one side's metrics of the work it refuses: load shedding,
// loops and failed accepts.
type Load struct {
	ShedRequests, ShedConnections    prometheus.Counter
	PendingRequests, OpenConnections prometheus.Gauge
	// Loops counts connections refused because they would reach one of
	// the proxy's own listeners.
	Loops prometheus.Counter
	// AcceptErrors counts failed accepts by errno name.
	AcceptErrors *prometheus.CounterVec
}

// Load returns the load-shedding metrics of a direction (inbound or
// outbound).
func (m *Metrics) Load(direction string) *Load {
	return &Load{
		ShedRequests:    m.loadShed.WithLabelValues(direction, "request"),
		ShedConnections: m.loadShed.WithLabelValues(direction, "connection"),
		PendingRequests: m.pending.WithLabelValues(direction),
		OpenConnections: m.connections.WithLabelValues(direction),
		Loops:           m.refused.WithLabelValues(direction, "loop"),
		AcceptErrors:    m.acceptErrs.MustCurryWith(prometheus.Labels{"direction": direction}),
	}
}

// Sample returns the value of the first counter or gauge of family whose
// labels include labels, or 0 when there is none (tests and debugging).
func (m *Metrics) Sample(family string, labels map[string]string) float64 {
	mfs, err := m.Registry.Gather()
	if err != nil {
		return 0
	}
	for _, mf := range mfs {
		if mf.GetName() != family {
			continue
		}
	next:
		for _, s := range mf.GetMetric() {
			for _, lp := range s.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue next
				}
			}
			switch {
			case s.Counter != nil:
				return s.Counter.GetValue()
			case s.Gauge != nil:
				return s.Gauge.GetValue()
			}
		}
	}
	return 0
}

// TCPClosed records a closed connection; errno names the error that closed
// it, empty for a clean close.
func (h *Handles) TCPClosed(errno string) {
	h.m.tcpClose.WithLabelValues(append(append([]string{}, h.values...), errno)...).Inc()
	h.TCPConns.Dec()
}
