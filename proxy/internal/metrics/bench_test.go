package metrics

import "testing"

var benchLabels = Labels{
	Direction: "outbound", Authority: "web.app.svc.cluster.local", TargetAddr: "10.0.0.21:8080", TLS: "true",
	ServerID: "web.app.serviceaccount.identity.linkerd.cluster.local",
	Dst:      DstLabels{Namespace: "app", Service: "web", Pod: "web-0", ServiceAccount: "web", Deployment: "web"},
}

// BenchmarkRequestMetrics is what the metrics cost each request: the
// handles of its label set (a cache hit), the request count, the response
// count and latency.
func BenchmarkRequestMetrics(b *testing.B) {
	m := New()
	m.For(benchLabels).Response(200, false, "", "", 1)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			h := m.For(benchLabels)
			h.Requests.Inc()
			h.Response(200, false, "", "", 0.7)
		}
	})
}
