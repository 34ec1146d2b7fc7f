//go:build integration

package crds

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/linkerd-go/linkerd-go/tools/testkit/kubebins"
	"github.com/linkerd-go/linkerd-go/tools/testkit/kubetest"
)

const ns = "emojivoto"

var crdResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// object parses one manifest.
func object(t *testing.T, manifest string) *unstructured.Unstructured {
	t.Helper()
	obj := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(manifest), &obj.Object); err != nil {
		t.Fatalf("bad test manifest: %v\n%s", err, manifest)
	}
	return obj
}

// resourceOf maps an object to its resource, from the chart's own CRDs.
func resourceOf(t *testing.T, obj *unstructured.Unstructured) schema.GroupVersionResource {
	t.Helper()
	gvk := obj.GroupVersionKind()
	for name, w := range wantCRDs {
		if w.group == gvk.Group && w.kind == gvk.Kind {
			return schema.GroupVersionResource{Group: w.group, Version: gvk.Version, Resource: strings.TrimSuffix(name, "."+w.group)}
		}
	}
	t.Fatalf("no CRD for %s", gvk)
	return schema.GroupVersionResource{}
}

// validObjects are typical objects, as Linkerd's documentation writes them.
var validObjects = []string{`
apiVersion: linkerd.io/v1alpha2
kind: ServiceProfile
metadata: {name: web-svc.emojivoto.svc.cluster.local}
spec:
  routes:
  - name: GET /api/list
    condition: {method: GET, pathRegex: /api/list}
    isRetryable: true
    timeout: 300ms
    responseClasses:
    - condition: {status: {min: 500, max: 599}}
      isFailure: true
  retryBudget: {retryRatio: 0.2, minRetriesPerSecond: 10, ttl: 10s}
  dstOverrides:
  - {authority: web-svc-v2.emojivoto.svc.cluster.local:80, weight: 500m}
  opaquePorts: ["3306"]
`, `
apiVersion: linkerd.io/v1alpha1
kind: ServiceProfile
metadata: {name: emoji-svc.emojivoto.svc.cluster.local}
spec:
  routes:
  - name: ListAll
    condition: {method: POST, pathRegex: /emojivoto\.v1\.EmojiService/ListAll}
`, `
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: emoji-grpc}
spec:
  podSelector:
    matchLabels: {app: emoji-svc}
  port: grpc
  proxyProtocol: gRPC
`, `
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: web-http}
spec:
  podSelector:
    matchExpressions:
    - {key: app, operator: In, values: [web-svc]}
  port: 8080
  proxyProtocol: HTTP/1
  accessPolicy: all-authenticated
`, `
apiVersion: policy.linkerd.io/v1beta2
kind: Server
metadata: {name: vm-metrics}
spec:
  externalWorkloadSelector:
    matchLabels: {app: legacy-vm}
  port: 9090
`, `
apiVersion: policy.linkerd.io/v1beta1
kind: Server
metadata: {name: voting-grpc}
spec:
  podSelector:
    matchLabels: {app: voting-svc}
  port: 8080
  proxyProtocol: opaque
`, `
apiVersion: policy.linkerd.io/v1beta1
kind: ServerAuthorization
metadata: {name: emoji-grpc}
spec:
  server: {name: emoji-grpc}
  client:
    meshTLS:
      serviceAccounts:
      - name: web
`, `
apiVersion: policy.linkerd.io/v1beta1
kind: ServerAuthorization
metadata: {name: admin-everyone}
spec:
  server:
    selector:
      matchLabels: {emojivoto/api: admin}
  client:
    unauthenticated: true
    networks:
    - {cidr: 10.0.0.0/8, except: [10.96.0.0/12]}
`, `
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: emoji-grpc}
spec:
  targetRef: {group: policy.linkerd.io, kind: Server, name: emoji-grpc}
  requiredAuthenticationRefs:
  - {group: policy.linkerd.io, kind: MeshTLSAuthentication, name: web-apps}
  - {group: policy.linkerd.io, kind: NetworkAuthentication, name: cluster-network}
`, `
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: namespace-web}
spec:
  targetRef: {kind: Namespace, name: emojivoto}
  requiredAuthenticationRefs:
  - {kind: ServiceAccount, name: web}
`, `
apiVersion: policy.linkerd.io/v1alpha1
kind: MeshTLSAuthentication
metadata: {name: web-apps}
spec:
  identities:
  - web.emojivoto.serviceaccount.identity.linkerd.cluster.local
  - "*.linkerd-viz.serviceaccount.identity.linkerd.cluster.local"
`, `
apiVersion: policy.linkerd.io/v1alpha1
kind: MeshTLSAuthentication
metadata: {name: web-sa}
spec:
  identityRefs:
  - {kind: ServiceAccount, name: web}
  - {kind: Namespace, name: linkerd-viz}
`, `
apiVersion: policy.linkerd.io/v1alpha1
kind: NetworkAuthentication
metadata: {name: cluster-network}
spec:
  networks:
  - {cidr: 10.0.0.0/8}
  - {cidr: "fd00::/8", except: ["fd00::1"]}
`, `
apiVersion: policy.linkerd.io/v1beta3
kind: HTTPRoute
metadata: {name: authors-get}
spec:
  parentRefs:
  - {name: authors, kind: Service, group: core, port: 7001}
  hostnames: [authors.booksapp.svc.cluster.local]
  rules:
  - matches:
    - path: {type: PathPrefix, value: /authors/}
      method: GET
      headers:
      - {name: x-canary, value: "true"}
    backendRefs:
    - {name: authors-v2, port: 7001, weight: 10}
    - {name: authors, port: 7001, weight: 90}
    timeouts: {request: 10s, backendRequest: 2s}
  - filters:
    - type: RequestHeaderModifier
      requestHeaderModifier:
        set: [{name: l5d-dst-override, value: authors.booksapp.svc.cluster.local:7001}]
        remove: [x-debug]
    - type: RequestRedirect
      requestRedirect: {scheme: https, statusCode: 301}
`, `
apiVersion: policy.linkerd.io/v1beta1
kind: HTTPRoute
metadata: {name: authors-probe}
spec:
  parentRefs:
  - {name: authors-server, kind: Server, group: policy.linkerd.io}
  rules:
  - matches:
    - path: {value: /ping, type: Exact}
      method: GET
`}

// invalidObjects are clearly wrong objects and a part of the message the
// API server must refuse each with: the path of the wrong field.
var invalidObjects = []struct {
	name, manifest string
	want           []string
}{{
	name: "ServiceProfile route without condition",
	manifest: `
apiVersion: linkerd.io/v1alpha2
kind: ServiceProfile
metadata: {name: bad-1.emojivoto.svc.cluster.local}
spec:
  routes:
  - name: GET /
`,
	want: []string{"spec.routes[0].condition", "Required value"},
}, {
	name: "ServiceProfile status out of range",
	manifest: `
apiVersion: linkerd.io/v1alpha2
kind: ServiceProfile
metadata: {name: bad-2.emojivoto.svc.cluster.local}
spec:
  routes:
  - name: GET /
    condition: {method: GET}
    responseClasses:
    - condition: {status: {min: 700}}
`,
	want: []string{"spec.routes[0].responseClasses[0].condition.status.min", "599"},
}, {
	name: "Server without port",
	manifest: `
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: bad-1}
spec:
  podSelector: {matchLabels: {app: web}}
`,
	want: []string{"spec.port", "Required value"},
}, {
	name: "Server port out of range",
	manifest: `
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: bad-2}
spec:
  podSelector: {matchLabels: {app: web}}
  port: 70000
`,
	want: []string{"spec.port", "65535"},
}, {
	name: "Server port name too long",
	manifest: `
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: bad-3}
spec:
  podSelector: {matchLabels: {app: web}}
  port: a-very-long-port-name
`,
	want: []string{"spec.port", "15"},
}, {
	name: "Server unknown protocol",
	manifest: `
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: bad-4}
spec:
  podSelector: {matchLabels: {app: web}}
  port: 80
  proxyProtocol: HTTP/3
`,
	want: []string{"spec.proxyProtocol", "Unsupported value", `"HTTP/3"`},
}, {
	name: "Server unknown access policy",
	manifest: `
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: bad-5}
spec:
  podSelector: {matchLabels: {app: web}}
  port: 80
  accessPolicy: allow
`,
	want: []string{"spec.accessPolicy", "Unsupported value"},
}, {
	name: "Server with both selectors",
	manifest: `
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: bad-6}
spec:
  podSelector: {matchLabels: {app: web}}
  externalWorkloadSelector: {matchLabels: {app: web}}
  port: 80
`,
	want: []string{"spec", "exactly one of podSelector or externalWorkloadSelector"},
}, {
	name: "Server with no selector",
	manifest: `
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: bad-7}
spec:
  port: 80
`,
	want: []string{"spec", "exactly one of podSelector or externalWorkloadSelector"},
}, {
	name: "Server bad selector operator",
	manifest: `
apiVersion: policy.linkerd.io/v1beta1
kind: Server
metadata: {name: bad-8}
spec:
  podSelector:
    matchExpressions: [{key: app, operator: Equals, values: [web]}]
  port: 80
`,
	want: []string{"spec.podSelector.matchExpressions[0].operator", "Unsupported value"},
}, {
	name: "ServerAuthorization without client",
	manifest: `
apiVersion: policy.linkerd.io/v1beta1
kind: ServerAuthorization
metadata: {name: bad-1}
spec:
  server: {name: web-http}
`,
	want: []string{"spec.client", "Required value"},
}, {
	name: "ServerAuthorization with name and selector",
	manifest: `
apiVersion: policy.linkerd.io/v1beta1
kind: ServerAuthorization
metadata: {name: bad-2}
spec:
  server: {name: web-http, selector: {matchLabels: {app: web}}}
  client: {unauthenticated: true}
`,
	want: []string{"spec.server", "exactly one of name or selector"},
}, {
	name: "ServerAuthorization bad identity",
	manifest: `
apiVersion: policy.linkerd.io/v1beta1
kind: ServerAuthorization
metadata: {name: bad-3}
spec:
  server: {name: web-http}
  client:
    meshTLS: {identities: [Web_App]}
`,
	want: []string{"spec.client.meshTLS.identities[0]"},
}, {
	name: "AuthorizationPolicy without target name",
	manifest: `
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: bad-1}
spec:
  targetRef: {group: policy.linkerd.io, kind: Server}
  requiredAuthenticationRefs: []
`,
	want: []string{"spec.targetRef.name", "Required value"},
}, {
	name: "AuthorizationPolicy without authentications",
	manifest: `
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: bad-2}
spec:
  targetRef: {group: policy.linkerd.io, kind: Server, name: web-http}
`,
	want: []string{"spec.requiredAuthenticationRefs", "Required value"},
}, {
	name: "MeshTLSAuthentication with neither identities nor refs",
	manifest: `
apiVersion: policy.linkerd.io/v1alpha1
kind: MeshTLSAuthentication
metadata: {name: bad-1}
spec: {}
`,
	want: []string{"spec", "exactly one of identities or identityRefs"},
}, {
	name: "MeshTLSAuthentication bad identity",
	manifest: `
apiVersion: policy.linkerd.io/v1alpha1
kind: MeshTLSAuthentication
metadata: {name: bad-2}
spec:
  identities: ["web emojivoto"]
`,
	want: []string{"spec.identities[0]"},
}, {
	name: "MeshTLSAuthentication ref without kind",
	manifest: `
apiVersion: policy.linkerd.io/v1alpha1
kind: MeshTLSAuthentication
metadata: {name: bad-3}
spec:
  identityRefs: [{name: web}]
`,
	want: []string{"spec.identityRefs[0].kind", "Required value"},
}, {
	name: "NetworkAuthentication without networks",
	manifest: `
apiVersion: policy.linkerd.io/v1alpha1
kind: NetworkAuthentication
metadata: {name: bad-1}
spec: {}
`,
	want: []string{"spec.networks", "Required value"},
}, {
	name: "NetworkAuthentication network without cidr",
	manifest: `
apiVersion: policy.linkerd.io/v1alpha1
kind: NetworkAuthentication
metadata: {name: bad-2}
spec:
  networks: [{except: [10.0.0.1]}]
`,
	want: []string{"spec.networks[0].cidr", "Required value"},
}, {
	name: "HTTPRoute unknown path match type",
	manifest: `
apiVersion: policy.linkerd.io/v1beta3
kind: HTTPRoute
metadata: {name: bad-1}
spec:
  parentRefs: [{name: web-http, kind: Server}]
  rules:
  - matches: [{path: {type: Prefix, value: /}}]
`,
	want: []string{"spec.rules[0].matches[0].path.type", "Unsupported value"},
}, {
	name: "HTTPRoute parent port out of range",
	manifest: `
apiVersion: policy.linkerd.io/v1beta3
kind: HTTPRoute
metadata: {name: bad-2}
spec:
  parentRefs: [{name: web-svc, kind: Service, group: core, port: 0}]
`,
	want: []string{"spec.parentRefs[0].port"},
}, {
	name: "HTTPRoute filter without its settings",
	manifest: `
apiVersion: policy.linkerd.io/v1beta3
kind: HTTPRoute
metadata: {name: bad-3}
spec:
  parentRefs: [{name: web-http, kind: Server}]
  rules:
  - filters: [{type: RequestRedirect}]
`,
	want: []string{"spec.rules[0].filters[0]", "requestRedirect must be set exactly when type is RequestRedirect"},
}, {
	name: "HTTPRoute bad timeout",
	manifest: `
apiVersion: policy.linkerd.io/v1beta3
kind: HTTPRoute
metadata: {name: bad-4}
spec:
  parentRefs: [{name: web-http, kind: Server}]
  rules:
  - timeouts: {request: ten seconds}
`,
	want: []string{"spec.rules[0].timeouts.request"},
}, {
	name: "HTTPRoute parent without name",
	manifest: `
apiVersion: policy.linkerd.io/v1beta2
kind: HTTPRoute
metadata: {name: bad-5}
spec:
  parentRefs: [{kind: Server}]
`,
	want: []string{"spec.parentRefs[0].name", "Required value"},
}}

// TestAgainstAPIServer installs the chart's templates/ folder into a real
// API server the way the other components' tests do (kubetest's CRDDirs)
// and checks what the server makes of the CRDs.
func TestAgainstAPIServer(t *testing.T) {
	dir, err := filepath.Abs(templatesDir())
	if err != nil {
		t.Fatal(err)
	}
	env := kubetest.Start(t, kubetest.Options{CRDDirs: []string{dir}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	kube := kubernetes.NewForConfigOrDie(env.Config)
	warned := &warnings{}
	cfg := rest.CopyConfig(env.Config)
	cfg.WarningHandler = warned
	dyn := dynamic.NewForConfigOrDie(cfg)
	if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	t.Run("established with printer columns", func(t *testing.T) {
		checkServedCRDs(ctx, t, dyn)
	})

	t.Run("valid objects are accepted", func(t *testing.T) {
		for _, m := range validObjects {
			obj := object(t, m)
			if _, err := dyn.Resource(resourceOf(t, obj)).Namespace(ns).Create(ctx, obj, metav1.CreateOptions{}); err != nil {
				t.Errorf("create %s %s: %v", obj.GetAPIVersion(), obj.GetName(), err)
			}
		}
	})

	t.Run("invalid objects are refused", func(t *testing.T) {
		for _, c := range invalidObjects {
			obj := object(t, c.manifest)
			_, err := dyn.Resource(resourceOf(t, obj)).Namespace(ns).Create(ctx, obj, metav1.CreateOptions{})
			if !apierrors.IsInvalid(err) {
				t.Errorf("%s: err = %v, want Invalid", c.name, err)
				continue
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%s: error %q does not mention %q", c.name, err, w)
				}
			}
		}
	})

	t.Run("deprecated versions warn", func(t *testing.T) {
		for _, c := range []struct{ manifest, want string }{{`
apiVersion: policy.linkerd.io/v1alpha1
kind: Server
metadata: {name: old-server}
spec:
  podSelector: {matchLabels: {app: web}}
  port: 80
`, "policy.linkerd.io/v1alpha1 Server is deprecated; use policy.linkerd.io/v1beta3 Server"}, {`
apiVersion: policy.linkerd.io/v1alpha1
kind: ServerAuthorization
metadata: {name: old-authz}
spec:
  server: {name: old-server}
  client: {unauthenticated: true}
`, "policy.linkerd.io/v1alpha1 ServerAuthorization is deprecated; use policy.linkerd.io/v1beta1 ServerAuthorization"}} {
			warned.reset()
			obj := object(t, c.manifest)
			if _, err := dyn.Resource(resourceOf(t, obj)).Namespace(ns).Create(ctx, obj, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			if got := warned.get(); !slices.Contains(got, c.want) {
				t.Errorf("create %s %s: warnings %q, want %q", obj.GetAPIVersion(), obj.GetKind(), got, c.want)
			}
		}
	})

	t.Run("defaults", func(t *testing.T) {
		servers := dyn.Resource(schema.GroupVersionResource{Group: "policy.linkerd.io", Version: "v1beta3", Resource: "servers"}).Namespace(ns)
		got, err := servers.Get(ctx, "emoji-grpc", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if p, _, _ := unstructured.NestedString(got.Object, "spec", "accessPolicy"); p != "deny" {
			t.Errorf("accessPolicy = %q, want the default deny", p)
		}
		got, err = servers.Get(ctx, "vm-metrics", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if p, _, _ := unstructured.NestedString(got.Object, "spec", "proxyProtocol"); p != "unknown" {
			t.Errorf("proxyProtocol = %q, want the default unknown", p)
		}
		routes := dyn.Resource(schema.GroupVersionResource{Group: "policy.linkerd.io", Version: "v1beta3", Resource: "httproutes"}).Namespace(ns)
		route := object(t, `
apiVersion: policy.linkerd.io/v1beta3
kind: HTTPRoute
metadata: {name: catch-all}
spec:
  parentRefs: [{name: web-http, kind: Server}]
`)
		got, err = routes.Create(ctx, route, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		rules, _, _ := unstructured.NestedSlice(got.Object, "spec", "rules")
		b, _ := json.Marshal(rules)
		if string(b) != `[{"matches":[{"path":{"type":"PathPrefix","value":"/"}}]}]` {
			t.Errorf("default rules = %s, want one PathPrefix / match", b)
		}
		parents, _, _ := unstructured.NestedSlice(got.Object, "spec", "parentRefs")
		if g, _ := parents[0].(map[string]any)["group"].(string); g != "policy.linkerd.io" {
			t.Errorf("parentRefs[0].group = %q, want the default policy.linkerd.io", g)
		}
	})

	t.Run("served versions read each other's objects", func(t *testing.T) {
		for _, c := range []struct{ resource, name, from, to string }{
			{"servers", "emoji-grpc", "v1beta3", "v1beta1"},
			{"servers", "voting-grpc", "v1beta1", "v1beta3"},
			{"servers", "voting-grpc", "v1beta1", "v1alpha1"},
			{"serverauthorizations", "emoji-grpc", "v1beta1", "v1alpha1"},
			{"httproutes", "authors-get", "v1beta3", "v1alpha1"},
			{"httproutes", "authors-probe", "v1beta1", "v1beta3"},
			{"serviceprofiles", "emoji-svc.emojivoto.svc.cluster.local", "v1alpha1", "v1alpha2"},
		} {
			group := "policy.linkerd.io"
			if c.resource == "serviceprofiles" {
				group = "linkerd.io"
			}
			got, err := dyn.Resource(schema.GroupVersionResource{Group: group, Version: c.to, Resource: c.resource}).Namespace(ns).Get(ctx, c.name, metav1.GetOptions{})
			if err != nil {
				t.Errorf("%s %s (created as %s) read as %s: %v", c.resource, c.name, c.from, c.to, err)
				continue
			}
			if got.GetAPIVersion() != group+"/"+c.to {
				t.Errorf("%s %s read as %s: apiVersion %s", c.resource, c.name, c.to, got.GetAPIVersion())
			}
			if spec, _, _ := unstructured.NestedMap(got.Object, "spec"); len(spec) == 0 {
				t.Errorf("%s %s read as %s: empty spec", c.resource, c.name, c.to)
			}
		}
	})

	t.Run("kubectl get shows the columns", func(t *testing.T) {
		for _, c := range []struct {
			path string
			// want maps a column to its cell in the row of object name.
			name string
			want map[string]any
		}{
			{"/apis/policy.linkerd.io/v1beta3/namespaces/" + ns + "/servers", "web-http", map[string]any{
				"Port": "8080", "Protocol": "HTTP/1", "Access Policy": "all-authenticated",
				"Pod Selector": `{"matchExpressions":[{"key":"app","operator":"In","values":["web-svc"]}]}`,
			}},
			{"/apis/policy.linkerd.io/v1beta1/namespaces/" + ns + "/serverauthorizations", "emoji-grpc", map[string]any{"Server": "emoji-grpc"}},
			{"/apis/policy.linkerd.io/v1alpha1/namespaces/" + ns + "/authorizationpolicies", "emoji-grpc", map[string]any{
				"Target Kind": "Server", "Target Name": "emoji-grpc",
				"Authentications": `[{"group":"policy.linkerd.io","kind":"MeshTLSAuthentication","name":"web-apps"},{"group":"policy.linkerd.io","kind":"NetworkAuthentication","name":"cluster-network"}]`,
			}},
			{"/apis/policy.linkerd.io/v1alpha1/namespaces/" + ns + "/meshtlsauthentications", "web-apps", map[string]any{
				"Identities": `["web.emojivoto.serviceaccount.identity.linkerd.cluster.local","*.linkerd-viz.serviceaccount.identity.linkerd.cluster.local"]`,
			}},
			{"/apis/policy.linkerd.io/v1alpha1/namespaces/" + ns + "/networkauthentications", "cluster-network", map[string]any{"Networks": `[{"cidr":"10.0.0.0/8"},{"cidr":"fd00::/8","except":["fd00::1"]}]`}},
			{"/apis/policy.linkerd.io/v1beta3/namespaces/" + ns + "/httproutes", "authors-get", map[string]any{
				"Parents": `[{"group":"core","kind":"Service","name":"authors","port":7001}]`, "Hostnames": `["authors.booksapp.svc.cluster.local"]`,
			}},
			{"/apis/linkerd.io/v1alpha2/namespaces/" + ns + "/serviceprofiles", "web-svc.emojivoto.svc.cluster.local", map[string]any{
				"Retry Ratio": 0.2, "Opaque Ports": `["3306"]`,
			}},
		} {
			table := getTable(ctx, t, kube.Discovery().RESTClient(), c.path)
			if table == nil {
				continue
			}
			cols := map[string]int{}
			for i, d := range table.ColumnDefinitions {
				cols[d.Name] = i
			}
			var row []any
			for _, r := range table.Rows {
				if len(r.Cells) > 0 && r.Cells[0] == c.name {
					row = r.Cells
				}
			}
			if row == nil {
				t.Errorf("%s: no row for %s", c.path, c.name)
				continue
			}
			for col, want := range c.want {
				i, ok := cols[col]
				if !ok {
					t.Errorf("%s: no column %q in %v", c.path, col, cols)
					continue
				}
				if row[i] != want {
					t.Errorf("%s %s: column %q = %#v, want %#v", c.path, c.name, col, row[i], want)
				}
			}
		}
	})
}

// warnings records the API server's warnings (deprecated versions).
type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, text)
}

func (w *warnings) reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = nil
}

func (w *warnings) get() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.msgs)
}

// getTable asks for a list the way kubectl get does: as a server-side Table.
func getTable(ctx context.Context, t *testing.T, client rest.Interface, path string) *metav1.Table {
	t.Helper()
	raw, err := client.Get().AbsPath(path).SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").Do(ctx).Raw()
	if err != nil {
		t.Errorf("GET %s as a table: %v", path, err)
		return nil
	}
	table := &metav1.Table{}
	if err := json.Unmarshal(raw, table); err != nil {
		t.Errorf("GET %s: not a table: %v", path, err)
		return nil
	}
	return table
}

// checkServedCRDs checks that every CRD of the chart is Established, its
// names accepted, and that the server reports the printer columns.
func checkServedCRDs(ctx context.Context, t *testing.T, dyn dynamic.Interface) {
	t.Helper()
	for name, w := range wantCRDs {
		crd, err := dyn.Resource(crdResource).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Errorf("get CRD %s: %v", name, err)
			continue
		}
		for _, cond := range []string{"Established", "NamesAccepted"} {
			if !hasCondition(crd, cond) {
				t.Errorf("%s is not %s", name, cond)
			}
		}
		for _, v := range versionsOf(crd) {
			columns := columnNames(v)
			if len(columns) == 0 {
				t.Errorf("%s %v: the server reports no printer columns", name, v["name"])
			}
			if v["name"] == w.storage && !slices.Equal(columns, w.columns) {
				t.Errorf("%s %v: printer columns %v, want %v", name, v["name"], columns, w.columns)
			}
		}
	}
}

func hasCondition(crd *unstructured.Unstructured, typ string) bool {
	conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
	for _, c := range conds {
		m, ok := c.(map[string]any)
		if ok && m["type"] == typ && m["status"] == "True" {
			return true
		}
	}
	return false
}

// TestHelmInstall installs, upgrades and uninstalls the chart with the real
// helm binary against a real API server, as the README has users do it.
func TestHelmInstall(t *testing.T) {
	bins, err := kubebins.Find()
	if err != nil {
		t.Fatal(err)
	}
	chart, err := filepath.Abs(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	env := kubetest.Start(t, kubetest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dyn := dynamic.NewForConfigOrDie(env.Config)

	tmp := t.TempDir()
	kubeconfig, err := env.AdminKubeconfig()
	if err != nil {
		t.Fatal(err)
	}
	helm := func(args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, filepath.Join(bins, "helm"), append(args, "--kubeconfig", kubeconfig)...)
		cmd.Env = append(os.Environ(),
			"HELM_CACHE_HOME="+filepath.Join(tmp, "cache"),
			"HELM_CONFIG_HOME="+filepath.Join(tmp, "config"),
			"HELM_DATA_HOME="+filepath.Join(tmp, "data"),
		)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}

	helm("install", "linkerd-crds", chart, "-n", "linkerd", "--create-namespace", "--wait")
	waitEstablished(ctx, t, dyn)
	checkServedCRDs(ctx, t, dyn)
	// The anchors of the plain YAML files reach the server expanded.
	crd, err := dyn.Resource(crdResource).Get(ctx, "servers.policy.linkerd.io", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range versionsOf(crd) {
		if _, ok, _ := unstructured.NestedMap(schemaOf(v), "properties", "spec", "properties", "port"); !ok {
			t.Errorf("servers %v: spec.port missing from the installed schema", v["name"])
		}
	}

	helm("upgrade", "linkerd-crds", chart, "-n", "linkerd", "--wait")
	// An upgrade that touches a CRD makes the API server rebuild its storage.
	// Deleting the CRD before that storage serves again can leave it
	// Terminating for minutes: the API server's CRD finalizer fails to list
	// the instances ("storage is (re)initializing") and may not retry until
	// its informer resyncs. Users do not uninstall within a second of an
	// upgrade; the test waits as they would for the resources to serve.
	waitServing(ctx, t, dyn)
	if out := helm("status", "linkerd-crds", "-n", "linkerd"); !strings.Contains(out, "REVISION: 2") || !strings.Contains(out, "STATUS: deployed") {
		t.Errorf("after upgrade, helm status says:\n%s", out)
	}

	helm("uninstall", "linkerd-crds", "-n", "linkerd", "--wait")
	list, err := dyn.Resource(crdResource).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, crd := range list.Items {
		if _, ours := wantCRDs[crd.GetName()]; ours && crd.GetDeletionTimestamp() == nil {
			t.Errorf("%s is still installed after helm uninstall", crd.GetName())
		}
	}
}

// waitServing waits until every custom resource of the chart answers a full
// list from the API server's watch cache. Such a list is refused with 429
// while the cache is rebuilt after a CRD change; any other error fails.
func waitServing(ctx context.Context, t *testing.T, dyn dynamic.Interface) {
	t.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	refused := 0
	defer func() { t.Logf("custom resources serve again after %d refused lists", refused) }()
	for name, w := range wantCRDs {
		gvr := schema.GroupVersionResource{Group: w.group, Version: w.storage, Resource: w.plural}
		for {
			_, err := dyn.Resource(gvr).List(ctx, metav1.ListOptions{})
			if err == nil {
				break
			}
			if !apierrors.IsTooManyRequests(err) && !apierrors.IsServiceUnavailable(err) {
				t.Fatalf("list %s: %v", name, err)
			}
			refused++
			select {
			case <-ctx.Done():
				t.Fatalf("%s does not serve its resources: %v (last: %v)", name, ctx.Err(), err)
			case <-tick.C:
			}
		}
	}
}

// waitEstablished waits until every CRD of the chart is Established (helm
// --wait does not wait for CRDs).
func waitEstablished(ctx context.Context, t *testing.T, dyn dynamic.Interface) {
	t.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		pending := 0
		for name := range wantCRDs {
			crd, err := dyn.Resource(crdResource).Get(ctx, name, metav1.GetOptions{})
			if err != nil || !hasCondition(crd, "Established") {
				pending++
			}
		}
		if pending == 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%d CRDs not Established: %v", pending, ctx.Err())
		case <-tick.C:
		}
	}
}
