package check

// The linkerd-data-plane checks (--proxy): the meshed pods' proxies.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/linkerd-go/linkerd-go/api/mesh"
)

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
