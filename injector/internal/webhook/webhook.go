// Package webhook serves the mutating admission webhook: it reads
// AdmissionReviews, asks package inject for a patch, records Events and
// metrics, and answers.
package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"

	"github.com/linkerd-go/linkerd-go/injector/internal/inject"
)

// DefaultMaxRequestBytes bounds the AdmissionReviews the webhook reads. The
// API server stores objects of at most ~1.5 MiB; a review carries one.
const DefaultMaxRequestBytes = 3 << 20

// Event reasons.
const (
	EventInjected         = "Injected"
	EventInjectionSkipped = "InjectionSkipped"
	// EventInvalidAnnotation reports bad override values on a pod that was
	// injected with the defaults in their place.
	EventInvalidAnnotation = "InvalidConfigAnnotation"
)

// NamespaceAnnotations returns a namespace's annotations.
type NamespaceAnnotations interface {
	Annotations(ctx context.Context, namespace string) (map[string]string, error)
}

// Handler is the webhook's HTTP handler.
type Handler struct {
	Log        logr.Logger
	Injector   *inject.Injector
	Namespaces NamespaceAnnotations
	// Events records Injected / InjectionSkipped; nil records none.
	Events  record.EventRecorder
	Metrics *Metrics
	// MaxRequestBytes bounds the request body; 0 means DefaultMaxRequestBytes.
	MaxRequestBytes int64
}

// statusError is a failure to answer with an HTTP status.
type statusError struct {
	code  int
	class string // the metrics reason
	msg   string
}

func (e *statusError) Error() string { return e.msg }

func badRequest(format string, args ...any) *statusError {
	return &statusError{code: http.StatusBadRequest, class: "bad-request", msg: fmt.Sprintf(format, args...)}
}

// ServeHTTP answers one AdmissionReview.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	review, kind, err := h.read(w, r)
	h.Metrics.requests.WithLabelValues(kind).Inc()
	if err == nil {
		var resp *admissionv1.AdmissionResponse
		if resp, err = h.review(r.Context(), review.Request, kind); err == nil {
			writeReview(w, http.StatusOK, resp)
			h.Metrics.duration.WithLabelValues(kind).Observe(time.Since(start).Seconds())
			return
		}
	}
	var se *statusError
	if !errors.As(err, &se) {
		se = &statusError{code: http.StatusInternalServerError, class: "internal", msg: err.Error()}
	}
	h.Log.Info("admission request failed", "code", se.code, "err", se.msg)
	h.Metrics.responses.WithLabelValues(kind, resultError, se.class).Inc()
	h.Metrics.duration.WithLabelValues(kind).Observe(time.Since(start).Seconds())
	var uid string
	if review != nil && review.Request != nil {
		uid = string(review.Request.UID)
	}
	writeReview(w, se.code, &admissionv1.AdmissionResponse{
		UID:     types.UID(uid),
		Allowed: false,
		Result: &metav1.Status{
			Status:  metav1.StatusFailure,
			Code:    int32(se.code),
			Reason:  metav1.StatusReason(http.StatusText(se.code)),
			Message: "linkerd proxy injector: " + se.msg,
		},
	})
}

// read checks the HTTP request and decodes its AdmissionReview. kind is
// the metrics label of the request's resource.
func (h *Handler) read(w http.ResponseWriter, r *http.Request) (*admissionv1.AdmissionReview, string, error) {
	kind := "unknown"
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return nil, kind, &statusError{code: http.StatusMethodNotAllowed, class: "bad-request", msg: fmt.Sprintf("method %s, want POST", r.Method)}
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return nil, kind, &statusError{code: http.StatusUnsupportedMediaType, class: "bad-request", msg: fmt.Sprintf("content type %q, want application/json", r.Header.Get("Content-Type"))}
	}
	limit := h.MaxRequestBytes
	if limit <= 0 {
		limit = DefaultMaxRequestBytes
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, kind, &statusError{code: http.StatusRequestEntityTooLarge, class: "too-large", msg: fmt.Sprintf("request body larger than %d bytes", limit)}
		}
		return nil, kind, badRequest("reading request body: %v", err)
	}
	review, err := DecodeReview(body)
	if review != nil && review.Request != nil {
		kind = kindLabel(review.Request.Kind)
	}
	return review, kind, err
}

// DecodeReview decodes an admission.k8s.io/v1 AdmissionReview request. The
// review it returns may be partial when err is set (to echo the uid).
func DecodeReview(body []byte) (*admissionv1.AdmissionReview, error) {
	var review admissionv1.AdmissionReview
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&review); err != nil {
		return nil, badRequest("request body is not an AdmissionReview: %v", err)
	}
	if dec.More() {
		return nil, badRequest("request body has data after the AdmissionReview")
	}
	if review.APIVersion != admissionv1.SchemeGroupVersion.String() || review.Kind != "AdmissionReview" {
		return &review, badRequest("got apiVersion %q kind %q, want %s AdmissionReview", truncate(review.APIVersion), truncate(review.Kind), admissionv1.SchemeGroupVersion)
	}
	if review.Request == nil {
		return &review, badRequest("AdmissionReview has no request")
	}
	if review.Request.UID == "" {
		return &review, badRequest("AdmissionReview request has no uid")
	}
	if review.Response != nil {
		return &review, badRequest("AdmissionReview request carries a response")
	}
	return &review, nil
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

func kindLabel(gvk metav1.GroupVersionKind) string {
	switch {
	case gvk.Group == "" && gvk.Kind == "Pod":
		return "pod"
	case gvk.Group == "" && gvk.Kind == "Service":
		return "service"
	}
	return "other"
}

// review decides one admission request.
func (h *Handler) review(ctx context.Context, req *admissionv1.AdmissionRequest, kind string) (*admissionv1.AdmissionResponse, error) {
	resp := &admissionv1.AdmissionResponse{UID: req.UID, Allowed: true}
	if req.Operation != admissionv1.Create || req.SubResource != "" || (kind != "pod" && kind != "service") {
		h.Metrics.responses.WithLabelValues(kind, resultUnchanged, "").Inc()
		return resp, nil
	}
	if len(req.Object.Raw) == 0 {
		return nil, badRequest("AdmissionReview request has no object")
	}
	ns := req.Namespace
	if ns == "" {
		return nil, badRequest("AdmissionReview request for a %s has no namespace", kind)
	}
	nsAnnotations, err := h.Namespaces.Annotations(ctx, ns)
	if err != nil {
		// An HTTP error, not a denial: the webhook's failurePolicy decides.
		return nil, &statusError{code: http.StatusInternalServerError, class: "namespace-lookup", msg: fmt.Sprintf("looking up namespace %q: %v", ns, err)}
	}
	if kind == "service" {
		var svc corev1.Service
		if err := json.Unmarshal(req.Object.Raw, &svc); err != nil {
			return nil, badRequest("object is not a Service: %v", err)
		}
		if err := setPatch(resp, inject.InjectService(&svc, nsAnnotations)); err != nil {
			return nil, err
		}
		result := resultUnchanged
		if resp.Patch != nil {
			result = resultPatched
		}
		h.Metrics.responses.WithLabelValues(kind, result, "").Inc()
		return resp, nil
	}

	var pod corev1.Pod
	if err := json.Unmarshal(req.Object.Raw, &pod); err != nil {
		return nil, badRequest("object is not a Pod: %v", err)
	}
	res := h.Injector.Inject(inject.Request{Pod: &pod, Namespace: ns, NamespaceAnnotations: nsAnnotations})
	if err := setPatch(resp, res.Patch); err != nil {
		return nil, err
	}
	for _, p := range res.Problems {
		h.Metrics.invalid.WithLabelValues(p.Key).Inc()
		resp.Warnings = append(resp.Warnings, p.String())
	}
	log := h.Log.WithValues("namespace", ns, "pod", podName(&pod))
	if res.Injected() {
		h.Metrics.responses.WithLabelValues(kind, resultInjected, "").Inc()
		resp.AuditAnnotations = map[string]string{"injection": "injected"}
		log.V(1).Info("injected", "nativeSidecar", res.NativeSidecar, "problems", len(res.Problems))
	} else {
		h.Metrics.responses.WithLabelValues(kind, resultSkipped, string(res.Skip)).Inc()
		resp.AuditAnnotations = map[string]string{"injection": "skipped: " + string(res.Skip)}
		log.V(1).Info("not injected", "reason", res.Skip, "message", res.Message)
	}
	if req.DryRun == nil || !*req.DryRun {
		h.recordEvents(log, ns, &pod, &res)
	}
	return resp, nil
}

func setPatch(resp *admissionv1.AdmissionResponse, p inject.Patch) error {
	if len(p) == 0 {
		return nil
	}
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encoding patch: %w", err)
	}
	pt := admissionv1.PatchTypeJSONPatch
	resp.Patch, resp.PatchType = b, &pt
	return nil
}

// recordEvents records the outcome on the pod's controller (a pod being
// created has no uid yet and often no name), or on the pod when it has a
// name and no controller.
func (h *Handler) recordEvents(log logr.Logger, ns string, pod *corev1.Pod, res *inject.Result) {
	if h.Events == nil {
		return
	}
	ref := eventTarget(ns, pod)
	if ref == nil {
		log.V(1).Info("no object to record the event on (a pod with neither name nor controller)")
		return
	}
	who := "pod " + podName(pod)
	switch {
	case res.Injected():
		h.Events.Event(ref, corev1.EventTypeNormal, EventInjected, "Linkerd sidecar proxy injected into "+who)
		if len(res.Problems) > 0 {
			msgs := make([]string, len(res.Problems))
			for i, p := range res.Problems {
				msgs[i] = p.String()
			}
			h.Events.Event(ref, corev1.EventTypeWarning, EventInvalidAnnotation, who+": "+strings.Join(msgs, "; "))
		}
	case res.Skip.Reported():
		h.Events.Event(ref, corev1.EventTypeWarning, EventInjectionSkipped, "Linkerd sidecar proxy not injected into "+who+": "+res.Message)
	}
}

func eventTarget(ns string, pod *corev1.Pod) *corev1.ObjectReference {
	if c := metav1.GetControllerOfNoCopy(pod); c != nil {
		return &corev1.ObjectReference{APIVersion: c.APIVersion, Kind: c.Kind, Name: c.Name, UID: c.UID, Namespace: ns}
	}
	if pod.Name != "" {
		return &corev1.ObjectReference{APIVersion: "v1", Kind: "Pod", Name: pod.Name, UID: pod.UID, Namespace: ns}
	}
	return nil
}

func podName(pod *corev1.Pod) string {
	if pod.Name != "" {
		return pod.Name
	}
	return pod.GenerateName + "…"
}

func writeReview(w http.ResponseWriter, code int, resp *admissionv1.AdmissionResponse) {
	out := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: admissionv1.SchemeGroupVersion.String(), Kind: "AdmissionReview"},
		Response: resp,
	}
	b, err := json.Marshal(out)
	if err != nil {
		http.Error(w, "encoding response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}
