package inject

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/linkerd-go/linkerd-go/api/mesh"
	"github.com/linkerd-go/linkerd-go/injector/internal/config"
)

// InjectService copies the namespace's config.linkerd.io/opaque-ports onto a
// Service that sets none, so that clients treat the Service's ports as
// opaque like the pods behind it. Port names are not resolved here: only a
// numeric list is copied. It returns nil when there is nothing to add.
func InjectService(svc *corev1.Service, nsAnnotations map[string]string) Patch {
	if _, ok := svc.Annotations[mesh.AnnotationOpaquePorts]; ok {
		return nil
	}
	v, ok := nsAnnotations[mesh.AnnotationOpaquePorts]
	if !ok {
		return nil
	}
	if _, err := config.ParsePorts(v); err != nil {
		return nil
	}
	var p Patch
	addToMap(&p, "/metadata/annotations", svc.Annotations, map[string]string{mesh.AnnotationOpaquePorts: v})
	return p
}
