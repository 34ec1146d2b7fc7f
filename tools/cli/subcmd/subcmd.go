// Package subcmd runs a command-line program made of subcommands
// ("linkerd version", "dev cluster up"): dispatch, usage, flag parsing and
// the mapping of outcomes to exit codes, shared by the tools' programs.
package subcmd

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
	ExitOK    = 0
	ExitError = 1
	ExitUsage = 2
)

// ErrUsage marks errors in the command line itself; wrap it so Run exits
// with ExitUsage.
var ErrUsage = errors.New("usage")

// Command is one subcommand.
type Command struct {
	Summary string
	Run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// Program is a named set of subcommands.
type Program struct {
	Name        string // e.g. "linkerd"
	Description string // one line, printed first in the usage
	Commands    map[string]Command
}

// Run runs the subcommand named by args[0] and returns the exit code.
func (p Program) Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		w, code := stdout, ExitOK
		if len(args) == 0 {
			w, code = stderr, ExitUsage
		}
		p.usage(w)
		return code
	}
	cmd, ok := p.Commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "%s: unknown command %q\n\n", p.Name, args[0])
		p.usage(stderr)
		return ExitUsage
	}
	err := cmd.Run(ctx, args[1:], stdout, stderr)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return ExitOK
	case errors.Is(err, ErrUsage):
		fmt.Fprintf(stderr, "%s %s: %v\n", p.Name, args[0], err)
		return ExitUsage
	default:
		fmt.Fprintf(stderr, "%s %s: %v\n", p.Name, args[0], err)
		return ExitError
	}
}

func (p Program) usage(w io.Writer) {
	fmt.Fprintln(w, p.Description)
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Usage: %s <command> [flags]\n\n", p.Name)
	fmt.Fprintln(w, "Commands:")
	names := make([]string, 0, len(p.Commands))
	for name := range p.Commands {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(w, "  %-12s %s\n", name, p.Commands[name].Summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Run \"%s <command> --help\" for a command's flags.\n", p.Name)
}

// NewFlagSet returns a flag set for "prog name" that reports errors
// instead of exiting and prints its help, headed by usage, on w.
func NewFlagSet(prog, name, usage string, w io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(prog+" "+name, flag.ContinueOnError)
	fs.SetOutput(w)
	fs.Usage = func() {
		fmt.Fprintf(w, "Usage: %s %s\n\n", prog, usage)
		fs.PrintDefaults()
	}
	return fs
}

// ParseFlags parses args and refuses more than maxArgs positional
// arguments.
func ParseFlags(fs *flag.FlagSet, args []string, maxArgs int) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", ErrUsage, err)
	}
	if fs.NArg() > maxArgs {
		return fmt.Errorf("%w: unexpected argument %q", ErrUsage, fs.Arg(maxArgs))
	}
	return nil
}
