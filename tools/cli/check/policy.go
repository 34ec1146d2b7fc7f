package check

// The linkerd-policy checks: the policy CRDs serve the versions the
// control plane reads, and (PolicyProbe) destination's policy API answers.

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/linkerd-go/linkerd-go/api/mesh"
	"github.com/linkerd-go/linkerd-go/tools/cli/authz"
)

// PolicyVersions are the versions of the policy.linkerd.io CRDs that
// destination reads: each must be served.
var PolicyVersions = map[string]string{
	"servers.policy.linkerd.io":                "v1beta3",
	"serverauthorizations.policy.linkerd.io":   "v1beta1",
	"authorizationpolicies.policy.linkerd.io":  "v1alpha1",
	"meshtlsauthentications.policy.linkerd.io": "v1alpha1",
	"networkauthentications.policy.linkerd.io": "v1alpha1",
	"httproutes.policy.linkerd.io":             "v1beta3",
}

func (r *runner) checkPolicyVersions(ctx context.Context) error {
	var off []string
	for _, name := range slices.Sorted(maps.Keys(PolicyVersions)) {
		want := PolicyVersions[name]
		crd, err := r.cfg.APIExtensions.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) || err == nil && crd.DeletionTimestamp != nil {
			continue // the linkerd-crds check names it
		}
		if err != nil {
			off = append(off, fmt.Sprintf("%s: %v", name, err))
			continue
		}
		served := false
		for _, v := range crd.Spec.Versions {
			if v.Name == want && v.Served {
				served = true
			}
		}
		if !served {
			off = append(off, fmt.Sprintf("%s does not serve %s", name, want))
		}
	}
	if len(off) > 0 {
		return fail("upgrade the CRDs with the control plane's chart: helm upgrade linkerd-crds (or linkerd install --crds | kubectl apply -f -)", "%s", strings.Join(off, "; "))
	}
	return nil
}

// checkPolicyService asks destination's policy API, as a proxy would, for
// the policy of a port of destination's own pod.
func (r *runner) checkPolicyService(ctx context.Context) error {
	if r.cfg.RESTConfig == nil {
		return fail("", "no REST configuration to port-forward with")
	}
	c, err := authz.Connect(ctx, authz.Config{RESTConfig: r.cfg.RESTConfig, Kube: r.cfg.Kube, ControlPlaneNamespace: r.cfg.ControlPlaneNamespace})
	if err != nil {
		return fail("see the linkerd-destination pods' logs (container destination)", "%v", err)
	}
	defer c.Close()
	pods, err := r.cfg.Kube.CoreV1().Pods(r.cfg.ControlPlaneNamespace).List(ctx, metav1.ListOptions{LabelSelector: mesh.LabelControlPlaneComp + "=destination"})
	if err != nil || len(pods.Items) == 0 {
		return fail("", "no destination pod to ask about: %v", err)
	}
	pod := pods.Items[0]
	ports := authz.Ports(pod)
	if len(ports) == 0 {
		return fail("", "destination pod %s has no container port", pod.Name)
	}
	srv, err := c.Port(ctx, pod, ports[0])
	if err != nil {
		return fail("see the linkerd-destination pods' logs (container destination)", "WatchPort for %s port %d: %v", pod.Name, ports[0], err)
	}
	if srv.GetLabels()["name"] == "" {
		return fail("", "WatchPort for %s port %d answered a policy without a name", pod.Name, ports[0])
	}
	return nil
}
