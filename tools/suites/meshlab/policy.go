package meshlab

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
)

// PolicyObject is a policy.linkerd.io object for the tests and benchmarks
// to apply: Server (v1beta3), AuthorizationPolicy, MeshTLSAuthentication
// or NetworkAuthentication (v1alpha1).
type PolicyObject struct {
	Kind, Name string
	Spec       map[string]any
}

// policyResources are the resources of the kinds, in the versions the
// objects are written in.
var policyResources = map[string]schema.GroupVersionResource{
	"Server":                {Group: "policy.linkerd.io", Version: "v1beta3", Resource: "servers"},
	"AuthorizationPolicy":   {Group: "policy.linkerd.io", Version: "v1alpha1", Resource: "authorizationpolicies"},
	"MeshTLSAuthentication": {Group: "policy.linkerd.io", Version: "v1alpha1", Resource: "meshtlsauthentications"},
	"NetworkAuthentication": {Group: "policy.linkerd.io", Version: "v1alpha1", Resource: "networkauthentications"},
}

func (o PolicyObject) gvr() (schema.GroupVersionResource, error) {
	gvr, ok := policyResources[o.Kind]
	if !ok {
		return schema.GroupVersionResource{}, fmt.Errorf("policy object %s: unknown kind %q", o.Name, o.Kind)
	}
	return gvr, nil
}

// ApplyPolicy server-side applies objs in namespace ns, in order.
func ApplyPolicy(ctx context.Context, dyn dynamic.Interface, ns string, objs ...PolicyObject) error {
	for _, o := range objs {
		gvr, err := o.gvr()
		if err != nil {
			return err
		}
		u := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": gvr.GroupVersion().String(), "kind": o.Kind,
			"metadata": map[string]any{"name": o.Name, "namespace": ns}, "spec": o.Spec,
		}}
		data, err := u.MarshalJSON()
		if err != nil {
			return err
		}
		force := true
		if _, err := dyn.Resource(gvr).Namespace(ns).Patch(ctx, o.Name, types.ApplyPatchType, data, metav1.PatchOptions{FieldManager: "meshlab", Force: &force}); err != nil {
			return fmt.Errorf("applying %s %s: %w", o.Kind, o.Name, err)
		}
	}
	return nil
}

// DeletePolicy deletes objs from namespace ns; one already gone is no
// error.
func DeletePolicy(ctx context.Context, dyn dynamic.Interface, ns string, objs ...PolicyObject) error {
	for _, o := range objs {
		gvr, err := o.gvr()
		if err != nil {
			return err
		}
		if err := dyn.Resource(gvr).Namespace(ns).Delete(ctx, o.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting %s %s: %w", o.Kind, o.Name, err)
		}
	}
	return nil
}
