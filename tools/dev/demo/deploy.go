package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/linkerd-go/linkerd-go/tools/dev/cluster"
	"github.com/linkerd-go/linkerd-go/tools/dev/demo/app"
)

// fieldManager owns the fields the demo applies.
const fieldManager = "linkerd-go-demo"

// BuildImage builds the demo application's image for the node's
// architecture into dir and returns the tarball's path (load it with
// c.LoadImage).
func BuildImage(ctx context.Context, c *cluster.Cluster, dir string) (string, error) {
	return c.BuildCommandImage(ctx, "demoapp", Image, filepath.Join(dir))
}

// Apply server-side applies objs (from Objects, Job or UnmeshedPod): it
// creates what is missing and updates what differs, so applying twice
// changes nothing.
func Apply(ctx context.Context, kube kubernetes.Interface, objs ...any) error {
	opts := metav1.PatchOptions{FieldManager: fieldManager, Force: ptr.To(true)}
	for _, obj := range objs {
		data, err := json.Marshal(obj)
		if err != nil {
			return err
		}
		var what string
		switch o := obj.(type) {
		case *corev1.Namespace:
			what = "namespace/" + o.Name
			_, err = kube.CoreV1().Namespaces().Patch(ctx, o.Name, types.ApplyPatchType, data, opts)
		case *corev1.ServiceAccount:
			what = "serviceaccount/" + o.Name
			_, err = kube.CoreV1().ServiceAccounts(o.Namespace).Patch(ctx, o.Name, types.ApplyPatchType, data, opts)
		case *corev1.Service:
			what = "service/" + o.Name
			_, err = kube.CoreV1().Services(o.Namespace).Patch(ctx, o.Name, types.ApplyPatchType, data, opts)
		case *corev1.Pod:
			what = "pod/" + o.Name
			_, err = kube.CoreV1().Pods(o.Namespace).Patch(ctx, o.Name, types.ApplyPatchType, data, opts)
		case *appsv1.Deployment:
			what = "deployment/" + o.Name
			_, err = kube.AppsV1().Deployments(o.Namespace).Patch(ctx, o.Name, types.ApplyPatchType, data, opts)
		case *batchv1.Job:
			what = "job/" + o.Name
			_, err = kube.BatchV1().Jobs(o.Namespace).Patch(ctx, o.Name, types.ApplyPatchType, data, opts)
		default:
			return fmt.Errorf("apply: unsupported object %T", obj)
		}
		if err != nil {
			return fmt.Errorf("applying %s: %w", what, err)
		}
	}
	return nil
}

// Poll calls check every interval until it returns nil, or returns its last
// error when timeout passes or ctx ends.
func Poll(ctx context.Context, timeout, interval time.Duration, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		err := check(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not after %s: %w", timeout, err)
		case <-tick.C:
		}
	}
}

// DeploymentsReady returns nil when each named Deployment of ns has rolled
// out its current spec and all its replicas are ready, with no other pod
// (an old one terminating) left; else what is missing.
func DeploymentsReady(ctx context.Context, kube kubernetes.Interface, ns string, names ...string) error {
	var missing []string
	for _, name := range names {
		d, err := kube.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		want := ptr.Deref(d.Spec.Replicas, 1)
		s := d.Status
		switch {
		case s.ObservedGeneration < d.Generation:
			missing = append(missing, name+": rollout not observed yet")
		case s.UpdatedReplicas != want || s.ReadyReplicas != want || s.AvailableReplicas != want || s.Replicas != want:
			missing = append(missing, fmt.Sprintf("%s: %d/%d ready (%d updated, %d in all)", name, s.ReadyReplicas, want, s.UpdatedReplicas, s.Replicas))
		}
	}
	if len(missing) > 0 {
		return errors.New(strings.Join(missing, "; "))
	}
	return nil
}

// Pods lists the running (not deleted) pods of ns with label app=name.
func Pods(ctx context.Context, kube kubernetes.Interface, ns, name string) ([]corev1.Pod, error) {
	list, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + name})
	if err != nil {
		return nil, err
	}
	var out []corev1.Pod
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b corev1.Pod) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// LoadReport reads the load generator's report (GET /stats on its stats
// port through the API server's pod proxy).
func LoadReport(ctx context.Context, kube kubernetes.Interface, ns string) (app.Report, error) {
	pods, err := Pods(ctx, kube, ns, Load)
	if err != nil {
		return app.Report{}, err
	}
	if len(pods) != 1 {
		return app.Report{}, fmt.Errorf("%d load pods, want 1", len(pods))
	}
	b, err := kube.CoreV1().Pods(ns).ProxyGet("http", pods[0].Name, fmt.Sprint(StatsPort), "/stats", nil).DoRaw(ctx)
	if err != nil {
		return app.Report{}, fmt.Errorf("GET %s:%d/stats: %w", pods[0].Name, StatsPort, err)
	}
	var r app.Report
	if err := json.Unmarshal(b, &r); err != nil {
		return app.Report{}, fmt.Errorf("load report %q: %w", b, err)
	}
	return r, nil
}

// RunJob (re)creates Job(ns, name, count) and waits until it completes; an
// error says why it failed or what it was doing when timeout passed.
func RunJob(ctx context.Context, kube kubernetes.Interface, ns, name string, count int, timeout time.Duration) error {
	jobs := kube.BatchV1().Jobs(ns)
	err := jobs.Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationForeground)})
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	if err := Poll(ctx, time.Minute, 500*time.Millisecond, func(ctx context.Context) error {
		_, err := jobs.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("previous job %s still there (%v)", name, err)
	}); err != nil {
		return err
	}
	if _, err := jobs.Create(ctx, Job(ns, name, count), metav1.CreateOptions{}); err != nil {
		return err
	}
	var failed error
	err = Poll(ctx, timeout, 500*time.Millisecond, func(ctx context.Context) error {
		j, err := jobs.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, c := range j.Status.Conditions {
			if c.Status != corev1.ConditionTrue {
				continue
			}
			switch c.Type {
			case batchv1.JobComplete:
				return nil
			case batchv1.JobFailed:
				failed = fmt.Errorf("job %s failed: %s: %s", name, c.Reason, c.Message)
				return nil
			}
		}
		return fmt.Errorf("job %s: %d active, %d succeeded, %d failed", name, j.Status.Active, j.Status.Succeeded, j.Status.Failed)
	})
	if err != nil {
		return err
	}
	return failed
}
