// Command proxy is the mesh's sidecar: it carries every byte of a meshed
// pod's traffic. It is configured through LINKERD2_PROXY_* environment
// variables (run with --help for the list).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/linkerd-go/linkerd-go/component/logging"
	"github.com/linkerd-go/linkerd-go/proxy/internal/app"
	"github.com/linkerd-go/linkerd-go/proxy/internal/config"
)

// version is set at link time (-ldflags "-X main.version=…").
var version = "dev"

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "-h", "--help", "help":
			usage(os.Stdout)
			return
		default:
			fmt.Fprintf(os.Stderr, "proxy: unexpected argument %q; it is configured through the environment\n\n", os.Args[1])
			usage(os.Stderr)
			os.Exit(2)
		}
	}
	cfg, err := config.FromEnv(nil)
	if err != nil {
		fmt.Fprintf(os.Stderr, "proxy: invalid configuration:\n%v\n", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	log, err := logging.New(os.Stderr, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		fmt.Fprintf(os.Stderr, "proxy: invalid configuration:\n%v\n", err)
		os.Exit(2)
	}
	log.Info("starting", "version", version)
	if err := app.Run(ctx, cfg, log); err != nil {
		fmt.Fprintf(os.Stderr, "proxy: %v\n", err)
		os.Exit(1)
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "proxy: the linkerd-go sidecar proxy. Configured through the environment:")
	fmt.Fprintln(w)
	for _, v := range config.Vars {
		def := v.Default
		if v.Required {
			def = "required"
		} else if def == "" {
			def = "unset"
		}
		fmt.Fprintf(w, "  %s (%s)\n      %s\n", v.Name, def, v.Help)
	}
}
