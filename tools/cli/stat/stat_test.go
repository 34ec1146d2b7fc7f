package stat

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/linkerd-go/linkerd-go/api/mesh"
	"github.com/linkerd-go/linkerd-go/tools/cli/internal/clitest"
)

// The recorded metrics are a real proxy's /metrics (TestRealProxy
// -record): before and after 30 requests answered 200 and 10 answered 500,
// received on its inbound side.
func recorded(t *testing.T, n string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "proxy-"+n+".prom"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseRecorded(t *testing.T) {
	before, err := Parse(bytes.NewReader(recorded(t, "1")))
	if err != nil {
		t.Fatal(err)
	}
	after, err := Parse(bytes.NewReader(recorded(t, "2")))
	if err != nil {
		t.Fatal(err)
	}
	d := after.Sub(before)
	if d.Success != 30 || d.Failure != 10 || d.Requests() != 40 {
		t.Errorf("got %+v, want 30 successes and 10 failures", d)
	}
	if n := len(d.Latency); n == 0 || !math.IsInf(d.Latency[n-1].UpperBound, 1) || d.Latency[n-1].Count != 40 {
		t.Errorf("latency histogram %+v: want 40 observations in +Inf", d.Latency)
	}
	for i := 1; i < len(d.Latency); i++ {
		if d.Latency[i].Count < d.Latency[i-1].Count || d.Latency[i].UpperBound <= d.Latency[i-1].UpperBound {
			t.Fatalf("histogram not cumulative and ascending: %+v", d.Latency)
		}
	}
}

func TestParseError(t *testing.T) {
	if _, err := Parse(strings.NewReader("response_total{direction=\"inbound\" 1\n")); err == nil {
		t.Error("no error for broken text")
	}
}

func TestSubCounterReset(t *testing.T) {
	before := Totals{Success: 100, Latency: []Bucket{{1, 100}, {math.Inf(1), 100}}}
	after := Totals{Success: 5, Latency: []Bucket{{1, 5}, {math.Inf(1), 5}}}
	if d := after.Sub(before); d.Success != 5 || d.Latency[1].Count != 5 {
		t.Errorf("after a restart the increase is the new value; got %+v", d)
	}
}

func TestQuantile(t *testing.T) {
	inf := math.Inf(1)
	// 10 observations <= 10, 10 more <= 20, none above.
	b := []Bucket{{10, 10}, {20, 20}, {inf, 20}}
	for _, c := range []struct{ q, want float64 }{
		{0.5, 10}, // rank 10: the top of the first bucket
		{0.25, 5}, // rank 5: half-way through [0,10]
		{0.75, 15},
		{1, 20},
		{0, 0},
	} {
		if got := Quantile(c.q, b); got != c.want {
			t.Errorf("q=%v: got %v, want %v", c.q, got, c.want)
		}
	}
	// A rank in the +Inf bucket gives the highest finite bound.
	if got := Quantile(0.99, []Bucket{{10, 1}, {inf, 10}}); got != 10 {
		t.Errorf("+Inf bucket: got %v, want 10", got)
	}
	if got := Quantile(0.5, []Bucket{{10, 0}, {inf, 0}}); !math.IsNaN(got) {
		t.Errorf("no observations: got %v, want NaN", got)
	}
	if got := Quantile(0.5, nil); !math.IsNaN(got) {
		t.Errorf("no buckets: got %v", got)
	}
}

func TestParseResource(t *testing.T) {
	for in, want := range map[string]string{"deploy": "", "deployments": "", "deploy/web": "web", "deployment/web": "web"} {
		if got, err := ParseResource(in); err != nil || got != want {
			t.Errorf("%s: %q %v", in, got, err)
		}
	}
	for _, in := range []string{"pod/x", "svc", "deploy/a/b"} {
		if _, err := ParseResource(in); err == nil {
			t.Errorf("%s: no error", in)
		}
	}
}

func meshedPod(name, app string, proxy bool) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "app", Labels: map[string]string{"app": app}},
		Spec:   corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning}}
	if proxy {
		p.Spec.InitContainers = []corev1.Container{{Name: mesh.ProxyContainerName}}
	}
	return p
}

func deployment(name string) *appsv1.Deployment {
	return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "app"},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}}}}
}

// collectRecorded collects over a fake cluster: Deployment web with two
// meshed pods whose proxies return the recorded scrapes, Deployment
// legacy without proxies, Deployment broken whose proxy does not answer;
// the clock advances exactly 10s during the window.
func collectRecorded(t *testing.T, sel Selector) []Row {
	t.Helper()
	client := fake.NewClientset(deployment("web"), deployment("legacy"), deployment("broken"),
		meshedPod("web-1", "web", true), meshedPod("web-2", "web", true),
		meshedPod("legacy-1", "legacy", false), meshedPod("broken-1", "broken", true))
	scrapes := map[string]int{}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := Collector{
		Client: client,
		Scrape: func(_ context.Context, p *corev1.Pod) ([]byte, error) {
			if p.Name == "broken-1" {
				return nil, errors.New("connection refused")
			}
			scrapes[p.Name]++
			return recorded(t, map[int]string{1: "1", 2: "2"}[scrapes[p.Name]]), nil
		},
		Wait: func(context.Context, time.Duration) error { now = now.Add(10 * time.Second); return nil },
		Now:  func() time.Time { return now },
	}
	rows, err := c.Collect(context.Background(), sel, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func TestCollect(t *testing.T) {
	rows := collectRecorded(t, Selector{Namespace: "app"})
	if len(rows) != 3 || rows[0].Name != "broken" || rows[1].Name != "legacy" || rows[2].Name != "web" {
		t.Fatalf("rows %+v", rows)
	}
	web := rows[2]
	if web.Requests != 80 || *web.SuccessRate != 0.75 || web.RPS != 8 || web.MeshedPods != 2 || web.Pods != 2 || web.ScrapedPods != 2 || web.Window != 10*time.Second {
		t.Errorf("web: %+v", web)
	}
	if legacy := rows[1]; legacy.MeshedPods != 0 || legacy.Pods != 1 || legacy.SuccessRate != nil {
		t.Errorf("legacy: %+v", legacy)
	}
	if broken := rows[0]; len(broken.Errors) != 1 || broken.ScrapedPods != 0 || !strings.Contains(broken.Errors[0], "broken-1: connection refused") {
		t.Errorf("broken: %+v", broken)
	}
	var table, wide, js bytes.Buffer
	if err := WriteTable(&table, rows, false); err != nil {
		t.Fatal(err)
	}
	if err := WriteTable(&wide, rows, true); err != nil {
		t.Fatal(err)
	}
	if err := WriteJSON(&js, rows); err != nil {
		t.Fatal(err)
	}
	clitest.Golden(t, "table.txt", table.Bytes())
	clitest.Golden(t, "table-namespace.txt", wide.Bytes())
	clitest.Golden(t, "rows.json", js.Bytes())

	one := collectRecorded(t, Selector{Namespace: "app", Deployment: "web"})
	if len(one) != 1 || one[0].Requests != 80 {
		t.Errorf("deploy/web: %+v", one)
	}
}

func TestWindowMustBePositive(t *testing.T) {
	if _, err := (Collector{Client: fake.NewClientset()}).Collect(context.Background(), Selector{}, 0); err == nil {
		t.Error("no error for a zero window")
	}
}

// Open connections come from accepted_connections_open, which counts HTTP
// connections too, and from tcp_open_connections only when a proxy lacks
// the former.
func TestOpenConnections(t *testing.T) {
	const tcpOnly = `# TYPE tcp_open_connections gauge
tcp_open_connections{direction="inbound",tls="true"} 2
tcp_open_connections{direction="outbound",tls="true"} 5
`
	const both = tcpOnly + `# TYPE accepted_connections_open gauge
accepted_connections_open{direction="inbound"} 7
accepted_connections_open{direction="outbound"} 9
`
	for _, tc := range []struct {
		name, text string
		want       float64
	}{
		{"older proxy", tcpOnly, 2},
		{"accepted connections", both, 7},
	} {
		got, err := Parse(strings.NewReader(tc.text))
		if err != nil {
			t.Fatal(err)
		}
		if got.OpenConnections != tc.want {
			t.Errorf("%s: open connections = %v, want %v", tc.name, got.OpenConnections, tc.want)
		}
	}
}
