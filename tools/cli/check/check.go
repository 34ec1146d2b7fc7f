// Package check runs `linkerd check`: the health checks listed in
// tools/README.md against a cluster — API reachable, CRDs present and
// established, control plane Deployments available with Ready pods and
// proxies, certificates (trust anchors, issuer, injector webhook) valid and
// not expiring soon, the webhook wired to its Service, and with Proxy the
// data-plane proxies of a namespace. Run returns a Report that the CLI
// prints and the e2e suite asserts on.
package check

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/version"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/linkerd-go/linkerd-go/api/mesh"
	"github.com/linkerd-go/linkerd-go/tools/cli/pki"
)

// Names of the control plane's objects (deploy/charts/linkerd-control-plane).
const (
	TrustRootsConfigMap   = "linkerd-identity-trust-roots"
	IssuerSecret          = "linkerd-identity-issuer"
	WebhookSecret         = "linkerd-proxy-injector-k8s-tls"
	WebhookConfiguration  = "linkerd-proxy-injector-webhook-config"
	InjectorService       = "linkerd-proxy-injector"
	DefaultExpiryWarning  = 60 * 24 * time.Hour
	minKubernetesVersion  = "1.29.0"
	injectorProbePodName  = "linkerd-check-injection-probe"
	injectorProbeNSDefult = "default"
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

	const webhook = "linkerd-webhooks"
	if r.check(webhook, "proxy-injector webhook has a valid certificate", r.checkWebhookCert, ctx) {
		r.check(webhook, fmt.Sprintf("proxy-injector webhook certificate is valid for at least %s", days(r.cfg.ExpiryWarning)), r.checkWebhookCertExpiry, ctx)
		r.check(webhook, "proxy-injector webhook's caBundle matches its serving certificate", r.checkWebhookCABundle, ctx)
	}
	r.check(webhook, "proxy-injector Service has ready endpoints", r.checkInjectorEndpoints, ctx)
	if r.cfg.InjectionProbe {
		r.check(webhook, "a dry-run pod with linkerd.io/inject: enabled gets the proxy", r.checkInjectionProbe, ctx)
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

func (r *runner) checkAPI(ctx context.Context) error {
	if _, err := r.cfg.Kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{Limit: 1}); err != nil {
		return fail("check --kubeconfig/--context and that the API server is up", "cannot reach the Kubernetes API: %v", err)
	}
	return nil
}

func (r *runner) checkKubeVersion(context.Context) error {
	info, err := r.cfg.Kube.Discovery().ServerVersion()
	if err != nil {
		return fail("", "cannot read the server version: %v", err)
	}
	v, err := version.ParseGeneric(info.GitVersion)
	if err != nil {
		return fail("", "cannot parse the server version %q: %v", info.GitVersion, err)
	}
	if v.LessThan(version.MustParseGeneric(minKubernetesVersion)) {
		return fail("upgrade the cluster, or install with --set proxy.nativeSidecar=false", "Kubernetes %s is older than %s", info.GitVersion, minKubernetesVersion)
	}
	return nil
}

func (r *runner) checkCRDs(ctx context.Context) error {
	var missing, deleting, notEstablished []string
	for _, name := range CRDs {
		crd, err := r.cfg.APIExtensions.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			missing = append(missing, name)
			continue
		}
		if err != nil {
			return fail("", "cannot read CRD %s: %v", name, err)
		}
		if crd.DeletionTimestamp != nil {
			deleting = append(deleting, name)
			continue
		}
		established := false
		for _, c := range crd.Status.Conditions {
			if c.Type == apiextv1.Established && c.Status == apiextv1.ConditionTrue {
				established = true
			}
		}
		if !established {
			notEstablished = append(notEstablished, name)
		}
	}
	var msgs []string
	if len(missing) > 0 {
		msgs = append(msgs, "missing CRDs: "+strings.Join(missing, ", "))
	}
	if len(deleting) > 0 {
		msgs = append(msgs, "CRDs being deleted: "+strings.Join(deleting, ", "))
	}
	if len(notEstablished) > 0 {
		msgs = append(msgs, "CRDs not established: "+strings.Join(notEstablished, ", "))
	}
	if len(msgs) > 0 {
		return fail("install them: linkerd install --crds | kubectl apply -f -", "%s", strings.Join(msgs, "; "))
	}
	return nil
}

func (r *runner) checkNamespace(ctx context.Context) error {
	_, err := r.cfg.Kube.CoreV1().Namespaces().Get(ctx, r.cfg.ControlPlaneNamespace, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return fail("install the control plane: linkerd install | kubectl apply -f -", "namespace %q does not exist", r.cfg.ControlPlaneNamespace)
	}
	return err
}

func (r *runner) checkDeployment(ctx context.Context, name string) error {
	ns := r.cfg.ControlPlaneNamespace
	d, err := r.cfg.Kube.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return fail("install the control plane: linkerd install | kubectl apply -f -", "Deployment %s/%s does not exist", ns, name)
	}
	if err != nil {
		return err
	}
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	if want == 0 {
		return fail(fmt.Sprintf("kubectl -n %s scale deploy/%s --replicas=1", ns, name), "%s is scaled to zero replicas", name)
	}
	if d.Status.AvailableReplicas < 1 {
		return fail(fmt.Sprintf("kubectl -n %s describe deploy/%s; kubectl -n %s logs deploy/%s", ns, name, ns, name), "%s has no available replicas (0/%d available)", name, want)
	}
	return nil
}

// controlPlanePods returns the pods of the control plane's Deployments.
func (r *runner) controlPlanePods(ctx context.Context) ([]corev1.Pod, error) {
	sel := labels.SelectorFromSet(labels.Set{mesh.LabelControlPlaneNS: r.cfg.ControlPlaneNamespace}).String() + "," + mesh.LabelControlPlaneComp
	pods, err := r.cfg.Kube.CoreV1().Pods(r.cfg.ControlPlaneNamespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, err
	}
	var out []corev1.Pod
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
			out = append(out, p)
		}
	}
	return out, nil
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func (r *runner) checkControlPlanePods(ctx context.Context) error {
	pods, err := r.controlPlanePods(ctx)
	if err != nil {
		return err
	}
	if len(pods) == 0 {
		return fail("", "no control plane pods in namespace %s", r.cfg.ControlPlaneNamespace)
	}
	var notReady []string
	for i := range pods {
		if !podReady(&pods[i]) {
			notReady = append(notReady, fmt.Sprintf("%s (%s)", pods[i].Name, pods[i].Status.Phase))
		}
	}
	if len(notReady) > 0 {
		return fail(fmt.Sprintf("kubectl -n %s describe pod %s", r.cfg.ControlPlaneNamespace, strings.SplitN(notReady[0], " ", 2)[0]), "pods not Ready: %s", strings.Join(notReady, ", "))
	}
	return nil
}

// proxyStatus returns the proxy container's status of a pod (a native
// sidecar is an init container), and whether the pod has a proxy.
func proxyStatus(p *corev1.Pod) (corev1.ContainerStatus, bool) {
	has := false
	for _, c := range append(append([]corev1.Container{}, p.Spec.InitContainers...), p.Spec.Containers...) {
		has = has || c.Name == mesh.ProxyContainerName
	}
	if !has {
		return corev1.ContainerStatus{}, false
	}
	for _, s := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		if s.Name == mesh.ProxyContainerName {
			return s, true
		}
	}
	return corev1.ContainerStatus{Name: mesh.ProxyContainerName}, true
}

func proxiesNotReady(pods []corev1.Pod) (notReady, unmeshed []string) {
	for i := range pods {
		p := &pods[i]
		s, ok := proxyStatus(p)
		name := p.Namespace + "/" + p.Name
		switch {
		case !ok:
			unmeshed = append(unmeshed, name)
		case !s.Ready:
			notReady = append(notReady, name)
		}
	}
	return notReady, unmeshed
}

func (r *runner) checkControlPlaneProxies(ctx context.Context) error {
	pods, err := r.controlPlanePods(ctx)
	if err != nil {
		return err
	}
	if len(pods) == 0 {
		return fail("", "no control plane pods in namespace %s", r.cfg.ControlPlaneNamespace)
	}
	notReady, unmeshed := proxiesNotReady(pods)
	if len(unmeshed) > 0 {
		return fail("the control-plane pods are rendered with their proxies; reinstall with linkerd install", "pods without a %s container: %s", mesh.ProxyContainerName, strings.Join(unmeshed, ", "))
	}
	if len(notReady) > 0 {
		return fail(fmt.Sprintf("kubectl -n %s logs %s -c %s", r.cfg.ControlPlaneNamespace, strings.SplitN(notReady[0], "/", 2)[1], mesh.ProxyContainerName), "proxies not ready: %s", strings.Join(notReady, ", "))
	}
	return nil
}

// certValidity checks that a certificate is valid now and does not expire
// within the warning window.
func (r *runner) certValidNow(what string, c *x509.Certificate) error {
	if r.now.Before(c.NotBefore) {
		return fail("check the clocks, or make a new certificate", "%s %q is not valid before %s", what, c.Subject.CommonName, c.NotBefore.UTC().Format(time.RFC3339))
	}
	if !r.now.Before(c.NotAfter) {
		return fail("rotate it: https://linkerd.io/2/tasks/replacing_expired_certificates/", "%s %q expired on %s", what, c.Subject.CommonName, c.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}

func (r *runner) certNotExpiring(what, hint string, c *x509.Certificate) error {
	left := c.NotAfter.Sub(r.now)
	if left < r.cfg.ExpiryWarning {
		return fail(hint, "%s %q expires in %s (on %s), within %s", what, c.Subject.CommonName, days(left), c.NotAfter.UTC().Format(time.RFC3339), days(r.cfg.ExpiryWarning))
	}
	return nil
}

func (r *runner) checkAnchors(ctx context.Context) error {
	ns := r.cfg.ControlPlaneNamespace
	cm, err := r.cfg.Kube.CoreV1().ConfigMaps(ns).Get(ctx, TrustRootsConfigMap, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return fail("install the control plane with its trust anchors (identityTrustAnchorsPEM)", "ConfigMap %s/%s does not exist", ns, TrustRootsConfigMap)
	}
	if err != nil {
		return err
	}
	bundle := cm.Data["ca-bundle.crt"]
	certs, err := pki.ParseCertificates([]byte(bundle))
	if err != nil {
		return fail("set identityTrustAnchorsPEM to the PEM trust anchor(s)", "ConfigMap %s key ca-bundle.crt: %v", TrustRootsConfigMap, err)
	}
	for _, c := range certs {
		if err := r.certValidNow("trust anchor", c); err != nil {
			return err
		}
	}
	r.anchors, r.anchorsPEM = certs, bundle
	return nil
}

func (r *runner) checkAnchorsExpiry(context.Context) error {
	for _, c := range r.anchors {
		if err := r.certNotExpiring("trust anchor", "add a new trust anchor to the bundle and rotate the issuer: https://linkerd.io/2/tasks/manually-rotating-control-plane-tls-credentials/", c); err != nil {
			return err
		}
	}
	return nil
}

// issuer reads the issuer Secret in either scheme.
func (r *runner) issuer(ctx context.Context) (certPEM, keyPEM []byte, scheme string, err error) {
	ns := r.cfg.ControlPlaneNamespace
	s, err := r.cfg.Kube.CoreV1().Secrets(ns).Get(ctx, IssuerSecret, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil, "", fail("install with an issuer (identity.issuer.tls.*), or let cert-manager write it (scheme kubernetes.io/tls)", "Secret %s/%s does not exist", ns, IssuerSecret)
	}
	if err != nil {
		return nil, nil, "", err
	}
	if c, ok := s.Data[corev1.TLSCertKey]; ok {
		return c, s.Data[corev1.TLSPrivateKeyKey], mesh.IssuerSchemeKubernetes, nil
	}
	if c, ok := s.Data["crt.pem"]; ok {
		return c, s.Data["key.pem"], mesh.IssuerSchemeLinkerd, nil
	}
	return nil, nil, "", fail("the Secret needs tls.crt/tls.key (kubernetes.io/tls) or crt.pem/key.pem (linkerd.io/tls)", "Secret %s/%s has neither tls.crt nor crt.pem", ns, IssuerSecret)
}

func (r *runner) issuerCert(ctx context.Context) (*x509.Certificate, []byte, []byte, string, error) {
	crt, key, scheme, err := r.issuer(ctx)
	if err != nil {
		return nil, nil, nil, "", err
	}
	certs, err := pki.ParseCertificates(crt)
	if err != nil {
		return nil, nil, nil, "", fail("", "issuer Secret %s (%s): %v", IssuerSecret, scheme, err)
	}
	return certs[0], crt, key, scheme, nil
}

func (r *runner) checkIssuer(ctx context.Context) error {
	c, crt, key, scheme, err := r.issuerCert(ctx)
	if err != nil {
		return err
	}
	if err := r.certValidNow("issuer certificate", c); err != nil {
		return err
	}
	if err := pki.CheckIssuer([]byte(r.anchorsPEM), crt, key, r.now); err != nil {
		return fail("the issuer must be signed by a trust anchor in "+TrustRootsConfigMap, "issuer Secret %s (%s): %v", IssuerSecret, scheme, err)
	}
	return nil
}

func (r *runner) checkIssuerExpiry(ctx context.Context) error {
	c, _, _, _, err := r.issuerCert(ctx)
	if err != nil {
		return err
	}
	return r.certNotExpiring("issuer certificate", "rotate the issuer (cert-manager renews it by itself; otherwise: https://linkerd.io/2/tasks/manually-rotating-control-plane-tls-credentials/)", c)
}

func (r *runner) webhookCert(ctx context.Context) (*x509.Certificate, error) {
	ns := r.cfg.ControlPlaneNamespace
	s, err := r.cfg.Kube.CoreV1().Secrets(ns).Get(ctx, WebhookSecret, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, fail("install the control plane, or have cert-manager write it (proxyInjector.externalSecret)", "Secret %s/%s does not exist", ns, WebhookSecret)
	}
	if err != nil {
		return nil, err
	}
	certs, err := pki.ParseCertificates(s.Data[corev1.TLSCertKey])
	if err != nil {
		return nil, fail("", "Secret %s tls.crt: %v", WebhookSecret, err)
	}
	return certs[0], nil
}

func (r *runner) checkWebhookCert(ctx context.Context) error {
	c, err := r.webhookCert(ctx)
	if err != nil {
		return err
	}
	return r.certValidNow("webhook certificate", c)
}

func (r *runner) checkWebhookCertExpiry(ctx context.Context) error {
	c, err := r.webhookCert(ctx)
	if err != nil {
		return err
	}
	return r.certNotExpiring("webhook certificate", "delete the Secret and re-run linkerd install | kubectl apply, or let cert-manager renew it", c)
}

func (r *runner) webhookConfig(ctx context.Context) (*admissionregistrationv1.MutatingWebhook, error) {
	cfg, err := r.cfg.Kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, WebhookConfiguration, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, fail("install the control plane: linkerd install | kubectl apply -f -", "MutatingWebhookConfiguration %s does not exist", WebhookConfiguration)
	}
	if err != nil {
		return nil, err
	}
	if len(cfg.Webhooks) == 0 {
		return nil, fail("", "MutatingWebhookConfiguration %s has no webhooks", WebhookConfiguration)
	}
	return &cfg.Webhooks[0], nil
}

func (r *runner) checkWebhookCABundle(ctx context.Context) error {
	hook, err := r.webhookConfig(ctx)
	if err != nil {
		return err
	}
	leaf, err := r.webhookCert(ctx)
	if err != nil {
		return err
	}
	cas, err := pki.ParseCertificates(hook.ClientConfig.CABundle)
	if err != nil {
		return fail("set proxyInjector.caBundle, or let cert-manager's CA injector fill it", "webhook %s caBundle: %v", WebhookConfiguration, err)
	}
	roots := x509.NewCertPool()
	for _, c := range cas {
		roots.AddCert(c)
	}
	name := fmt.Sprintf("%s.%s.svc", InjectorService, r.cfg.ControlPlaneNamespace)
	if svc := hook.ClientConfig.Service; svc != nil {
		name = fmt.Sprintf("%s.%s.svc", svc.Name, svc.Namespace)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: roots, CurrentTime: r.now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		return fail("the Secret "+WebhookSecret+" and the webhook's caBundle are out of step: re-apply linkerd install", "the webhook serving certificate does not verify for %s against the caBundle: %v", name, err)
	}
	return nil
}

func (r *runner) checkInjectorEndpoints(ctx context.Context) error {
	ns := r.cfg.ControlPlaneNamespace
	name := InjectorService
	if hook, err := r.webhookConfig(ctx); err == nil && hook.ClientConfig.Service != nil {
		ns, name = hook.ClientConfig.Service.Namespace, hook.ClientConfig.Service.Name
	}
	if _, err := r.cfg.Kube.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{}); err != nil {
		if apierrors.IsNotFound(err) {
			return fail("install the control plane: linkerd install | kubectl apply -f -", "Service %s/%s does not exist", ns, name)
		}
		return err
	}
	slices, err := r.cfg.Kube.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + name})
	if err != nil {
		return err
	}
	for _, s := range slices.Items {
		for _, e := range s.Endpoints {
			if e.Conditions.Ready == nil || *e.Conditions.Ready {
				return nil
			}
		}
	}
	return fail(fmt.Sprintf("kubectl -n %s get pods -l %s=proxy-injector", r.cfg.ControlPlaneNamespace, mesh.LabelControlPlaneComp), "Service %s/%s has no ready endpoints: the API server cannot reach the injector", ns, name)
}

func (r *runner) checkInjectionProbe(ctx context.Context) error {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:        injectorProbePodName,
			Namespace:   r.cfg.InjectionProbeNamespace,
			Annotations: map[string]string{mesh.AnnotationInject: "enabled"},
		},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "probe", Image: "linkerd-check-probe"}}},
	}
	got, err := r.cfg.Kube.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if err != nil {
		return fail("", "dry-run pod create in namespace %s: %v", pod.Namespace, err)
	}
	if _, ok := proxyStatus(got); !ok {
		return fail(fmt.Sprintf("kubectl -n %s logs deploy/linkerd-proxy-injector", r.cfg.ControlPlaneNamespace), "a dry-run pod annotated %s: enabled in namespace %s was not injected: the webhook did not answer or refused", mesh.AnnotationInject, pod.Namespace)
	}
	return nil
}

// dataPlanePods returns the pods with a proxy in the namespace checked.
func (r *runner) dataPlanePods(ctx context.Context) ([]corev1.Pod, error) {
	pods, err := r.cfg.Kube.CoreV1().Pods(r.cfg.ProxyNamespace).List(ctx, metav1.ListOptions{LabelSelector: mesh.LabelControlPlaneNS + "=" + r.cfg.ControlPlaneNamespace})
	if err != nil {
		return nil, err
	}
	var out []corev1.Pod
	for _, p := range pods.Items {
		if _, ok := proxyStatus(&p); ok && p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning {
			out = append(out, p)
		}
	}
	return out, nil
}

func (r *runner) checkDataPlaneReady(ctx context.Context) error {
	pods, err := r.dataPlanePods(ctx)
	if err != nil {
		return err
	}
	if len(pods) == 0 {
		return fail("annotate the namespace with linkerd.io/inject=enabled and restart its workloads", "no running meshed pods")
	}
	notReady, _ := proxiesNotReady(pods)
	if len(notReady) > 0 {
		return fail("kubectl logs <pod> -c "+mesh.ProxyContainerName, "proxies not ready: %s", strings.Join(notReady, ", "))
	}
	return nil
}

func (r *runner) controlPlaneVersion(ctx context.Context) (string, error) {
	d, err := r.cfg.Kube.AppsV1().Deployments(r.cfg.ControlPlaneNamespace).Get(ctx, "linkerd-destination", metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	return d.Spec.Template.Annotations[mesh.AnnotationProxyVersion], nil
}

func (r *runner) checkDataPlaneVersion(ctx context.Context) error {
	want, err := r.controlPlaneVersion(ctx)
	if err != nil {
		return err
	}
	pods, err := r.dataPlanePods(ctx)
	if err != nil {
		return err
	}
	var off []string
	for _, p := range pods {
		if v := p.Annotations[mesh.AnnotationProxyVersion]; v != want {
			off = append(off, fmt.Sprintf("%s/%s (%s)", p.Namespace, p.Name, v))
		}
	}
	if len(off) > 0 {
		return warn("restart them to get the current proxy: kubectl rollout restart", "proxies not at the control plane's version %s: %s", want, strings.Join(off, ", "))
	}
	return nil
}

func (r *runner) checkDataPlaneTrustRoot(ctx context.Context) error {
	if r.anchors == nil {
		return fail("", "the trust anchors could not be read (see linkerd-identity)")
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(r.anchorsPEM)))
	want := hex.EncodeToString(sum[:])
	pods, err := r.dataPlanePods(ctx)
	if err != nil {
		return err
	}
	var off []string
	for _, p := range pods {
		if v, ok := p.Annotations[mesh.AnnotationTrustRootSHA]; ok && v != want {
			off = append(off, p.Namespace+"/"+p.Name)
		}
	}
	if len(off) > 0 {
		return fail("restart them so they get the current trust anchors: kubectl rollout restart", "proxies injected with other trust anchors: %s", strings.Join(off, ", "))
	}
	return nil
}
