package webhook

import (
	"context"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
)

// InformerNamespaces reads namespaces from an informer's cache, and from the
// API server when the cache does not hold the namespace yet (a namespace
// created just before its first pod).
type InformerNamespaces struct {
	Lister corelisters.NamespaceLister
	Client kubernetes.Interface
}

// Annotations returns the namespace's annotations.
func (n *InformerNamespaces) Annotations(ctx context.Context, name string) (map[string]string, error) {
	ns, err := n.Lister.Get(name)
	if err == nil {
		return ns.Annotations, nil
	}
	if !apierrors.IsNotFound(err) {
		return nil, err
	}
	got, err := n.Client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return got.Annotations, nil
}
