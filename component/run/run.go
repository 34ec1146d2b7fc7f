// Package run is the process skeleton every long-running component shares
// (identity, destination, the injector, the proxy): read the configuration,
// build the logger, build the component, run it until SIGTERM or SIGINT,
// and exit with the code that kubelet and an operator read the same way in
// every component:
//
//	0  stopped cleanly, or --help was asked for
//	2  bad flags, environment or configuration: fix the input, do not retry
//	1  the component could not start, or failed while running
//
// Each component keeps its own configuration type, flags and app package;
// its main is one call to Program.Main. proxy-init is a one-shot command
// (it sets up the pod's redirect and exits) and has its own main.
package run

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/go-logr/logr"
)

// Component is a built component: Run serves until ctx ends and returns
// the error that stopped it, or nil after a clean shutdown.
type Component interface {
	Run(ctx context.Context) error
}

// Program describes one component's process. C is its configuration type.
type Program[C any] struct {
	// Name is the component's name, prefixed to errors printed before the
	// logger exists.
	Name string
	// Version is the build's version (set at link time), logged at start.
	Version string
	// Config reads the configuration from the arguments (and the
	// environment, where the component is configured that way). It writes
	// its usage to stderr and returns flag.ErrHelp when help was asked for.
	// Every error it returns is a usage error (exit 2).
	Config func(args []string, stderr io.Writer) (C, error)
	// Logger builds the component's logger from the configuration; an
	// error is a usage error (exit 2).
	Logger func(cfg C, stderr io.Writer) (logr.Logger, error)
	// New builds the component. An error wrapped with Usage exits 2 (a
	// configuration that only New can judge); any other exits 1.
	New func(cfg C, log logr.Logger) (Component, error)
}

// usageError marks an error as the input's fault.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// Usage marks err as a problem with the flags or configuration: the
// process exits 2 rather than 1. Usage(nil) is nil.
func Usage(err error) error {
	if err == nil {
		return nil
	}
	return usageError{err}
}

// IsUsage reports whether err was marked with Usage.
func IsUsage(err error) bool {
	var u usageError
	return errors.As(err, &u)
}

// Main runs the program with the process's arguments, stops it on SIGTERM
// or SIGINT, and exits with its code.
func (p Program[C]) Main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	code := p.Run(ctx, os.Args[1:], os.Stderr)
	stop()
	os.Exit(code)
}

// Run is Main without the process: it runs the program with args until ctx
// ends and returns the exit code.
func (p Program[C]) Run(ctx context.Context, args []string, stderr io.Writer) int {
	cfg, err := p.Config(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", p.Name, err)
		return 2
	}
	log, err := p.Logger(cfg, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", p.Name, err)
		return 2
	}
	log.Info("starting", "version", p.Version)
	c, err := p.New(cfg, log)
	if err != nil {
		log.Error(err, "cannot start")
		if IsUsage(err) {
			return 2
		}
		return 1
	}
	if err := c.Run(ctx); err != nil {
		log.Error(err, "stopped with an error")
		return 1
	}
	log.Info("stopped")
	return 0
}
