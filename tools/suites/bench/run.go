package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/dynamic"

	"github.com/linkerd-go/linkerd-go/api/mesh"
	"github.com/linkerd-go/linkerd-go/tools/suites/meshlab"
	"github.com/linkerd-go/linkerd-go/tools/testkit/childproc"
)

// The test server's ports (meshlab's application ports).
const (
	appPort     = meshlab.AppPort
	appGRPCPort = meshlab.AppGRPCPort
)

// proc is one measured proxy: a process and, for nginx, its workers.
type proc struct {
	name string
	p    *childproc.Process
}

// usage adds up the CPU time and resident memory of the process and its
// children (nginx's workers).
func (pr proc) usage() (cpu time.Duration, rssKB, hwmKB int64, err error) {
	pid := pr.p.Cmd.Process.Pid
	pids := []int{pid}
	kids, err := meshlab.Children(pid)
	if err != nil {
		return 0, 0, 0, err
	}
	pids = append(pids, kids...)
	for _, id := range pids {
		u, err := meshlab.ReadUsage(id)
		if err != nil {
			if id == pid {
				return 0, 0, 0, fmt.Errorf("%s: %w", pr.name, err)
			}
			continue // a worker that just went
		}
		cpu += u.CPU
		rssKB += u.RSSKB
		hwmKB += u.HWMKB
	}
	return cpu, rssKB, hwmKB, nil
}

// run is the state of one benchmark run.
type run struct {
	cfg   Config
	logf  func(string, ...any)
	m     *meshlab.Mesh
	app   string // this binary, readable by every user
	procs map[Setup][]proc
	// policyOn says whether linkerd-go+authz's policy objects are in
	// force; dyn applies them.
	policyOn bool
	dyn      dynamic.Interface
	pooled   map[*Cell][]time.Duration
	report   *Report
	started  time.Time
}

// Run runs the benchmark and writes the report into cfg.Out. It needs
// root. Everything it starts or creates is stopped and removed before it
// returns, also on error and when ctx is cancelled (Ctrl-C).
func Run(ctx context.Context, cfg Config, log io.Writer) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("needs root (network namespaces, nftables, other users' processes)")
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	r := &run{cfg: cfg, started: time.Now(), procs: map[Setup][]proc{}, pooled: map[*Cell][]time.Duration{}}
	r.logf = func(format string, args ...any) {
		fmt.Fprintf(log, "[%5s] %s\n", time.Since(r.started).Round(time.Second), fmt.Sprintf(format, args...))
	}
	r.report = &Report{
		Schema:  SchemaVersion,
		Started: r.started,
		Command: cfg.Command,
		Machine: describeMachine(),
		Settings: Settings{
			Setups: cfg.Setups, Protocols: cfg.Protocols, Rates: cfg.Rates, Rounds: cfg.Rounds,
			DurationSeconds: cfg.Duration.Seconds(), WarmupSeconds: cfg.Warmup.Seconds(), ResponseBytes: ResponseSize,
		},
	}
	r.logf("load average %s; %d runs of %v (+%v warm-up), about %v of load",
		r.report.Machine.LoadBefore, cfg.Runs(), cfg.Duration, cfg.Warmup, cfg.Estimate().Round(time.Second))
	err := r.run(ctx)
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("%w (%v)", err, context.Cause(ctx))
	}
	return r.report, err
}

func (r *run) run(ctx context.Context) (err error) {
	var nginxBin string
	if slices.Contains(r.cfg.Setups, Nginx) {
		if nginxBin, err = ensureNginx(ctx, r.cfg.InstallNginx, r.logf); err != nil {
			return err
		}
		r.report.Machine.Nginx = nginxVersion(nginxBin)
	}

	binDir, err := os.MkdirTemp("", "bench-bin-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(binDir)
	r.logf("building identity, destination, proxy (with the profiling hook) and proxy-init")
	bins, err := meshlab.Build(binDir, meshlab.BuildOptions{ProxyExtraFiles: map[string][]byte{"zz_bench_profile.go": profileHook}})
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	r.app = filepath.Join(binDir, "bench")
	if err := meshlab.CopyFile(self, r.app); err != nil {
		return err
	}
	profDir := filepath.Join(binDir, "profiles")
	if err := mkdirFor(profDir, mesh.DefaultProxyUID); err != nil {
		return err
	}

	r.m, err = meshlab.Start(ctx, meshlab.Options{
		Tag:      "l5dbn",
		Bins:     bins,
		App:      []string{r.app},
		AppEnv:   []string{HelperEnv + "=server"},
		AppReady: ServerReady,
		ProxyEnv: []string{ProfileDirEnv + "=" + profDir},
		Logf:     r.logf,
	})
	if err != nil {
		return err
	}
	defer func() {
		r.logf("cleaning up: processes, namespaces, bridge, API server, files")
		if cerr := r.m.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("cleaning up: %w", cerr))
		}
	}()
	defer func() {
		if err != nil {
			fmt.Fprintf(os.Stderr, "logs of the run:\n%s", r.m.Logs(20))
		}
	}()
	for _, p := range []*childproc.Process{r.m.ClientProxy, r.m.ServerProxy} {
		if comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", p.Cmd.Process.Pid)); err != nil || strings.TrimSpace(string(comm)) != "proxy" {
			return fmt.Errorf("pid %d of %s is %q (%v), not the proxy", p.Cmd.Process.Pid, p.Name, comm, err)
		}
	}
	r.procs[Linkerd] = []proc{{"linkerd-go client", r.m.ClientProxy}, {"linkerd-go server", r.m.ServerProxy}}
	r.procs[LinkerdAuthz] = r.procs[Linkerd]
	if nginxBin != "" {
		if err := r.startNginx(ctx, nginxBin); err != nil {
			return err
		}
	}

	if err := r.rounds(ctx); err != nil {
		return err
	}
	if r.cfg.ProfileDuration > 0 {
		if err := r.profile(ctx, profDir); err != nil {
			return fmt.Errorf("profile: %w", err)
		}
	}
	return r.write()
}

// mkdirFor creates dir owned by uid.
func mkdirFor(dir string, uid int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.Chown(dir, uid, uid)
}

// startNginx runs the client-side nginx in the client namespace as the
// proxy's uid (so proxy-init's rules leave its connections alone, as they
// do the proxy's), listening on loopback for the load generator, and the
// server-side nginx in the bare namespace in front of the test server.
func (r *run) startNginx(ctx context.Context, bin string) error {
	sides := []struct {
		name, ns string
		side     nginxSide
	}{
		{"nginx server", r.m.BareNS, nginxSide{listen: "0.0.0.0", upstream: "127.0.0.1", upstreamHTTP: appPort, upstreamGRPC: appGRPCPort}},
		{"nginx client", r.m.ClientNS, nginxSide{listen: "127.0.0.1", upstream: r.m.Net.IP(meshlab.BareHost), upstreamHTTP: nginxHTTPPort, upstreamGRPC: nginxGRPCPort}},
	}
	var procs []proc
	for _, s := range sides {
		dir := filepath.Join(r.m.Dir, strings.ReplaceAll(s.name, " ", "-"))
		if err := mkdirFor(dir, mesh.DefaultProxyUID); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(nginxConfig(dir, s.side)), 0o644); err != nil {
			return err
		}
		argv := append([]string{"ip", "netns", "exec", s.ns}, meshlab.AsProxyUID()...)
		p, err := r.m.StartProc(strings.ReplaceAll(s.name, " ", "-"), nil, append(argv, nginxArgv(bin, dir)...)...)
		if err != nil {
			return err
		}
		// nginx writes its pid file once its sockets listen.
		if err := waitFile(ctx, p, filepath.Join(dir, "nginx.pid")); err != nil {
			return fmt.Errorf("%w\n%s", err, childproc.TailFile(filepath.Join(dir, "error.log"), 20))
		}
		procs = append(procs, proc{s.name, p})
	}
	r.procs[Nginx] = []proc{procs[1], procs[0]} // client first, like linkerd-go
	r.logf("nginx pair running")
	return nil
}

// waitFile waits until path exists, p exits, or ctx ends.
func waitFile(ctx context.Context, p *childproc.Process, path string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		if err := p.Running(); err != nil {
			return fmt.Errorf("%w\n%s", err, p.Tail(20))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", path, ctx.Err())
		case <-tick.C: // polling: nothing to wait on
		}
	}
}

// target is where the load generator of setup s sends protocol p, and
// whether it runs as the proxy's uid (so proxy-init leaves it alone).
func (r *run) target(s Setup, p Protocol) (addr string, asProxyUID bool) {
	switch s {
	case Direct:
		port := appPort
		if p == GRPC {
			port = appGRPCPort
		}
		return fmt.Sprintf("%s:%d", r.m.Net.IP(meshlab.BareHost), port), true
	case Linkerd, LinkerdAuthz:
		port := meshlab.WebPort
		if p == GRPC {
			port = meshlab.WebGRPCPort
		}
		return fmt.Sprintf("%s:%d", meshlab.WebClusterIP, port), false
	default:
		port := nginxHTTPPort
		switch p {
		case GRPC:
			port = nginxGRPCPort
		case H2C:
			port = nginxH2CPort
		}
		return fmt.Sprintf("127.0.0.1:%d", port), false
	}
}

// rounds measures every cell once per round; within a cell the setups run
// back to back, in an order rotated each round.
func (r *run) rounds(ctx context.Context) error {
	for _, proto := range r.cfg.Protocols {
		for _, rate := range r.cfg.Rates {
			for _, s := range r.cfg.Setups {
				r.report.Cells = append(r.report.Cells, &Cell{Protocol: proto, Rate: rate, Setup: s})
			}
		}
	}
	n := 0
	for round := range r.cfg.Rounds {
		for _, proto := range r.cfg.Protocols {
			for _, rate := range r.cfg.Rates {
				for _, s := range rotate(r.cfg.Setups, round) {
					n++
					c := r.report.cell(proto, rate, s)
					rd, lat, err := r.measure(ctx, s, proto, rate, r.cfg.Duration)
					if err != nil {
						return err
					}
					c.Rounds = append(c.Rounds, rd)
					r.pooled[c] = append(r.pooled[c], lat...)
					msg := fmt.Sprintf("run %d/%d (round %d): %s %d req/s %s: %d sent, %d errors, p50 %.3f ms, p99 %.3f ms",
						n, r.cfg.Runs(), round+1, proto, rate, s, rd.Sent, rd.Errors, rd.Ms[0], rd.Ms[2])
					if rd.FirstError != "" {
						msg += " (first error: " + rd.FirstError + ")"
					}
					r.logf("%s", msg)
				}
			}
		}
	}
	for c, lat := range r.pooled {
		slices.Sort(lat)
		c.Curve = Curve(lat)
	}
	return nil
}

// rotate returns ss rotated left by n.
func rotate[T any](ss []T, n int) []T {
	if len(ss) == 0 {
		return nil
	}
	n %= len(ss)
	return append(slices.Clone(ss[n:]), ss[:n]...)
}

// measure runs the load generator once for setup s and reads the proxies'
// CPU time around it.
func (r *run) measure(ctx context.Context, s Setup, proto Protocol, rate int, d time.Duration) (Round, []time.Duration, error) {
	var allowedBefore float64
	if s == Linkerd || s == LinkerdAuthz {
		if err := r.setPolicy(ctx, s == LinkerdAuthz); err != nil {
			return Round{}, nil, err
		}
		var err error
		if allowedBefore, err = r.serverCounter(ctx, "inbound_http_authz_allow_total", map[string]string{"srv_kind": "server", "authz_name": "bench-client"}); err != nil {
			return Round{}, nil, err
		}
	}
	procs := r.procs[s]
	before := make([]time.Duration, len(procs))
	for i, p := range procs {
		cpu, _, _, err := p.usage()
		if err != nil {
			return Round{}, nil, err
		}
		before[i] = cpu
	}
	addr, asProxyUID := r.target(s, proto)
	res, err := r.load(ctx, LoadSpec{Protocol: proto, Target: addr, Rate: rate, Duration: d, Warmup: r.cfg.Warmup, Timeout: r.cfg.RequestTimeout}, asProxyUID)
	if err != nil {
		return Round{}, nil, err
	}
	rd := Round{Sent: res.Sent, OK: res.OK, Errors: res.Errors, FirstError: res.FirstError, Requests: res.Sent + res.WarmupSent}
	if s == Linkerd || s == LinkerdAuthz {
		if err := r.checkPolicyCounted(ctx, s, allowedBefore, res.OK); err != nil {
			return Round{}, nil, err
		}
	}
	for i, p := range procs {
		cpu, rss, _, err := p.usage()
		if err != nil {
			return Round{}, nil, err
		}
		if rd.CPUSeconds == nil {
			rd.CPUSeconds, rd.RSSMiB = map[string]float64{}, map[string]float64{}
		}
		rd.CPUSeconds[p.name] = (cpu - before[i]).Seconds()
		rd.RSSMiB[p.name] = float64(rss) / 1024
	}
	lat := res.Latencies
	slices.Sort(lat)
	for _, q := range Quantiles {
		rd.Ms = append(rd.Ms, ms(Quantile(lat, q)))
	}
	rd.MaxMs = ms(Quantile(lat, 1))
	return rd, lat, nil
}

// load runs the load generator in the client namespace, bounded in time.
func (r *run) load(ctx context.Context, spec LoadSpec, asProxyUID bool) (LoadResult, error) {
	specJSON, err := json.Marshal(spec)
	if err != nil {
		return LoadResult{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, spec.Warmup+spec.Duration+spec.Timeout+30*time.Second)
	defer cancel()
	argv := []string{"netns", "exec", r.m.ClientNS}
	if asProxyUID {
		argv = append(argv, meshlab.AsProxyUID()...)
	}
	cmd := exec.CommandContext(ctx, "ip", append(argv, r.app)...)
	cmd.Env = append(os.Environ(), HelperEnv+"=load", LoadSpecEnv+"="+string(specJSON))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Run(); err != nil {
		return LoadResult{}, fmt.Errorf("load generator (%s %d req/s to %s): %w\n%s", spec.Protocol, spec.Rate, spec.Target, err, tail(stderr.String(), 20))
	}
	var res LoadResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		return LoadResult{}, fmt.Errorf("load generator output: %w\n%s", err, tail(stderr.String(), 20))
	}
	return res, nil
}

// profile CPU-profiles both linkerd-go proxies under HTTP/1.1 load.
func (r *run) profile(ctx context.Context, profDir string) error {
	r.logf("profiling both proxies for %v at %d HTTP/1.1 req/s", r.cfg.ProfileDuration, r.cfg.ProfileRate)
	if err := r.setPolicy(ctx, false); err != nil {
		return err
	}
	procs := r.procs[Linkerd]
	signal := func() error {
		for _, p := range procs {
			if err := p.p.Cmd.Process.Signal(syscall.SIGUSR1); err != nil {
				return err
			}
		}
		return nil
	}
	// Each proxy writes <profDir>/<pid>/cpu-1.pprof when told to stop.
	if err := signal(); err != nil {
		return err
	}
	addr, _ := r.target(Linkerd, HTTP1)
	res, err := r.load(ctx, LoadSpec{Protocol: HTTP1, Target: addr, Rate: r.cfg.ProfileRate, Duration: r.cfg.ProfileDuration, Timeout: r.cfg.RequestTimeout}, false)
	if serr := signal(); serr != nil {
		return serr
	}
	if err != nil {
		return err
	}
	pr := &Profile{Rate: r.cfg.ProfileRate, Seconds: r.cfg.ProfileDuration.Seconds()}
	for _, p := range procs {
		src := filepath.Join(profDir, strconv.Itoa(p.p.Cmd.Process.Pid), "cpu-1.pprof")
		if err := waitFile(ctx, p.p, src); err != nil {
			return err
		}
		data, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		name := fmt.Sprintf(ProfileFile, strings.ReplaceAll(p.name, " ", "-"))
		if err := os.MkdirAll(r.cfg.Out, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(r.cfg.Out, name), data, 0o644); err != nil {
			return err
		}
		pp, err := AnalyzeProfile(data, 20)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		pp.Name, pp.File = p.name, name
		pr.Proxies = append(pr.Proxies, pp)
	}
	r.logf("profiled %d requests", res.Sent)
	r.report.Profile = pr
	return nil
}

// write finishes the report and writes it, the plot, and removes profiles
// of an earlier run this one did not replace.
func (r *run) write() error {
	measured := map[string]bool{}
	for _, s := range r.cfg.Setups {
		for _, p := range r.procs[s] {
			if measured[p.name] {
				continue // linkerd-go+authz runs linkerd-go's proxies
			}
			measured[p.name] = true
			_, _, hwm, err := p.usage()
			if err != nil {
				return err
			}
			r.report.PeakRSS = append(r.report.PeakRSS, Peak{Name: p.name, PeakMiB: float64(hwm) / 1024})
		}
	}
	r.report.Machine.LoadAfter = loadAverage()
	r.report.WallSeconds = time.Since(r.started).Seconds()
	r.report.Finalize()
	if err := r.report.WriteAll(r.cfg.Out); err != nil {
		return err
	}
	if r.report.Profile == nil {
		old, _ := filepath.Glob(filepath.Join(r.cfg.Out, fmt.Sprintf(ProfileFile, "*")))
		for _, p := range old {
			os.Remove(p)
		}
	}
	r.logf("report written to %s (%s, %s, %s)", r.cfg.Out, ReportMarkdown, ReportJSON, ReportPlot)
	return nil
}
