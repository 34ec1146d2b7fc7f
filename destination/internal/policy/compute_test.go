package policy

import (
	"testing"
)

// Pieces of expected policies.
const (
	anyNet     = "0.0.0.0/0,::/0"
	catchAll   = "\n  route default/default\n    rule /*"
	probeRoute = "\n  route default/probe\n    rule GET =/ | GET =/live\n    authz default/probe any from " + anyNet
	// defaultOpen is the configured default on a port without probes.
	defaultOpen = "server default/all-unauthenticated detect\n  authz default/all-unauthenticated any from " + anyNet + catchAll
)

func TestDefaultPolicyPrecedence(t *testing.T) {
	pod := func(ann string) string {
		return `
apiVersion: v1
kind: Pod
metadata:
  name: p
  namespace: ns
  annotations: {` + ann + `}
spec:
  containers: [{name: app, image: app}]
`
	}
	ns := func(ann string) string {
		return `
apiVersion: v1
kind: Namespace
metadata:
  name: ns
  annotations: {` + ann + `}
---`
	}
	for _, tc := range []struct {
		name, manifest, want string
	}{
		{"configured default", ns("") + pod(""), `
server default/all-unauthenticated detect
  authz default/all-unauthenticated any from ` + anyNet},
		{"namespace over default", ns(`config.linkerd.io/default-inbound-policy: all-authenticated`) + pod(""), `
server default/all-authenticated detect
  authz default/all-authenticated * from ` + anyNet},
		{"pod over namespace", ns(`config.linkerd.io/default-inbound-policy: deny`) + pod(`config.linkerd.io/default-inbound-policy: cluster-unauthenticated`), `
server default/cluster-unauthenticated detect
  authz default/cluster-unauthenticated any from 10.0.0.0/8`},
		{"cluster-authenticated", ns("") + pod(`config.linkerd.io/default-inbound-policy: cluster-authenticated`), `
server default/cluster-authenticated detect
  authz default/cluster-authenticated * from 10.0.0.0/8`},
		{"deny", ns("") + pod(`config.linkerd.io/default-inbound-policy: deny`), `
server default/deny detect`},
		{"audit", ns("") + pod(`config.linkerd.io/default-inbound-policy: audit`), `
server default/audit detect
  authz default/audit any from ` + anyNet},
		{"malformed pod annotation denies", ns(`config.linkerd.io/default-inbound-policy: all-unauthenticated`) + pod(`config.linkerd.io/default-inbound-policy: allow-all`), `
server default/deny detect`},
		{"malformed namespace annotation denies", ns(`config.linkerd.io/default-inbound-policy: Deny`) + pod(""), `
server default/deny detect`},
		{"require identity on the port", ns("") + pod(`config.linkerd.io/proxy-require-identity-on-inbound-ports: "80,8000-8100"`), `
server default/all-authenticated detect
  authz default/all-authenticated * from ` + anyNet},
		{"require identity, Linkerd's annotation name", ns("") + pod(`config.linkerd.io/default-inbound-policy: cluster-unauthenticated, config.linkerd.io/proxy-require-identity-inbound-ports: "8080"`), `
server default/cluster-authenticated detect
  authz default/cluster-authenticated * from 10.0.0.0/8`},
		{"require identity on other ports", ns("") + pod(`config.linkerd.io/proxy-require-identity-on-inbound-ports: "9000"`), `
server default/all-unauthenticated detect
  authz default/all-unauthenticated any from ` + anyNet},
		{"malformed require-identity list requires it everywhere", ns("") + pod(`config.linkerd.io/proxy-require-identity-on-inbound-ports: "eighty"`), `
server default/all-authenticated detect
  authz default/all-authenticated * from ` + anyNet},
		{"require identity leaves deny alone", ns("") + pod(`config.linkerd.io/default-inbound-policy: deny, config.linkerd.io/proxy-require-identity-on-inbound-ports: "8080"`), `
server default/deny detect`},
		{"opaque from the pod", ns(`config.linkerd.io/opaque-ports: "9000"`) + pod(`config.linkerd.io/opaque-ports: "8080"`), `
server default/all-unauthenticated opaque
  authz default/all-unauthenticated any from ` + anyNet},
		{"opaque from the namespace", ns(`config.linkerd.io/opaque-ports: "8000-9000"`) + pod(""), `
server default/all-unauthenticated opaque
  authz default/all-unauthenticated any from ` + anyNet},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := describe(t, storeOf(t, tc.manifest), "ns", "p", 8080)
			// Every default port has the catch-all route and no probes here.
			want := trim(tc.want) + catchAll
			if got != want {
				t.Errorf("got:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestDefaultOpaquePorts(t *testing.T) {
	s := storeOf(t, basePods+`
---
apiVersion: v1
kind: Pod
metadata: {name: redis, namespace: emoji}
spec:
  containers: [{name: redis, image: redis}]
`)
	expectPolicy(t, s, "emoji", "redis", 6379, `
server default/all-unauthenticated opaque
  authz default/all-unauthenticated any from `+anyNet+``+catchAll)
}

func TestProbePathsOnDefaultPorts(t *testing.T) {
	s := storeOf(t, basePods)
	// The liveness probe names its port; the query is not part of the
	// path; the readiness probe has the default path.
	expectPolicy(t, s, "emoji", "web-1", 9990, `
server default/all-unauthenticated detect
  authz default/all-unauthenticated any from `+anyNet+``+catchAll+probeRoute)
	expectPolicy(t, s, "emoji", "web-1", 8080, defaultOpen)
}

// A gRPC probe is the kubelet's call of grpc.health.v1.Health/Check: it
// stays open to the probe networks, as HTTP probe paths do.
func TestGRPCProbe(t *testing.T) {
	s := storeOf(t, basePods+`
---
apiVersion: v1
kind: Pod
metadata: {name: backend-1, namespace: emoji}
spec:
  containers:
  - name: backend
    image: backend
    ports: [{name: grpc, containerPort: 8080}]
    readinessProbe:
      grpc: {port: 8080}
`)
	expectPolicy(t, s, "emoji", "backend-1", 8080, `
server default/all-unauthenticated detect
  authz default/all-unauthenticated any from `+anyNet+``+catchAll+`
  route default/probe
    rule POST =/grpc.health.v1.Health/Check
    authz default/probe any from `+anyNet)
}

func TestServerSelection(t *testing.T) {
	s := storeOf(t, basePods+"---\n"+readFile("testdata/servers.yaml"))
	// The named port, and the older of two Servers.
	expectPolicy(t, s, "emoji", "web-1", 8080, `
server server/web-http http1`+catchAll)
	// The named port "http" is 7000 on db-1: only the later Server selects
	// 8080 by number, and the external workload Server never takes a pod.
	expectPolicy(t, s, "emoji", "db-1", 7000, defaultOpen)
	expectPolicy(t, s, "emoji", "db-1", 8080, `
server server/web-http-later opaque`+catchAll)
	// accessPolicy audit adds the audit authorization; probes stay open.
	expectPolicy(t, s, "emoji", "web-1", 9990, `
server server/admin grpc
  authz default/audit any from `+anyNet+``+catchAll+probeRoute)
}

func TestServerAuthorization(t *testing.T) {
	s := storeOf(t, basePods+"---\n"+readFile("testdata/serverauthorizations.yaml"))
	// Networks default to the cluster's; the unusable ones are left out.
	expectPolicy(t, s, "emoji", "web-1", 8080, `
server server/web-http detect
  authz serverauthorization/all-meshed * from 10.0.0.0/8
  authz serverauthorization/by-label any from 192.168.0.0/16-192.168.1.0/24-192.168.2.2/32
  authz serverauthorization/by-name bot.other.serviceaccount.identity.linkerd.cluster.local,vote.emoji.serviceaccount.identity.linkerd.cluster.local,web.emoji.serviceaccount.identity.linkerd.cluster.local,*.other.serviceaccount.identity.linkerd.cluster.local from 10.0.0.0/8`+catchAll)
}

func TestAuthorizationPolicy(t *testing.T) {
	s := storeOf(t, basePods+"---\n"+readFile("testdata/authorizationpolicies.yaml"))
	expectPolicy(t, s, "emoji", "web-1", 8080, `
server server/web-http detect
  authz authorizationpolicy/everyone any from `+anyNet+`
  authz authorizationpolicy/mtls bot.other.serviceaccount.identity.linkerd.cluster.local,vote.emoji.serviceaccount.identity.linkerd.cluster.local,*.batch.serviceaccount.identity.linkerd.cluster.local,*.monitoring.serviceaccount.identity.linkerd.cluster.local from 172.16.0.0/12-172.16.9.0/24,fd00::/8
  authz authorizationpolicy/one-sa web.emoji.serviceaccount.identity.linkerd.cluster.local from `+anyNet+`
  authz authorizationpolicy/whole-namespace * from `+anyNet+``+catchAll)
	// A Namespace target covers Servers only: a default port is untouched.
	expectPolicy(t, s, "emoji", "db-1", 7000, defaultOpen)
}

func TestHTTPRoutes(t *testing.T) {
	server := basePods + "---\n" + readFile("testdata/routes-server.yaml")
	routes := "---\n" + readFile("testdata/routes.yaml")
	ops := "authz authorizationpolicy/server-wide ops.emoji.serviceaccount.identity.linkerd.cluster.local from " + anyNet
	// Without routes: the default routes, probes included.
	expectPolicy(t, storeOf(t, server), "emoji", "web-1", 9990, `
server server/admin detect
  `+ops+``+catchAll+probeRoute)
	// With routes: oldest first, each with its own authorizations; no
	// catch-all and no probe route any more.
	expectPolicy(t, storeOf(t, server+routes), "emoji", "web-1", 9990, `
server server/admin detect
  `+ops+`
  route HTTPRoute/admin-ui
    rule /*
  route HTTPRoute/metrics hosts=web.example.com,*.example.com
    rule GET =/metrics | ~/stats/[a-z]+ h:x-debug=1 h:x-user~ad.* q:format=json +headers(set=1,add=0,remove=1)
    authz authorizationpolicy/scrape prometheus.monitoring.serviceaccount.identity.linkerd.cluster.local from `+anyNet)
	// An unusable route that names the Server keeps the catch-all away.
	expectPolicy(t, storeOf(t, server+`
---
apiVersion: policy.linkerd.io/v1beta3
kind: HTTPRoute
metadata: {name: broken, namespace: emoji}
spec:
  parentRefs: [{group: policy.linkerd.io, kind: Server, name: admin}]
  rules: [{matches: [{path: {type: RegularExpression, value: "(["}}]}]
`), "emoji", "web-1", 9990, `
server server/admin detect
  `+ops)
}

func TestBrokenServerDenies(t *testing.T) {
	for _, spec := range []string{
		"podSelector: {}\n  port: 8080\n  proxyProtocol: HTTP/3",
		"podSelector: {}\n  port: 8080\n  accessPolicy: allow",
		"podSelector: {}\n  externalWorkloadSelector: {}\n  port: 8080\n  accessPolicy: all-unauthenticated",
	} {
		s := storeOf(t, serverWith("broken", spec)+`
---
apiVersion: policy.linkerd.io/v1beta1
kind: ServerAuthorization
metadata: {name: all, namespace: emoji}
spec:
  server: {name: broken}
  client: {unauthenticated: true}
`)
		expectPolicy(t, s, "emoji", "web-1", 8080, `
server server/broken detect`+catchAll)
	}
}

func TestUnusableServersSelectNothing(t *testing.T) {
	for _, spec := range []string{
		"podSelector: {matchExpressions: [{key: app, operator: Near}]}\n  port: 8080",
		"podSelector: {}\n  port: 0",
		"podSelector: {}\n  port: {number: 8080}",
		"port: 8080",
	} {
		s := storeOf(t, serverWith("unusable", spec))
		if err := Parse(KindServer, firstOfKind(t, s.Servers), testConfig()); err == nil {
			t.Errorf("%q: no error", spec)
		}
		expectPolicy(t, s, "emoji", "web-1", 8080, defaultOpen)
	}
}

// serverWith is basePods and a Server with the given spec.
func serverWith(name, spec string) string {
	return basePods + `
---
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: ` + name + `, namespace: emoji}
spec:
  ` + spec
}

func TestReadmeExamples(t *testing.T) {
	s := storeOf(t, readFile("testdata/readme-examples.yaml"))
	expectPolicy(t, s, "app", "backend-1", 8080, `
server server/backend-http detect
  authz authorizationpolicy/backend-from-web web.app.serviceaccount.identity.linkerd.cluster.local from `+anyNet+catchAll)
	expectPolicy(t, s, "app", "backend-1", 6060, "server default/deny detect"+catchAll)
}
