package inbound

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/linkerd-go/linkerd-go/proxy/internal/h2guard/h2test"
	"github.com/linkerd-go/linkerd-go/proxy/internal/meshtlstest"
	"github.com/linkerd-go/linkerd-go/proxy/internal/metrics"
)

// rapidResetChildEnv, set, makes BenchmarkRapidResetCPU the proxy: an
// inbound side in front of the application at its value.
const rapidResetChildEnv = "H2FLOOD_BENCH_APP"

// BenchmarkRapidResetCPU is the CPU the inbound proxy spends on one h2c
// connection's 100,000 HEADERS+RST_STREAM pairs (what a client outside the
// mesh can send to a pod's port), measured on the proxy alone: it runs in
// a child process (this test binary again), whose CPU time is read from
// /proc before the attack and once it has settled after. The application
// runs here, in the benchmark's process.
func BenchmarkRapidResetCPU(b *testing.B) {
	if app := os.Getenv(rapidResetChildEnv); app != "" {
		serveRapidResetChild(b, netip.MustParseAddrPort(app))
		return
	}
	app := startBenchApp(b)
	cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^BenchmarkRapidResetCPU$", "-test.benchtime=1x")
	cmd.Env = append(os.Environ(), rapidResetChildEnv+"="+app.String())
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		stdin.Close()
		io.Copy(io.Discard, stdout)
		cmd.Wait()
	}()
	var proxy string
	lines := bufio.NewScanner(stdout)
	for lines.Scan() {
		if a, ok := strings.CutPrefix(lines.Text(), "proxy="); ok {
			proxy = a
			break
		}
	}
	if proxy == "" {
		b.Fatal("the proxy did not start")
	}
	attack := h2test.RapidReset(100_000, "/")
	var cpu time.Duration
	goAways := 0
	b.ResetTimer()
	for range b.N {
		before := settledCPU(b, cmd.Process.Pid)
		c, err := net.Dial("tcp", proxy)
		if err != nil {
			b.Fatal(err)
		}
		a, err := h2test.Send(c, attack)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if a.GoAway {
			goAways++
		}
		cpu += settledCPU(b, cmd.Process.Pid) - before
		b.StartTimer()
	}
	b.ReportMetric(cpu.Seconds()/float64(b.N), "proxy-cpu-s/op")
	b.ReportMetric(float64(goAways)/float64(b.N), "goaways/op")
}

// serveRapidResetChild runs the inbound side in front of app until stdin
// closes, after printing its address, and exits: the side's connections
// to the application (in the parent) are not its to wait for.
func serveRapidResetChild(b *testing.B, app netip.AddrPort) {
	p := New(Config{
		DetectTimeout: time.Second, ConnectTimeout: time.Second,
		OrigDst: func(net.Conn) (netip.AddrPort, error) { return app, nil },
	}, meshtlstest.NewCA(b).Store(b, serverID), metrics.New(), logr.Discard())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Serve(ctx, ln, time.Second) }()
	fmt.Printf("proxy=%s\n", ln.Addr())
	io.Copy(io.Discard, os.Stdin)
	cancel()
	<-done
	os.Exit(0)
}

func startBenchApp(b *testing.B) netip.AddrPort {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{Protocols: &protocols, ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	})}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	return netip.MustParseAddrPort(ln.Addr().String())
}

// settledCPU is the user and system CPU time of process pid once it has
// stopped growing (two readings 100ms apart agree, 10s at most).
func settledCPU(b *testing.B, pid int) time.Duration {
	last := processCPU(b, pid)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for range 100 {
		<-tick.C
		now := processCPU(b, pid)
		if now == last {
			break
		}
		last = now
	}
	return last
}

// processCPU reads utime+stime from /proc/pid/stat (in clock ticks of
// 10ms, USER_HZ on Linux).
func processCPU(b *testing.B, pid int) time.Duration {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	s := string(stat)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		b.Fatalf("/proc/%d/stat: %q", pid, s)
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond
}
