package commands

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/linkerd-go/linkerd-go/tools/cli/stat"
)

// linkerd stat: golden metrics per Deployment from its proxies.

const statUsage = `stat deploy[/NAME] [-n NAMESPACE | -A] [--window 10s] [-o table|json]

Prints each Deployment's golden metrics, read from its pods' proxies: the
share of inbound requests that succeeded, requests per second, and the
p50/p95/p99 latency, over a window. The proxies' /metrics (admin port 4191)
are read twice, --window apart, through the API server (pods/proxy), so no
Prometheus and no port-forward are needed; the numbers are the increase of
response_total and response_latency_ms (direction="inbound") between the two
reads. TCP_CONN is the inbound connections open at the second read.

Flags:`

func runStat(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("stat", statUsage, stderr)
	var cf clusterFlags
	cf.register(fs)
	ns := namespaceFlag(fs)
	all := fs.Bool("A", false, "all namespaces")
	fs.BoolVar(all, "all-namespaces", false, "same as -A")
	window := fs.Duration("window", 10*time.Second, "time between the two reads of the proxies' metrics")
	fs.DurationVar(window, "from-scratch-window", 10*time.Second, "same as --window")
	output := outputFlag(fs, "table", "json")
	pos, err := parseArgs(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if err := checkOutput(*output, "table", "json"); err != nil {
		return err
	}
	name, err := stat.ParseResource(pos[0])
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if *window <= 0 {
		return fmt.Errorf("%w: --window must be positive", errUsage)
	}
	sel := stat.Selector{Namespace: *ns, Deployment: name}
	if *all {
		if name != "" {
			return fmt.Errorf("%w: -A lists every Deployment; give no name", errUsage)
		}
		sel.Namespace = ""
	}
	clients, err := cf.Clients()
	if err != nil {
		return err
	}
	rows, err := stat.Collect(ctx, clients.Kube, sel, *window)
	if err != nil {
		return err
	}
	if *output == "json" {
		return stat.WriteJSON(stdout, rows)
	}
	if len(rows) == 0 {
		_, err := fmt.Fprintln(stderr, "No Deployments found.")
		return err
	}
	if err := stat.WriteTable(stdout, rows, *all); err != nil {
		return err
	}
	for _, r := range rows {
		for _, e := range r.Errors {
			fmt.Fprintf(stderr, "warning: %s/%s: %s\n", r.Namespace, r.Name, e)
		}
	}
	return nil
}
