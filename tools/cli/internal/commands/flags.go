package commands

import (
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/linkerd-go/linkerd-go/tools/cli/internal/kube"
)

// defaultControlPlaneNS is the control plane's namespace unless
// --linkerd-namespace says otherwise.
const defaultControlPlaneNS = "linkerd"

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// clusterFlags are the flags of every command that talks to a cluster.
type clusterFlags struct {
	kube.Flags
	controlPlaneNS string
}

func (c *clusterFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.Kubeconfig, "kubeconfig", "", "path to the kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)")
	fs.StringVar(&c.Context, "context", "", "kubeconfig context to use (default: the current context)")
	fs.StringVar(&c.controlPlaneNS, "linkerd-namespace", defaultControlPlaneNS, "namespace of the control plane")
	fs.StringVar(&c.controlPlaneNS, "L", defaultControlPlaneNS, "short for --linkerd-namespace")
}

// outputFlag registers -o/--output with the formats given (the first is
// the default).
func outputFlag(fs *flag.FlagSet, formats ...string) *string {
	out := new(string)
	*out = formats[0]
	usage := "output format: " + strings.Join(formats, " or ")
	fs.StringVar(out, "o", formats[0], usage)
	fs.StringVar(out, "output", formats[0], "same as -o")
	return out
}

func checkOutput(out string, formats ...string) error {
	for _, f := range formats {
		if out == f {
			return nil
		}
	}
	return fmt.Errorf("%w: output format %q is not %s", errUsage, out, strings.Join(formats, " or "))
}

// parseArgs parses flags placed anywhere among the positional arguments
// (`linkerd stat deploy/web -n app`) and returns the positional arguments,
// refusing fewer than minArgs or more than maxArgs (-1: no limit).
func parseArgs(fs *flag.FlagSet, args []string, minArgs, maxArgs int) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if rest[0] == "--" {
			pos = append(pos, rest[1:]...)
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	if len(pos) < minArgs {
		return nil, fmt.Errorf("%w: missing argument (see --help)", errUsage)
	}
	if maxArgs >= 0 && len(pos) > maxArgs {
		return nil, fmt.Errorf("%w: unexpected argument %q", errUsage, pos[maxArgs])
	}
	return pos, nil
}

// namespaceFlag registers -n/--namespace (the workloads' namespace).
func namespaceFlag(fs interface {
	StringVar(*string, string, string, string)
}) *string {
	ns := new(string)
	fs.StringVar(ns, "namespace", "default", "namespace of the workloads")
	fs.StringVar(ns, "n", "default", "short for --namespace")
	return ns
}
