package check

// The linkerd-webhooks checks: the proxy injector's certificate, its
// webhook configuration and Service, and (optionally) a dry-run injection.

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
