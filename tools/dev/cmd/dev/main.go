// Command dev is the developers' tool of linkerd-go: it builds the pinned
// Kubernetes binaries and runs the single-node dev cluster the end-to-end
// tests and the demo use.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/linkerd-go/linkerd-go/tools/dev/internal/devcli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := devcli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
