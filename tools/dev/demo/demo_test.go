package demo

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linkerd-go/linkerd-go/api/mesh"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func TestObjectsApplyTwice(t *testing.T) {
	ctx := context.Background()
	kube := fake.NewClientset()
	objs := append(Objects(Options{Namespace: "demo"}), UnmeshedPod("demo"), Job("demo", "smoke", 5))
	for range 2 {
		if err := Apply(ctx, kube, objs...); err != nil {
			t.Fatal(err)
		}
	}
	ns, err := kube.CoreV1().Namespaces().Get(ctx, "demo", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ns.Annotations[mesh.AnnotationInject] != "enabled" {
		t.Errorf("namespace annotations %v", ns.Annotations)
	}
	for _, name := range Deployments {
		d, err := kube.AppsV1().Deployments("demo").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if d.Spec.Template.Spec.ServiceAccountName != name {
			t.Errorf("%s runs as %q: each workload has its own identity", name, d.Spec.Template.Spec.ServiceAccountName)
		}
	}
	p, err := kube.CoreV1().Pods("demo").Get(ctx, Unmeshed, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Annotations[mesh.AnnotationInject] != "disabled" {
		t.Errorf("unmeshed pod annotations %v", p.Annotations)
	}
}

// Every container of the demo is the demo image, never pulled, non-root,
// with a read-only root filesystem.
func TestContainersLockedDown(t *testing.T) {
	var specs []corev1.PodSpec
	for _, o := range Objects(Options{Namespace: "x", Rate: 3}) {
		if d, ok := o.(*appsv1.Deployment); ok {
			specs = append(specs, d.Spec.Template.Spec)
		}
	}
	specs = append(specs, UnmeshedPod("x").Spec, Job("x", "j", 1).Spec.Template.Spec)
	for _, s := range specs {
		for _, c := range s.Containers {
			sc := c.SecurityContext
			if c.Image != Image || c.ImagePullPolicy != corev1.PullNever || sc == nil || !*sc.RunAsNonRoot || !*sc.ReadOnlyRootFilesystem {
				t.Errorf("container %s: image %s, pull %s, security %+v", c.Name, c.Image, c.ImagePullPolicy, sc)
			}
			if c.Name == "load" && !strings.Contains(strings.Join(c.Args, " "), "--rate 3") {
				t.Errorf("load args %v", c.Args)
			}
		}
	}
}

func TestEnsurePKIKeepsValidCredentials(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	gen, err := EnsurePKI(dir, now, 60*24*time.Hour)
	if err != nil || !gen {
		t.Fatalf("first EnsurePKI: generated %v, %v", gen, err)
	}
	before, _ := os.ReadFile(filepath.Join(dir, TrustAnchorFile))
	if gen, err = EnsurePKI(dir, now, 60*24*time.Hour); err != nil || gen {
		t.Fatalf("second EnsurePKI: generated %v, %v", gen, err)
	}
	after, _ := os.ReadFile(filepath.Join(dir, TrustAnchorFile))
	if string(before) != string(after) {
		t.Error("valid credentials were replaced")
	}
	// Eleven months on, less than 60 days are left: new ones.
	if gen, err = EnsurePKI(dir, now.Add(335*24*time.Hour), 60*24*time.Hour); err != nil || !gen {
		t.Fatalf("EnsurePKI near expiry: generated %v, %v", gen, err)
	}
}
