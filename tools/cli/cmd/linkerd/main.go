// Command linkerd is the mesh's command-line tool.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/linkerd-go/linkerd-go/tools/cli/internal/commands"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := commands.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
