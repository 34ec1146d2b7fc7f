//go:build integration

package kubetest_test

import (
	"context"
	"os"
	"syscall"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/linkerd-go/linkerd-go/tools/testkit/kubetest"
)

// TestEnv proves the harness against the real API server: a CRD from the
// folder is served and validated, and ServiceAccount tokens round-trip
// through TokenRequest and TokenReview with audiences enforced.
func TestEnv(t *testing.T) {
	env := kubetest.Start(t, kubetest.Options{CRDDirs: []string{"testdata/crds"}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	t.Run("custom resource", func(t *testing.T) {
		dyn, err := dynamic.NewForConfig(env.Config)
		if err != nil {
			t.Fatal(err)
		}
		widgets := dyn.Resource(schema.GroupVersionResource{Group: "test.linkerd.io", Version: "v1", Resource: "widgets"}).Namespace("default")
		w := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "test.linkerd.io/v1", "kind": "Widget",
			"metadata": map[string]any{"name": "w1"},
			"spec":     map[string]any{"size": int64(3)},
		}}
		if _, err := widgets.Create(ctx, w, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create widget: %v", err)
		}
		got, err := widgets.Get(ctx, "w1", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("get widget: %v", err)
		}
		if size, _, _ := unstructured.NestedInt64(got.Object, "spec", "size"); size != 3 {
			t.Errorf("spec.size = %d, want 3", size)
		}
		// The schema is enforced by the real server.
		bad := w.DeepCopy()
		bad.SetName("w2")
		_ = unstructured.SetNestedField(bad.Object, int64(0), "spec", "size")
		_, err = widgets.Create(ctx, bad, metav1.CreateOptions{})
		if !apierrors.IsInvalid(err) {
			t.Errorf("create widget with size 0: err = %v, want Invalid", err)
		}
	})

	t.Run("token review", func(t *testing.T) {
		kube, err := kubernetes.NewForConfig(env.Config)
		if err != nil {
			t.Fatal(err)
		}
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"}}
		if _, err := kube.CoreV1().ServiceAccounts("default").Create(ctx, sa, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		tr, err := kube.CoreV1().ServiceAccounts("default").CreateToken(ctx, "web", &authenticationv1.TokenRequest{
			Spec: authenticationv1.TokenRequestSpec{Audiences: []string{"identity.l5d.io"}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("token request: %v", err)
		}
		review := func(audience string) *authenticationv1.TokenReviewStatus {
			t.Helper()
			r, err := kube.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{
				Spec: authenticationv1.TokenReviewSpec{Token: tr.Status.Token, Audiences: []string{audience}},
			}, metav1.CreateOptions{})
			if err != nil {
				t.Fatalf("token review: %v", err)
			}
			return &r.Status
		}
		if s := review("identity.l5d.io"); !s.Authenticated || s.User.Username != "system:serviceaccount:default:web" {
			t.Errorf("review for identity.l5d.io: authenticated=%v user=%q error=%q", s.Authenticated, s.User.Username, s.Error)
		}
		if s := review("some-other-audience"); s.Authenticated {
			t.Errorf("review for another audience authenticated %q", s.User.Username)
		}
	})
}

// TestStopCleansUp checks that Stop leaves no process and no folder behind.
func TestStopCleansUp(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	env, err := kubetest.StartEnv(ctx, kubetest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pids, dir := env.PIDs(), env.Dir
	if len(pids) != 2 {
		t.Fatalf("PIDs() = %v, want etcd and kube-apiserver", pids)
	}
	if err := env.Stop(); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		// Stop reaps its children, so a signal 0 to a stopped one fails.
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("process %d still exists after Stop", pid)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s still exists after Stop (stat err %v)", dir, err)
	}
	if err := env.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

// TestMissingCRDFolder checks that a bad CRD folder is a clear error, not a
// half-started environment.
func TestMissingCRDFolder(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	env, err := kubetest.StartEnv(ctx, kubetest.Options{CRDDirs: []string{"testdata/no-such-folder"}})
	if err == nil {
		_ = env.Stop()
		t.Fatal("StartEnv with a missing CRD folder succeeded")
	}
}
