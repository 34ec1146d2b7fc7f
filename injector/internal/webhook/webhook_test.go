package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/record"

	"github.com/linkerd-go/linkerd-go/api/mesh"
	"github.com/linkerd-go/linkerd-go/injector/internal/config"
	"github.com/linkerd-go/linkerd-go/injector/internal/inject"
)

type staticNamespaces map[string]map[string]string

func (s staticNamespaces) Annotations(_ context.Context, name string) (map[string]string, error) {
	a, ok := s[name]
	if !ok {
		return nil, errors.New("namespace not found")
	}
	return a, nil
}

func testConfig(t testing.TB) *config.Config {
	t.Helper()
	data, err := os.ReadFile("../inject/testdata/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := config.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return &c
}

func newHandler(t testing.TB) (*Handler, *record.FakeRecorder, *prometheus.Registry) {
	reg := prometheus.NewRegistry()
	rec := record.NewFakeRecorder(100)
	return &Handler{
		Log:      logr.Discard(),
		Injector: inject.New(testConfig(t), "linkerd/proxy-injector test"),
		Namespaces: staticNamespaces{
			"meshed":   {mesh.AnnotationInject: mesh.InjectEnabled, mesh.AnnotationOpaquePorts: "3306"},
			"unmeshed": nil,
		},
		Events:  rec,
		Metrics: NewMetrics(reg),
	}, rec, reg
}

func podReview(t testing.TB, ns string, pod *corev1.Pod, dryRun bool) []byte {
	t.Helper()
	raw, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	return review(t, &admissionv1.AdmissionRequest{
		UID:       "0f0e0d0c-0000-0000-0000-000000000001",
		Kind:      metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
		Resource:  metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
		Namespace: ns,
		Operation: admissionv1.Create,
		Object:    runtime.RawExtension{Raw: raw},
		DryRun:    &dryRun,
	})
}

func review(t testing.TB, req *admissionv1.AdmissionRequest) []byte {
	t.Helper()
	b, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request:  req,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func post(t testing.TB, h http.Handler, body []byte) (int, *admissionv1.AdmissionResponse) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	return do(t, h, req)
}

func do(t testing.TB, h http.Handler, req *http.Request) (int, *admissionv1.AdmissionResponse) {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
		t.Fatalf("response is not an AdmissionReview: %v: %s", err, w.Body)
	}
	if out.APIVersion != "admission.k8s.io/v1" || out.Kind != "AdmissionReview" || out.Response == nil {
		t.Fatalf("response is not a v1 AdmissionReview with a response: %s", w.Body)
	}
	return w.Code, out.Response
}

func appPod(name string, annotations map[string]string) *corev1.Pod {
	return &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:1"}}},
	}
}

func TestInjectsPod(t *testing.T) {
	h, rec, reg := newHandler(t)
	code, resp := post(t, h, podReview(t, "meshed", appPod("web", nil), false))
	if code != http.StatusOK || !resp.Allowed || resp.UID != "0f0e0d0c-0000-0000-0000-000000000001" {
		t.Fatalf("code %d, response %+v", code, resp)
	}
	if resp.PatchType == nil || *resp.PatchType != admissionv1.PatchTypeJSONPatch || len(resp.Patch) == 0 {
		t.Fatalf("no JSON patch in %+v", resp)
	}
	if got := <-rec.Events; !strings.HasPrefix(got, "Normal Injected ") {
		t.Errorf("event %q, want Normal Injected", got)
	}
	if v := testutil.ToFloat64(h.Metrics.responses.WithLabelValues("pod", "injected", "")); v != 1 {
		t.Errorf("injected responses = %v, want 1", v)
	}
	if n, err := testutil.GatherAndCount(reg, "proxy_inject_admission_duration_seconds"); err != nil || n != 1 {
		t.Errorf("duration series = %d, %v", n, err)
	}
}

func TestSkips(t *testing.T) {
	for _, tc := range []struct {
		name   string
		ns     string
		pod    *corev1.Pod
		reason inject.SkipReason
		event  string // "" for none
	}{
		{"not annotated", "unmeshed", appPod("web", nil), inject.SkipNotEnabled, ""},
		{"disabled", "meshed", appPod("web", map[string]string{mesh.AnnotationInject: "disabled"}), inject.SkipNotEnabled, ""},
		{"bad traffic override", "meshed", appPod("web", map[string]string{mesh.AnnotationSkipInboundPorts: "0"}), inject.SkipInvalidConfigAnnotation, "Warning InjectionSkipped "},
		{"host network", "meshed", func() *corev1.Pod { p := appPod("web", nil); p.Spec.HostNetwork = true; return p }(), inject.SkipHostNetwork, "Warning InjectionSkipped "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, rec, _ := newHandler(t)
			code, resp := post(t, h, podReview(t, tc.ns, tc.pod, false))
			if code != http.StatusOK || !resp.Allowed || len(resp.Patch) != 0 {
				t.Fatalf("code %d, response %+v", code, resp)
			}
			if got := resp.AuditAnnotations["injection"]; got != "skipped: "+string(tc.reason) {
				t.Errorf("audit annotation %q, want reason %s", got, tc.reason)
			}
			if v := testutil.ToFloat64(h.Metrics.responses.WithLabelValues("pod", "skipped", string(tc.reason))); v != 1 {
				t.Errorf("skipped responses = %v, want 1", v)
			}
			select {
			case got := <-rec.Events:
				if tc.event == "" || !strings.HasPrefix(got, tc.event) {
					t.Errorf("event %q, want %q", got, tc.event)
				}
			default:
				if tc.event != "" {
					t.Errorf("no event, want %q", tc.event)
				}
			}
		})
	}
}

func TestBadValuesWarnAndRecord(t *testing.T) {
	h, rec, _ := newHandler(t)
	_, resp := post(t, h, podReview(t, "meshed", appPod("web", map[string]string{mesh.AnnotationProxyLogFormat: "xml"}), false))
	if len(resp.Patch) == 0 || len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], mesh.AnnotationProxyLogFormat) {
		t.Fatalf("want a patch and one warning naming the annotation, got %+v", resp)
	}
	<-rec.Events // Injected
	if got := <-rec.Events; !strings.HasPrefix(got, "Warning "+EventInvalidAnnotation) {
		t.Errorf("event %q, want a warning about the annotation", got)
	}
	if v := testutil.ToFloat64(h.Metrics.invalid.WithLabelValues(mesh.AnnotationProxyLogFormat)); v != 1 {
		t.Errorf("invalid annotations = %v, want 1", v)
	}
}

func TestDryRunRecordsNoEvent(t *testing.T) {
	h, rec, _ := newHandler(t)
	_, resp := post(t, h, podReview(t, "meshed", appPod("web", nil), true))
	if len(resp.Patch) == 0 {
		t.Fatal("dry run not injected")
	}
	select {
	case e := <-rec.Events:
		t.Errorf("dry run recorded %q", e)
	default:
	}
}

func TestEventTarget(t *testing.T) {
	pod := appPod("", nil)
	pod.GenerateName = "web-abc-"
	if ref := eventTarget("ns", pod); ref != nil {
		t.Errorf("pod without name or controller: target %+v, want none", ref)
	}
	yes := true
	pod.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-abc", UID: "u1", Controller: &yes}}
	if ref := eventTarget("ns", pod); ref == nil || ref.Kind != "ReplicaSet" || ref.Name != "web-abc" || ref.Namespace != "ns" {
		t.Errorf("target %+v, want the ReplicaSet", ref)
	}
}

func TestService(t *testing.T) {
	h, _, _ := newHandler(t)
	svc := &corev1.Service{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"}, ObjectMeta: metav1.ObjectMeta{Name: "db"}}
	raw, _ := json.Marshal(svc)
	req := &admissionv1.AdmissionRequest{
		UID: "u", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Service"}, Namespace: "meshed",
		Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: raw},
	}
	_, resp := post(t, h, review(t, req))
	want := `[{"op":"add","path":"/metadata/annotations","value":{"config.linkerd.io/opaque-ports":"3306"}}]`
	if string(resp.Patch) != want {
		t.Errorf("patch %s, want %s", resp.Patch, want)
	}
	req.Namespace = "unmeshed"
	if _, resp := post(t, h, review(t, req)); len(resp.Patch) != 0 {
		t.Errorf("service in a namespace without opaque ports patched: %s", resp.Patch)
	}
}

func TestOtherRequestsAllowedUnchanged(t *testing.T) {
	h, _, _ := newHandler(t)
	raw, _ := json.Marshal(appPod("web", nil))
	for _, req := range []*admissionv1.AdmissionRequest{
		{UID: "u", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}, Namespace: "meshed", Operation: admissionv1.Update, Object: runtime.RawExtension{Raw: raw}},
		{UID: "u", Kind: metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, Namespace: "meshed", Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: raw}},
		{UID: "u", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}, Namespace: "meshed", Operation: admissionv1.Create, SubResource: "ephemeralcontainers", Object: runtime.RawExtension{Raw: raw}},
	} {
		if code, resp := post(t, h, review(t, req)); code != http.StatusOK || !resp.Allowed || len(resp.Patch) != 0 {
			t.Errorf("%s %v: code %d, response %+v", req.Operation, req.Kind, code, resp)
		}
	}
}

func TestMalformed(t *testing.T) {
	h, _, _ := newHandler(t)
	h.MaxRequestBytes = 1 << 16
	raw, _ := json.Marshal(appPod("web", nil))
	okReq := func() *admissionv1.AdmissionRequest {
		return &admissionv1.AdmissionRequest{UID: "u1", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}, Namespace: "meshed", Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: raw}}
	}
	for _, tc := range []struct {
		name     string
		body     []byte
		code     int
		uid      string
		contains string
	}{
		{"not JSON", []byte("hello"), 400, "", "not an AdmissionReview"},
		{"empty", nil, 400, "", "not an AdmissionReview"},
		{"trailing data", append(review(t, okReq()), []byte(" {}")...), 400, "", "after the AdmissionReview"},
		{"wrong version", []byte(`{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"u1"}}`), 400, "u1", "want admission.k8s.io/v1"},
		{"no request", []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`), 400, "", "no request"},
		{"no uid", []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{}}`), 400, "", "no uid"},
		{"wrong types", []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":7}}`), 400, "", "not an AdmissionReview"},
		{"no object", review(t, func() *admissionv1.AdmissionRequest { r := okReq(); r.Object.Raw = nil; return r }()), 400, "u1", "no object"},
		{"not a pod", review(t, func() *admissionv1.AdmissionRequest { r := okReq(); r.Object.Raw = []byte(`{"spec":[]}`); return r }()), 400, "u1", "not a Pod"},
		{"no namespace", review(t, func() *admissionv1.AdmissionRequest { r := okReq(); r.Namespace = ""; return r }()), 400, "u1", "no namespace"},
		{"unknown namespace", review(t, func() *admissionv1.AdmissionRequest { r := okReq(); r.Namespace = "gone"; return r }()), 500, "u1", "looking up namespace"},
		{"too large", append([]byte(`{"x":"`), bytes.Repeat([]byte("a"), 1<<17)...), 413, "", "larger than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, resp := post(t, h, tc.body)
			if code != tc.code || resp.Allowed || string(resp.UID) != tc.uid || resp.Result == nil || int(resp.Result.Code) != tc.code || !strings.Contains(resp.Result.Message, tc.contains) {
				t.Errorf("code %d, response %+v; want code %d, uid %q, message containing %q", code, resp, tc.code, tc.uid, tc.contains)
			}
		})
	}
	t.Run("method", func(t *testing.T) {
		if code, _ := do(t, h, httptest.NewRequest(http.MethodGet, "/", nil)); code != http.StatusMethodNotAllowed {
			t.Errorf("GET: code %d", code)
		}
	})
	t.Run("content type", func(t *testing.T) {
		req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(review(t, okReq())))
		req.Header.Set("Content-Type", "text/plain")
		if code, _ := do(t, h, req); code != http.StatusUnsupportedMediaType {
			t.Errorf("text/plain: code %d", code)
		}
	})
	if v := testutil.ToFloat64(h.Metrics.responses.WithLabelValues("unknown", "error", "bad-request")); v == 0 {
		t.Error("bad requests not counted")
	}
}
