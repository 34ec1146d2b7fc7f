package check

// The kubernetes-api checks: the API answers and is recent enough.

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/version"
)

func (r *runner) checkAPI(ctx context.Context) error {
	if _, err := r.cfg.Kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{Limit: 1}); err != nil {
		return fail("check --kubeconfig/--context and that the API server is up", "cannot reach the Kubernetes API: %v", err)
	}
	return nil
}

func (r *runner) checkKubeVersion(context.Context) error {
	info, err := r.cfg.Kube.Discovery().ServerVersion()
	if err != nil {
		return fail("", "cannot read the server version: %v", err)
	}
	v, err := version.ParseGeneric(info.GitVersion)
	if err != nil {
		return fail("", "cannot parse the server version %q: %v", info.GitVersion, err)
	}
	if v.LessThan(version.MustParseGeneric(minKubernetesVersion)) {
		return fail("upgrade the cluster, or install with --set proxy.nativeSidecar=false", "Kubernetes %s is older than %s", info.GitVersion, minKubernetesVersion)
	}
	return nil
}
