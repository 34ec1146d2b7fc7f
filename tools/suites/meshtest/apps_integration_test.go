//go:build integration

package meshtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The applications run as this test binary re-executed in a network
// namespace with helperEnv set (the helper-process pattern). They know
// nothing about the mesh: plain HTTP/1.1, no proxy settings.
const (
	helperEnv = "MESHTEST_HELPER" // server | client | load | stat
	urlEnv    = "MESHTEST_URL"
	argEnv    = "MESHTEST_ARG"
)

// Response headers of the server app.
const (
	servedByHeader = "X-Served-By"          // the local address the request came in on
	clientIDHeader = "X-Seen-L5d-Client-Id" // the l5d-client-id the app received
)

// responseSize is the body size of every answer.
const responseSize = 1024

// runHelper runs the helper named by helperEnv and exits.
func runHelper(name string) {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	var err error
	switch name {
	case "server":
		err = serveApp(ctx)
	case "client":
		err = clientApp(ctx)
	case "load":
		err = loadApp(ctx)
	case "stat":
		err = statApp(ctx)
	default:
		err = fmt.Errorf("unknown helper %q", name)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// serveApp answers every request on 0.0.0.0:8080 with 1 KiB, saying which
// local address it was reached on and which l5d-client-id it was given.
func serveApp(ctx context.Context) error {
	body := []byte(strings.Repeat("x", responseSize))
	srv := &http.Server{
		Addr: "0.0.0.0:8080",
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
			if local != nil {
				host, _, _ := net.SplitHostPort(local.String())
				w.Header().Set(servedByHeader, host)
			}
			w.Header().Set(clientIDHeader, r.Header.Get("l5d-client-id"))
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			_, _ = w.Write(body)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	ln, err := net.Listen("tcp", srv.Addr)
	if err != nil {
		return err
	}
	fmt.Println("listening on", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	}
}

// clientResult is what the client app prints.
type clientResult struct {
	Requests  int            `json:"requests"`
	Statuses  map[int]int    `json:"statuses"`
	ServedBy  map[string]int `json:"servedBy"`
	ClientIDs map[string]int `json:"clientIds"`
	BodySizes map[int]int    `json:"bodySizes"`
	Errors    []string       `json:"errors,omitempty"`
}

// clientApp GETs the URL until it has seen argEnv distinct serving addresses
// (at least 30 requests, at most 500) and prints a clientResult as JSON.
func clientApp(ctx context.Context) error {
	url := os.Getenv(urlEnv)
	want, err := strconv.Atoi(os.Getenv(argEnv))
	if err != nil {
		return fmt.Errorf("%s: %w", argEnv, err)
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil}}
	res := clientResult{Statuses: map[int]int{}, ServedBy: map[string]int{}, ClientIDs: map[string]int{}, BodySizes: map[int]int{}}
	for i := 0; i < 500 && (i < 30 || len(res.ServedBy) < want); i++ {
		res.Requests++
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			res.Errors = append(res.Errors, err.Error())
			continue
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			res.Errors = append(res.Errors, err.Error())
		}
		res.Statuses[resp.StatusCode]++
		res.BodySizes[len(b)]++
		res.ServedBy[resp.Header.Get(servedByHeader)]++
		res.ClientIDs[resp.Header.Get(clientIDHeader)]++
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

// loadResult is what the load generator prints.
type loadResult struct {
	Sent      int             `json:"sent"`
	OK        int             `json:"ok"`
	Errors    int             `json:"errors"`
	FirstErr  string          `json:"firstErr,omitempty"`
	Duration  time.Duration   `json:"duration"`
	Latencies []time.Duration `json:"latencies"` // of the successful requests, sorted
}

// loadApp sends GETs to the URL at a constant rate (open loop: each request
// leaves at its scheduled time whatever the others do) for a duration, both
// from argEnv as "rate,duration", and prints a loadResult as JSON. Latency is
// measured from the scheduled time to the end of the body, so a stall of the
// sender counts against the system rather than hiding (no coordinated
// omission).
func loadApp(ctx context.Context) error {
	url := os.Getenv(urlEnv)
	rateS, durS, _ := strings.Cut(os.Getenv(argEnv), ",")
	rate, err := strconv.Atoi(rateS)
	if err != nil || rate <= 0 {
		return fmt.Errorf("bad rate %q", rateS)
	}
	dur, err := time.ParseDuration(durS)
	if err != nil {
		return err
	}
	tr := &http.Transport{Proxy: nil, MaxIdleConns: 1000, MaxIdleConnsPerHost: 1000, IdleConnTimeout: time.Minute}
	defer tr.CloseIdleConnections()
	client := &http.Client{Timeout: 10 * time.Second, Transport: tr}
	get := func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		n, err := io.Copy(io.Discard, resp.Body)
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK || n != responseSize {
			return fmt.Errorf("status %d, %d bytes", resp.StatusCode, n)
		}
		return nil
	}
	// Warm the connection pool outside the measurement.
	for range 20 {
		if err := get(ctx); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}
	total := int(int64(rate) * int64(dur) / int64(time.Second))
	interval := time.Second / time.Duration(rate)
	lat := make([]time.Duration, total)
	errs := make([]error, total)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range total {
		due := start.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		wg.Go(func() {
			errs[i] = get(ctx)
			lat[i] = time.Since(due)
		})
	}
	wg.Wait()
	res := loadResult{Sent: total, Duration: time.Since(start)}
	for i, err := range errs {
		if err != nil {
			res.Errors++
			if res.FirstErr == "" {
				res.FirstErr = err.Error()
			}
			continue
		}
		res.OK++
		res.Latencies = append(res.Latencies, lat[i])
	}
	slices.Sort(res.Latencies)
	if res.OK == 0 {
		return errors.New("no request succeeded: " + res.FirstErr)
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

// quantile returns the q-quantile of sorted durations.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q * float64(len(sorted)))
	if i >= len(sorted) {
		i = len(sorted) - 1
	}
	return sorted[i]
}
