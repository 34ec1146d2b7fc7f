//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/linkerd-go/linkerd-go/tools/dev/demo"
)

// outageHold is how long the control plane stays down, with a backend pod
// deleted and its replacement waiting for a certificate: long enough for
// retries to have backed off (they used to reach a minute).
const outageHold = 60 * time.Second

// servedBound bounds the wait for the replacement backend to be served
// once destination is back. It is a guard against a hang that is also far
// below the two minutes the proxies took to resubscribe before; the time
// it really took is logged.
const servedBound = time.Minute

// checkControlPlaneOutage: with identity and destination scaled to zero,
// a backend pod is deleted. The frontend's proxy still has its address
// (discovery is down), so its connects fail: they must go to the other
// backends, and not one request may fail. The replacement pod is created
// while identity is down: its proxy must wait for a certificate without
// being restarted. When the control plane returns, the replacement gets
// its certificate and is served by the frontend soon after destination is
// Ready.
func checkControlPlaneOutage(t *testing.T, ctx context.Context, kube kubernetes.Interface, ns string) {
	t.Helper()
	frontend := onePod(t, ctx, kube, ns, demo.Frontend)
	old, err := demo.Pods(ctx, kube, ns, demo.Backend)
	if err != nil {
		t.Fatal(err)
	}
	before := loadReport(t, ctx, kube, ns)
	frontBefore := frontendFailures(t, ctx, kube, frontend)

	scaleControlPlane(t, ctx, kube, "identity", 0)
	scaleControlPlane(t, ctx, kube, "destination", 0)
	victim := old[0]
	if err := kube.CoreV1().Pods(ns).Delete(ctx, victim.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	var replacement corev1.Pod
	waitUntil(t, ctx, "the deleted backend gone and a replacement created", func() error {
		pods, err := demo.Pods(ctx, kube, ns, demo.Backend)
		if err != nil {
			return err
		}
		if _, err := kube.CoreV1().Pods(ns).Get(ctx, victim.Name, metav1.GetOptions{}); err == nil {
			return fmt.Errorf("%s still exists", victim.Name)
		}
		for _, p := range pods {
			if !slices.Contains(uids(old), string(p.UID)) {
				replacement = p
				return nil
			}
		}
		return fmt.Errorf("no new backend pod among %d", len(pods))
	})
	t.Logf("control plane down, backend %s deleted, %s created; holding for %s", victim.Name, replacement.Name, outageHold)
	hold, cancel := context.WithTimeout(ctx, outageHold)
	<-hold.Done()
	cancel()

	p, err := kube.CoreV1().Pods(ns).Get(ctx, replacement.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ready(*p) {
		t.Errorf("%s is Ready without a certificate", p.Name)
	}
	checkNoRestarts(t, *p)

	scaleControlPlane(t, ctx, kube, "identity", 1)
	scaleControlPlane(t, ctx, kube, "destination", 1)
	dstReady := time.Now()
	waitUntil(t, ctx, "the replacement backend Ready", func() error {
		p, err := kube.CoreV1().Pods(ns).Get(ctx, replacement.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if !ready(*p) {
			return fmt.Errorf("%s not Ready", p.Name)
		}
		replacement = *p
		return nil
	})
	t.Logf("replacement backend Ready %s after destination", time.Since(dstReady).Round(100*time.Millisecond))
	checkNoRestarts(t, replacement)

	bound, cancel := context.WithTimeout(ctx, servedBound)
	defer cancel()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		r, err := demo.LoadReport(ctx, kube, ns)
		if err == nil && r.Backends[replacement.Name] > 0 {
			break
		}
		select {
		case <-bound.Done():
			t.Fatalf("the frontend did not reach the replacement backend %s within %s of destination's return: %v", replacement.Name, servedBound, r.Backends)
		case <-tick.C:
		}
	}
	t.Logf("the replacement backend served its first request %s after destination was Ready", time.Since(dstReady).Round(100*time.Millisecond))

	after := loadReport(t, ctx, kube, ns)
	t.Logf("load across the outage: %d requests succeeded, %d failed", after.Succeeded-before.Succeeded, after.Failed-before.Failed)
	if after.Failed != before.Failed {
		t.Errorf("%d load requests failed across the control-plane outage; last error: %s", after.Failed-before.Failed, after.LastError)
	}
	if f := frontendFailures(t, ctx, kube, frontend); f != frontBefore {
		t.Errorf("the frontend's proxy counted %v failed inbound responses across the outage", f-frontBefore)
	}
}

// scaleControlPlane sets a control-plane Deployment's replicas and waits
// until that many of its pods are Ready and no other is left, terminating
// ones included.
func scaleControlPlane(t *testing.T, ctx context.Context, kube kubernetes.Interface, comp string, replicas int) {
	t.Helper()
	patch := fmt.Appendf(nil, `{"spec":{"replicas":%d}}`, replicas)
	if _, err := kube.AppsV1().Deployments(namespace).Patch(ctx, components[comp], types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	waitUntil(t, ctx, fmt.Sprintf("%s at %d Ready replicas", comp, replicas), func() error {
		list, err := kube.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: "linkerd.io/control-plane-component=" + comp})
		if err != nil {
			return err
		}
		n := 0
		for _, p := range list.Items {
			if p.DeletionTimestamp == nil && ready(p) {
				n++
			}
		}
		if len(list.Items) != replicas || n != replicas {
			return fmt.Errorf("%d pods, %d Ready", len(list.Items), n)
		}
		return nil
	})
	t.Logf("%s scaled to %d in %s", comp, replicas, time.Since(start).Round(100*time.Millisecond))
}

// checkNoRestarts fails the test for any container of p that restarted.
func checkNoRestarts(t *testing.T, p corev1.Pod) {
	t.Helper()
	for _, cs := range append(p.Status.InitContainerStatuses, p.Status.ContainerStatuses...) {
		if cs.RestartCount != 0 {
			t.Errorf("%s/%s restarted %d times (last state %+v)", p.Name, cs.Name, cs.RestartCount, cs.LastTerminationState)
		}
	}
}
