package admission

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/linkerd-go/linkerd-go/destination/internal/policy"
)

func newHandler(t *testing.T, servers Servers) *Handler {
	t.Helper()
	cluster, err := policy.ParseNetworks("10.0.0.0/8")
	if err != nil {
		t.Fatal(err)
	}
	return &Handler{
		Log:     logr.Discard(),
		Policy:  policy.Config{ControlPlaneNamespace: "linkerd", TrustDomain: "cluster.local", DefaultPolicy: policy.AllUnauthenticated, ClusterNetworks: cluster},
		Servers: servers,
		Metrics: NewMetrics(prometheus.NewRegistry()),
	}
}

// review posts an AdmissionReview of the object in manifest (YAML) and
// returns the HTTP status and the response.
func review(t *testing.T, h http.Handler, op admissionv1.Operation, manifest string) (int, *admissionv1.AdmissionResponse) {
	t.Helper()
	obj, raw := decode(t, manifest)
	gvk := obj.GroupVersionKind()
	in := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID: "1", Kind: metav1.GroupVersionKind{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind},
			Namespace: obj.GetNamespace(), Name: obj.GetName(), Operation: op,
			Object: runtime.RawExtension{Raw: raw},
		},
	}
	body, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	return post(t, h, string(body))
}

// decode reads one object from YAML; raw is its JSON.
func decode(t *testing.T, manifest string) (obj unstructured.Unstructured, raw []byte) {
	t.Helper()
	raw, err := yaml.YAMLToJSON([]byte(manifest))
	if err != nil {
		t.Fatal(err)
	}
	if err := obj.UnmarshalJSON(raw); err != nil {
		t.Fatal(err)
	}
	return obj, raw
}

func post(t *testing.T, h http.Handler, body string) (int, *admissionv1.AdmissionResponse) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		return rec.Code, nil
	}
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.Response == nil {
		t.Fatalf("response %q: %v", rec.Body.String(), err)
	}
	if out.Response.UID != "1" || out.APIVersion != "admission.k8s.io/v1" {
		t.Fatalf("response %+v does not answer the request", out)
	}
	return rec.Code, out.Response
}

func TestJudges(t *testing.T) {
	h := newHandler(t, nil)
	for _, c := range []struct {
		name, manifest string
		op             admissionv1.Operation
		refused        string // a part of the refusal; "" = allowed
	}{{
		name: "a valid Server",
		manifest: `
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: web, namespace: emoji}
spec: {podSelector: {matchLabels: {app: web}}, port: http, proxyProtocol: HTTP/1}`,
	}, {
		name: "a Server with two selectors",
		manifest: `
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: web, namespace: emoji}
spec: {podSelector: {}, externalWorkloadSelector: {}, port: 8080}`,
		refused: "Server emoji/web: both podSelector and externalWorkloadSelector are set",
	}, {
		name: "a Server with a port out of range",
		manifest: `
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: web, namespace: emoji}
spec: {podSelector: {}, port: 70000}`,
		refused: "port 70000",
	}, {
		name: "a Server with an unknown protocol",
		manifest: `
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: web, namespace: emoji}
spec: {podSelector: {}, port: 80, proxyProtocol: HTTP/3}`,
		refused: `proxyProtocol "HTTP/3"`,
	}, {
		name: "a bad CIDR",
		manifest: `
apiVersion: policy.linkerd.io/v1alpha1
kind: NetworkAuthentication
metadata: {name: n, namespace: emoji}
spec: {networks: [{cidr: 10.0.0.0/33}]}`,
		refused: `cidr "10.0.0.0/33"`,
	}, {
		name: "an except outside its network",
		manifest: `
apiVersion: policy.linkerd.io/v1alpha1
kind: NetworkAuthentication
metadata: {name: n, namespace: emoji}
spec: {networks: [{cidr: 10.0.0.0/8, except: [192.168.0.0/16]}]}`,
		refused: `except "192.168.0.0/16" is not inside "10.0.0.0/8"`,
	}, {
		name: "a targetRef of a kind that does not exist",
		manifest: `
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: a, namespace: emoji}
spec:
  targetRef: {group: policy.linkerd.io, kind: Sever, name: web}
  requiredAuthenticationRefs: []`,
		refused: `targetRef: unsupported kind "Sever"`,
	}, {
		name: "an authentication of a kind that does not exist",
		manifest: `
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: a, namespace: emoji}
spec:
  targetRef: {group: policy.linkerd.io, kind: Server, name: web}
  requiredAuthenticationRefs: [{group: policy.linkerd.io, kind: TLSAuthentication, name: x}]`,
		refused: `requiredAuthenticationRefs: unsupported kind "TLSAuthentication"`,
	}, {
		name: "a bad identity",
		manifest: `
apiVersion: policy.linkerd.io/v1alpha1
kind: MeshTLSAuthentication
metadata: {name: m, namespace: emoji}
spec: {identities: [""]}`,
		refused: "empty identity",
	}, {
		name: "a route with a bad regular expression",
		manifest: `
apiVersion: policy.linkerd.io/v1beta3
kind: HTTPRoute
metadata: {name: r, namespace: emoji}
spec:
  parentRefs: [{group: policy.linkerd.io, kind: Server, name: web}]
  rules: [{matches: [{path: {type: RegularExpression, value: "(("}}]}]`,
		refused: "rules[0].matches[0].path",
	}, {
		name: "a deletion is never judged",
		op:   admissionv1.Delete,
		manifest: `
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: web, namespace: emoji}
spec: {podSelector: {}, externalWorkloadSelector: {}, port: 8080}`,
	}, {
		name: "another group's kind is not judged",
		manifest: `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: emoji}
spec: {rules: [{matches: [{path: {type: RegularExpression, value: "(("}}]}]}`,
	}} {
		t.Run(c.name, func(t *testing.T) {
			op := c.op
			if op == "" {
				op = admissionv1.Create
			}
			code, resp := review(t, h, op, c.manifest)
			if code != http.StatusOK {
				t.Fatalf("HTTP %d", code)
			}
			if c.refused == "" {
				if !resp.Allowed {
					t.Fatalf("refused: %s", resp.Result.Message)
				}
				return
			}
			if resp.Allowed {
				t.Fatal("allowed, want refused")
			}
			if resp.Result == nil || !strings.Contains(resp.Result.Message, c.refused) || resp.Result.Reason != metav1.StatusReasonInvalid {
				t.Fatalf("refusal %+v, want a message with %q", resp.Result, c.refused)
			}
			if strings.Contains(resp.Result.Message, "serving its ports") {
				t.Errorf("refusal %q speaks of serving what it refuses", resp.Result.Message)
			}
		})
	}
	if n := testutil.ToFloat64(h.Metrics.reviews.WithLabelValues(policy.KindServer, ResultDenied)); n != 3 {
		t.Errorf("denied Server reviews counted %v, want 3", n)
	}
}

func TestRefusesASecondServerForTheSamePodsAndPort(t *testing.T) {
	// The API server's objects: numbers decode as integers there.
	srv, _ := decode(t, `
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: web-http, namespace: emoji}
spec: {podSelector: {matchLabels: {app: web}}, port: 8080}`)
	list := []unstructured.Unstructured{srv}
	var asked string
	h := newHandler(t, func(_ context.Context, ns string) ([]unstructured.Unstructured, error) {
		asked = ns
		return list, nil
	})
	_, resp := review(t, h, admissionv1.Create, `
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: web-again, namespace: emoji}
spec: {port: 8080, podSelector: {matchLabels: {app: web}}}`)
	if resp.Allowed || !strings.Contains(resp.Result.Message, `Server "web-http" already selects the same pods and port`) || asked != "emoji" {
		t.Fatalf("a duplicate Server: %+v (listed %q)", resp.Result, asked)
	}
	// Updating the existing one itself, another port, other pods: allowed.
	for _, m := range []string{
		`{apiVersion: policy.linkerd.io/v1beta3, kind: Server, metadata: {name: web-http, namespace: emoji}, spec: {podSelector: {matchLabels: {app: web}}, port: 8080}}`,
		`{apiVersion: policy.linkerd.io/v1beta3, kind: Server, metadata: {name: web-admin, namespace: emoji}, spec: {podSelector: {matchLabels: {app: web}}, port: 9090}}`,
		`{apiVersion: policy.linkerd.io/v1beta3, kind: Server, metadata: {name: api, namespace: emoji}, spec: {podSelector: {matchLabels: {app: api}}, port: 8080}}`,
	} {
		if _, resp := review(t, h, admissionv1.Update, m); !resp.Allowed {
			t.Errorf("%s refused: %s", m, resp.Result.Message)
		}
	}
	// A failed list is an error (the failurePolicy decides), not a verdict.
	h.Servers = func(context.Context, string) ([]unstructured.Unstructured, error) { return nil, errors.New("API down") }
	if code, _ := review(t, h, admissionv1.Create, `{apiVersion: policy.linkerd.io/v1beta3, kind: Server, metadata: {name: x, namespace: emoji}, spec: {podSelector: {}, port: 1}}`); code != http.StatusInternalServerError {
		t.Errorf("with the API down: HTTP %d, want 500", code)
	}
}

func TestRefusesBadRequests(t *testing.T) {
	h := newHandler(t, nil)
	for _, c := range []struct {
		name   string
		method string
		ctype  string
		body   string
		want   int
	}{
		{"GET", http.MethodGet, "application/json", "", http.StatusMethodNotAllowed},
		{"not JSON", http.MethodPost, "text/plain", "{}", http.StatusUnsupportedMediaType},
		{"garbage", http.MethodPost, "application/json", "{", http.StatusBadRequest},
		{"two reviews", http.MethodPost, "application/json", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"1"}} {}`, http.StatusBadRequest},
		{"another kind", http.MethodPost, "application/json", `{"apiVersion":"v1","kind":"Pod"}`, http.StatusBadRequest},
		{"no uid", http.MethodPost, "application/json", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{}}`, http.StatusBadRequest},
		{"no object", http.MethodPost, "application/json", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"1","kind":{"group":"policy.linkerd.io","kind":"Server"},"operation":"CREATE"}}`, http.StatusBadRequest},
		{"too large", http.MethodPost, "application/json", `{"x":"` + strings.Repeat("a", MaxRequestBytes) + `"}`, http.StatusRequestEntityTooLarge},
	} {
		req := httptest.NewRequest(c.method, "/", strings.NewReader(c.body))
		req.Header.Set("Content-Type", c.ctype)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != c.want {
			t.Errorf("%s: HTTP %d, want %d (%s)", c.name, rec.Code, c.want, rec.Body)
		}
	}
}
