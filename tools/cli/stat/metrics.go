// Package stat computes golden metrics per workload from the proxies'
// Prometheus metrics, like `linkerd viz stat` but without Prometheus: it
// scrapes each pod's proxy (/metrics on the admin port 4191, through the
// API server's pods/proxy subresource) twice, a window apart, and derives
// from the difference of the inbound counters the success rate, the
// requests per second and the p50/p95/p99 latency.
//
// The metric names are the proxy's (proxy/README.md): response_total
// (label classification = success|failure) and the response_latency_ms
// histogram, both with direction="inbound" for traffic the pod served, and
// the accepted_connections_open gauge (tcp_open_connections from proxies
// that lack it).
package stat

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Metric names and label values read from the proxies.
const (
	ResponseTotal      = "response_total"
	ResponseLatencyMs  = "response_latency_ms"
	TCPOpenConnections = "tcp_open_connections"
	// AcceptedConnectionsOpen is the gauge of all accepted connections.
	AcceptedConnectionsOpen = "accepted_connections_open"
	labelDirection          = "direction"
	labelClass              = "classification"
	inbound                 = "inbound"
	classSuccess            = "success"
	classFailure            = "failure"
)

// Bucket is one cumulative histogram bucket.
type Bucket struct {
	UpperBound float64 // +Inf for the last
	Count      float64 // observations <= UpperBound
}

// Totals are one proxy's inbound counters at one scrape (or the
// difference of two scrapes).
type Totals struct {
	Success float64 `json:"success"`
	Failure float64 `json:"failure"`
	// Latency is the inbound response_latency_ms histogram, summed over
	// every label set, by upper bound (ascending).
	Latency []Bucket `json:"-"`
	// OpenConnections is the inbound accepted_connections_open gauge (or,
	// from older proxies, tcp_open_connections).
	OpenConnections float64 `json:"openConnections"`
}

// Requests is the number of responses counted.
func (t Totals) Requests() float64 { return t.Success + t.Failure }

// Parse parses Prometheus text exposition format and returns the inbound
// totals.
func Parse(r io.Reader) (Totals, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return Totals{}, fmt.Errorf("parse metrics: %w", err)
	}
	return totals(fams), nil
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func totals(fams map[string]*dto.MetricFamily) Totals {
	var t Totals
	if f := fams[ResponseTotal]; f != nil {
		for _, m := range f.GetMetric() {
			if label(m, labelDirection) != inbound {
				continue
			}
			switch label(m, labelClass) {
			case classSuccess:
				t.Success += m.GetCounter().GetValue()
			case classFailure:
				t.Failure += m.GetCounter().GetValue()
			}
		}
	}
	// accepted_connections_open counts every connection the proxy accepted,
	// HTTP ones included; tcp_open_connections only those forwarded as
	// opaque TCP. Proxies from before the former have only the latter.
	open := fams[AcceptedConnectionsOpen]
	if open == nil {
		open = fams[TCPOpenConnections]
	}
	if open != nil {
		for _, m := range open.GetMetric() {
			if label(m, labelDirection) == inbound {
				t.OpenConnections += m.GetGauge().GetValue()
			}
		}
	}
	if f := fams[ResponseLatencyMs]; f != nil {
		byBound := map[float64]float64{}
		for _, m := range f.GetMetric() {
			if label(m, labelDirection) != inbound {
				continue
			}
			h := m.GetHistogram()
			hasInf := false
			for _, b := range h.GetBucket() {
				byBound[b.GetUpperBound()] += float64(b.GetCumulativeCount())
				hasInf = hasInf || math.IsInf(b.GetUpperBound(), 1)
			}
			if !hasInf {
				// The +Inf bucket is the sample count.
				byBound[math.Inf(1)] += float64(h.GetSampleCount())
			}
		}
		for ub, c := range byBound {
			t.Latency = append(t.Latency, Bucket{UpperBound: ub, Count: c})
		}
		sort.Slice(t.Latency, func(i, j int) bool { return t.Latency[i].UpperBound < t.Latency[j].UpperBound })
	}
	return t
}

// Sub returns the increase from before to t. A counter that went down
// was reset (the proxy restarted): its whole current value is the increase,
// as Prometheus's increase() assumes.
func (t Totals) Sub(before Totals) Totals {
	if t.Success < before.Success || t.Failure < before.Failure || t.requestsInHistogram() < before.requestsInHistogram() {
		return t
	}
	d := Totals{Success: t.Success - before.Success, Failure: t.Failure - before.Failure, OpenConnections: t.OpenConnections}
	prev := map[float64]float64{}
	for _, b := range before.Latency {
		prev[b.UpperBound] = b.Count
	}
	for _, b := range t.Latency {
		d.Latency = append(d.Latency, Bucket{UpperBound: b.UpperBound, Count: b.Count - prev[b.UpperBound]})
	}
	return d
}

func (t Totals) requestsInHistogram() float64 {
	if len(t.Latency) == 0 {
		return 0
	}
	return t.Latency[len(t.Latency)-1].Count
}

// Add sums two proxies' totals (the pods of one workload).
func (t Totals) Add(o Totals) Totals {
	s := Totals{Success: t.Success + o.Success, Failure: t.Failure + o.Failure, OpenConnections: t.OpenConnections + o.OpenConnections}
	byBound := map[float64]float64{}
	for _, b := range t.Latency {
		byBound[b.UpperBound] += b.Count
	}
	for _, b := range o.Latency {
		byBound[b.UpperBound] += b.Count
	}
	for ub, c := range byBound {
		s.Latency = append(s.Latency, Bucket{UpperBound: ub, Count: c})
	}
	sort.Slice(s.Latency, func(i, j int) bool { return s.Latency[i].UpperBound < s.Latency[j].UpperBound })
	return s
}

// Quantile estimates the q-quantile (0..1) of a cumulative histogram as
// Prometheus's histogram_quantile does: linear interpolation inside the
// bucket that holds the rank, the lower bound of the first bucket being 0;
// a rank in the +Inf bucket gives the highest finite bound. NaN without
// observations.
func Quantile(q float64, buckets []Bucket) float64 {
	if len(buckets) == 0 || math.IsNaN(q) {
		return math.NaN()
	}
	total := buckets[len(buckets)-1].Count
	if !math.IsInf(buckets[len(buckets)-1].UpperBound, 1) || total <= 0 {
		return math.NaN()
	}
	if q <= 0 {
		return 0
	}
	if q >= 1 {
		q = 1
	}
	rank := q * total
	i := sort.Search(len(buckets), func(i int) bool { return buckets[i].Count >= rank })
	if i == len(buckets)-1 {
		if len(buckets) < 2 {
			return math.NaN()
		}
		return buckets[len(buckets)-2].UpperBound
	}
	lower, lowerCount := 0.0, 0.0
	if i > 0 {
		lower, lowerCount = buckets[i-1].UpperBound, buckets[i-1].Count
	}
	upper, inBucket := buckets[i].UpperBound, buckets[i].Count-lowerCount
	if inBucket <= 0 {
		return upper
	}
	return lower + (upper-lower)*(rank-lowerCount)/inBucket
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
