package metrics_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/linkerd-go/linkerd-go/component/admin"
	"github.com/linkerd-go/linkerd-go/proxy/internal/metrics"
)

// BenchmarkScrape is one GET /metrics of a proxy with 50 traffic label
// sets (requests, responses and latency histograms of each), as
// Prometheus sends it (gzip accepted). Allocations are the scrape's.
func BenchmarkScrape(b *testing.B) {
	m := metrics.New()
	for i := range 50 {
		h := m.For(metrics.Labels{Direction: "inbound", Authority: fmt.Sprintf("web-%d.default.svc.cluster.local:80", i), TargetAddr: "198.18.0.7:8080", TLS: "true", ClientID: "client.default.serviceaccount.identity.linkerd.cluster.local"})
		h.Requests.Inc()
		h.Response(200, false, "", "", 1.5)
	}
	srv := httptest.NewServer(admin.Handler(admin.Config{Registry: m.Registry}))
	defer srv.Close()
	client := srv.Client()
	size := 0
	b.ReportAllocs()
	for b.Loop() {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/metrics", nil)
		req.Header.Set("Accept-Encoding", "gzip")
		resp, err := client.Transport.RoundTrip(req)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		size = int(n)
	}
	b.ReportMetric(float64(size), "body-bytes")
}
