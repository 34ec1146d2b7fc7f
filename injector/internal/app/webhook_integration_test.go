//go:build integration

package app

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/linkerd-go/linkerd-go/api/mesh"
	"github.com/linkerd-go/linkerd-go/injector/internal/inject"
	"github.com/linkerd-go/linkerd-go/tools/testkit/kubetest"
)

const relabelLabel = "test.linkerd.io/relabeled"

// relabeler is a second mutating webhook, called after the injector, that
// adds a label: the API server then calls the injector again
// (reinvocationPolicy IfNeeded), which must add nothing twice.
func startRelabeler(t *testing.T, pki *testPKI) string {
	t.Helper()
	cert, err := tls.X509KeyPair(pki.certPEM, pki.keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var review admissionv1.AdmissionReview
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &review); err != nil || review.Request == nil {
			http.Error(w, "bad review", http.StatusBadRequest)
			return
		}
		var pod corev1.Pod
		_ = json.Unmarshal(review.Request.Object.Raw, &pod)
		resp := &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true}
		if _, ok := pod.Labels[relabelLabel]; !ok {
			var patch string
			if pod.Labels == nil {
				patch = `[{"op":"add","path":"/metadata/labels","value":{"` + relabelLabel + `":"yes"}}]`
			} else {
				patch = `[{"op":"add","path":"/metadata/labels/` + strings.ReplaceAll(relabelLabel, "/", "~1") + `","value":"yes"}]`
			}
			pt := admissionv1.PatchTypeJSONPatch
			resp.Patch, resp.PatchType = []byte(patch), &pt
		}
		review.Request, review.Response = nil, resp
		_ = json.NewEncoder(w).Encode(review)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "https://" + ln.Addr().String() + "/"
}

// TestWebhookInRealAPIServer registers the injector with a real
// kube-apiserver, which calls it over TLS for every pod and Service created.
func TestWebhookInRealAPIServer(t *testing.T) {
	env := kubetest.Start(t, kubetest.Options{})
	client, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	for _, ns := range []*corev1.Namespace{
		{ObjectMeta: metav1.ObjectMeta{Name: "meshed", Annotations: map[string]string{
			mesh.AnnotationInject: mesh.InjectEnabled, mesh.AnnotationOpaquePorts: "3306,5432",
		}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "plain"}},
	} {
		if _, err := client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	dir := t.TempDir()
	pki := newTestPKI(t)
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	pki.write(t, certFile, keyFile)
	srv := runServer(t, client, certFile, keyFile)

	relabeler := startRelabeler(t, pki)
	injectorURL := "https://" + srv.WebhookAddr().String() + "/"
	none := admissionregistrationv1.SideEffectClassNone
	fail := admissionregistrationv1.Fail
	ifNeeded := admissionregistrationv1.IfNeededReinvocationPolicy
	timeout := int32(10)
	selector := &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
		Key: "config.linkerd.io/admission-webhooks", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"disabled"},
	}}}
	hook := func(name, url string, resources ...string) admissionregistrationv1.MutatingWebhook {
		return admissionregistrationv1.MutatingWebhook{
			Name:                    name,
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: pki.caPEM},
			Rules:                   []admissionregistrationv1.RuleWithOperations{{Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create}, Rule: admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: resources}}},
			SideEffects:             &none,
			FailurePolicy:           &fail,
			ReinvocationPolicy:      &ifNeeded,
			TimeoutSeconds:          &timeout,
			NamespaceSelector:       selector,
			AdmissionReviewVersions: []string{"v1"},
		}
	}
	if _, err := client.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "linkerd-proxy-injector-webhook-config"},
		Webhooks: []admissionregistrationv1.MutatingWebhook{
			hook("linkerd-proxy-injector.linkerd.io", injectorURL, "pods", "services"),
			hook("relabel.test.linkerd.io", relabeler, "pods"),
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	pod := func(name string, annotations map[string]string, hostNetwork bool) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations},
			Spec: corev1.PodSpec{
				ServiceAccountName: "web",
				HostNetwork:        hostNetwork,
				Containers:         []corev1.Container{{Name: "app", Image: "registry.example/app:1", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}},
			},
		}
	}
	// The API server picks up webhook configurations asynchronously: wait
	// until a dry-run pod comes back mutated by both webhooks.
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		got, err := client.CoreV1().Pods("meshed").Create(ctx, pod("probe", nil, false), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil {
			return false, nil
		}
		return got.Labels[relabelLabel] != "" && len(got.Spec.InitContainers) == 2, nil
	}); err != nil {
		t.Fatalf("webhooks never took effect: %v", err)
	}

	podRequests := func() float64 {
		n, err := testutil.GatherAndCount(srv.Registry(), "proxy_inject_admission_requests_total")
		if err != nil || n == 0 {
			t.Fatalf("no request metric: %v", err)
		}
		mfs, _ := srv.Registry().Gather()
		for _, mf := range mfs {
			if mf.GetName() == "proxy_inject_admission_requests_total" {
				for _, m := range mf.GetMetric() {
					if m.GetLabel()[0].GetValue() == "pod" {
						return m.GetCounter().GetValue()
					}
				}
			}
		}
		return 0
	}

	t.Run("annotated namespace", func(t *testing.T) {
		before := podRequests()
		if _, err := client.CoreV1().Pods("meshed").Create(ctx, pod("web", nil, false), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		// Read it back from the API server.
		got, err := client.CoreV1().Pods("meshed").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if n := len(got.Spec.InitContainers); n != 2 || got.Spec.InitContainers[0].Name != mesh.InitContainerName || got.Spec.InitContainers[1].Name != mesh.ProxyContainerName {
			t.Fatalf("init containers %v, want linkerd-init, linkerd-proxy", containerNames(got.Spec.InitContainers))
		}
		proxy := got.Spec.InitContainers[1]
		if proxy.RestartPolicy == nil || *proxy.RestartPolicy != corev1.ContainerRestartPolicyAlways || proxy.StartupProbe == nil {
			t.Error("proxy is not a native sidecar with a startup probe")
		}
		if len(got.Spec.Containers) != 1 {
			t.Errorf("containers %v, want the app alone", containerNames(got.Spec.Containers))
		}
		if got.Labels[mesh.LabelControlPlaneNS] != "linkerd" || got.Labels[mesh.LabelWorkloadNS] != "meshed" || got.Labels[relabelLabel] != "yes" {
			t.Errorf("labels %v", got.Labels)
		}
		if got.Annotations[mesh.AnnotationTrustRootSHA] == "" || got.Annotations[mesh.AnnotationProxyVersion] != "v0.1.0" || got.Annotations[mesh.AnnotationOpaquePorts] != "3306,5432" {
			t.Errorf("annotations %v", got.Annotations)
		}
		if env := envOf(proxy, inject.EnvIdentityLocalName); env != "web.meshed.serviceaccount.identity.linkerd.cluster.local" {
			t.Errorf("identity name %q", env)
		}
		// Called twice for this pod (the relabeler changed it after the
		// injector), and the second call added nothing.
		if n := podRequests() - before; n != 2 {
			t.Errorf("injector called %v times for one pod, want 2 (reinvoked)", n)
		}
		waitEvent(ctx, t, client, "meshed", "web", "Injected")
	})

	t.Run("legacy layout by annotation", func(t *testing.T) {
		got, err := client.CoreV1().Pods("meshed").Create(ctx, pod("legacy", map[string]string{mesh.AnnotationNativeSidecar: "false"}, false), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got.Spec.Containers[0].Name != mesh.ProxyContainerName || got.Spec.Containers[0].Lifecycle == nil || len(got.Spec.InitContainers) != 1 {
			t.Errorf("containers %v, init %v: want the proxy first with a postStart wait", containerNames(got.Spec.Containers), containerNames(got.Spec.InitContainers))
		}
	})

	t.Run("disabled pod", func(t *testing.T) {
		got, err := client.CoreV1().Pods("meshed").Create(ctx, pod("off", map[string]string{mesh.AnnotationInject: mesh.InjectDisabled}, false), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Spec.InitContainers) != 0 || len(got.Spec.Containers) != 1 || got.Labels[mesh.LabelControlPlaneNS] != "" {
			t.Errorf("disabled pod changed: init %v, containers %v", containerNames(got.Spec.InitContainers), containerNames(got.Spec.Containers))
		}
	})

	t.Run("namespace not annotated", func(t *testing.T) {
		got, err := client.CoreV1().Pods("plain").Create(ctx, pod("web", nil, false), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Spec.InitContainers) != 0 || len(got.Spec.Containers) != 1 || len(got.Spec.Volumes) != 0 {
			t.Errorf("pod in a plain namespace changed: init %v, containers %v", containerNames(got.Spec.InitContainers), containerNames(got.Spec.Containers))
		}
	})

	t.Run("host network skipped with an event", func(t *testing.T) {
		got, err := client.CoreV1().Pods("meshed").Create(ctx, pod("agent", nil, true), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Spec.InitContainers) != 0 {
			t.Errorf("hostNetwork pod injected")
		}
		waitEvent(ctx, t, client, "meshed", "agent", "InjectionSkipped")
	})

	t.Run("service gets the namespace's opaque ports", func(t *testing.T) {
		got, err := client.CoreV1().Services("meshed").Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "db"},
			Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 5432}}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got.Annotations[mesh.AnnotationOpaquePorts] != "3306,5432" {
			t.Errorf("service annotations %v", got.Annotations)
		}
	})

	// Close the API server's connections to the webhooks before the
	// servers stop.
	if err := client.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(ctx, "linkerd-proxy-injector-webhook-config", metav1.DeleteOptions{}); err != nil {
		t.Error(err)
	}
}

func waitEvent(ctx context.Context, t *testing.T, client kubernetes.Interface, ns, name, reason string) {
	t.Helper()
	sel := fields.Set{"involvedObject.name": name, "reason": reason}.AsSelector().String()
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		list, err := client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: sel})
		return err == nil && len(list.Items) > 0, nil
	})
	if err != nil {
		t.Errorf("no %s event for %s/%s: %v", reason, ns, name, err)
	}
}

func containerNames(cs []corev1.Container) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return out
}

func envOf(c corev1.Container, name string) string {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}
