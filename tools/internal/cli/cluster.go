package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/linkerd-go/linkerd-go/api/mesh"
	"github.com/linkerd-go/linkerd-go/tools/internal/cli/stat"
)

// namespaceFlag registers -n/--namespace (the workloads' namespace).
func namespaceFlag(fs interface {
	StringVar(*string, string, string, string)
}) *string {
	ns := new(string)
	fs.StringVar(ns, "namespace", "default", "namespace of the workloads")
	fs.StringVar(ns, "n", "default", "short for --namespace")
	return ns
}

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

// resolvePods turns "NAME", "pod/NAME" or "deploy/NAME" into pods with a
// proxy.
func resolvePods(ctx context.Context, client kubernetes.Interface, ns, target string) ([]corev1.Pod, error) {
	kind, name, found := strings.Cut(target, "/")
	if !found {
		kind, name = "pod", target
	}
	var pods []corev1.Pod
	switch strings.ToLower(kind) {
	case "po", "pod", "pods":
		p, err := client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		pods = []corev1.Pod{*p}
	case "deploy", "deployment", "deployments":
		d, err := client.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil {
			return nil, err
		}
		list, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
		if err != nil {
			return nil, err
		}
		pods = list.Items
	default:
		return nil, fmt.Errorf("%w: %q: want POD, pod/POD or deploy/NAME", errUsage, target)
	}
	var out []corev1.Pod
	for _, p := range pods {
		if stat.HasProxy(&p) {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s in namespace %s has no pod with a %s container", target, ns, mesh.ProxyContainerName)
	}
	return out, nil
}

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
	fs := newFlagSet("diagnostics proxy-metrics", diagnosticsUsage, stderr)
	var cf clusterFlags
	cf.register(fs)
	ns := namespaceFlag(fs)
	pos, err := parseArgs(fs, args, 1, 1)
	if err != nil {
		return err
	}
	clients, err := cf.Clients()
	if err != nil {
		return err
	}
	pods, err := resolvePods(ctx, clients.Kube, *ns, pos[0])
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

const identityUsage = `identity POD|pod/NAME|deploy/NAME [-n NAMESPACE] [-o text|json]

Prints the mesh identity of each selected pod's proxy: the identity name the
proxy requests (its LINKERD2_PROXY_IDENTITY_LOCAL_NAME), whether the proxy
holds a certificate, and when that certificate expires, from the proxy's
identity_cert_expiration_timestamp_seconds metric (read through the API
server's pods/proxy subresource). The proxy does not serve its certificate
itself; its fields beyond the name and expiry are not shown.

Flags:`

// identityInfo is one proxy's identity.
type identityInfo struct {
	Pod       string     `json:"pod"`
	Namespace string     `json:"namespace"`
	Identity  string     `json:"identity"`
	Expires   *time.Time `json:"certificateExpires,omitempty"`
	Error     string     `json:"error,omitempty"`
}

func runIdentity(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("identity", identityUsage, stderr)
	var cf clusterFlags
	cf.register(fs)
	ns := namespaceFlag(fs)
	output := outputFlag(fs, "text", "json")
	pos, err := parseArgs(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if err := checkOutput(*output, "text", "json"); err != nil {
		return err
	}
	clients, err := cf.Clients()
	if err != nil {
		return err
	}
	pods, err := resolvePods(ctx, clients.Kube, *ns, pos[0])
	if err != nil {
		return err
	}
	scrape := stat.APIServerScrape(clients.Kube)
	var infos []identityInfo
	failed := 0
	for i := range pods {
		p := &pods[i]
		info := identityInfo{Pod: p.Name, Namespace: p.Namespace, Identity: expandPodRefs(p, stat.ProxyEnv(p, "LINKERD2_PROXY_IDENTITY_LOCAL_NAME"))}
		body, err := scrape(ctx, p)
		if err == nil {
			info.Expires, err = certExpiry(body)
		}
		if err != nil {
			failed++
			info.Error = err.Error()
		}
		infos = append(infos, info)
	}
	if *output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(infos); err != nil {
			return err
		}
	} else {
		for i, info := range infos {
			fmt.Fprintf(stdout, "POD %s (%d of %d)\n", info.Pod, i+1, len(infos))
			fmt.Fprintf(stdout, "  Identity:            %s\n", info.Identity)
			switch {
			case info.Error != "":
				fmt.Fprintf(stdout, "  Certificate:         unknown (%s)\n", info.Error)
			case info.Expires == nil:
				fmt.Fprintf(stdout, "  Certificate:         none yet (the proxy is not ready)\n")
			default:
				fmt.Fprintf(stdout, "  Certificate expires: %s (in %s)\n", info.Expires.UTC().Format(time.RFC3339), time.Until(*info.Expires).Round(time.Minute))
			}
		}
	}
	if failed > 0 {
		return fmt.Errorf("could not read the identity of %d of %d pods", failed, len(pods))
	}
	return nil
}

// expandPodRefs expands the $(_pod_*) references an injected proxy's
// environment may use.
func expandPodRefs(p *corev1.Pod, v string) string {
	sa := p.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	return strings.NewReplacer("$(_pod_ns)", p.Namespace, "$(_pod_sa)", sa, "$(_pod_name)", p.Name).Replace(v)
}

// certExpiry reads identity_cert_expiration_timestamp_seconds from a
// proxy's metrics; nil when the proxy holds no certificate (0 or absent).
func certExpiry(metrics []byte) (*time.Time, error) {
	for _, line := range bytes.Split(metrics, []byte("\n")) {
		s := string(line)
		if !strings.HasPrefix(s, "identity_cert_expiration_timestamp_seconds") {
			continue
		}
		fields := strings.Fields(s)
		v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		if err != nil {
			return nil, fmt.Errorf("identity_cert_expiration_timestamp_seconds: %w", err)
		}
		if v <= 0 {
			return nil, nil
		}
		sec, frac := math.Modf(v)
		t := time.Unix(int64(sec), int64(frac*1e9))
		return &t, nil
	}
	return nil, nil
}
