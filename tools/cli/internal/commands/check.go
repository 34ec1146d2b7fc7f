package commands

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/linkerd-go/linkerd-go/tools/cli/check"
)

const checkUsage = `check [flags]

Checks that the mesh is healthy: the Kubernetes API is reachable and recent
enough, the CRDs exist and are established, the control plane Deployments
are available with Ready pods and ready proxies, the trust anchors, issuer
and webhook certificates are valid and do not expire within
--expiry-warning, the injector webhook's caBundle matches its certificate
and its Service has endpoints, and (--injection-probe) a server-side
dry-run pod annotated linkerd.io/inject: enabled gets the proxy, the policy
CRDs serve the versions destination reads and (--policy-probe) its policy
API answers a WatchPort as a proxy's would. --proxy
also checks the data-plane proxies (of -n, or of every namespace).

Each failed check says what is wrong and how to fix it. Exit code 1 when a
check fails.

Flags:`

func runCheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("check", checkUsage, stderr)
	var cf clusterFlags
	cf.register(fs)
	output := outputFlag(fs, "text", "json")
	proxy := fs.Bool("proxy", false, "also check the data-plane proxies")
	var ns string
	fs.StringVar(&ns, "namespace", "", "with --proxy: the namespace whose proxies to check (default: all)")
	fs.StringVar(&ns, "n", "", "short for --namespace")
	expiry := fs.Duration("expiry-warning", check.DefaultExpiryWarning, "fail for certificates expiring sooner than this")
	probe := fs.Bool("injection-probe", true, "dry-run create a pod to see the injector add the proxy")
	probeNS := fs.String("injection-probe-namespace", "default", "namespace of the dry-run pod")
	policyProbe := fs.Bool("policy-probe", true, "ask destination's policy API for a policy, through a port-forward")
	timeout := fs.Duration("timeout", time.Minute, "give up after this long")
	if _, err := parseArgs(fs, args, 0, 0); err != nil {
		return err
	}
	if err := checkOutput(*output, "text", "json"); err != nil {
		return err
	}
	cfg, err := cf.RESTConfig()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	report, err := check.Run(ctx, check.Config{
		RESTConfig:              cfg,
		ControlPlaneNamespace:   cf.controlPlaneNS,
		ExpiryWarning:           *expiry,
		Proxy:                   *proxy,
		ProxyNamespace:          ns,
		InjectionProbe:          *probe,
		InjectionProbeNamespace: *probeNS,
		PolicyProbe:             *policyProbe,
	})
	if err != nil {
		return err
	}
	if *output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(report); err != nil {
			return err
		}
	} else if err := writeCheckText(stdout, report); err != nil {
		return err
	}
	if failed := report.Failed(); len(failed) > 0 {
		return fmt.Errorf("%d check(s) failed: %s", len(failed), failed[0].Error)
	}
	return nil
}

// Check marks, as Linkerd prints them (with a check mark for success).
const (
	markOK   = "✓"
	markFail = "×"
	markWarn = "‼"
)

func writeCheckText(w io.Writer, r check.Report) error {
	var b strings.Builder
	category := ""
	for _, c := range r.Results {
		if c.Category != category {
			if category != "" {
				b.WriteString("\n")
			}
			category = c.Category
			fmt.Fprintf(&b, "%s\n%s\n", category, strings.Repeat("-", len(category)))
		}
		mark := markOK
		switch c.Result {
		case check.Error:
			mark = markFail
		case check.Warning:
			mark = markWarn
		}
		fmt.Fprintf(&b, "%s %s\n", mark, c.Description)
		if c.Error != "" {
			fmt.Fprintf(&b, "    %s\n", c.Error)
		}
		if c.Hint != "" {
			fmt.Fprintf(&b, "    see: %s\n", c.Hint)
		}
	}
	status := markOK
	if !r.Success {
		status = markFail
	}
	fmt.Fprintf(&b, "\nStatus check results are %s\n", status)
	_, err := io.WriteString(w, b.String())
	return err
}
