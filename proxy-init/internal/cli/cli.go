// Package cli implements the proxy-init command: it parses the command line,
// builds the rule set, and prints it (--simulate) or applies it.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/linkerd-go/linkerd-go/proxy-init/internal/nft"
	"github.com/linkerd-go/linkerd-go/proxy-init/internal/plan"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // the rule set could not be applied
	exitUsage = 2 // the command line is wrong
)

// Run runs proxy-init with args (without the program name) and returns the
// process exit code. The plan goes to stdout with --simulate; logs go to
// stderr.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseArgs(args, stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case err != nil:
		// The flag package has already said what is wrong, with the usage.
		return exitUsage
	}
	log, err := newLogger(o.logLevel, o.logFormat, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "proxy-init: %v\n", err)
		return exitUsage
	}
	p, err := plan.Build(o.config)
	if err != nil {
		log.Error("refusing to set up redirection", "err", err)
		return exitUsage
	}
	if o.simulate {
		if _, err := io.WriteString(stdout, p.String()); err != nil {
			log.Error("writing the plan", "err", err)
			return exitError
		}
		log.Info("simulation: nothing was changed", "table", "inet "+p.Table)
		return exitOK
	}
	if err := ctx.Err(); err != nil {
		log.Error("interrupted before applying the rule set: nothing was changed", "err", err)
		return exitError
	}
	netns := o.netns
	if netns == "" {
		netns = "current"
	}
	if err := apply(p, o.netns); err != nil {
		log.Error("setting up redirection failed", "netns", netns, "err", err)
		return exitError
	}
	log.Info("redirection set up",
		"table", "inet "+p.Table,
		"netns", netns,
		"inbound", fmt.Sprintf("tcp -> :%d", o.config.IncomingProxyPort),
		"outbound", fmt.Sprintf("tcp -> :%d", o.config.OutgoingProxyPort))
	log.Debug("rule set", "nft", p.String())
	return exitOK
}

func apply(p *plan.Plan, netns string) error {
	conn, err := nft.Open(netns)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	return conn.Apply(p)
}

// newLogger returns a logger writing to w at the given level, as plain text
// or JSON. The level names of Linkerd's proxy-init are accepted too: trace
// logs as debug, and fatal and panic as error.
func newLogger(level, format string, w io.Writer) (*slog.Logger, error) {
	var l slog.Level
	switch strings.ToLower(level) {
	case "trace", "debug":
		l = slog.LevelDebug
	case "info":
		l = slog.LevelInfo
	case "warn", "warning":
		l = slog.LevelWarn
	case "error", "fatal", "panic":
		l = slog.LevelError
	default:
		return nil, fmt.Errorf("--log-level %q is not debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "plain":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("--log-format %q is not plain or json", format)
	}
}
