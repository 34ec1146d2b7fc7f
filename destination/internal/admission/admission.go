// Package admission is the policy validator: a validating admission webhook
// that refuses policy.linkerd.io objects which cannot work as written (a
// Server with two selectors, a bad CIDR, an except outside its network, a
// reference to a kind that does not exist, a second Server for the same pods
// and port), with the reason in the refusal, so that kubectl apply says what
// is wrong instead of the object silently doing nothing. It judges with the
// same parser the policy index uses.
package admission

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/linkerd-go/linkerd-go/destination/internal/policy"
)

// MaxRequestBytes bounds the AdmissionReviews read. The API server stores
// objects of at most ~1.5 MiB; an update review carries two.
const MaxRequestBytes = 4 << 20

// Group is the API group whose objects are judged.
const Group = "policy.linkerd.io"

// kinds are the kinds judged, by their Kind.
var kinds = map[string]bool{
	policy.KindServer: true, policy.KindServerAuthorization: true, policy.KindAuthorizationPolicy: true,
	policy.KindMeshTLSAuthentication: true, policy.KindNetworkAuthentication: true, policy.KindHTTPRoute: true,
}

// Servers lists the Servers of a namespace, for the conflict check. It
// should read the API server, not a cache: two Servers created at once must
// not both pass.
type Servers func(ctx context.Context, namespace string) ([]unstructured.Unstructured, error)

// Handler answers admission reviews.
type Handler struct {
	Log    logr.Logger
	Policy policy.Config
	// Servers, when set, enables the check that no two Servers select the
	// same pods and port.
	Servers Servers
	Metrics *Metrics
}

// Metrics counts the reviews.
type Metrics struct {
	reviews *prometheus.CounterVec
}

// Results of a review, as the metric labels them.
const (
	ResultAllowed = "allowed"
	ResultDenied  = "denied"
	ResultError   = "error"
)

// NewMetrics registers the validator's metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{reviews: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "destination_policy_admission_reviews_total",
		Help: "Admission reviews of policy objects, by kind and result (allowed, denied, error: a review that could not be judged).",
	}, []string{"kind", "result"})}
	reg.MustRegister(m.reviews)
	return m
}

// httpError is a review that cannot be judged, answered with an HTTP
// status; the webhook's failurePolicy then decides.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

// ServeHTTP answers one AdmissionReview.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	review, err := read(w, r)
	kind := "unknown"
	if review != nil && review.Request != nil && review.Request.Kind.Group == Group && kinds[review.Request.Kind.Kind] {
		kind = review.Request.Kind.Kind
	}
	var resp *admissionv1.AdmissionResponse
	if err == nil {
		resp, err = h.judge(r.Context(), review.Request)
	}
	if err != nil {
		code := http.StatusInternalServerError
		var he *httpError
		if errors.As(err, &he) {
			code = he.code
		}
		h.Log.Info("admission review failed", "code", code, "err", err.Error())
		h.Metrics.reviews.WithLabelValues(kind, ResultError).Inc()
		http.Error(w, "linkerd policy validator: "+err.Error(), code)
		return
	}
	result := ResultAllowed
	if !resp.Allowed {
		result = ResultDenied
		req := review.Request
		h.Log.Info("refused a policy object", "kind", kind, "namespace", req.Namespace, "name", req.Name, "operation", req.Operation, "reason", resp.Result.Message)
	}
	h.Metrics.reviews.WithLabelValues(kind, result).Inc()
	out := admissionv1.AdmissionReview{TypeMeta: review.TypeMeta, Response: resp}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(&out)
}

// read checks the HTTP request and decodes its AdmissionReview.
func read(w http.ResponseWriter, r *http.Request) (*admissionv1.AdmissionReview, error) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return nil, &httpError{http.StatusMethodNotAllowed, fmt.Sprintf("method %s, want POST", r.Method)}
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return nil, &httpError{http.StatusUnsupportedMediaType, "content type must be application/json"}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxRequestBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &httpError{http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", MaxRequestBytes)}
		}
		return nil, &httpError{http.StatusBadRequest, "reading the request body: " + err.Error()}
	}
	var review admissionv1.AdmissionReview
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&review); err != nil || dec.More() {
		return nil, &httpError{http.StatusBadRequest, "the request body is not one AdmissionReview"}
	}
	switch {
	case review.APIVersion != admissionv1.SchemeGroupVersion.String() || review.Kind != "AdmissionReview":
		return nil, &httpError{http.StatusBadRequest, "want an " + admissionv1.SchemeGroupVersion.String() + " AdmissionReview"}
	case review.Request == nil || review.Request.UID == "":
		return nil, &httpError{http.StatusBadRequest, "the AdmissionReview has no request or no uid"}
	}
	return &review, nil
}

// judge decides one request. Objects of other kinds, deletions and
// subresources (status) are allowed: only what a user writes is judged.
func (h *Handler) judge(ctx context.Context, req *admissionv1.AdmissionRequest) (*admissionv1.AdmissionResponse, error) {
	allow := &admissionv1.AdmissionResponse{UID: req.UID, Allowed: true}
	kind := req.Kind.Kind
	if req.Kind.Group != Group || !kinds[kind] || req.SubResource != "" ||
		(req.Operation != admissionv1.Create && req.Operation != admissionv1.Update) {
		return allow, nil
	}
	if len(req.Object.Raw) == 0 {
		return nil, &httpError{http.StatusBadRequest, "the AdmissionReview request has no object"}
	}
	obj := &unstructured.Unstructured{}
	if err := json.Unmarshal(req.Object.Raw, &obj.Object); err != nil {
		return nil, &httpError{http.StatusBadRequest, "the object is not JSON: " + err.Error()}
	}
	if obj.GetNamespace() == "" {
		obj.SetNamespace(req.Namespace)
	}
	reason := ""
	if err := policy.Parse(kind, obj, h.Policy); err != nil {
		reason = err.Error()
	} else if kind == policy.KindServer && h.Servers != nil {
		other, err := h.conflict(ctx, obj)
		if err != nil {
			return nil, err
		}
		if other != "" {
			reason = fmt.Sprintf("Server %q already selects the same pods and port", other)
		}
	}
	if reason == "" {
		return allow, nil
	}
	return &admissionv1.AdmissionResponse{UID: req.UID, Allowed: false, Result: &metav1.Status{
		Status:  metav1.StatusFailure,
		Code:    http.StatusUnprocessableEntity,
		Reason:  metav1.StatusReasonInvalid,
		Message: fmt.Sprintf("%s %s/%s: %s", kind, obj.GetNamespace(), obj.GetName(), reason),
	}}, nil
}

// conflict returns the name of another Server in srv's namespace with the
// same port and the same selector, or "". Servers whose selectors merely
// overlap are allowed, as in Linkerd: the oldest one wins for the pods both
// select.
func (h *Handler) conflict(ctx context.Context, srv *unstructured.Unstructured) (string, error) {
	list, err := h.Servers(ctx, srv.GetNamespace())
	if err != nil {
		return "", fmt.Errorf("listing the Servers of %s: %w", srv.GetNamespace(), err)
	}
	mine := selection(srv)
	for i := range list {
		o := &list[i]
		if o.GetName() != srv.GetName() && bytes.Equal(selection(o), mine) {
			return o.GetName(), nil
		}
	}
	return "", nil
}

// selection is what a Server selects, as written: its selectors and its
// port, in JSON (which sorts keys and prints numbers alike whether they were
// decoded as integers or floats).
func selection(srv *unstructured.Unstructured) []byte {
	spec, _ := srv.Object["spec"].(map[string]any)
	b, _ := json.Marshal([]any{spec["podSelector"], spec["externalWorkloadSelector"], spec["port"]})
	return b
}
