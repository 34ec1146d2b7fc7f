package bench

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// LoadSpec is one run of the load generator.
type LoadSpec struct {
	Protocol Protocol      `json:"protocol"`
	Target   string        `json:"target"` // host:port
	Rate     int           `json:"rate"`   // requests per second
	Duration time.Duration `json:"duration"`
	// Warmup is sent at the same rate before the measurement, on the same
	// connections, and not measured.
	Warmup time.Duration `json:"warmup"`
	// Timeout bounds each request.
	Timeout time.Duration `json:"timeout"`
}

// LoadResult is what one run measured.
type LoadResult struct {
	Sent       int    `json:"sent"`
	OK         int    `json:"ok"`
	Errors     int    `json:"errors"`
	FirstError string `json:"firstError,omitempty"`
	WarmupSent int    `json:"warmupSent"`
	// Latencies of the successful requests, in the order they completed.
	Latencies []time.Duration `json:"latencies"`
	Elapsed   time.Duration   `json:"elapsed"`
}

// Load runs spec: constant-rate, open-loop requests (each leaves at its
// time whatever the others do), HTTP through vegeta, gRPC through
// loadGRPC. A request counts as OK with status 200 (gRPC OK) and a
// ResponseSize body.
func Load(ctx context.Context, spec LoadSpec) (LoadResult, error) {
	switch spec.Protocol {
	case HTTP1, H2C:
		return loadHTTP(ctx, spec)
	case GRPC:
		return loadGRPC(ctx, spec)
	default:
		return LoadResult{}, fmt.Errorf("unknown protocol %q", spec.Protocol)
	}
}

// loadHTTP attacks with vegeta's constant pacer. vegeta measures each
// request from the moment its worker takes the pacer's tick.
func loadHTTP(ctx context.Context, spec LoadSpec) (LoadResult, error) {
	tr := &http.Transport{
		Proxy:               nil,
		MaxIdleConnsPerHost: 1000,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
	if spec.Protocol == H2C {
		var p http.Protocols
		p.SetUnencryptedHTTP2(true)
		tr.Protocols = &p
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: spec.Timeout}
	target := vegeta.Target{Method: http.MethodGet, URL: (&url.URL{Scheme: "http", Host: spec.Target, Path: "/"}).String()}
	pacer := vegeta.ConstantPacer{Freq: spec.Rate, Per: time.Second}
	attack := func(d time.Duration, each func(*vegeta.Result)) {
		atk := vegeta.NewAttacker(vegeta.Client(client), vegeta.Redirects(vegeta.NoFollow))
		stop := context.AfterFunc(ctx, func() { atk.Stop() })
		defer stop()
		for r := range atk.Attack(vegeta.NewStaticTargeter(target), pacer, d, "") {
			each(r)
		}
	}
	var res LoadResult
	if spec.Warmup > 0 { // vegeta attacks forever for a zero duration
		attack(spec.Warmup, func(*vegeta.Result) { res.WarmupSent++ })
	}
	start := time.Now()
	attack(spec.Duration, func(r *vegeta.Result) {
		var err error
		switch {
		case r.Error != "":
			err = errors.New(r.Error)
		case r.Code != http.StatusOK || r.BytesIn != ResponseSize:
			err = fmt.Errorf("status %d, %d bytes", r.Code, r.BytesIn)
		}
		res.record(r.Latency, err)
	})
	res.Elapsed = time.Since(start)
	return res, ctx.Err()
}

func (r *LoadResult) record(lat time.Duration, err error) {
	r.Sent++
	if err != nil {
		r.Errors++
		if r.FirstError == "" {
			r.FirstError = err.Error()
		}
		return
	}
	r.OK++
	r.Latencies = append(r.Latencies, lat)
}

// loadGRPC calls the test server's unary method over one HTTP/2
// connection at the times Schedule gives, each call in its own goroutine,
// and measures each call from its scheduled time, so a late send counts
// against the system under test rather than hiding (no coordinated
// omission).
func loadGRPC(ctx context.Context, spec LoadSpec) (LoadResult, error) {
	conn, err := grpc.NewClient("passthrough:///"+spec.Target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return LoadResult{}, err
	}
	defer conn.Close()
	call := func() error {
		cctx, cancel := context.WithTimeout(ctx, spec.Timeout)
		defer cancel()
		out := new(wrapperspb.BytesValue)
		if err := conn.Invoke(cctx, grpcMethod, &wrapperspb.BytesValue{}, out); err != nil {
			return err
		}
		if len(out.Value) != ResponseSize {
			return fmt.Errorf("%d bytes", len(out.Value))
		}
		return nil
	}
	var res LoadResult
	var mu sync.Mutex
	run := func(d time.Duration, each func(lat time.Duration, err error)) error {
		var wg sync.WaitGroup
		defer wg.Wait()
		n := Count(spec.Rate, d)
		start := time.Now()
		for i := range n {
			due := Schedule(start, spec.Rate, i)
			if wait := time.Until(due); wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
					return ctx.Err()
				}
			}
			wg.Go(func() {
				err := call()
				lat := time.Since(due)
				mu.Lock()
				each(lat, err)
				mu.Unlock()
			})
		}
		return nil
	}
	if err := run(spec.Warmup, func(time.Duration, error) { res.WarmupSent++ }); err != nil {
		return res, err
	}
	start := time.Now()
	err = run(spec.Duration, res.record)
	res.Elapsed = time.Since(start)
	return res, err
}

// Count is the number of requests a run of d at rate sends.
func Count(rate int, d time.Duration) int {
	return int(int64(rate) * int64(d) / int64(time.Second))
}

// Schedule is the time request i (from 0) of a constant-rate run started
// at start is due: start + i/rate, without accumulating rounding errors.
func Schedule(start time.Time, rate, i int) time.Time {
	return start.Add(time.Duration(int64(i) * int64(time.Second) / int64(rate)))
}
