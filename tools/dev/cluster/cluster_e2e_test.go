//go:build e2e

package cluster_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/linkerd-go/linkerd-go/tools/dev/cluster"
)

// TestClusterUpWorkloadsDown brings the real cluster up, runs a Deployment
// behind a Service and a client pod whose init container reaches it by DNS
// name, tears the cluster down and checks the host is as it was.
func TestClusterUpWorkloadsDown(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	c, err := cluster.New(testLog{t})
	if err != nil {
		t.Fatal(err)
	}
	if s := c.Status(ctx); anyRunning(s) {
		t.Fatalf("a dev cluster is already running (%v): run `make cluster-down` first", s.Components)
	}
	before := c.HostSnapshot(ctx)
	t.Cleanup(func() {
		if t.Failed() {
			dumpState(t, c)
		}
		if err := c.Down(context.Background()); err != nil {
			t.Errorf("down: %v", err)
		}
		if diff := cluster.DiffSnapshots(before, c.HostSnapshot(context.Background())); len(diff) > 0 {
			t.Errorf("host state differs after down:\n%s", strings.Join(diff, "\n"))
		}
	})

	if err := c.Up(ctx); err != nil {
		t.Fatalf("up: %v", err)
	}
	first := c.Status(ctx)
	if !first.Running() {
		t.Fatalf("after up: %+v", first)
	}
	// Up again changes nothing.
	if err := c.Up(ctx); err != nil {
		t.Fatalf("second up: %v", err)
	}
	for name, pid := range c.Status(ctx).Components {
		if pid != first.Components[name] {
			t.Errorf("second up restarted %s: pid %d → %d", name, first.Components[name], pid)
		}
	}

	kube, err := c.Client()
	if err != nil {
		t.Fatal(err)
	}
	ns := "default"
	labels := map[string]string{"app": "web"}
	replicas := int32(2)
	_, err = kube.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name:            "web",
					Image:           cluster.TestAppImage,
					ImagePullPolicy: corev1.PullNever,
					Args:            []string{"serve", "--addr", ":8080"},
					Ports:           []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
					ReadinessProbe: &corev1.Probe{
						ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intstr.FromString("http")}},
						PeriodSeconds: 1,
					},
				}}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = kube.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{
			Selector: labels,
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, ctx, "web has 2 available replicas", func() error {
		d, err := kube.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if d.Status.AvailableReplicas != 2 {
			return errorf("%d available", d.Status.AvailableReplicas)
		}
		return nil
	})

	// The init container must reach the Service by name before the pod's
	// container runs; the container checks the init container's mark.
	scratch := []corev1.VolumeMount{{Name: "scratch", MountPath: "/scratch"}}
	_, err = kube.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "client"},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Volumes:       []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
			InitContainers: []corev1.Container{
				{Name: "reach-web", Image: cluster.TestAppImage, ImagePullPolicy: corev1.PullNever,
					Args: []string{"get", "http://web.default.svc.cluster.local/", "http://web/"}},
				{Name: "mark", Image: cluster.TestAppImage, ImagePullPolicy: corev1.PullNever,
					Args: []string{"touch", "/scratch/init-done"}, VolumeMounts: scratch},
			},
			Containers: []corev1.Container{
				{Name: "check", Image: cluster.TestAppImage, ImagePullPolicy: corev1.PullNever,
					Args: []string{"wait-file", "/scratch/init-done"}, VolumeMounts: scratch},
				{Name: "lookup", Image: cluster.TestAppImage, ImagePullPolicy: corev1.PullNever,
					Args: []string{"lookup", "web.default.svc.cluster.local", "kubernetes.default.svc.cluster.local"}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, ctx, "client pod succeeded", func() error {
		p, err := kube.CoreV1().Pods(ns).Get(ctx, "client", metav1.GetOptions{})
		if err != nil {
			return err
		}
		switch p.Status.Phase {
		case corev1.PodSucceeded:
			return nil
		case corev1.PodFailed:
			t.Fatalf("client pod failed: %+v\ninit container logs:\n%s", p.Status, podLogs(ctx, kube, ns, "client", "reach-web"))
		}
		return errorf("phase %s", p.Status.Phase)
	})
	if logs := podLogs(ctx, kube, ns, "client", "reach-web"); strings.Count(logs, "200 OK hello from web-") != 2 {
		t.Errorf("init container did not get two answers from web pods:\n%s", logs)
	}
}

func anyRunning(s cluster.Status) bool {
	for _, pid := range s.Components {
		if pid != 0 {
			return true
		}
	}
	return false
}

func podLogs(ctx context.Context, kube kubernetes.Interface, ns, pod, container string) string {
	b, err := kube.CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{Container: container}).DoRaw(ctx)
	if err != nil {
		return "logs unavailable: " + err.Error()
	}
	return string(b)
}

// waitUntil polls check every 200 ms until it returns nil or ctx ends.
func waitUntil(t *testing.T, ctx context.Context, what string, check func() error) {
	t.Helper()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		err := check()
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: %v", what, err)
		case <-tick.C:
		}
	}
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }

// dumpState prints what helps find why a cluster test failed: the node's
// events and the tail of each component's log.
func dumpState(t *testing.T, c *cluster.Cluster) {
	t.Helper()
	for _, d := range cluster.Daemons() {
		data, err := os.ReadFile(c.LogDir() + "/" + d + ".log")
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(lines) > 20 {
			lines = lines[len(lines)-20:]
		}
		t.Logf("--- last lines of %s.log ---\n%s", d, strings.Join(lines, "\n"))
	}
}

type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
