package app

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"go.uber.org/goleak"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/linkerd-go/linkerd-go/injector/internal/config"
	"github.com/linkerd-go/linkerd-go/injector/internal/webhook"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func testConfig(t testing.TB, certFile, keyFile string) Config {
	t.Helper()
	inj, err := config.Load("../inject/testdata/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return Config{
		Injector:        inj,
		WebhookAddr:     "127.0.0.1:0",
		AdminAddr:       "127.0.0.1:0",
		CertFile:        certFile,
		KeyFile:         keyFile,
		MaxRequestBytes: webhook.DefaultMaxRequestBytes,
		MaxInFlight:     4,
		ShutdownTimeout: 5 * time.Second,
		Version:         "test",
	}
}

func podReview(t testing.TB, ns, name string) []byte {
	t.Helper()
	pod := corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:1"}}},
	}
	raw, _ := json.Marshal(pod)
	b, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID: "u1", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}, Namespace: ns,
			Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: raw},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// runServer runs a Server until the test ends, and waits until it is ready.
func runServer(t *testing.T, client kubernetes.Interface, certFile, keyFile string) *App {
	t.Helper()
	srv, err := New(testConfig(t, certFile, keyFile), Deps{Kube: client, Log: logr.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	<-srv.Ready()
	return srv
}

func TestServer(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	pki := newTestPKI(t)
	pki.write(t, certFile, keyFile)

	client := fake.NewClientset(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: "meshed", Annotations: map[string]string{"linkerd.io/inject": "enabled"},
	}})
	srv := runServer(t, client, certFile, keyFile)
	admin := "http://" + srv.AdminAddr().String()
	ctx := context.Background()

	if code, _ := get(t, admin+"/ready"); code != http.StatusOK {
		t.Errorf("/ready: %d", code)
	}
	if code, _ := get(t, admin+"/live"); code != http.StatusOK {
		t.Errorf("/live: %d", code)
	}

	events, err := client.CoreV1().Events("meshed").Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer events.Stop()

	url := "https://" + srv.WebhookAddr().String() + "/"
	admit := func(c *http.Client) (*admissionv1.AdmissionResponse, error) {
		resp, err := c.Post(url, "application/json", bytes.NewReader(podReview(t, "meshed", "web")))
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		var out admissionv1.AdmissionReview
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			return nil, err
		}
		return out.Response, nil
	}
	resp, err := admit(pki.client())
	if err != nil {
		t.Fatal(err)
	}
	if !resp.Allowed || len(resp.Patch) == 0 {
		t.Fatalf("not injected: %+v", resp)
	}
	select {
	case ev := <-events.ResultChan():
		e := ev.Object.(*corev1.Event)
		if e.Reason != webhook.EventInjected || e.InvolvedObject.Name != "web" {
			t.Errorf("event %s on %s, want Injected on web", e.Reason, e.InvolvedObject.Name)
		}
	case <-time.After(30 * time.Second):
		t.Error("no event recorded")
	}

	// A new certificate from another CA is served from the next handshake.
	next := newTestPKI(t)
	next.write(t, certFile, keyFile)
	if _, err := admit(next.client()); err != nil {
		t.Errorf("after rotation, the new CA's client: %v", err)
	}
	if _, err := admit(pki.client()); err == nil {
		t.Error("after rotation, the old CA's client still connects")
	}
	// A broken pair is refused and the current one kept.
	broken := newTestPKI(t)
	broken.keyPEM = next.keyPEM
	broken.write(t, certFile, keyFile)
	if _, err := admit(next.client()); err != nil {
		t.Errorf("after a broken rotation, the current certificate: %v", err)
	}

	code, body := get(t, admin+"/metrics")
	for _, want := range []string{
		`proxy_inject_admission_responses_total{kind="pod",reason="",result="injected"} 3`,
		`proxy_inject_certificate_reloads_total{result="ok"} 1`,
		`proxy_inject_certificate_reloads_total{result="error"} 1`,
		"go_goroutines",
	} {
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("/metrics (%d) lacks %q", code, want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	c := testConfig(t, "a", "b")
	c.MaxInFlight, c.ShutdownTimeout, c.CertFile = 0, 0, ""
	err := c.Validate()
	for _, want := range []string{"--max-in-flight", "--shutdown-timeout", "--tls-cert-file"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %s", err, want)
		}
	}
	if _, err := New(testConfig(t, "/nonexistent.crt", "/nonexistent.key"), Deps{Kube: fake.NewClientset(), Log: logr.Discard()}); err == nil {
		t.Error("started without a certificate")
	}
}
