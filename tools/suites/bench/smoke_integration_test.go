//go:build integration

package bench

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linkerd-go/linkerd-go/tools/suites/meshlab"
)

func TestMain(m *testing.M) {
	// The test server and load generator are this test binary again.
	if IsHelper() {
		os.Exit(RunHelper())
	}
	os.Exit(m.Run())
}

// TestSmoke runs the whole pipeline — build, API server, control plane,
// proxies, nginx pair, every setup and protocol, the profile — at a tiny
// rate and checks the report is complete and consistent. No timing is
// checked: the benchmark reports, it does not judge.
func TestSmoke(t *testing.T) {
	before, err := meshlab.Run("ip", "netns", "list")
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	cfg := DefaultConfig()
	cfg.Out = out
	cfg.Protocols = []Protocol{HTTP1, H2C, GRPC}
	cfg.Rates = []int{40}
	cfg.Rounds = 2
	cfg.Duration = 500 * time.Millisecond
	cfg.Warmup = 100 * time.Millisecond
	cfg.ProfileDuration = time.Second
	cfg.ProfileRate = 100
	cfg.Command = "smoke test"
	var log strings.Builder
	rep, err := Run(context.Background(), cfg, io.MultiWriter(&log, testWriter{t}))
	if err != nil {
		t.Fatal(err)
	}

	for _, name := range []string{ReportMarkdown, ReportJSON, ReportPlot, "latest-cpu-linkerd-go-client.pprof", "latest-cpu-linkerd-go-server.pprof"} {
		if st, err := os.Stat(filepath.Join(out, name)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", name, err)
		}
	}
	b, err := os.ReadFile(filepath.Join(out, ReportJSON))
	if err != nil {
		t.Fatal(err)
	}
	var got Report
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Cells) != len(Setups)*len(cfg.Protocols) || len(rep.Cells) != len(got.Cells) {
		t.Fatalf("%d cells, want %d", len(got.Cells), len(Setups)*len(cfg.Protocols))
	}
	md, err := os.ReadFile(filepath.Join(out, ReportMarkdown))
	if err != nil {
		t.Fatal(err)
	}
	planned := Count(cfg.Rates[0], cfg.Duration)
	for _, proto := range cfg.Protocols {
		for _, s := range Setups {
			c := got.cell(proto, cfg.Rates[0], s)
			if c == nil {
				t.Errorf("no cell %s %s", proto, s)
				continue
			}
			if len(c.Rounds) != cfg.Rounds {
				t.Errorf("%s %s: %d rounds, want %d", proto, s, len(c.Rounds), cfg.Rounds)
			}
			sum := 0
			for _, rd := range c.Rounds {
				sum += rd.Sent
				// vegeta stops on elapsed time: one more or less.
				if rd.Sent < planned-1 || rd.Sent > planned+1 || rd.OK+rd.Errors != rd.Sent || len(rd.Ms) != len(Quantiles) {
					t.Errorf("%s %s: round %+v, want about %d sent, ok + errors = sent", proto, s, rd, planned)
				}
			}
			if c.Sent != sum || c.OK+c.Errors != c.Sent || c.Errors != 0 {
				t.Errorf("%s %s: %d sent (rounds add up to %d), %d ok, %d errors (%s)", proto, s, c.Sent, sum, c.OK, c.Errors, c.FirstError)
			}
			if len(c.Curve) == 0 || len(c.Ms) != len(Quantiles) || c.Ms[0] <= 0 {
				t.Errorf("%s %s: no latencies: %v, curve of %d", proto, s, c.Ms, len(c.Curve))
			}
			if (s == Direct) != (c.AddedMs == nil) || (s == Linkerd) != (c.RatioToNginx != nil) {
				t.Errorf("%s %s: added %v, ratio %v", proto, s, c.AddedMs, c.RatioToNginx)
			}
			if len(c.Proxies) != len(proxyNames(s)) {
				t.Errorf("%s %s: proxies %+v", proto, s, c.Proxies)
			}
			for _, pc := range c.Proxies {
				if pc.CPUPer10k < 0 || pc.RSSMiB <= 0 {
					t.Errorf("%s %s: %+v", proto, s, pc)
				}
			}
			if !strings.Contains(string(md), "| "+string(proto)+" | 40 | "+string(s)+" |") {
				t.Errorf("markdown lacks the row of %s %s", proto, s)
			}
		}
	}
	if len(got.PeakRSS) != 4 {
		t.Errorf("peak RSS of %d proxies, want 4: %+v", len(got.PeakRSS), got.PeakRSS)
	}
	for _, p := range got.PeakRSS {
		if p.PeakMiB <= 0 {
			t.Errorf("peak RSS %+v", p)
		}
	}
	if got.Profile == nil || len(got.Profile.Proxies) != 2 {
		t.Errorf("profile %+v", got.Profile)
	}
	if got.Machine.Cores == 0 || got.Machine.LoadBefore == "" || got.Machine.Nginx == "" || got.Machine.Kernel == "" {
		t.Errorf("machine %+v", got.Machine)
	}

	// Nothing left behind.
	after, err := meshlab.Run("ip", "netns", "list")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(after, "\n") {
		if strings.HasPrefix(line, "l5dbn-") && !strings.Contains(before, strings.Fields(line)[0]) {
			t.Errorf("namespace left behind: %s", line)
		}
	}
}

// testWriter logs each write.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
