package commands

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/linkerd-go/linkerd-go/api/mesh"
	"github.com/linkerd-go/linkerd-go/tools/cli/stat"
)

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
