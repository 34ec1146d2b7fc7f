// Command proxy is the mesh's sidecar: it carries every byte of a meshed
// pod's traffic. It is configured through LINKERD2_PROXY_* environment
// variables (run with --help for the list).
package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/go-logr/logr"

	"github.com/linkerd-go/linkerd-go/component/logging"
	"github.com/linkerd-go/linkerd-go/component/run"
	"github.com/linkerd-go/linkerd-go/proxy/internal/app"
	"github.com/linkerd-go/linkerd-go/proxy/internal/config"
)

// version is set at link time (-ldflags "-X main.version=…").
var version = "dev"

func main() {
	run.Program[*config.Config]{
		Name: "proxy", Version: version,
		Config: fromEnv,
		Logger: func(cfg *config.Config, stderr io.Writer) (logr.Logger, error) {
			return logging.New(stderr, cfg.LogLevel, cfg.LogFormat)
		},
		New: func(cfg *config.Config, log logr.Logger) (run.Component, error) {
			a, err := app.New(cfg, app.Deps{Log: log})
			return a, run.Usage(err)
		},
	}.Main()
}

// fromEnv reads the configuration from the environment; the only argument
// the proxy takes is --help.
func fromEnv(args []string, stderr io.Writer) (*config.Config, error) {
	if len(args) > 0 {
		switch args[0] {
		case "-h", "--help", "help":
			usage(os.Stdout)
			return nil, flag.ErrHelp
		default:
			usage(stderr)
			return nil, fmt.Errorf("unexpected argument %q; the proxy is configured through the environment", args[0])
		}
	}
	cfg, err := config.FromEnv(nil)
	if err != nil {
		return nil, fmt.Errorf("invalid configuration:\n%w", err)
	}
	return cfg, nil
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
