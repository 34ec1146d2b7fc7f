// Package devcli implements the dev command: building the pinned Kubernetes
// binaries and driving the single-node dev cluster.
package devcli

import (
	"context"
	"flag"
	"io"

	"github.com/linkerd-go/linkerd-go/tools/cli/subcmd"
)

const (
	exitOK    = subcmd.ExitOK
	exitUsage = subcmd.ExitUsage
)

var errUsage = subcmd.ErrUsage

var program = subcmd.Program{
	Name:        "dev",
	Description: "dev: developer tooling of linkerd-go (Kubernetes binaries, dev cluster).",
	Commands: map[string]subcmd.Command{
		"k8s-bins": {Summary: "Build (or find in the cache) the pinned Kubernetes, runtime, CNI, helm and crane binaries", Run: runK8sBins},
		"cluster":  {Summary: "Run the single-node dev cluster: up, down, status, kubeconfig, load", Run: runCluster},
		"images":   {Summary: "Build the component images (OCI layout tarballs, multi-platform); push them to a registry", Run: runImages},
		"demo":     {Summary: "Bring up the dev cluster, install the mesh, deploy the demo app and show its live stats", Run: runDemo},
	},
}

// Run runs the dev command with args (without the program name) and returns
// the exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return program.Run(ctx, args, stdout, stderr)
}

func newFlagSet(name, usage string, w io.Writer) *flag.FlagSet {
	return subcmd.NewFlagSet("dev", name, usage, w)
}

func parseFlags(fs *flag.FlagSet, args []string, maxArgs int) error {
	return subcmd.ParseFlags(fs, args, maxArgs)
}
