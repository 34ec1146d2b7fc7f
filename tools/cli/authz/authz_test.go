package authz

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	policyv1 "github.com/linkerd-go/linkerd-go/api/linkerd/policy/v1"
)

func labels(kind, name string) map[string]string {
	return map[string]string{"kind": kind, "name": name}
}

func TestRows(t *testing.T) {
	srv := &policyv1.Server{
		Labels:         labels("Server", "backend-grpc"),
		Protocol:       &policyv1.ProxyProtocol{Kind: &policyv1.ProxyProtocol_Grpc{Grpc: &policyv1.ProxyProtocol_GrpcOptions{}}},
		Authorizations: []*policyv1.Authorization{{Labels: labels("AuthorizationPolicy", "frontend-only")}},
		HttpRoutes: []*policyv1.HttpRoute{
			{Labels: labels("default", "default")},
			{Labels: labels("default", "probe"), Authorizations: []*policyv1.Authorization{{Labels: labels("default", "probe")}}},
		},
	}
	rows := Rows("backend-0", 8080, srv)
	var table bytes.Buffer
	if err := WriteTable(&table, rows); err != nil {
		t.Fatal(err)
	}
	want := `POD        PORT  SERVER               PROTOCOL  ROUTE            AUTHORIZATIONS
backend-0  8080  Server/backend-grpc  gRPC      default/default  AuthorizationPolicy/frontend-only
backend-0  8080  Server/backend-grpc  gRPC      default/probe    AuthorizationPolicy/frontend-only,default/probe
`
	if table.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", table.String(), want)
	}
	// A deny default: no route authorizations, nobody admitted.
	deny := Rows("web-0", 80, &policyv1.Server{Labels: labels("default", "deny")})
	table.Reset()
	if err := WriteTable(&table, deny); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "default/deny  detect    *      (none: denied)") {
		t.Errorf("deny table:\n%s", table.String())
	}
	var js bytes.Buffer
	if err := WriteJSON(&js, deny); err != nil {
		t.Fatal(err)
	}
	var back []Row
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || len(back) != 1 || back[0].Authorizations == nil {
		t.Errorf("json %s: %v %+v", js.String(), err, back)
	}
}

func TestPorts(t *testing.T) {
	pod := corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{
		{Name: "app", Ports: []corev1.ContainerPort{{ContainerPort: 9090}, {ContainerPort: 8080}, {ContainerPort: 53, Protocol: corev1.ProtocolUDP}}},
		{Name: "sidecar", Ports: []corev1.ContainerPort{{ContainerPort: 8080}}},
		{Name: "linkerd-proxy", Ports: []corev1.ContainerPort{{ContainerPort: 4143}, {ContainerPort: 4191}}},
	}}}
	got := Ports(pod)
	if len(got) != 2 || got[0] != 8080 || got[1] != 9090 {
		t.Errorf("ports %v, want [8080 9090]", got)
	}
}

func TestPolicyName(t *testing.T) {
	pod := corev1.Pod{Spec: corev1.PodSpec{ServiceAccountName: "linkerd-destination", Containers: []corev1.Container{{
		Name: "linkerd-proxy", Env: []corev1.EnvVar{{Name: "LINKERD2_PROXY_POLICY_SVC_NAME", Value: "linkerd-destination.linkerd.serviceaccount.identity.linkerd.example.org"}},
	}}}}
	pod.Namespace = "linkerd"
	if got := policyName(pod); got != "linkerd-destination.linkerd.serviceaccount.identity.linkerd.example.org" {
		t.Errorf("from the proxy's env: %s", got)
	}
	pod.Spec.Containers = nil
	if got := policyName(pod); got != "linkerd-destination.linkerd.serviceaccount.identity.linkerd.cluster.local" {
		t.Errorf("default: %s", got)
	}
}
