//go:build integration

package integration

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	identityv1 "github.com/linkerd-go/linkerd-go/api/linkerd/identity/v1"
	"github.com/linkerd-go/linkerd-go/identity/internal/token"
	"github.com/linkerd-go/linkerd-go/tools/testkit/pkitest"
)

// benchWorkloads are ServiceAccounts with their identity names, tokens and
// CSRs, so that the API server sees many distinct tokens as in a cluster.
type benchWorkload struct {
	id    string
	token []byte
	csr   []byte
}

func benchWorkloads(b *testing.B, n int) []benchWorkload {
	b.Helper()
	var sas []string
	for i := range n {
		sas = append(sas, fmt.Sprintf("sa%d", i))
	}
	ns := newNamespace(b, sas...)
	var out []benchWorkload
	for _, sa := range sas {
		id := identityName(sa, ns)
		out = append(out, benchWorkload{id: id, token: []byte(createToken(b, ns, sa, identityv1.TokenAudience)), csr: pkitest.CSR{DNSNames: []string{id}}.DER(b)})
	}
	return out
}

// latencies collects per-call durations from parallel goroutines and
// reports requests/s and percentiles.
type latencies struct {
	mu  sync.Mutex
	all []time.Duration
}

func (l *latencies) add(d []time.Duration) {
	l.mu.Lock()
	l.all = append(l.all, d...)
	l.mu.Unlock()
}

func (l *latencies) report(b *testing.B, elapsed time.Duration) {
	slices.Sort(l.all)
	pct := func(p float64) float64 {
		return float64(l.all[int(float64(len(l.all)-1)*p)].Microseconds()) / 1000
	}
	b.ReportMetric(float64(len(l.all))/elapsed.Seconds(), "req/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

// cpuTime returns the CPU time (user + system) a process has used so far,
// from /proc (clock ticks of 10ms).
func cpuTime(b *testing.B, pid int) time.Duration {
	b.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command name (which ends with ')'): utime is the
	// 14th field of the line, stime the 15th.
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// runParallel runs call from parallel goroutines and reports requests/s,
// p50 and p99, and the CPU time per call of this process (the component and
// the callers) and of etcd and the API server.
func runParallel(b *testing.B, call func(i int) error) {
	pids := env.PIDs()
	var before []time.Duration
	for _, pid := range append([]int{os.Getpid()}, pids...) {
		before = append(before, cpuTime(b, pid))
	}
	defer func() {
		var others time.Duration
		for i, pid := range append([]int{os.Getpid()}, pids...) {
			d := cpuTime(b, pid) - before[i]
			if i == 0 {
				b.ReportMetric(float64(d.Microseconds())/1000/float64(b.N), "cpu-ms/op(test-process)")
				continue
			}
			others += d
		}
		b.ReportMetric(float64(others.Microseconds())/1000/float64(b.N), "cpu-ms/op(etcd+apiserver)")
	}()
	var lat latencies
	var next sync.Mutex
	counter := 0
	b.SetParallelism(4) // 4 × GOMAXPROCS callers
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		for pb.Next() {
			next.Lock()
			i := counter
			counter++
			next.Unlock()
			t0 := time.Now()
			if err := call(i); err != nil {
				b.Error(err)
				return
			}
			mine = append(mine, time.Since(t0))
		}
		lat.add(mine)
	})
	elapsed := time.Since(start)
	b.StopTimer()
	lat.report(b, elapsed)
}

// BenchmarkCertify measures Certify end to end as proxies see it: gRPC over
// TLS to the component, which reviews each token with the real API server
// and signs the CSR.
func BenchmarkCertify(b *testing.B) {
	root := pkitest.NewRoot(b, "root", pkitest.Options{})
	iss := pkitest.NewIssuer(b, "issuer", root, pkitest.Options{})
	c := startComponent(b, componentOptions{
		anchors:      []*pkitest.CA{root},
		issuerFiles:  map[string][]byte{"crt.pem": iss.CertPEM(), "key.pem": iss.KeyPEM(b)},
		issuerSecret: "issuer-bench",
	})
	wl := benchWorkloads(b, 50)
	client := c.dial(b)
	ctx := context.Background()
	runParallel(b, func(i int) error {
		w := wl[i%len(wl)]
		_, err := client.Certify(ctx, &identityv1.CertifyRequest{Identity: w.id, Token: w.token, CertificateSigningRequest: w.csr})
		return err
	})
}

// BenchmarkTokenReview measures the TokenReview alone, with the component's
// own credentials: the part of Certify spent in the API server.
func BenchmarkTokenReview(b *testing.B) {
	wl := benchWorkloads(b, 50)
	r := token.NewKubeReviewer(identityClient(b).AuthenticationV1().TokenReviews(), identityv1.TokenAudience, 10*time.Second)
	ctx := context.Background()
	runParallel(b, func(i int) error {
		_, err := r.Review(ctx, wl[i%len(wl)].token)
		return err
	})
}
