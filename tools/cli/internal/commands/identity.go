package commands

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

	"github.com/linkerd-go/linkerd-go/tools/cli/stat"
)

// linkerd identity: the mesh identity each proxy holds.

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
	cmd := newPodsCommand("identity", identityUsage, stderr, "text", "json")
	clients, pods, err := cmd.parse(ctx, args)
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
	if *cmd.output == "json" {
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
