package bench

import (
	"bytes"
	"encoding/json"
	"flag"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// fixedReport is a small report with known numbers: one protocol, two
// rates, two rounds, every setup.
func fixedReport() *Report {
	r := &Report{
		Schema:      SchemaVersion,
		Started:     time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		WallSeconds: 421.4,
		Command:     "cd tools/suites && GOWORK=off go run ./cmd/bench proxy --out tools/suites/bench/results",
		Machine: Machine{
			CPU: "Test CPU", Cores: 2, MemoryMiB: 4096, Kernel: "6.1.0", Go: "go1.26.0", Nginx: "nginx/1.22.1",
			LoadBefore: "0.50 0.40 0.30", LoadAfter: "1.50 1.00 0.50", GOMAXPROCS: 2,
		},
		Settings: Settings{
			Setups: []Setup{Direct, Linkerd, Nginx}, Protocols: []Protocol{HTTP1}, Rates: []int{100, 1000},
			Rounds: 2, DurationSeconds: 5, WarmupSeconds: 0.5, ResponseBytes: ResponseSize,
		},
		PeakRSS: []Peak{{"linkerd-go client", 30.5}, {"linkerd-go server", 28.25}, {"nginx client", 12}, {"nginx server", 11.5}},
	}
	round := func(sent, errs int, ms []float64, cpu map[string]float64) Round {
		rss := map[string]float64{}
		for k := range cpu {
			rss[k] = 20
		}
		if len(cpu) == 0 {
			cpu, rss = nil, nil
		}
		return Round{Sent: sent, OK: sent - errs, Errors: errs, Ms: ms, MaxMs: ms[3] * 2, Requests: sent + sent/10, CPUSeconds: cpu, RSSMiB: rss}
	}
	curve := []CurvePoint{{0, 0.1}, {0.9, 0.3}, {0.99, 0.9}, {0.999, 2}}
	for _, rate := range []int{100, 1000} {
		f := float64(rate) / 100 // scales the numbers by rate
		n := rate * 5
		r.Cells = append(r.Cells,
			&Cell{Protocol: HTTP1, Rate: rate, Setup: Direct, Curve: curve, Rounds: []Round{
				round(n, 0, []float64{0.2, 0.3, 0.5, 1}, nil),
				round(n, 0, []float64{0.3, 0.4, 0.7, 1.2}, nil),
			}},
			&Cell{Protocol: HTTP1, Rate: rate, Setup: Linkerd, Curve: curve, Rounds: []Round{
				round(n, 1, []float64{0.8, 1.1, 1.5 * f, 3}, map[string]float64{"linkerd-go client": 0.11 * f, "linkerd-go server": 0.1 * f}),
				round(n, 0, []float64{1, 1.3, 1.9 * f, 2}, map[string]float64{"linkerd-go client": 0.13 * f, "linkerd-go server": 0.12 * f}),
			}},
			&Cell{Protocol: HTTP1, Rate: rate, Setup: Nginx, Curve: curve, Rounds: []Round{
				round(n, 0, []float64{0.4, 0.5, 0.6, 1.1}, map[string]float64{"nginx client": 0.02 * f, "nginx server": 0.02 * f}),
				round(n, 0, []float64{0.5, 0.6, 0.8, 1.1}, map[string]float64{"nginx client": 0.03 * f, "nginx server": 0.01 * f}),
			}},
		)
	}
	r.Profile = &Profile{Rate: 2000, Seconds: 20, Proxies: []ProxyProfile{{
		Name: "linkerd-go client", File: "latest-cpu-linkerd-go-client.pprof", TotalSeconds: 7.5,
		Categories: []Category{{"system calls", 40}, {"crypto", 20}, {otherCategory, 40}},
		Top:        []TopEntry{{"internal/runtime/syscall/linux.Syscall6", 40, 40}, {"crypto/aes.gcm", 20, 20}},
		TopCum:     []TopEntry{{"net/http.(*conn).serve", 10, 80}},
	}}}
	r.Finalize()
	return r
}

func TestFinalize(t *testing.T) {
	r := fixedReport()
	c := r.cell(HTTP1, 100, Linkerd)
	if c.Sent != 1000 || c.Errors != 1 || c.OK != 999 {
		t.Errorf("totals: sent %d, ok %d, errors %d", c.Sent, c.OK, c.Errors)
	}
	// Medians of two rounds: the means of the pairs.
	want := []float64{0.9, 1.2, 1.7, 2.5}
	for i := range want {
		if !near(c.Ms[i], want[i]) {
			t.Errorf("Ms[%d] = %v, want %v", i, c.Ms[i], want[i])
		}
	}
	// Direct's medians are 0.25 0.35 0.6 1.1; nginx's 0.45 0.55 0.7 1.1.
	wantAdded := []float64{0.65, 0.85, 1.1, 1.4}
	nginxAdded := []float64{0.2, 0.2, 0.1, 0}
	for i := range wantAdded {
		if !near(c.AddedMs[i], wantAdded[i]) {
			t.Errorf("AddedMs[%d] = %v, want %v", i, c.AddedMs[i], wantAdded[i])
		}
		if n := r.cell(HTTP1, 100, Nginx).AddedMs[i]; !near(n, nginxAdded[i]) {
			t.Errorf("nginx AddedMs[%d] = %v, want %v", i, n, nginxAdded[i])
		}
	}
	if c.RatioToNginx[0] == nil || !near(*c.RatioToNginx[0], 3.25) {
		t.Errorf("ratio at p50 = %v, want 3.25", c.RatioToNginx[0])
	}
	if c.RatioToNginx[3] != nil {
		t.Errorf("ratio where nginx added nothing = %v, want none", *c.RatioToNginx[3])
	}
	if r.cell(HTTP1, 100, Direct).AddedMs != nil || r.cell(HTTP1, 100, Nginx).RatioToNginx != nil {
		t.Error("direct has an added latency, or nginx a ratio")
	}
	// CPU: 0.11 and 0.13 s over 550 requests → 2 and 2.3636 s/10k; median 2.1818.
	if got := c.Proxies[0]; got.Name != "linkerd-go client" || !near(got.CPUPer10k, (0.11+0.13)/2*10000/550) || got.RSSMiB != 20 {
		t.Errorf("client proxy cost %+v", got)
	}
	if len(r.cell(HTTP1, 100, Direct).Proxies) != 0 {
		t.Error("direct has proxies")
	}
}

func near(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }

func TestMarkdownGolden(t *testing.T) {
	var b bytes.Buffer
	fixedReport().Markdown(&b)
	golden := filepath.Join("testdata", "report.golden.md")
	if *update {
		if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if b.String() != string(want) {
		t.Errorf("Markdown differs from %s (go test -run MarkdownGolden -update to accept):\n%s", golden, b.String())
	}
}

func TestWriteFiles(t *testing.T) {
	dir := t.TempDir()
	r := fixedReport()
	if err := r.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, ReportJSON))
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Cells) != 6 || back.Cells[1].RatioToNginx[3] != nil || *back.Cells[1].RatioToNginx[0] != *r.Cells[1].RatioToNginx[0] {
		t.Errorf("JSON round trip lost cells or ratios: %s", b)
	}
	md, err := os.ReadFile(filepath.Join(dir, ReportMarkdown))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(md), "| http1 | 1000 | linkerd-go |") {
		t.Errorf("markdown:\n%s", md)
	}
}

func TestReadReportAndWriteAll(t *testing.T) {
	dir := t.TempDir()
	r := fixedReport()
	if err := r.WriteAll(dir); err != nil {
		t.Fatal(err)
	}
	back, err := ReadReport(filepath.Join(dir, ReportJSON))
	if err != nil {
		t.Fatal(err)
	}
	var a, b bytes.Buffer
	r.Markdown(&a)
	back.Finalize()
	back.Markdown(&b)
	if a.String() != b.String() {
		t.Errorf("the report read back renders differently:\n%s", b.String())
	}
	if err := os.WriteFile(filepath.Join(dir, ReportJSON), []byte(`{"schema": 99}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadReport(filepath.Join(dir, ReportJSON)); err == nil || !strings.Contains(err.Error(), "schema 99") {
		t.Errorf("another schema read: %v", err)
	}
}

func TestPlot(t *testing.T) {
	var b bytes.Buffer
	r := fixedReport()
	r.cell(HTTP1, 1000, Nginx).Curve = nil // a panel line without data
	if err := r.WritePlot(&b); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&b)
	if err != nil {
		t.Fatal(err)
	}
	if got := img.Bounds().Size(); got.X != 2*panelW || got.Y != headerH+panelH {
		t.Errorf("plot is %v, want 2 panels by 1", got)
	}
}

func TestLogTicks(t *testing.T) {
	if got := logTicks(0.15, 3); len(got) != 4 || got[0] != 0.2 || got[3] != 2 {
		t.Errorf("logTicks(0.15, 3) = %v, want 0.2 0.5 1 2", got)
	}
	if got := logTicks(0.01, 1000); len(got) != 6 {
		t.Errorf("logTicks over 5 decades = %v, want the 6 decades", got)
	}
}

// The inbound policy table compares both proxies' CPU with and without the
// policy, per cell.
func TestPolicyCost(t *testing.T) {
	r := &Report{Settings: Settings{Protocols: []Protocol{HTTP1}, Rates: []int{100}}, Cells: []*Cell{
		{Protocol: HTTP1, Rate: 100, Setup: Linkerd, Proxies: []ProxyCost{{Name: "a", CPUPer10k: 1}, {Name: "b", CPUPer10k: 1}}},
		{Protocol: HTTP1, Rate: 100, Setup: LinkerdAuthz, Proxies: []ProxyCost{{Name: "a", CPUPer10k: 1}, {Name: "b", CPUPer10k: 1.06}}},
	}}
	if got, want := r.policyCost(), "| http1 | 100 | 2.000 | 2.060 | 1.030× |\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	r.Cells = r.Cells[:1]
	if got := r.policyCost(); got != "" {
		t.Errorf("without authz cells: %q", got)
	}
}
