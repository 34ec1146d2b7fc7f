package bench

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"k8s.io/client-go/dynamic"

	"github.com/linkerd-go/linkerd-go/api/mesh"
	"github.com/linkerd-go/linkerd-go/tools/suites/meshlab"
)

// The linkerd-go+authz setup is the linkerd-go pair with web's two ports
// behind Servers and an AuthorizationPolicy that admits the client's
// identity: what inbound policy costs per request (route match and
// authorization on every request) against the same pair without it. The
// objects are applied before each of its runs and deleted before each
// linkerd-go run; a run starts once web's proxy has the policy it needs.

// benchPolicy is the setup's objects, in the order they are applied.
func benchPolicy() []meshlab.PolicyObject {
	return []meshlab.PolicyObject{
		{Kind: "MeshTLSAuthentication", Name: "bench-client", Spec: map[string]any{
			"identities": []any{meshlab.IdentityName("client", meshlab.AppNS)},
		}},
		{Kind: "AuthorizationPolicy", Name: "bench-client", Spec: map[string]any{
			"targetRef":                  map[string]any{"kind": "Namespace", "name": meshlab.AppNS},
			"requiredAuthenticationRefs": []any{map[string]any{"group": "policy.linkerd.io", "kind": "MeshTLSAuthentication", "name": "bench-client"}},
		}},
		{Kind: "Server", Name: "bench-http", Spec: map[string]any{
			"podSelector": map[string]any{"matchLabels": map[string]any{"app": "web"}}, "port": "http", "proxyProtocol": "HTTP/1",
		}},
		{Kind: "Server", Name: "bench-grpc", Spec: map[string]any{
			"podSelector": map[string]any{"matchLabels": map[string]any{"app": "web"}}, "port": "grpc", "proxyProtocol": "gRPC",
		}},
	}
}

// setPolicy puts the setup's policy in force (on) or removes it, and waits
// until web's proxy has received the new policy of both ports.
func (r *run) setPolicy(ctx context.Context, on bool) error {
	if r.policyOn == on {
		return nil
	}
	if r.dyn == nil {
		dyn, err := dynamic.NewForConfig(r.m.Env.Config)
		if err != nil {
			return err
		}
		r.dyn = dyn
	}
	before, err := r.serverCounter(ctx, "inbound_policy_updates_total", map[string]string{"result": "ok"})
	if err != nil {
		return err
	}
	if on {
		err = meshlab.ApplyPolicy(ctx, r.dyn, meshlab.AppNS, benchPolicy()...)
	} else {
		err = meshlab.DeletePolicy(ctx, r.dyn, meshlab.AppNS, benchPolicy()...)
	}
	if err != nil {
		return err
	}
	// Both ports' policies change: two updates reach web's proxy.
	deadline := time.Now().Add(time.Minute)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		n, err := r.serverCounter(ctx, "inbound_policy_updates_total", map[string]string{"result": "ok"})
		if err != nil {
			return err
		}
		if n-before >= 2 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("web's proxy got %v policy updates in a minute after the policy was %s, want 2", n-before, map[bool]string{true: "applied", false: "removed"}[on])
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	r.policyOn = on
	return nil
}

// serverCounter sums the counter name over the series of web's proxy
// that have labels.
func (r *run) serverCounter(ctx context.Context, name string, labels map[string]string) (float64, error) {
	url := fmt.Sprintf("http://%s:%d/metrics", r.m.Net.IP(meshlab.WebHosts[0]), mesh.AdminPort)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return 0, fmt.Errorf("web's proxy metrics: %w", err)
	}
	var sum float64
	f := fams[name]
	if f == nil {
		return 0, nil
	}
series:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range labels {
			if have[k] != v {
				continue series
			}
		}
		sum += m.GetCounter().GetValue()
	}
	return sum, nil
}

// checkPolicyCounted fails a linkerd-go+authz run whose requests web's
// proxy did not authorize under the bench's Servers, and a linkerd-go run
// whose requests it did: the comparison is only worth what that says.
func (r *run) checkPolicyCounted(ctx context.Context, s Setup, allowedBefore float64, ok int) error {
	allowed, err := r.serverCounter(ctx, "inbound_http_authz_allow_total", map[string]string{"srv_kind": "server", "authz_name": "bench-client"})
	if err != nil {
		return err
	}
	got := allowed - allowedBefore
	switch {
	case s == LinkerdAuthz && got < float64(ok):
		return fmt.Errorf("%s: web's proxy authorized %v requests under the bench's Servers, fewer than the %d answered", s, got, ok)
	case s == Linkerd && got != 0:
		return fmt.Errorf("%s: web's proxy authorized %v requests under the bench's Servers, which should be gone", s, got)
	}
	return nil
}
