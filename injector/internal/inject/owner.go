package inject

import (
	"strings"

	"github.com/linkerd-go/linkerd-go/api/mesh"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// ownerWorkload returns the kind (lower case) and name of the workload that
// owns the pod, for the linkerd.io/proxy-<kind> label: the controller owner,
// or for a ReplicaSet made by a Deployment (named <deployment>-<pod-template-hash>),
// the Deployment. It returns false for pods without a controller, and when
// the label would not be valid (a name longer than 63 characters).
func ownerWorkload(pod *corev1.Pod) (kind, name string, ok bool) {
	ref := metav1.GetControllerOfNoCopy(pod)
	if ref == nil {
		return "", "", false
	}
	kind, name = strings.ToLower(ref.Kind), ref.Name
	if kind == "replicaset" {
		if hash := pod.Labels["pod-template-hash"]; hash != "" {
			if d, ok := strings.CutSuffix(name, "-"+hash); ok && d != "" {
				kind, name = "deployment", d
			}
		}
	}
	if len(validation.IsQualifiedName(mesh.LabelProxyKindPrefix+kind)) > 0 || len(validation.IsValidLabelValue(name)) > 0 {
		return "", "", false
	}
	return kind, name, true
}
