package meshlab

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	identityv1 "github.com/linkerd-go/linkerd-go/api/linkerd/identity/v1"
	"github.com/linkerd-go/linkerd-go/api/mesh"
)

// kubeconfig writes a kubeconfig holding a token of ServiceAccount ns/sa
// for the API server, so a component runs with its own RBAC.
func (m *Mesh) kubeconfig(ctx context.Context, ns, sa string) (string, error) {
	tr, err := m.Kube.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr(int64(24 * 3600))},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", err
	}
	path := filepath.Join(m.Dir, sa+".kubeconfig")
	return path, m.Env.WriteKubeconfig(path, sa, tr.Status.Token)
}

// identityToken writes a token of ServiceAccount ns/sa for audience
// identity.l5d.io, as the projected volume would, readable by the proxy.
func (m *Mesh) identityToken(ctx context.Context, ns, sa string) (string, error) {
	tr, err := m.Kube.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{
			Audiences:         []string{identityv1.TokenAudience},
			ExpirationSeconds: ptr(int64(24 * 3600)),
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", err
	}
	path := filepath.Join(m.Dir, "token-"+ns+"-"+sa)
	return path, os.WriteFile(path, []byte(tr.Status.Token), 0o644)
}

func ptr[T any](v T) *T { return &v }

// createObjects creates what a cluster with the control plane installed and
// the two workloads injected would hold: namespaces, ServiceAccounts, the
// control plane's RBAC, the pods (their status as the kubelet would report
// it), the web Service (ports http and grpc) and its EndpointSlice.
func (m *Mesh) createObjects(ctx context.Context) error {
	c := m.Kube
	for _, ns := range []string{ControlPlaneNS, AppNS} {
		if _, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	for ns, sas := range map[string][]string{ControlPlaneNS: {"linkerd-identity", "linkerd-destination"}, AppNS: {"client", "web"}} {
		for _, sa := range sas {
			if _, err := c.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{}); err != nil {
				return err
			}
		}
	}
	rules := map[string][]rbacv1.PolicyRule{
		"linkerd-identity": {
			{APIGroups: []string{"authentication.k8s.io"}, Resources: []string{"tokenreviews"}, Verbs: []string{"create"}},
			{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
		},
		"linkerd-destination": {
			{APIGroups: []string{""}, Resources: []string{"services", "pods", "namespaces"}, Verbs: []string{"list", "watch"}},
			{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: []string{"list", "watch"}},
			{APIGroups: []string{"apps"}, Resources: []string{"replicasets"}, Verbs: []string{"list", "watch"}},
			{APIGroups: []string{"linkerd.io"}, Resources: []string{"serviceprofiles"}, Verbs: []string{"list", "watch"}},
			{APIGroups: []string{"policy.linkerd.io"}, Resources: []string{"servers", "serverauthorizations", "authorizationpolicies", "meshtlsauthentications", "networkauthentications", "httproutes"}, Verbs: []string{"list", "watch"}},
			{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
		},
	}
	for sa, r := range rules {
		name := "meshlab-" + sa
		if _, err := c.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: r}, metav1.CreateOptions{}); err != nil {
			return err
		}
		if _, err := c.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: name},
			Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: ControlPlaneNS, Name: sa}},
		}, metav1.CreateOptions{}); err != nil {
			return err
		}
	}

	pod := func(name, sa, app string, host int) error {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{
				Name: name, Namespace: AppNS,
				Labels: map[string]string{
					"app":                                    app,
					mesh.LabelControlPlaneNS:                 ControlPlaneNS,
					mesh.LabelWorkloadNS:                     AppNS,
					mesh.LabelProxyKindPrefix + "deployment": app,
				},
				Annotations: map[string]string{mesh.AnnotationCreatedBy: "linkerd/proxy-injector meshlab"},
			},
			Spec: corev1.PodSpec{
				ServiceAccountName: sa,
				NodeName:           "node",
				Containers: []corev1.Container{{
					Name: app, Image: "dev.local/testapp:dev",
					Ports: []corev1.ContainerPort{
						{Name: "http", ContainerPort: AppPort, Protocol: corev1.ProtocolTCP},
						{Name: "grpc", ContainerPort: AppGRPCPort, Protocol: corev1.ProtocolTCP},
					},
				}},
			},
		}
		p, err := c.CoreV1().Pods(AppNS).Create(ctx, p, metav1.CreateOptions{})
		if err != nil {
			return err
		}
		ip := m.Net.IP(host)
		p.Status = corev1.PodStatus{
			Phase:  corev1.PodRunning,
			PodIP:  ip,
			PodIPs: []corev1.PodIP{{IP: ip}},
			HostIP: m.Net.Gateway(),
			Conditions: []corev1.PodCondition{
				{Type: corev1.PodReady, Status: corev1.ConditionTrue},
				{Type: corev1.ContainersReady, Status: corev1.ConditionTrue},
			},
		}
		_, err = c.CoreV1().Pods(AppNS).UpdateStatus(ctx, p, metav1.UpdateOptions{})
		return err
	}
	if err := pod("client", "client", "client", ClientHost); err != nil {
		return err
	}
	var eps []discoveryv1.Endpoint
	for i, h := range WebHosts {
		name := fmt.Sprintf("web-%d", i)
		if err := pod(name, "web", "web", h); err != nil {
			return err
		}
		eps = append(eps, discoveryv1.Endpoint{
			Addresses:  []string{m.Net.IP(h)},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr(true), Serving: ptr(true), Terminating: ptr(false)},
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: AppNS, Name: name},
			NodeName:   ptr("node"),
		})
	}
	if _, err := c.CoreV1().Services(AppNS).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: AppNS},
		Spec: corev1.ServiceSpec{
			Selector:  map[string]string{"app": "web"},
			ClusterIP: WebClusterIP,
			Ports: []corev1.ServicePort{
				{Name: "http", Port: WebPort, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(AppPort)},
				{Name: "grpc", Port: WebGRPCPort, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(AppGRPCPort)},
			},
		},
	}, metav1.CreateOptions{}); err != nil {
		return err
	}
	_, err := c.DiscoveryV1().EndpointSlices(AppNS).Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name: "web-abcde", Namespace: AppNS,
			Labels: map[string]string{
				discoveryv1.LabelServiceName: "web",
				discoveryv1.LabelManagedBy:   "meshlab",
			},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   eps,
		Ports: []discoveryv1.EndpointPort{
			{Name: ptr("http"), Port: ptr(int32(AppPort)), Protocol: ptr(corev1.ProtocolTCP)},
			{Name: ptr("grpc"), Port: ptr(int32(AppGRPCPort)), Protocol: ptr(corev1.ProtocolTCP)},
		},
	}, metav1.CreateOptions{})
	return err
}
