// Command proxy-init sets up the nftables rules that redirect a pod's TCP
// traffic through its proxy, then exits.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/linkerd-go/linkerd-go/proxy-init/internal/cli"
)

// version is set at link time (-ldflags "-X main.version=…").
var version = "dev"

func main() {
	if len(os.Args) == 2 && os.Args[1] == "--version" {
		fmt.Println("proxy-init", version)
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
