package webhook

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// typicalPod is a Deployment's pod with two containers, ports, env,
// probes, resources and a few labels and annotations.
func typicalPod() *corev1.Pod {
	yes := true
	c := func(name string, port int32) corev1.Container {
		return corev1.Container{
			Name: name, Image: "registry.example/" + name + ":1.2.3",
			Ports:          []corev1.ContainerPort{{Name: "http", ContainerPort: port}},
			Env:            []corev1.EnvVar{{Name: "MODE", Value: "production"}, {Name: "LOG", Value: "info"}},
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz"}}},
		}
	}
	return &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			GenerateName:    "web-5d8f9c7b4-",
			Labels:          map[string]string{"app": "web", "pod-template-hash": "5d8f9c7b4", "version": "v1"},
			Annotations:     map[string]string{"prometheus.io/scrape": "true", "config.linkerd.io/proxy-cpu-limit": "1"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-5d8f9c7b4", UID: "u", Controller: &yes}},
		},
		Spec: corev1.PodSpec{
			ServiceAccountName: "web",
			Containers:         []corev1.Container{c("web", 8080), c("cache", 6379)},
		},
	}
}

// BenchmarkAdmission measures one admission of a typical pod through the
// handler (decode, decide, patch, encode, metrics), and reports the 99th
// percentile latency. Run on one core:
//
//	go test -run XXX -bench Admission -cpu 1 -benchtime 20000x ./internal/webhook/
func BenchmarkAdmission(b *testing.B) {
	h, _, _ := newHandler(b)
	h.Events = nil
	body := podReview(b, "meshed", typicalPod(), false)
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		start := time.Now()
		h.ServeHTTP(w, req)
		lat = append(lat, time.Since(start))
		if w.Code != http.StatusOK {
			b.Fatalf("code %d", w.Code)
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	}
}
