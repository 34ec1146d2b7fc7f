// Package cli implements the linkerd command: it parses the command line,
// runs the subcommand and turns its outcome into an exit code.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// command is one subcommand of linkerd.
type command struct {
	summary string
	// run parses args and does the work. It returns errUsage (wrapped) when the
	// command line is wrong, so that Run can print the usage.
	run func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// errUsage marks errors in the command line itself.
var errUsage = errors.New("usage")

func commands() map[string]command {
	return map[string]command{
		"version": {summary: "Print the version of this client and the API it speaks", run: runVersion},
	}
}

// Run runs the linkerd command with args (without the program name) and
// returns the process exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmds := commands()
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		w := stdout
		code := exitOK
		if len(args) == 0 {
			w, code = stderr, exitUsage
		}
		printUsage(w, cmds)
		return code
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "linkerd: unknown command %q\n\n", args[0])
		printUsage(stderr, cmds)
		return exitUsage
	}
	err := cmd.run(ctx, args[1:], stdout, stderr)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "linkerd %s: %v\n", args[0], err)
		return exitUsage
	default:
		fmt.Fprintf(stderr, "linkerd %s: %v\n", args[0], err)
		return exitError
	}
}

func printUsage(w io.Writer, cmds map[string]command) {
	fmt.Fprintln(w, "linkerd: the command-line tool of the linkerd-go service mesh.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: linkerd <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	names := make([]string, 0, len(cmds))
	for name := range cmds {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(w, "  %-12s %s\n", name, cmds[name].summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, `Run "linkerd <command> --help" for a command's flags.`)
}

// newFlagSet returns a flag set that reports errors instead of exiting and
// prints its help on w.
func newFlagSet(name, usage string, w io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("linkerd "+name, flag.ContinueOnError)
	fs.SetOutput(w)
	fs.Usage = func() {
		fmt.Fprintf(w, "Usage: linkerd %s\n\n", usage)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args and refuses positional arguments.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	return nil
}
