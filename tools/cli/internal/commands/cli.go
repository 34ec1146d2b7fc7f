// Package commands implements the linkerd command: it parses the command line,
// runs the subcommand and turns its outcome into an exit code.
package commands

import (
	"context"
	"flag"
	"io"

	"github.com/linkerd-go/linkerd-go/tools/cli/subcmd"
)

// errUsage marks errors in the command line itself.
var errUsage = subcmd.ErrUsage

func program() subcmd.Program {
	return subcmd.Program{
		Name:        "linkerd",
		Description: "linkerd: the command-line tool of the linkerd-go service mesh.",
		Commands: map[string]subcmd.Command{
			"version":     {Summary: "Print the client's and the control plane's versions (--client: client only)", Run: runVersion},
			"check":       {Summary: "Check the health of the mesh (-o json for scripts)", Run: runCheck},
			"inject":      {Summary: "Add linkerd.io/inject: enabled to manifests (files, folders or -)", Run: runInject},
			"uninject":    {Summary: "Remove linkerd.io/inject from manifests", Run: runUninject},
			"stat":        {Summary: "Success rate, RPS and latency per Deployment, from the proxies", Run: runStat},
			"diagnostics": {Summary: "proxy-metrics: the raw metrics of pods' proxies", Run: runDiagnostics},
			"identity":    {Summary: "The mesh identity and certificate expiry of pods' proxies", Run: runIdentity},
			"authz":       {Summary: "The inbound policy of pods' ports: Server, routes, authorizations", Run: runAuthz},
			"install":     {Summary: "Render the CRDs (--crds) or the control plane for kubectl apply", Run: runInstall},
		},
	}
}

// Run runs the linkerd command with args (without the program name) and
// returns the process exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return program().Run(ctx, args, stdout, stderr)
}

// newFlagSet returns a flag set that reports errors instead of exiting and
// prints its help on w.
func newFlagSet(name, usage string, w io.Writer) *flag.FlagSet {
	return subcmd.NewFlagSet("linkerd", name, usage, w)
}
