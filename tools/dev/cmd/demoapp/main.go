// Command demoapp runs the demo workloads of `make demo` and the e2e suite
// (see internal/demo/app):
//
//	demoapp backend  [--addr :8080]                          gRPC Whoami + health
//	demoapp frontend [--addr :8080] --backend HOST:PORT      HTTP/1.1 → gRPC backend
//	demoapp load     --url URL [--rate 10] [--stats-addr :8081]
//	demoapp job      --url URL [--count 20]
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/linkerd-go/linkerd-go/tools/dev/demo/app"
)

const usage = "usage: demoapp backend|frontend|load|job [flags] (demoapp MODE -h for the flags)"

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	name, _ := os.Hostname()
	mode, args := os.Args[1], os.Args[2:]
	fs := flag.NewFlagSet(mode, flag.ContinueOnError)
	var run func() error
	switch mode {
	case "backend":
		addr := fs.String("addr", ":8080", "gRPC listen address")
		run = func() error { return app.RunBackend(ctx, app.BackendConfig{Addr: *addr, Name: name, Log: log}) }
	case "frontend":
		addr := fs.String("addr", ":8080", "HTTP listen address")
		backend := fs.String("backend", "", "the backend's gRPC address, HOST:PORT")
		timeout := fs.Duration("timeout", 5*time.Second, "bound of each backend call")
		run = func() error {
			return app.RunFrontend(ctx, app.FrontendConfig{Addr: *addr, Backend: *backend, Name: name, Timeout: *timeout, Log: log})
		}
	case "load":
		url := fs.String("url", "", "URL to GET")
		rate := fs.Float64("rate", 10, "requests per second")
		timeout := fs.Duration("timeout", 5*time.Second, "bound of each request")
		statsAddr := fs.String("stats-addr", ":8081", "address of GET /stats (JSON) and /ready")
		run = func() error {
			return app.RunLoad(ctx, app.LoadConfig{URL: *url, Rate: *rate, Timeout: *timeout, StatsAddr: *statsAddr, Log: log})
		}
	case "job":
		url := fs.String("url", "", "URL to GET")
		count := fs.Int("count", 20, "number of requests")
		timeout := fs.Duration("timeout", 5*time.Second, "bound of each request")
		run = func() error {
			return app.RunJob(ctx, app.JobConfig{URL: *url, Count: *count, Timeout: *timeout, Out: os.Stdout})
		}
	default:
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	if err := fs.Parse(args); err != nil {
		os.Exit(2)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "demoapp %s: unexpected arguments %q\n", mode, fs.Args())
		os.Exit(2)
	}
	if err := run(); err != nil {
		log.Error("demoapp "+mode+" failed", "err", err)
		os.Exit(1)
	}
}
