// Command bench runs the benchmarks of linkerd-go. `bench proxy` is the
// data-plane benchmark behind `make bench-proxy`: direct vs our proxy pair
// vs an nginx pair, in network namespaces on this machine (root).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/linkerd-go/linkerd-go/tools/suites/bench"
)

func main() {
	// The test server and the load generator are this binary again,
	// started inside a network namespace.
	if bench.IsHelper() {
		os.Exit(bench.RunHelper())
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := bench.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
