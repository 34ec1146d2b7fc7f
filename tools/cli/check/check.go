// Package check runs `linkerd check`: the health checks listed in
// tools/README.md against a cluster — API reachable, CRDs present and
// established, control plane Deployments available with Ready pods and
// proxies, certificates (trust anchors, issuer, injector webhook) valid and
// not expiring soon, the webhook wired to its Service, and with Proxy the
// data-plane proxies of a namespace. Run returns a Report that the CLI
// prints and the e2e suite asserts on.
//
// This file holds the runner and the order of the checks; each category's
// checks are in a file of their own: kubernetes.go (kubernetes-api),
// controlplane.go (linkerd-crds, linkerd-existence), identity.go
// (linkerd-identity), webhooks.go (linkerd-webhooks), policy.go
// (linkerd-policy), dataplane.go (linkerd-data-plane).
package check

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	apiextclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/linkerd-go/linkerd-go/api/mesh"
)

// Names of the control plane's objects (deploy/charts/linkerd-control-plane).
const (
	TrustRootsConfigMap  = mesh.TrustRootsConfigMap
	IssuerSecret         = "linkerd-identity-issuer"
	WebhookSecret        = "linkerd-proxy-injector-k8s-tls"
	WebhookConfiguration = "linkerd-proxy-injector-webhook-config"
	InjectorService      = "linkerd-proxy-injector"
	// The policy validator, destination's admission webhook.
	PolicyValidatorSecret        = "linkerd-policy-validator-k8s-tls"
	PolicyValidatorConfiguration = "linkerd-policy-validator-webhook-config"
	PolicyValidatorService       = "linkerd-policy-validator"
	DefaultExpiryWarning         = 60 * 24 * time.Hour
	minKubernetesVersion         = "1.29.0"
	injectorProbePodName         = "linkerd-check-injection-probe"
	injectorProbeNSDefult        = "default"
)

// CRDs are the CustomResourceDefinitions of the linkerd-crds chart.
var CRDs = []string{
	"serviceprofiles.linkerd.io",
	"servers.policy.linkerd.io",
	"serverauthorizations.policy.linkerd.io",
	"authorizationpolicies.policy.linkerd.io",
	"meshtlsauthentications.policy.linkerd.io",
	"networkauthentications.policy.linkerd.io",
	"httproutes.policy.linkerd.io",
}

// Deployments are the control plane's Deployments.
var Deployments = []string{"linkerd-identity", "linkerd-destination", "linkerd-proxy-injector"}

// Config says what to check and with which clients.
type Config struct {
	// RESTConfig makes the clients when Kube or APIExtensions is nil.
	RESTConfig    *rest.Config
	Kube          kubernetes.Interface
	APIExtensions apiextclient.Interface
	// ControlPlaneNamespace is where the control plane runs ("" = linkerd).
	ControlPlaneNamespace string
	// ExpiryWarning: a certificate expiring sooner fails (0 = 60 days).
	ExpiryWarning time.Duration
	// Proxy also checks the data-plane proxies of ProxyNamespace ("" = all
	// namespaces).
	Proxy          bool
	ProxyNamespace string
	// InjectionProbe creates a pod annotated linkerd.io/inject: enabled in
	// InjectionProbeNamespace ("" = default) as a server-side dry run and
	// checks that the webhook added the proxy. Nothing is stored.
	InjectionProbe          bool
	InjectionProbeNamespace string
	// PolicyProbe asks destination's policy API for a policy through a
	// port-forward (it needs RESTConfig and a kubelet that forwards).
	PolicyProbe bool
	// Now is the clock (nil = time.Now).
	Now func() time.Time
}

// Result is one check.
type Result struct {
	Category    string `json:"category"`
	Description string `json:"description"`
	// Result is "success", "warning" or "error".
	Result string `json:"result"`
	// Error says what is wrong, Hint what to do about it.
	Error string `json:"error,omitempty"`
	Hint  string `json:"hint,omitempty"`
}

// Result values.
const (
	Success = "success"
	Warning = "warning"
	Error   = "error"
)

// Report is the outcome of Run.
type Report struct {
	Success bool     `json:"success"`
	Results []Result `json:"results"`
}

// Failed returns the failed checks.
func (r Report) Failed() []Result {
	var out []Result
	for _, c := range r.Results {
		if c.Result == Error {
			out = append(out, c)
		}
	}
	return out
}

// problem is a failed check's error with a hint.
type problem struct {
	msg, hint string
	warn      bool
}

func (p *problem) Error() string { return p.msg }

func fail(hint, format string, args ...any) error {
	return &problem{msg: fmt.Sprintf(format, args...), hint: hint}
}

func warn(hint, format string, args ...any) error {
	return &problem{msg: fmt.Sprintf(format, args...), hint: hint, warn: true}
}

type runner struct {
	cfg    Config
	report Report
	now    time.Time
	// anchors are the trust anchors once read.
	anchors    []*x509.Certificate
	anchorsPEM string
}

func (r *runner) check(category, description string, f func(ctx context.Context) error, ctx context.Context) bool {
	res := Result{Category: category, Description: description, Result: Success}
	if err := f(ctx); err != nil {
		res.Result = Error
		res.Error = err.Error()
		var p *problem
		if errors.As(err, &p) {
			res.Hint = p.hint
			if p.warn {
				res.Result = Warning
			}
		}
	}
	r.report.Results = append(r.report.Results, res)
	return res.Result != Error
}

// Run runs the checks. Checks that depend on a failed one are not run (as
// with Linkerd, an unreachable API stops everything). The error is only
// for a bad Config; failed checks are in the Report.
func Run(ctx context.Context, cfg Config) (Report, error) {
	if cfg.ControlPlaneNamespace == "" {
		cfg.ControlPlaneNamespace = "linkerd"
	}
	if cfg.ExpiryWarning == 0 {
		cfg.ExpiryWarning = DefaultExpiryWarning
	}
	if cfg.InjectionProbeNamespace == "" {
		cfg.InjectionProbeNamespace = injectorProbeNSDefult
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Kube == nil || cfg.APIExtensions == nil {
		if cfg.RESTConfig == nil {
			return Report{}, errors.New("check: no RESTConfig and no clients")
		}
		var err error
		if cfg.Kube == nil {
			if cfg.Kube, err = kubernetes.NewForConfig(cfg.RESTConfig); err != nil {
				return Report{}, err
			}
		}
		if cfg.APIExtensions == nil {
			if cfg.APIExtensions, err = apiextclient.NewForConfig(cfg.RESTConfig); err != nil {
				return Report{}, err
			}
		}
	}
	r := &runner{cfg: cfg, now: cfg.Now()}
	r.run(ctx)
	r.report.Success = len(r.report.Failed()) == 0
	return r.report, nil
}

func (r *runner) run(ctx context.Context) {
	ns := r.cfg.ControlPlaneNamespace
	const api = "kubernetes-api"
	if !r.check(api, "can query the Kubernetes API", r.checkAPI, ctx) {
		return
	}
	r.check(api, "is running the minimum Kubernetes version ("+minKubernetesVersion+", native sidecars)", r.checkKubeVersion, ctx)

	const crds = "linkerd-crds"
	r.check(crds, "control plane CustomResourceDefinitions exist and are established", r.checkCRDs, ctx)

	const existence = "linkerd-existence"
	if !r.check(existence, fmt.Sprintf("control plane namespace %q exists", ns), r.checkNamespace, ctx) {
		return
	}
	for _, d := range Deployments {
		r.check(existence, d+" Deployment is available", func(ctx context.Context) error { return r.checkDeployment(ctx, d) }, ctx)
	}
	r.check(existence, "control plane pods are Ready", r.checkControlPlanePods, ctx)
	r.check(existence, "control plane proxies are ready", r.checkControlPlaneProxies, ctx)

	const identity = "linkerd-identity"
	if r.check(identity, "trust anchors are valid", r.checkAnchors, ctx) {
		r.check(identity, fmt.Sprintf("trust anchors are valid for at least %s", days(r.cfg.ExpiryWarning)), r.checkAnchorsExpiry, ctx)
		r.check(identity, "issuer certificate is valid and chains to the trust anchors", r.checkIssuer, ctx)
		r.check(identity, fmt.Sprintf("issuer certificate is valid for at least %s", days(r.cfg.ExpiryWarning)), r.checkIssuerExpiry, ctx)
	}

	const webhooks = "linkerd-webhooks"
	for _, w := range []webhook{injectorWebhook, validatorWebhook} {
		if r.check(webhooks, w.name+" webhook has a valid certificate", r.checkWebhookCert(w), ctx) {
			r.check(webhooks, fmt.Sprintf("%s webhook certificate is valid for at least %s", w.name, days(r.cfg.ExpiryWarning)), r.checkWebhookCertExpiry(w), ctx)
			r.check(webhooks, w.name+" webhook's caBundle matches its serving certificate", r.checkWebhookCABundle(w), ctx)
		}
		r.check(webhooks, w.name+" Service has ready endpoints", r.checkWebhookEndpoints(w), ctx)
	}
	if r.cfg.InjectionProbe {
		r.check(webhooks, "a dry-run pod with linkerd.io/inject: enabled gets the proxy", r.checkInjectionProbe, ctx)
	}

	const policy = "linkerd-policy"
	r.check(policy, "policy CRDs serve the versions the control plane reads", r.checkPolicyVersions, ctx)
	if r.cfg.PolicyProbe {
		r.check(policy, "policy service answers a proxy's WatchPort", r.checkPolicyService, ctx)
	}

	if r.cfg.Proxy {
		const dp = "linkerd-data-plane"
		where := "all namespaces"
		if r.cfg.ProxyNamespace != "" {
			where = "namespace " + r.cfg.ProxyNamespace
		}
		r.check(dp, "data-plane proxies are ready ("+where+")", r.checkDataPlaneReady, ctx)
		r.check(dp, "data-plane proxies run the control plane's version", r.checkDataPlaneVersion, ctx)
		r.check(dp, "data-plane proxies trust the current trust anchors", r.checkDataPlaneTrustRoot, ctx)
	}
}

func days(d time.Duration) string {
	return fmt.Sprintf("%d days", int(d.Hours()/24))
}
