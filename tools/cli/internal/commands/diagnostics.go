package commands

import (
	"context"
	"fmt"
	"io"

	"github.com/linkerd-go/linkerd-go/tools/cli/stat"
)

// linkerd diagnostics: a proxy's raw metrics.

const diagnosticsUsage = `diagnostics proxy-metrics POD|pod/NAME|deploy/NAME [-n NAMESPACE]

proxy-metrics prints the raw Prometheus metrics of each selected pod's
proxy (admin port 4191, /metrics), read through the API server's pods/proxy
subresource, so no port-forward is needed.

Flags:`

func runDiagnostics(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fs := newFlagSet("diagnostics", diagnosticsUsage, stderr)
		fs.Usage()
		if len(args) == 0 {
			return fmt.Errorf("%w: missing subcommand: proxy-metrics", errUsage)
		}
		return nil
	}
	switch args[0] {
	case "proxy-metrics":
		return runProxyMetrics(ctx, args[1:], stdout, stderr)
	default:
		return fmt.Errorf("%w: unknown diagnostics subcommand %q (want proxy-metrics)", errUsage, args[0])
	}
}

func runProxyMetrics(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	clients, pods, err := newPodsCommand("diagnostics proxy-metrics", diagnosticsUsage, stderr).parse(ctx, args)
	if err != nil {
		return err
	}
	scrape := stat.APIServerScrape(clients.Kube)
	failed := 0
	for i := range pods {
		p := &pods[i]
		fmt.Fprintf(stdout, "#\n# POD %s (%d of %d)\n#\n", p.Name, i+1, len(pods))
		body, err := scrape(ctx, p)
		if err != nil {
			failed++
			fmt.Fprintf(stdout, "# ERROR %v\n", err)
			continue
		}
		if _, err := stdout.Write(body); err != nil {
			return err
		}
	}
	if failed > 0 {
		return fmt.Errorf("could not read the metrics of %d of %d pods", failed, len(pods))
	}
	return nil
}
