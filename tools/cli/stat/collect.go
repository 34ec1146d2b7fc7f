package stat

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/linkerd-go/linkerd-go/api/mesh"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// ProxyEnv returns the literal value of an environment variable of a pod's
// proxy container (a native sidecar among the init containers, or a
// container in the legacy layout), or "" when there is none.
func ProxyEnv(p *corev1.Pod, name string) string {
	for _, cs := range [][]corev1.Container{p.Spec.InitContainers, p.Spec.Containers} {
		for _, c := range cs {
			if c.Name != mesh.ProxyContainerName {
				continue
			}
			for _, e := range c.Env {
				if e.Name == name {
					return e.Value
				}
			}
		}
	}
	return ""
}

// Selector says which workloads to report.
type Selector struct {
	Namespace string
	// Deployment is one Deployment's name; "" = every Deployment of the
	// namespace.
	Deployment string
}

// ParseResource parses "deploy", "deployment/web", "deployments/web" …
// into the Deployment name ("" for all).
func ParseResource(s string) (string, error) {
	kind, name, _ := strings.Cut(s, "/")
	switch strings.ToLower(kind) {
	case "deploy", "deployment", "deployments":
	default:
		return "", fmt.Errorf("resource %q: only deployments (deploy, deploy/NAME) are supported", s)
	}
	if strings.Contains(name, "/") {
		return "", fmt.Errorf("resource %q: want deploy/NAME", s)
	}
	return name, nil
}

// Row is one workload's golden metrics over the window.
type Row struct {
	Namespace  string `json:"namespace"`
	Kind       string `json:"kind"`
	Name       string `json:"name"`
	MeshedPods int    `json:"meshedPods"`
	Pods       int    `json:"pods"`
	// ScrapedPods are the meshed pods whose proxy answered both scrapes.
	ScrapedPods int `json:"scrapedPods"`
	// Window is the time between the two scrapes.
	Window time.Duration `json:"windowNanoseconds"`
	// Requests is the number of inbound responses in the window.
	Requests float64 `json:"requests"`
	// SuccessRate is the share (0..1) of them classified success; nil
	// without requests.
	SuccessRate *float64 `json:"successRate"`
	RPS         float64  `json:"rps"`
	// LatencyP50/95/99 are in milliseconds; nil without requests.
	LatencyP50 *float64 `json:"latencyMsP50"`
	LatencyP95 *float64 `json:"latencyMsP95"`
	LatencyP99 *float64 `json:"latencyMsP99"`
	// TCPConnections are the inbound connections open at the second scrape.
	TCPConnections float64 `json:"tcpConnections"`
	// Errors name the pods whose proxy could not be scraped.
	Errors []string `json:"errors,omitempty"`
}

// ScrapeFunc returns the Prometheus text of a pod's proxy.
type ScrapeFunc func(ctx context.Context, pod *corev1.Pod) ([]byte, error)

// APIServerScrape reads a proxy's /metrics through the API server's
// pods/proxy subresource (GET /api/v1/namespaces/NS/pods/NAME:4191/proxy/metrics),
// so no port-forward is needed; it needs the "get" verb on pods/proxy.
func APIServerScrape(client kubernetes.Interface) ScrapeFunc {
	return func(ctx context.Context, pod *corev1.Pod) ([]byte, error) {
		return client.CoreV1().Pods(pod.Namespace).ProxyGet("http", pod.Name, strconv.Itoa(mesh.AdminPort), "/metrics", nil).DoRaw(ctx)
	}
}

// Collector collects rows.
type Collector struct {
	Client kubernetes.Interface
	// Scrape reads a proxy's metrics (nil = APIServerScrape(Client)).
	Scrape ScrapeFunc
	// Wait waits for the window between the scrapes (nil = a timer that
	// ctx cancels).
	Wait func(ctx context.Context, d time.Duration) error
	// Now is the clock (nil = time.Now).
	Now func() time.Time
}

// Collect scrapes the proxies of the selected Deployments twice, window
// apart, and returns one row per Deployment, sorted by name.
func Collect(ctx context.Context, client kubernetes.Interface, sel Selector, window time.Duration) ([]Row, error) {
	return Collector{Client: client}.Collect(ctx, sel, window)
}

type workload struct {
	row  Row
	pods []*corev1.Pod // meshed, running pods to scrape
}

// Collect: see the package function.
func (c Collector) Collect(ctx context.Context, sel Selector, window time.Duration) ([]Row, error) {
	if window <= 0 {
		return nil, fmt.Errorf("window %s: must be positive", window)
	}
	scrape, wait, now := c.Scrape, c.Wait, c.Now
	if scrape == nil {
		scrape = APIServerScrape(c.Client)
	}
	if wait == nil {
		wait = func(ctx context.Context, d time.Duration) error {
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-t.C:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	if now == nil {
		now = time.Now
	}
	workloads, err := c.workloads(ctx, sel)
	if err != nil {
		return nil, err
	}
	type key struct{ w, p int }
	first := map[key]Totals{}
	scrapeAll := func(into func(k key, t Totals)) {
		for wi, w := range workloads {
			for pi, p := range w.pods {
				body, err := scrape(ctx, p)
				var t Totals
				if err == nil {
					t, err = Parse(bytes.NewReader(body))
				}
				if err != nil {
					msg := fmt.Sprintf("%s: %v", p.Name, err)
					if !slices.Contains(w.row.Errors, msg) {
						w.row.Errors = append(w.row.Errors, msg)
					}
					continue
				}
				into(key{wi, pi}, t)
			}
		}
	}
	start := now()
	scrapeAll(func(k key, t Totals) { first[k] = t })
	if err := wait(ctx, window); err != nil {
		return nil, err
	}
	elapsed := now().Sub(start)
	sums := make([]Totals, len(workloads))
	scrapeAll(func(k key, t Totals) {
		if before, ok := first[k]; ok {
			sums[k.w] = sums[k.w].Add(t.Sub(before))
			workloads[k.w].row.ScrapedPods++
		}
	})
	rows := make([]Row, 0, len(workloads))
	for i, w := range workloads {
		rows = append(rows, finish(w.row, sums[i], elapsed))
	}
	return rows, nil
}

// finish fills a row's numbers from the summed increase over elapsed.
func finish(r Row, d Totals, elapsed time.Duration) Row {
	r.Window = elapsed
	r.Requests = d.Requests()
	r.TCPConnections = d.OpenConnections
	if elapsed > 0 {
		r.RPS = r.Requests / elapsed.Seconds()
	}
	if r.Requests > 0 {
		sr := d.Success / r.Requests
		r.SuccessRate = &sr
		for _, q := range []struct {
			q   float64
			dst **float64
		}{{0.5, &r.LatencyP50}, {0.95, &r.LatencyP95}, {0.99, &r.LatencyP99}} {
			if v := Quantile(q.q, d.Latency); !math.IsNaN(v) {
				*q.dst = &v
			}
		}
	}
	return r
}

func (c Collector) workloads(ctx context.Context, sel Selector) ([]*workload, error) {
	var deps []appsv1.Deployment
	if sel.Deployment != "" {
		d, err := c.Client.AppsV1().Deployments(sel.Namespace).Get(ctx, sel.Deployment, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		deps = []appsv1.Deployment{*d}
	} else {
		list, err := c.Client.AppsV1().Deployments(sel.Namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, err
		}
		deps = list.Items
	}
	sort.Slice(deps, func(i, j int) bool {
		if deps[i].Namespace != deps[j].Namespace {
			return deps[i].Namespace < deps[j].Namespace
		}
		return deps[i].Name < deps[j].Name
	})
	var out []*workload
	for i := range deps {
		d := &deps[i]
		w := &workload{row: Row{Namespace: d.Namespace, Kind: "deployment", Name: d.Name}}
		selector, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil {
			return nil, fmt.Errorf("deployment %s: %w", d.Name, err)
		}
		pods, err := c.Client.CoreV1().Pods(d.Namespace).List(ctx, metav1.ListOptions{LabelSelector: selector.String()})
		if err != nil {
			return nil, err
		}
		for j := range pods.Items {
			p := &pods.Items[j]
			if p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil {
				continue
			}
			w.row.Pods++
			if HasProxy(p) {
				w.row.MeshedPods++
				w.pods = append(w.pods, p)
			}
		}
		out = append(out, w)
	}
	return out, nil
}

// HasProxy reports whether a pod has the proxy (as a native sidecar or a
// container).
func HasProxy(p *corev1.Pod) bool {
	for _, c := range p.Spec.InitContainers {
		if c.Name == mesh.ProxyContainerName {
			return true
		}
	}
	for _, c := range p.Spec.Containers {
		if c.Name == mesh.ProxyContainerName {
			return true
		}
	}
	return false
}

// WriteTable prints rows as `linkerd viz stat` does: names (and
// namespaces) left-aligned, numbers right-aligned, "-" where there is no
// data.
func WriteTable(w io.Writer, rows []Row, withNamespace bool) error {
	header := []string{"NAME", "MESHED", "SUCCESS", "RPS", "LATENCY_P50", "LATENCY_P95", "LATENCY_P99", "TCP_CONN"}
	left := 1
	if withNamespace {
		header = append([]string{"NAMESPACE"}, header...)
		left = 2
	}
	table := [][]string{header}
	for _, r := range rows {
		cells := []string{r.Name, fmt.Sprintf("%d/%d", r.MeshedPods, r.Pods), percent(r.SuccessRate), rps(r), ms(r.LatencyP50), ms(r.LatencyP95), ms(r.LatencyP99), conns(r)}
		if withNamespace {
			cells = append([]string{r.Namespace}, cells...)
		}
		table = append(table, cells)
	}
	widths := make([]int, len(header))
	for _, row := range table {
		for i, c := range row {
			widths[i] = max(widths[i], len(c))
		}
	}
	var b strings.Builder
	for _, row := range table {
		for i, c := range row {
			if i > 0 {
				b.WriteString("   ")
			}
			pad := strings.Repeat(" ", widths[i]-len(c))
			if i < left {
				if i == len(row)-1 {
					pad = ""
				}
				b.WriteString(c + pad)
			} else {
				b.WriteString(pad + c)
			}
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func percent(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%.2f%%", *v*100)
}

func rps(r Row) string {
	if r.ScrapedPods == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1frps", r.RPS)
}

func ms(v *float64) string {
	if v == nil {
		return "-"
	}
	if *v < 10 {
		return fmt.Sprintf("%.1fms", *v)
	}
	return fmt.Sprintf("%.0fms", *v)
}

func conns(r Row) string {
	if r.ScrapedPods == 0 {
		return "-"
	}
	return formatFloat(r.TCPConnections)
}

// WriteJSON prints rows as a JSON array.
func WriteJSON(w io.Writer, rows []Row) error {
	if rows == nil {
		rows = []Row{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rows)
}
