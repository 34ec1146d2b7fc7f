package app

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func listenT(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestFrontendBackendLoadJob runs the four modes against each other on
// loopback: the job and the load generator through the frontend to a
// backend.
func TestFrontendBackendLoadJob(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	run := func(fn func() error) {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- fn() }()
	}
	bl, fl, sl := listenT(t), listenT(t), listenT(t)
	run(func() error { return RunBackend(ctx, BackendConfig{Listener: bl, Name: "backend-0", Log: log}) })
	run(func() error {
		return RunFrontend(ctx, FrontendConfig{Listener: fl, Backend: bl.Addr().String(), Name: "frontend-0", Log: log})
	})
	url := "http://" + fl.Addr().String() + "/"
	run(func() error {
		return RunLoad(ctx, LoadConfig{URL: url, Rate: 200, StatsListener: sl, Log: log})
	})
	defer func() {
		cancel()
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("mode returned %v", err)
			}
		}
	}()

	var out bytes.Buffer
	if err := RunJob(ctx, JobConfig{URL: url, Count: 5, Out: &out}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"backend-0":5`) {
		t.Errorf("job output %q does not count 5 answers of backend-0", out.String())
	}

	// The load generator's report counts successes by backend.
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := http.Get("http://" + sl.Addr().String() + "/stats")
		if err != nil {
			t.Fatal(err)
		}
		var r Report
		err = json.NewDecoder(resp.Body).Decode(&r)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if r.Failed > 0 {
			t.Fatalf("load failures: %+v", r)
		}
		if r.Succeeded >= 20 && r.Backends["backend-0"] == r.Succeeded {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("load report after 30s: %+v", r)
		}
		<-tick.C
	}
}

func TestJobFailsOnBadBackend(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	fl := listenT(t)
	// A backend address nothing listens on: the frontend answers 502.
	dead := listenT(t)
	dead.Close()
	done := make(chan error, 1)
	go func() {
		done <- RunFrontend(ctx, FrontendConfig{Listener: fl, Backend: dead.Addr().String(), Name: "f", Timeout: time.Second, Log: log})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	err := RunJob(ctx, JobConfig{URL: "http://" + fl.Addr().String() + "/", Count: 3, Out: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "502") {
		t.Fatalf("job error = %v, want a 502", err)
	}
}
