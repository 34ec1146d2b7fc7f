//go:build integration

package meshtest

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/linkerd-go/linkerd-go/api/mesh"
	"github.com/linkerd-go/linkerd-go/tools/cli/stat"
	"github.com/linkerd-go/linkerd-go/tools/suites/meshlab"
)

var record = flag.Bool("record", false, "write the real proxy's metrics to ../../cli/stat/testdata/ (linkerd stat's unit tests' input)")

// statApp is the web application of linkerd stat's mesh: 200 on /, 500 on
// /fail.
func statApp(ctx context.Context) error {
	ln, err := net.Listen("tcp", fmt.Sprintf("0.0.0.0:%d", meshlab.AppPort))
	if err != nil {
		return err
	}
	fmt.Println("listening on", ln.Addr())
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fail" {
			http.Error(w, "failing on purpose", http.StatusInternalServerError)
			return
		}
		io.WriteString(w, "ok\n")
	})}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// TestStatOfARealProxy runs a real mesh (meshlab: real identity, destination,
// proxy-init and proxy), sends 30 requests that succeed and 10 that fail
// to web's pod from outside the mesh (so they arrive through its proxy's
// inbound side), and collects the stats of a Deployment whose pod is that
// proxy: the scrapes read the proxy's real /metrics, and the window is the
// traffic itself (Collector.Wait sends it), so nothing depends on timing.
func TestStatOfARealProxy(t *testing.T) {
	needBins(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	m, err := meshlab.Start(ctx, meshlab.Options{Tag: "l5dstat", Bins: bins.Bins, App: []string{bins.app}, AppEnv: []string{helperEnv + "=stat"}, AppReady: "listening on"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s", m.Logs(40))
		}
		if err := m.Close(); err != nil {
			t.Errorf("cleaning up: %v", err)
		}
	})

	podIP := m.Net.IP(meshlab.WebHosts[0])
	metricsURL := fmt.Sprintf("http://%s:%d/metrics", podIP, mesh.AdminPort)
	get := func(url string) ([]byte, int) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return body, resp.StatusCode
	}

	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "app"},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-0", Namespace: "app", Labels: map[string]string{"app": "web"}},
		Spec:   corev1.PodSpec{InitContainers: []corev1.Container{{Name: mesh.ProxyContainerName}}, Containers: []corev1.Container{{Name: "web"}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: podIP}}
	var scrapes [][]byte
	c := stat.Collector{
		Client: fake.NewClientset(dep, pod),
		Scrape: func(ctx context.Context, p *corev1.Pod) ([]byte, error) {
			body, code := get(fmt.Sprintf("http://%s:%d/metrics", p.Status.PodIP, mesh.AdminPort))
			if code != http.StatusOK {
				return nil, fmt.Errorf("status %d", code)
			}
			scrapes = append(scrapes, body)
			return body, nil
		},
		Wait: func(context.Context, time.Duration) error {
			for i := 0; i < 40; i++ {
				path, want := "/", http.StatusOK
				if i%4 == 3 {
					path, want = "/fail", http.StatusInternalServerError
				}
				if _, code := get(fmt.Sprintf("http://%s:%d%s", podIP, meshlab.AppPort, path)); code != want {
					t.Errorf("GET %s: %d, want %d", path, code, want)
				}
			}
			return nil
		},
	}
	rows, err := c.Collect(ctx, stat.Selector{Namespace: "app"}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || len(scrapes) != 2 {
		t.Fatalf("rows %+v after %d scrapes", rows, len(scrapes))
	}
	r := rows[0]
	if r.Requests != 40 || r.SuccessRate == nil || *r.SuccessRate != 0.75 || r.MeshedPods != 1 || r.Pods != 1 || len(r.Errors) > 0 {
		t.Errorf("row %+v: want 40 requests, 75%% success, 1/1 meshed", r)
	}
	if r.LatencyP50 == nil || r.LatencyP95 == nil || r.LatencyP99 == nil || !(*r.LatencyP50 > 0 && *r.LatencyP50 <= *r.LatencyP95 && *r.LatencyP95 <= *r.LatencyP99) {
		t.Errorf("latencies %v %v %v: want 0 < p50 <= p95 <= p99", r.LatencyP50, r.LatencyP95, r.LatencyP99)
	}
	if want := 40 / r.Window.Seconds(); r.RPS != want {
		t.Errorf("RPS %v, want %v", r.RPS, want)
	}
	// The second scrape alone: exactly these requests, counted inbound.
	after, err := stat.Parse(bytes.NewReader(scrapes[1]))
	if err != nil {
		t.Fatal(err)
	}
	before, _ := stat.Parse(bytes.NewReader(scrapes[0]))
	if d := after.Sub(before); d.Success != 30 || d.Failure != 10 || d.Latency[len(d.Latency)-1].Count != 40 {
		t.Errorf("difference %+v: want 30 successes, 10 failures, 40 latency observations", d)
	}
	if *record {
		for i, s := range scrapes {
			if err := os.WriteFile(filepath.Join("..", "..", "cli", "stat", "testdata", "proxy-"+strconv.Itoa(i+1)+".prom"), s, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		// One more scrape after the traffic for the table golden tests.
		_ = metricsURL
	}
	buf := new(bytes.Buffer)
	if err := stat.WriteTable(buf, rows, false); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", buf.String())
}
