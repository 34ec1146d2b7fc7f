package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Output file names in the --out folder. Each run replaces them; the
// history of a committed report is its git history.
const (
	ReportMarkdown = "latest.md"
	ReportJSON     = "latest.json"
	ReportPlot     = "latest.png"
	// ProfileFile names a proxy's CPU profile, e.g.
	// latest-cpu-linkerd-go-client.pprof.
	ProfileFile = "latest-cpu-%s.pprof"
)

// SchemaVersion is the version of the JSON report's layout.
const SchemaVersion = 1

// Report is everything one run measured; the JSON report is this value.
type Report struct {
	Schema      int       `json:"schema"`
	Started     time.Time `json:"started"`
	WallSeconds float64   `json:"wallSeconds"`
	Command     string    `json:"command"`
	Machine     Machine   `json:"machine"`
	Settings    Settings  `json:"settings"`
	Cells       []*Cell   `json:"cells"`
	PeakRSS     []Peak    `json:"peakRSS"`
	Profile     *Profile  `json:"profile,omitempty"`
}

// Settings are the configuration the numbers come from.
type Settings struct {
	Setups          []Setup    `json:"setups"`
	Protocols       []Protocol `json:"protocols"`
	Rates           []int      `json:"rates"`
	Rounds          int        `json:"rounds"`
	DurationSeconds float64    `json:"durationSeconds"`
	WarmupSeconds   float64    `json:"warmupSeconds"`
	ResponseBytes   int        `json:"responseBytes"`
}

// Cell is one setup at one protocol and rate, over all rounds.
type Cell struct {
	Protocol Protocol `json:"protocol"`
	Rate     int      `json:"rate"`
	Setup    Setup    `json:"setup"`
	Rounds   []Round  `json:"rounds"`

	// Totals over the rounds.
	Sent       int    `json:"sent"`
	OK         int    `json:"ok"`
	Errors     int    `json:"errors"`
	FirstError string `json:"firstError,omitempty"`
	// Ms are the medians over the rounds of each round's p50, p90, p99
	// and p99.9 (Quantiles), in milliseconds.
	Ms []float64 `json:"ms"`
	// AddedMs is Ms minus direct's Ms at the same protocol and rate.
	AddedMs []float64 `json:"addedMs,omitempty"`
	// RatioToNginx is, for linkerd-go, its AddedMs divided by nginx's;
	// null where nginx added nothing measurable.
	RatioToNginx []*float64 `json:"ratioToNginx,omitempty"`
	// Proxies is what each proxy of the setup cost.
	Proxies []ProxyCost `json:"proxies,omitempty"`
	// Curve is the latency distribution of all rounds' requests pooled.
	Curve []CurvePoint `json:"curve"`
}

// Round is one run of a cell.
type Round struct {
	Sent       int       `json:"sent"`
	OK         int       `json:"ok"`
	Errors     int       `json:"errors"`
	FirstError string    `json:"firstError,omitempty"`
	Ms         []float64 `json:"ms"` // p50, p90, p99, p99.9
	MaxMs      float64   `json:"maxMs"`
	// Requests is every request the proxies carried during the run,
	// warm-up included: the denominator of CPU per request.
	Requests int `json:"requests"`
	// CPUSeconds and RSSMiB are per proxy: CPU time during the run, and
	// resident memory after it.
	CPUSeconds map[string]float64 `json:"cpuSeconds,omitempty"`
	RSSMiB     map[string]float64 `json:"rssMiB,omitempty"`
}

// ProxyCost is one proxy's cost in a cell.
type ProxyCost struct {
	Name string `json:"name"`
	// CPUPer10k is the median over the rounds of CPU seconds per 10,000
	// requests.
	CPUPer10k float64 `json:"cpuSecondsPer10kRequests"`
	// RSSMiB is the largest resident memory seen after a run.
	RSSMiB float64 `json:"rssMiB"`
}

// Peak is a proxy's peak resident memory over the whole run (VmHWM).
type Peak struct {
	Name    string  `json:"name"`
	PeakMiB float64 `json:"peakMiB"`
}

// proxyNames are the processes measured for each setup.
func proxyNames(s Setup) []string {
	switch s {
	case Linkerd, LinkerdAuthz:
		return []string{"linkerd-go client", "linkerd-go server"}
	case Nginx:
		return []string{"nginx client", "nginx server"}
	}
	return nil
}

// cell returns the cell of setup s at protocol p and rate, or nil.
func (r *Report) cell(p Protocol, rate int, s Setup) *Cell {
	for _, c := range r.Cells {
		if c.Protocol == p && c.Rate == rate && c.Setup == s {
			return c
		}
	}
	return nil
}

// Finalize computes every cell's totals, medians, added latency, ratios
// and proxy costs from its rounds.
func (r *Report) Finalize() {
	for _, c := range r.Cells {
		c.Sent, c.OK, c.Errors, c.FirstError = 0, 0, 0, ""
		for _, rd := range c.Rounds {
			c.Sent += rd.Sent
			c.OK += rd.OK
			c.Errors += rd.Errors
			if c.FirstError == "" {
				c.FirstError = rd.FirstError
			}
		}
		c.Ms = make([]float64, len(Quantiles))
		for i := range Quantiles {
			var vs []float64
			for _, rd := range c.Rounds {
				if i < len(rd.Ms) && rd.OK > 0 {
					vs = append(vs, rd.Ms[i])
				}
			}
			c.Ms[i] = Median(vs)
		}
		c.Proxies = nil
		for _, name := range proxyNames(c.Setup) {
			pc := ProxyCost{Name: name}
			var per10k []float64
			for _, rd := range c.Rounds {
				if rd.Requests > 0 {
					per10k = append(per10k, rd.CPUSeconds[name]*10000/float64(rd.Requests))
				}
				pc.RSSMiB = max(pc.RSSMiB, rd.RSSMiB[name])
			}
			pc.CPUPer10k = Median(per10k)
			c.Proxies = append(c.Proxies, pc)
		}
	}
	for _, c := range r.Cells {
		c.AddedMs, c.RatioToNginx = nil, nil
		direct := r.cell(c.Protocol, c.Rate, Direct)
		if c.Setup == Direct || direct == nil {
			continue
		}
		c.AddedMs = make([]float64, len(c.Ms))
		for i := range c.Ms {
			c.AddedMs[i] = c.Ms[i] - direct.Ms[i]
		}
	}
	for _, c := range r.Cells {
		nginx := r.cell(c.Protocol, c.Rate, Nginx)
		if c.Setup != Linkerd || nginx == nil || c.AddedMs == nil || nginx.AddedMs == nil {
			continue
		}
		c.RatioToNginx = make([]*float64, len(c.AddedMs))
		for i := range c.AddedMs {
			// Below a microsecond nginx's added latency is noise.
			if nginx.AddedMs[i] >= 0.001 {
				v := c.AddedMs[i] / nginx.AddedMs[i]
				c.RatioToNginx[i] = &v
			}
		}
	}
}

// WriteFiles writes the Markdown and JSON reports into dir (the plot and
// profiles are written separately).
func (r *Report) WriteFiles(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var md strings.Builder
	r.Markdown(&md)
	if err := os.WriteFile(filepath.Join(dir, ReportMarkdown), []byte(md.String()), 0o644); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, ReportJSON), append(b, '\n'), 0o644)
}

// Markdown renders the report.
func (r *Report) Markdown(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	s := r.Settings
	p("# Data-plane benchmark: direct, linkerd-go, linkerd-go+authz, nginx\n\n")
	p("The latest run of `make bench-proxy`; each run replaces this file, %s and %s (history: git log).\n", ReportJSON, ReportPlot)
	p("Absolute times on a shared machine are noisy: compare the setups within one run, and the ratios.\n\n")

	p("## Machine\n\n| | |\n|---|---|\n")
	m := r.Machine
	p("| CPU | %s, %d cores (GOMAXPROCS %d) |\n", orDash(m.CPU), m.Cores, m.GOMAXPROCS)
	if m.Virtualized != "" {
		p("| virtualized | %s |\n", m.Virtualized)
	}
	p("| memory | %d MiB |\n", m.MemoryMiB)
	p("| kernel | %s |\n", orDash(m.Kernel))
	p("| Go | %s |\n", orDash(m.Go))
	p("| nginx | %s |\n", orDash(m.Nginx))
	p("| load average (1, 5, 15 min) before | %s |\n", orDash(m.LoadBefore))
	p("| load average after | %s |\n", orDash(m.LoadAfter))
	p("| started | %s |\n", r.Started.UTC().Format(time.RFC3339))
	p("| wall time | %s |\n\n", (time.Duration(r.WallSeconds * float64(time.Second))).Round(time.Second))

	p("## Command\n\n    %s\n\n", r.Command)
	p("%d round(s); in each, every protocol × rate cell runs its setups back to back (%s, in an order rotated each round), %v of constant-rate open-loop load after %v of warm-up, %d-byte responses. ",
		s.Rounds, joinSetups(s.Setups), secs(s.DurationSeconds), secs(s.WarmupSeconds), s.ResponseBytes)
	p("Latencies are medians over the rounds of each round's quantile (the plot pools all rounds). ")
	p("CPU is utime + stime from `/proc/<pid>/stat` during a run (nginx: master and workers) over the requests carried, warm-up included; RSS is `VmRSS` after a run, peak RSS `VmHWM`.\n\n")

	p("## Latency (ms)\n\n| protocol | rate (req/s) | setup | requests | errors | p50 | p90 | p99 | p99.9 |\n|---|---:|---|---:|---:|---:|---:|---:|---:|\n")
	r.eachCell(func(c *Cell) {
		p("| %s | %d | %s | %d | %d |", c.Protocol, c.Rate, c.Setup, c.Sent, c.Errors)
		for _, v := range c.Ms {
			p(" %.3f |", v)
		}
		p("\n")
	})

	if notes := r.overloaded(); len(notes) > 0 {
		p("\nNot every request of these cells went as planned — errors, or fewer sent than %v × rate × rounds (the load generator shares the machine's cores with everything measured, so a setup that needs more CPU than is left slows the generator too):\n\n", secs(s.DurationSeconds))
		for _, n := range notes {
			p("- %s\n", n)
		}
	}

	p("\n## Added over direct (ms), and linkerd-go's added ÷ nginx's added\n\n| protocol | rate (req/s) | | p50 | p90 | p99 | p99.9 |\n|---|---:|---|---:|---:|---:|---:|\n")
	for _, proto := range r.Settings.Protocols {
		for _, rate := range r.Settings.Rates {
			var ratio []*float64
			for _, s := range r.Settings.Setups {
				c := r.cell(proto, rate, s)
				if c == nil || c.AddedMs == nil {
					continue
				}
				p("| %s | %d | %s |", c.Protocol, c.Rate, c.Setup)
				for _, v := range c.AddedMs {
					p(" %+.3f |", v)
				}
				p("\n")
				if c.RatioToNginx != nil {
					ratio = c.RatioToNginx
				}
			}
			if ratio != nil {
				p("| %s | %d | **%s ÷ %s** |", proto, rate, Linkerd, Nginx)
				for _, v := range ratio {
					if v == nil {
						p(" – |")
					} else {
						p(" **%.2f×** |", *v)
					}
				}
				p("\n")
			}
		}
	}

	p("\n## Proxy cost\n\n| protocol | rate (req/s) | proxy | CPU s / 10k requests | RSS after run (MiB) |\n|---|---:|---|---:|---:|\n")
	r.eachCell(func(c *Cell) {
		for _, pc := range c.Proxies {
			p("| %s | %d | %s | %.3f | %.1f |\n", c.Protocol, c.Rate, pc.Name, pc.CPUPer10k, pc.RSSMiB)
		}
	})
	if policy := r.policyCost(); policy != "" {
		p("\n## Inbound policy cost\n\nThe same proxies with web's ports behind a Server and an AuthorizationPolicy (every request routed and authorized) against without; CPU of both proxies per 10k requests, ratio of the medians of the rounds:\n\n| protocol | rate (req/s) | linkerd-go | linkerd-go+authz | ratio |\n|---|---:|---:|---:|---:|\n%s", policy)
	}
	if len(r.PeakRSS) > 0 {
		p("\nPeak RSS over the whole run (`VmHWM`; nginx: master and workers added up):\n\n| proxy | peak RSS (MiB) |\n|---|---:|\n")
		for _, pk := range r.PeakRSS {
			p("| %s | %.1f |\n", pk.Name, pk.PeakMiB)
		}
	}

	p("\n## Latency distributions\n\n![latency by quantile, all rounds pooled](%s)\n", ReportPlot)

	if pr := r.Profile; pr != nil {
		p("\n## CPU profile of the proxies\n\n")
		p("After the rounds, both linkerd-go proxies were CPU-profiled (runtime/pprof, started and stopped by SIGUSR1 through a file the benchmark adds to the proxy's main package at build time) for %v under %d HTTP/1.1 requests/s. ", secs(pr.Seconds), pr.Rate)
		p("Profiles: %s. Read them with `go tool pprof -top <file>`.\n", joinFiles(pr.Proxies))
		for _, pp := range pr.Proxies {
			p("\n### %s: %.2f s of CPU in %v\n\n", pp.Name, pp.TotalSeconds, secs(pr.Seconds))
			p("Where the time goes, by the function burning it (flat):\n\n| share | what |\n|---:|---|\n")
			for _, c := range pp.Categories {
				p("| %.1f%% | %s |\n", c.Pct, c.Name)
			}
			p("\nTop functions by their own time (flat):\n\n| flat %% | cum %% | function |\n|---:|---:|---|\n")
			for _, t := range pp.Top {
				p("| %.1f | %.1f | `%s` |\n", t.FlatPct, t.CumPct, t.Function)
			}
			p("\nTop functions by the time spent under them (cumulative, the runtime's own left out):\n\n| cum %% | flat %% | function |\n|---:|---:|---|\n")
			for _, t := range pp.TopCum {
				p("| %.1f | %.1f | `%s` |\n", t.CumPct, t.FlatPct, t.Function)
			}
		}
	}
}

// overloaded describes the cells with errors or with fewer requests sent
// than planned (5% slack: vegeta stops on elapsed time).
func (r *Report) overloaded() []string {
	var out []string
	r.eachCell(func(c *Cell) {
		planned := Count(c.Rate, secs(r.Settings.DurationSeconds)) * len(c.Rounds)
		if c.Errors == 0 && float64(c.Sent) >= 0.95*float64(planned) {
			return
		}
		n := fmt.Sprintf("%s %d req/s %s: %d of %d planned requests sent, %d errors", c.Protocol, c.Rate, c.Setup, c.Sent, planned, c.Errors)
		if c.FirstError != "" {
			n += " (first: `" + strings.ReplaceAll(c.FirstError, "`", "'") + "`)"
		}
		out = append(out, n)
	})
	return out
}

// ReadReport reads a JSON report.
func ReadReport(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if r.Schema != SchemaVersion {
		return nil, fmt.Errorf("%s: schema %d, this program reads %d", path, r.Schema, SchemaVersion)
	}
	return &r, nil
}

// WriteAll writes the Markdown and JSON reports and the plot into dir.
func (r *Report) WriteAll(dir string) error {
	if err := r.WriteFiles(dir); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, ReportPlot))
	if err != nil {
		return err
	}
	if err := r.WritePlot(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// eachCell calls fn for the cells in report order.
func (r *Report) eachCell(fn func(*Cell)) {
	for _, proto := range r.Settings.Protocols {
		for _, rate := range r.Settings.Rates {
			for _, s := range r.Settings.Setups {
				if c := r.cell(proto, rate, s); c != nil {
					fn(c)
				}
			}
		}
	}
}

func joinSetups(ss []Setup) string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = string(s)
	}
	return strings.Join(out, ", ")
}

func joinFiles(ps []ProxyProfile) string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = "`" + p.File + "`"
	}
	return strings.Join(out, ", ")
}

func orDash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

// secs formats a number of seconds as a duration.
func secs(s float64) time.Duration {
	return time.Duration(math.Round(s*1000)) * time.Millisecond
}

// policyCost is the rows of the inbound policy table: per cell, both
// proxies' CPU per 10k requests with and without the policy ("" when the
// run had no linkerd-go+authz cells).
func (r *Report) policyCost() string {
	var b strings.Builder
	for _, proto := range r.Settings.Protocols {
		for _, rate := range r.Settings.Rates {
			plain, authz := r.cell(proto, rate, Linkerd), r.cell(proto, rate, LinkerdAuthz)
			if plain == nil || authz == nil {
				continue
			}
			a, b2 := proxiesCPU(plain), proxiesCPU(authz)
			if a <= 0 {
				continue
			}
			fmt.Fprintf(&b, "| %s | %d | %.3f | %.3f | %.3f× |\n", proto, rate, a, b2, b2/a)
		}
	}
	return b.String()
}

// proxiesCPU is the CPU seconds per 10k requests of all of c's proxies.
func proxiesCPU(c *Cell) float64 {
	var sum float64
	for _, pc := range c.Proxies {
		sum += pc.CPUPer10k
	}
	return sum
}
