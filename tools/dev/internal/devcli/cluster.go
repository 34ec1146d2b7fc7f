package devcli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/linkerd-go/linkerd-go/tools/dev/cluster"
)

const clusterUsage = `cluster <up|down|status|kubeconfig|load IMAGE.tar>

A real single-node Kubernetes cluster on this machine (no Docker): etcd,
kube-apiserver, kube-controller-manager, kube-scheduler, containerd, kubelet,
kube-proxy, a CNI bridge (pods in 198.18.0.0/16) and CoreDNS, from the
binaries of "dev k8s-bins". Needs root.

  up          start what is not running; wait until the node is Ready and
              cluster DNS answers (idempotent)
  down        stop everything and undo every change made to the host
  status      print each component's PID and whether the node is Ready;
              exit 1 unless all is up
  kubeconfig  print the admin kubeconfig's path
              (export KUBECONFIG=$(dev cluster kubeconfig))
  load FILE   import an image tarball into the node's containerd

State (PKI, configs, data) and one log file per component live under
$LINKERD_GO_CACHE/cluster (default ~/.cache/linkerd-go/cluster).`

func runCluster(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("cluster", clusterUsage, stderr)
	if err := parseFlags(fs, args, 2); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return fmt.Errorf("%w: missing subcommand", errUsage)
	}
	sub := fs.Arg(0)
	wantArgs := 1
	if sub == "load" {
		wantArgs = 2
	}
	if fs.NArg() != wantArgs {
		return fmt.Errorf("%w: %q takes %d argument(s)", errUsage, sub, wantArgs-1)
	}
	c, err := cluster.New(stdout)
	if err != nil {
		return err
	}
	switch sub {
	case "up":
		return c.Up(ctx)
	case "down":
		return c.Down(context.WithoutCancel(ctx)) // finish cleaning up even on Ctrl-C
	case "status":
		s := c.Status(ctx)
		for _, d := range cluster.Daemons() {
			state := "not running"
			if pid := s.Components[d]; pid != 0 {
				state = fmt.Sprintf("running (pid %d)", pid)
			}
			fmt.Fprintf(stdout, "%-24s %s\n", d, state)
		}
		if s.NodeReady == nil {
			fmt.Fprintf(stdout, "%-24s Ready\n", "node "+c.NodeName)
		} else {
			fmt.Fprintf(stdout, "%-24s not Ready: %v\n", "node "+c.NodeName, s.NodeReady)
		}
		fmt.Fprintf(stdout, "%-24s %s\n", "kubeconfig", c.KubeconfigPath())
		fmt.Fprintf(stdout, "%-24s %s\n", "logs", c.LogDir())
		if !s.Running() {
			return errors.New("the cluster is not (fully) up")
		}
		return nil
	case "kubeconfig":
		fmt.Fprintln(stdout, c.KubeconfigPath())
		return nil
	case "load":
		return c.LoadImage(ctx, fs.Arg(1))
	default:
		return fmt.Errorf("%w: unknown subcommand %q", errUsage, sub)
	}
}
