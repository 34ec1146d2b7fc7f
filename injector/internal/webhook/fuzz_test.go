package webhook

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
)

// FuzzAdmissionReview feeds arbitrary bodies to the webhook: it must answer
// every one with a v1 AdmissionReview, never panic, and only ever return a
// patch the API server can decode, with the request's uid.
func FuzzAdmissionReview(f *testing.F) {
	// Seeds beyond the committed corpus (testdata/fuzz/FuzzAdmissionReview).
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"version":"v1","kind":"Pod"},"namespace":"meshed","operation":"CREATE","object":{"metadata":{"name":"p"},"spec":{"containers":[{"name":"a"}]}}}}`))
	h, _, _ := newHandler(f)
	h.Events = nil
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		var out admissionv1.AdmissionReview
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil || out.Response == nil {
			t.Fatalf("response is not an AdmissionReview: %v: %s", err, w.Body)
		}
		if w.Code != http.StatusOK {
			if out.Response.Allowed || out.Response.Result == nil {
				t.Fatalf("error %d without a failure status: %s", w.Code, w.Body)
			}
			return
		}
		in, err := DecodeReview(body)
		if err != nil {
			t.Fatalf("answered 200 to a review DecodeReview refuses: %v", err)
		}
		if out.Response.UID != in.Request.UID {
			t.Fatalf("uid %q, want %q", out.Response.UID, in.Request.UID)
		}
		if len(out.Response.Patch) > 0 {
			var ops []map[string]any
			if err := json.Unmarshal(out.Response.Patch, &ops); err != nil || len(ops) == 0 {
				t.Fatalf("patch is not a JSON patch: %v", err)
			}
		}
	})
}
