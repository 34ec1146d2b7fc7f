package check

// The linkerd-webhooks checks: the certificates, webhook configurations and
// Services of the proxy injector and the policy validator, and (optionally)
// a dry-run injection.

import (
	"context"
	"crypto/x509"
	"fmt"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/linkerd-go/linkerd-go/api/mesh"
	"github.com/linkerd-go/linkerd-go/tools/cli/pki"
)

// webhook is an admission webhook the API server calls: the proxy injector
// or the policy validator.
type webhook struct {
	name      string // as check lines say it: "proxy-injector"
	secret    string
	config    string
	service   string
	validates bool   // a ValidatingWebhookConfiguration (else mutating)
	values    string // the chart's values section for its certificate
	component string // its pods' linkerd.io/control-plane-component
}

var (
	injectorWebhook  = webhook{name: "proxy-injector", secret: WebhookSecret, config: WebhookConfiguration, service: InjectorService, values: "proxyInjector", component: "proxy-injector"}
	validatorWebhook = webhook{name: "policy-validator", secret: PolicyValidatorSecret, config: PolicyValidatorConfiguration, service: PolicyValidatorService, validates: true, values: "policyValidator", component: "destination"}
)

func (r *runner) webhookCert(ctx context.Context, w webhook) (*x509.Certificate, error) {
	ns := r.cfg.ControlPlaneNamespace
	s, err := r.cfg.Kube.CoreV1().Secrets(ns).Get(ctx, w.secret, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, fail(fmt.Sprintf("install the control plane, or have cert-manager write it (%s.externalSecret)", w.values), "Secret %s/%s does not exist", ns, w.secret)
	}
	if err != nil {
		return nil, err
	}
	certs, err := pki.ParseCertificates(s.Data[corev1.TLSCertKey])
	if err != nil {
		return nil, fail("", "Secret %s tls.crt: %v", w.secret, err)
	}
	return certs[0], nil
}

func (r *runner) checkWebhookCert(w webhook) func(context.Context) error {
	return func(ctx context.Context) error {
		c, err := r.webhookCert(ctx, w)
		if err != nil {
			return err
		}
		return r.certValidNow(w.name+" webhook certificate", c)
	}
}

func (r *runner) checkWebhookCertExpiry(w webhook) func(context.Context) error {
	return func(ctx context.Context) error {
		c, err := r.webhookCert(ctx, w)
		if err != nil {
			return err
		}
		return r.certNotExpiring(w.name+" webhook certificate", "delete the Secret "+w.secret+" and upgrade the control plane (helm upgrade), or let cert-manager renew it", c)
	}
}

// webhookClient returns the webhook's client config (the first webhook of
// its configuration).
func (r *runner) webhookClient(ctx context.Context, w webhook) (*admissionregistrationv1.WebhookClientConfig, error) {
	kind := "MutatingWebhookConfiguration"
	var hooks []admissionregistrationv1.WebhookClientConfig
	var err error
	if w.validates {
		kind = "ValidatingWebhookConfiguration"
		var cfg *admissionregistrationv1.ValidatingWebhookConfiguration
		if cfg, err = r.cfg.Kube.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, w.config, metav1.GetOptions{}); err == nil {
			for _, h := range cfg.Webhooks {
				hooks = append(hooks, h.ClientConfig)
			}
		}
	} else {
		var cfg *admissionregistrationv1.MutatingWebhookConfiguration
		if cfg, err = r.cfg.Kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, w.config, metav1.GetOptions{}); err == nil {
			for _, h := range cfg.Webhooks {
				hooks = append(hooks, h.ClientConfig)
			}
		}
	}
	if apierrors.IsNotFound(err) {
		return nil, fail("install the control plane: linkerd install | kubectl apply -f -", "%s %s does not exist", kind, w.config)
	}
	if err != nil {
		return nil, err
	}
	if len(hooks) == 0 {
		return nil, fail("", "%s %s has no webhooks", kind, w.config)
	}
	return &hooks[0], nil
}

func (r *runner) checkWebhookCABundle(w webhook) func(context.Context) error {
	return func(ctx context.Context) error {
		hook, err := r.webhookClient(ctx, w)
		if err != nil {
			return err
		}
		leaf, err := r.webhookCert(ctx, w)
		if err != nil {
			return err
		}
		cas, err := pki.ParseCertificates(hook.CABundle)
		if err != nil {
			return fail(fmt.Sprintf("set %s.caBundle, or let cert-manager's CA injector fill it", w.values), "webhook %s caBundle: %v", w.config, err)
		}
		roots := x509.NewCertPool()
		for _, c := range cas {
			roots.AddCert(c)
		}
		name := fmt.Sprintf("%s.%s.svc", w.service, r.cfg.ControlPlaneNamespace)
		if svc := hook.Service; svc != nil {
			name = fmt.Sprintf("%s.%s.svc", svc.Name, svc.Namespace)
		}
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: roots, CurrentTime: r.now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			return fail("the Secret "+w.secret+" and the webhook's caBundle are out of step: re-apply linkerd install", "the webhook serving certificate does not verify for %s against the caBundle: %v", name, err)
		}
		return nil
	}
}

func (r *runner) checkWebhookEndpoints(w webhook) func(context.Context) error {
	return func(ctx context.Context) error {
		ns := r.cfg.ControlPlaneNamespace
		name := w.service
		if hook, err := r.webhookClient(ctx, w); err == nil && hook.Service != nil {
			ns, name = hook.Service.Namespace, hook.Service.Name
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
		return fail(fmt.Sprintf("kubectl -n %s get pods -l %s=%s", r.cfg.ControlPlaneNamespace, mesh.LabelControlPlaneComp, w.component), "Service %s/%s has no ready endpoints: the API server cannot reach the %s", ns, name, w.name)
	}
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
