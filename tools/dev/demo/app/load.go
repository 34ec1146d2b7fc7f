package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// Report is what a load generator or a job saw.
type Report struct {
	// Sent requests were started; Succeeded were answered 200; Failed got
	// an error or another status (or could not start: too many in flight).
	Sent      uint64 `json:"sent"`
	Succeeded uint64 `json:"succeeded"`
	Failed    uint64 `json:"failed"`
	InFlight  int    `json:"inFlight"`
	// Backends counts the succeeded requests by the backend pod that
	// answered (at most maxBackends names; the rest under "other").
	Backends  map[string]uint64 `json:"backends"`
	LastError string            `json:"lastError,omitempty"`
}

const maxBackends = 64

// recorder is a Report under a lock.
type recorder struct {
	mu sync.Mutex
	r  Report
}

func newRecorder() *recorder { return &recorder{r: Report{Backends: map[string]uint64{}}} }

func (rec *recorder) start() {
	rec.mu.Lock()
	rec.r.Sent++
	rec.r.InFlight++
	rec.mu.Unlock()
}

func (rec *recorder) done(backend string, err error) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.r.InFlight--
	if err != nil {
		rec.r.Failed++
		rec.r.LastError = time.Now().UTC().Format(time.RFC3339) + " " + err.Error()
		return
	}
	rec.r.Succeeded++
	if _, ok := rec.r.Backends[backend]; !ok && len(rec.r.Backends) >= maxBackends {
		backend = "other"
	}
	rec.r.Backends[backend]++
}

func (rec *recorder) snapshot() Report {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	r := rec.r
	r.Backends = make(map[string]uint64, len(rec.r.Backends))
	for k, v := range rec.r.Backends {
		r.Backends[k] = v
	}
	return r
}

// call GETs url and returns the backend that answered.
func call(ctx context.Context, client *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s: %s", url, resp.Status, body)
	}
	return resp.Header.Get(BackendHeader), nil
}

// LoadConfig configures the load generator.
type LoadConfig struct {
	// URL is requested with GET.
	URL string
	// Rate is requests per second (constant, open loop).
	Rate float64
	// Timeout bounds each request.
	Timeout time.Duration
	// MaxInFlight bounds the requests outstanding; a tick beyond it counts
	// as a failure.
	MaxInFlight int
	// StatsListener serves GET /stats (the Report as JSON) and /ready (nil
	// = listen on StatsAddr).
	StatsListener net.Listener
	StatsAddr     string
	// LogEvery is how often a summary is logged (0 = 10s).
	LogEvery time.Duration
	Log      *slog.Logger
}

// RunLoad sends GET requests to URL at Rate until ctx ends, counting the
// outcomes; GET /stats on the stats address returns them as JSON.
func RunLoad(ctx context.Context, cfg LoadConfig) error {
	if cfg.URL == "" || cfg.Rate <= 0 {
		return errors.New("load: need a URL and a positive rate")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 100
	}
	if cfg.LogEvery <= 0 {
		cfg.LogEvery = 10 * time.Second
	}
	l, err := listenerOr(ctx, cfg.StatsListener, cfg.StatsAddr)
	if err != nil {
		return err
	}
	rec := newRecorder()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(rec.snapshot())
	})
	client := &http.Client{Timeout: cfg.Timeout, Transport: &http.Transport{MaxIdleConnsPerHost: cfg.MaxInFlight, IdleConnTimeout: 90 * time.Second}}
	defer client.CloseIdleConnections()
	cfg.Log.Info("load starting", "url", cfg.URL, "rate", cfg.Rate)
	return runAll(ctx,
		func(ctx context.Context) error { return serveHTTP(ctx, newHTTPServer(mux), l) },
		func(ctx context.Context) error {
			var wg sync.WaitGroup
			defer wg.Wait()
			sem := make(chan struct{}, cfg.MaxInFlight)
			tick := time.NewTicker(time.Duration(float64(time.Second) / cfg.Rate))
			defer tick.Stop()
			logTick := time.NewTicker(cfg.LogEvery)
			defer logTick.Stop()
			for {
				select {
				case <-ctx.Done():
					return nil
				case <-logTick.C:
					r := rec.snapshot()
					cfg.Log.Info("load", "sent", r.Sent, "succeeded", r.Succeeded, "failed", r.Failed, "backends", r.Backends, "lastError", r.LastError)
				case <-tick.C:
					rec.start()
					select {
					case sem <- struct{}{}:
					default:
						rec.done("", fmt.Errorf("more than %d requests in flight", cfg.MaxInFlight))
						continue
					}
					wg.Add(1)
					go func() {
						defer wg.Done()
						defer func() { <-sem }()
						// The request is not cut short by ctx: a stopping
						// generator lets its last requests finish.
						backend, err := call(context.WithoutCancel(ctx), client, cfg.URL)
						rec.done(backend, err)
					}()
				}
			}
		})
}

// JobConfig configures the job.
type JobConfig struct {
	URL     string
	Count   int
	Timeout time.Duration
	Out     io.Writer
}

// RunJob GETs URL Count times, one after the other, and fails on the first
// request not answered 200. It prints how many each backend answered.
func RunJob(ctx context.Context, cfg JobConfig) error {
	if cfg.URL == "" || cfg.Count <= 0 {
		return errors.New("job: need a URL and a positive count")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	client := &http.Client{Timeout: cfg.Timeout}
	defer client.CloseIdleConnections()
	rec := newRecorder()
	for i := range cfg.Count {
		rec.start()
		backend, err := call(ctx, client, cfg.URL)
		rec.done(backend, err)
		if err != nil {
			return fmt.Errorf("request %d of %d: %w", i+1, cfg.Count, err)
		}
	}
	r := rec.snapshot()
	b, _ := json.Marshal(r)
	fmt.Fprintf(cfg.Out, "%d requests, all answered 200: %s\n", r.Succeeded, b)
	return nil
}
