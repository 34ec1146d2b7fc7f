//go:build integration

package meshtest

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/linkerd-go/linkerd-go/api/mesh"
	"github.com/linkerd-go/linkerd-go/tools/suites/meshlab"
	"github.com/linkerd-go/linkerd-go/tools/testkit/childproc"
)

var (
	benchRate     = flag.Int("meshtest.rate", 1000, "BenchmarkMesh: requests per second")
	benchDuration = flag.Duration("meshtest.duration", 10*time.Second, "BenchmarkMesh: length of each measured run")
)

// BenchmarkMesh measures what the two proxies add at a constant rate of
// GETs with 1 KiB answers from the client namespace, in the same setup as
// TestMeshedTraffic. Each iteration runs, one after the other:
//
//   - direct: the load generator runs as the proxy's uid (which proxy-init
//     leaves alone) in the client namespace and calls the same server app
//     in a namespace without proxy-init or proxy, across the same bridge;
//   - mesh: the load generator runs as an application does and calls web's
//     cluster IP, through both proxies with mesh TLS.
//
// It prints p50/p90/p99 of each and what the mesh adds, and each proxy's
// CPU time during the mesh runs and its resident memory. A report, not a
// check: nothing here fails on timing. Run it without -race (the load
// generator is this test binary):
//
//	go test -tags integration -run '^$' -bench Mesh -benchtime 3x ./meshtest/
func BenchmarkMesh(b *testing.B) {
	m := startMesh(b)
	rateArg := fmt.Sprintf("%s=%d,%s", argEnv, *benchRate, *benchDuration)
	configs := []struct {
		name       string
		url        string
		asProxyUID bool
	}{
		{"direct", fmt.Sprintf("http://%s:%d/", m.Net.IP(meshlab.BareHost), meshlab.AppPort), true},
		{"mesh", fmt.Sprintf("http://%s:%d/", meshlab.WebClusterIP, meshlab.WebPort), false},
	}
	proxies := []*childproc.Process{m.ClientProxy, m.ServerProxy}
	for _, p := range proxies {
		if comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", p.Cmd.Process.Pid)); err != nil || strings.TrimSpace(string(comm)) != "proxy" {
			b.Fatalf("pid %d of %s is %q (%v), not the proxy", p.Cmd.Process.Pid, p.Name, comm, err)
		}
	}
	admins := []string{
		fmt.Sprintf("http://%s:%d/metrics", m.Net.IP(meshlab.ClientHost), mesh.AdminPort),
		fmt.Sprintf("http://%s:%d/metrics", m.Net.IP(meshlab.WebHosts[0]), mesh.AdminPort),
	}
	allocated := func(i int) float64 {
		s, err := scrape(admins[i])
		if err != nil {
			b.Fatal(err)
		}
		v, _ := sum(s, "go_memstats_alloc_bytes_total", nil)
		return v
	}
	allocs := make([]float64, len(proxies)) // bytes allocated during the mesh runs
	lat := map[string][]time.Duration{}
	sent := map[string]int{}
	failed := map[string]int{}
	cpu := make([]time.Duration, len(proxies))
	var rounds []string
	for b.Loop() {
		round := []string{}
		for _, c := range configs {
			before := make([]meshlab.Usage, len(proxies))
			allocBefore := make([]float64, len(proxies))
			for i, p := range proxies {
				u, err := meshlab.ReadUsage(p.Cmd.Process.Pid)
				if err != nil {
					b.Fatal(err)
				}
				before[i] = u
				allocBefore[i] = allocated(i)
			}
			var res loadResult
			runApp(b, m.ClientNS, c.asProxyUID, []string{helperEnv + "=load", urlEnv + "=" + c.url, rateArg}, &res)
			if c.name == "mesh" {
				for i, p := range proxies {
					u, err := meshlab.ReadUsage(p.Cmd.Process.Pid)
					if err != nil {
						b.Fatal(err)
					}
					cpu[i] += u.CPU - before[i].CPU
					allocs[i] += allocated(i) - allocBefore[i]
				}
			}
			lat[c.name] = append(lat[c.name], res.Latencies...)
			sent[c.name] += res.Sent
			failed[c.name] += res.Errors
			round = append(round, fmt.Sprintf("%s p50 %v p99 %v errors %d (%s)", c.name,
				quantile(res.Latencies, 0.5), quantile(res.Latencies, 0.99), res.Errors, res.FirstErr))
		}
		rounds = append(rounds, strings.Join(round, "; "))
	}
	b.StopTimer()

	var out strings.Builder
	fmt.Fprintf(&out, "%d req/s, %v per run, %d round(s), 1 KiB responses, HTTP/1.1 keep-alive from the app\n", *benchRate, *benchDuration, len(rounds))
	for i, r := range rounds {
		fmt.Fprintf(&out, "round %d: %s\n", i+1, r)
	}
	tw := tabwriter.NewWriter(&out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "config\trequests\terrors\tp50\tp90\tp99\tp99.9\tmax\t")
	q := map[string][4]time.Duration{}
	for _, c := range configs {
		l := lat[c.name]
		slices.Sort(l)
		q[c.name] = [4]time.Duration{quantile(l, 0.5), quantile(l, 0.9), quantile(l, 0.99), quantile(l, 0.999)}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%v\t%v\t%v\t%v\t%v\t\n", c.name, sent[c.name], failed[c.name],
			ms(q[c.name][0]), ms(q[c.name][1]), ms(q[c.name][2]), ms(q[c.name][3]), ms(quantile(l, 1)))
	}
	fmt.Fprintf(tw, "added\t\t\t%v\t%v\t%v\t%v\t\t\n",
		ms(q["mesh"][0]-q["direct"][0]), ms(q["mesh"][1]-q["direct"][1]), ms(q["mesh"][2]-q["direct"][2]), ms(q["mesh"][3]-q["direct"][3]))
	tw.Flush()
	tw = tabwriter.NewWriter(&out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "proxy\tCPU during mesh runs\tCPU per 10k requests\tallocated per request\tRSS now\tpeak RSS (VmHWM)\t")
	for i, p := range proxies {
		u, err := meshlab.ReadUsage(p.Cmd.Process.Pid)
		if err != nil {
			b.Fatal(err)
		}
		per10k, perReq := time.Duration(0), 0.0
		if n := sent["mesh"]; n > 0 {
			per10k = cpu[i] * 10000 / time.Duration(n)
			perReq = allocs[i] / float64(n)
		}
		fmt.Fprintf(tw, "%s\t%.2fs\t%.3fs\t%.1f KiB\t%.1f MiB\t%.1f MiB\t\n", p.Name, cpu[i].Seconds(), per10k.Seconds(),
			perReq/1024, float64(u.RSSKB)/1024, float64(u.HWMKB)/1024)
		b.ReportMetric(perReq, p.Name+"-B/req")
		b.ReportMetric(float64(u.HWMKB)/1024, p.Name+"-peak-RSS-MiB")
		b.ReportMetric(per10k.Seconds(), p.Name+"-CPU-s/10k-req")
	}
	tw.Flush()
	// Printed, not logged: the testing package cuts a benchmark's log to
	// ten lines.
	fmt.Print(out.String())
	b.ReportMetric(float64(q["direct"][0].Microseconds())/1000, "direct-p50-ms")
	b.ReportMetric(float64(q["direct"][2].Microseconds())/1000, "direct-p99-ms")
	b.ReportMetric(float64(q["mesh"][0].Microseconds())/1000, "mesh-p50-ms")
	b.ReportMetric(float64(q["mesh"][2].Microseconds())/1000, "mesh-p99-ms")
}

// ms formats d in milliseconds with microsecond precision.
func ms(d time.Duration) string { return fmt.Sprintf("%.3fms", float64(d.Microseconds())/1000) }
