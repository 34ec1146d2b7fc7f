// Package inject decides whether a pod is meshed and computes the JSON patch
// that meshes it: the linkerd-init step, the linkerd-proxy container, their
// volumes, and what is recorded on the pod. It is pure: no I/O, no clock.
package inject

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/linkerd-go/linkerd-go/api/mesh"
	"github.com/linkerd-go/linkerd-go/injector/internal/config"
)

// SkipReason says why a pod is not injected. The values are bounded: they
// label metrics.
type SkipReason string

// The skip reasons.
const (
	// SkipNotEnabled: neither the pod nor its namespace asks for injection,
	// or one of them says disabled.
	SkipNotEnabled SkipReason = "not-enabled"
	// SkipInvalidInjectAnnotation: linkerd.io/inject has a value other than
	// enabled, ingress or disabled.
	SkipInvalidInjectAnnotation SkipReason = "invalid-inject-annotation"
	// SkipHostNetwork: the pod shares the node's network; redirecting its
	// traffic would redirect the node's.
	SkipHostNetwork SkipReason = "host-network"
	// SkipAlreadyInjected: the pod already has a linkerd-proxy container.
	SkipAlreadyInjected SkipReason = "already-injected"
	// SkipControlPlane: the pod is part of a control plane.
	SkipControlPlane SkipReason = "control-plane"
	// SkipServiceAccount: the pod's ServiceAccount name contains a dot, so it
	// cannot be part of an identity name.
	SkipServiceAccount SkipReason = "invalid-serviceaccount"
	// SkipNameConflict: the pod already has a container or volume with one
	// of the names the injector adds.
	SkipNameConflict SkipReason = "name-conflict"
	// SkipInvalidConfigAnnotation: an override that decides what traffic
	// the proxy sees, or who may reach the pod, has a bad value.
	SkipInvalidConfigAnnotation SkipReason = "invalid-config-annotation"
)

// Reasons lists every skip reason, for metrics.
var Reasons = []SkipReason{
	SkipNotEnabled, SkipInvalidInjectAnnotation, SkipHostNetwork, SkipAlreadyInjected,
	SkipControlPlane, SkipServiceAccount, SkipNameConflict, SkipInvalidConfigAnnotation,
}

// Reported says whether a skip deserves an InjectionSkipped event: the pod
// (or its namespace) asked for the mesh and did not get it. Pods that never
// asked, control-plane pods, and pods that already have the proxy (the
// webhook being invoked again) are not news.
func (r SkipReason) Reported() bool {
	switch r {
	case SkipNotEnabled, SkipAlreadyInjected, SkipControlPlane:
		return false
	}
	return true
}

// Injector computes patches from one validated config.
type Injector struct {
	cfg       *config.Config
	createdBy string
}

// New returns an Injector for a validated config. createdBy is recorded in
// linkerd.io/created-by, e.g. "linkerd/proxy-injector v0.1.0".
func New(cfg *config.Config, createdBy string) *Injector {
	return &Injector{cfg: cfg, createdBy: createdBy}
}

// Request is one pod to consider.
type Request struct {
	// Pod is the pod as the API server sent it.
	Pod *corev1.Pod
	// Namespace is the pod's namespace (from the admission request: the
	// pod's own field may be empty).
	Namespace string
	// NamespaceAnnotations are its namespace's annotations.
	NamespaceAnnotations map[string]string
}

// Result is the outcome for one pod.
type Result struct {
	// Patch meshes the pod; empty when it is skipped.
	Patch Patch
	// Skip is why the pod is not injected; empty when it is.
	Skip SkipReason
	// Message explains Skip for people.
	Message string
	// Problems are the bad override values found (on an injected pod: their
	// defaults were kept).
	Problems []Problem
	// NativeSidecar says which layout an injected pod got.
	NativeSidecar bool
}

// Injected reports whether the pod is meshed by Patch.
func (r *Result) Injected() bool { return r.Skip == "" }

// Inject decides for one pod and computes its patch.
func (in *Injector) Inject(req Request) Result {
	pod := req.Pod
	mode, skip, msg := decide(pod.Annotations, req.NamespaceAnnotations)
	if skip != "" {
		return Result{Skip: skip, Message: msg}
	}
	if hasContainer(pod, mesh.ProxyContainerName) {
		return Result{Skip: SkipAlreadyInjected, Message: "the pod already has a " + mesh.ProxyContainerName + " container"}
	}
	if _, ok := pod.Labels[mesh.LabelControlPlaneComp]; ok {
		return Result{Skip: SkipControlPlane, Message: "the pod is a control-plane component (label " + mesh.LabelControlPlaneComp + ")"}
	}
	if pod.Spec.HostNetwork {
		return Result{Skip: SkipHostNetwork, Message: "the pod uses the host's network (hostNetwork: true)"}
	}
	if name := conflictingName(pod); name != "" {
		return Result{Skip: SkipNameConflict, Message: fmt.Sprintf("the pod already has a container or volume named %q", name)}
	}
	sa := serviceAccount(pod)
	identity := in.cfg.IdentityName(sa, req.Namespace)
	if err := identity.Validate(); err != nil {
		return Result{Skip: SkipServiceAccount, Message: fmt.Sprintf("ServiceAccount %q in namespace %q cannot have a mesh identity (it must be a single DNS label): %v", sa, req.Namespace, err)}
	}
	s, problems, inherited := resolve(in.cfg, pod, req.NamespaceAnnotations)
	for _, p := range problems {
		if p.Critical {
			var msgs []string
			for _, p := range problems {
				if p.Critical {
					msgs = append(msgs, p.String())
				}
			}
			return Result{Skip: SkipInvalidConfigAnnotation, Message: strings.Join(msgs, "; "), Problems: problems}
		}
	}
	b := builder{cfg: in.cfg, s: &s, pod: pod, namespace: req.Namespace, identity: identity.String(), ingress: mode == mesh.InjectIngress}
	patch := b.patch(in.recordedLabels(pod, req.Namespace), in.recordedAnnotations(&s, inherited))
	return Result{Patch: patch, Problems: problems, NativeSidecar: s.nativeSidecar}
}

// decide reads linkerd.io/inject on the pod, else on the namespace.
func decide(pod, ns map[string]string) (mode string, skip SkipReason, msg string) {
	v, fromNS, ok := lookup(mesh.AnnotationInject, pod, ns)
	where := "pod"
	if fromNS {
		where = "namespace"
	}
	switch {
	case !ok:
		return "", SkipNotEnabled, "neither the pod nor its namespace has " + mesh.AnnotationInject
	case v == mesh.InjectEnabled || v == mesh.InjectIngress:
		return v, "", ""
	case v == mesh.InjectDisabled:
		return "", SkipNotEnabled, fmt.Sprintf("%s annotation %s is %s", where, mesh.AnnotationInject, mesh.InjectDisabled)
	}
	return "", SkipInvalidInjectAnnotation, fmt.Sprintf("%s annotation %s is %q, not one of %s, %s, %s", where, mesh.AnnotationInject, truncate(v), mesh.InjectEnabled, mesh.InjectIngress, mesh.InjectDisabled)
}

func truncate(s string) string {
	const max = 64
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}

func hasContainer(pod *corev1.Pod, name string) bool {
	return slices.ContainsFunc(slices.Concat(pod.Spec.InitContainers, pod.Spec.Containers), func(c corev1.Container) bool { return c.Name == name })
}

// conflictingName returns a name the injector would add that the pod
// already uses, or "".
func conflictingName(pod *corev1.Pod) string {
	for _, n := range []string{mesh.InitContainerName, mesh.ProxyContainerName} {
		if hasContainer(pod, n) {
			return n
		}
		if slices.ContainsFunc(pod.Spec.EphemeralContainers, func(c corev1.EphemeralContainer) bool { return c.Name == n }) {
			return n
		}
	}
	for _, v := range pod.Spec.Volumes {
		if v.Name == mesh.IdentityTokenVolumeName || v.Name == IdentityEndEntityVolName {
			return v.Name
		}
	}
	return ""
}

// serviceAccount returns the pod's ServiceAccount name ("default" when
// unset, as the API server's ServiceAccount admission sets it).
func serviceAccount(pod *corev1.Pod) string {
	if pod.Spec.ServiceAccountName != "" {
		return pod.Spec.ServiceAccountName
	}
	if pod.Spec.DeprecatedServiceAccount != "" {
		return pod.Spec.DeprecatedServiceAccount
	}
	return defaultServiceAccount
}

// defaultServiceAccount is the ServiceAccount of pods that name none.
const defaultServiceAccount = "default"

func (in *Injector) recordedLabels(pod *corev1.Pod, namespace string) map[string]string {
	labels := map[string]string{
		mesh.LabelControlPlaneNS: in.cfg.ControlPlaneNamespace,
		mesh.LabelWorkloadNS:     namespace,
	}
	if kind, name, ok := ownerWorkload(pod); ok {
		labels[mesh.LabelProxyKindPrefix+kind] = name
	}
	return labels
}

func (in *Injector) recordedAnnotations(s *settings, inherited map[string]string) map[string]string {
	a := maps.Clone(inherited)
	a[mesh.AnnotationCreatedBy] = in.createdBy
	a[mesh.AnnotationProxyVersion] = s.proxyImage.Version
	a[mesh.AnnotationTrustRootSHA] = in.cfg.TrustRootSHA256()
	return a
}
