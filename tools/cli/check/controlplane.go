package check

// The linkerd-crds and linkerd-existence checks: the CRDs, the control
// plane's namespace, Deployments, pods and their proxies.

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/linkerd-go/linkerd-go/api/mesh"
)

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
