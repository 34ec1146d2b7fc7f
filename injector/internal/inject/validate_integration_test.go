//go:build integration

package inject

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/linkerd-go/linkerd-go/tools/testkit/kubetest"
)

// TestPatchedPodsPassValidation applies every golden case's patch to its pod
// and creates the result with dry-run in a real API server: whatever the
// overrides, the injector never produces a pod Kubernetes refuses.
func TestPatchedPodsPassValidation(t *testing.T) {
	env := kubetest.Start(t, kubetest.Options{})
	client, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	created := map[string]bool{}
	var injected int
	for _, tc := range loadCases(t) {
		res := tc.run()
		if !res.Injected() {
			continue
		}
		injected++
		ns := tc.Namespace.Name
		if !created[ns] {
			if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			created[ns] = true
		}
		t.Run(tc.Name, func(t *testing.T) {
			pod := applyPatch(t, tc.Raw, res.Patch)
			pod.Namespace = ns
			// Owner references must name existing kinds, not objects.
			if _, err := client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
				t.Errorf("the API server refuses the injected pod: %v", err)
			}
		})
	}
	if injected < 20 {
		t.Errorf("only %d injected cases", injected)
	}
}
