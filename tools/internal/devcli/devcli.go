// Package devcli implements the dev command: building the pinned Kubernetes
// binaries and driving the single-node dev cluster.
package devcli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
)

const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

var errUsage = errors.New("usage")

func commands() map[string]command {
	return map[string]command{
		"k8s-bins": {summary: "Build (or find in the cache) the pinned Kubernetes, runtime, CNI, helm and crane binaries", run: runK8sBins},
		"cluster":  {summary: "Run the single-node dev cluster: up, down, status, kubeconfig, load", run: runCluster},
	}
}

// Run runs the dev command with args (without the program name) and returns
// the exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmds := commands()
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		w, code := stdout, exitOK
		if len(args) == 0 {
			w, code = stderr, exitUsage
		}
		printUsage(w, cmds)
		return code
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "dev: unknown command %q\n\n", args[0])
		printUsage(stderr, cmds)
		return exitUsage
	}
	err := cmd.run(ctx, args[1:], stdout, stderr)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "dev %s: %v\n", args[0], err)
		return exitUsage
	default:
		fmt.Fprintf(stderr, "dev %s: %v\n", args[0], err)
		return exitError
	}
}

func printUsage(w io.Writer, cmds map[string]command) {
	fmt.Fprintln(w, "dev: developer tooling of linkerd-go (Kubernetes binaries, dev cluster).")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: dev <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	names := make([]string, 0, len(cmds))
	for name := range cmds {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(w, "  %-10s %s\n", name, cmds[name].summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, `Run "dev <command> --help" for a command's flags.`)
}

func newFlagSet(name, usage string, w io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("dev "+name, flag.ContinueOnError)
	fs.SetOutput(w)
	fs.Usage = func() {
		fmt.Fprintf(w, "Usage: dev %s\n\n", usage)
		fs.PrintDefaults()
	}
	return fs
}

func parseFlags(fs *flag.FlagSet, args []string, maxArgs int) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > maxArgs {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(maxArgs))
	}
	return nil
}
