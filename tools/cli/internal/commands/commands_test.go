package commands

import (
	"bytes"
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/linkerd-go/linkerd-go/tools/cli/check"
	"github.com/linkerd-go/linkerd-go/tools/cli/internal/clitest"
	"github.com/linkerd-go/linkerd-go/tools/cli/internal/render"
	"github.com/linkerd-go/linkerd-go/tools/cli/pki"
	"github.com/linkerd-go/linkerd-go/tools/cli/stat"
)

const chartTestdata = "../../../../deploy/charts/linkerd-control-plane/testdata/"

// docByKindName finds a rendered object.
func docByKindName(t *testing.T, manifest, kind, name string) map[string]any {
	t.Helper()
	for _, doc := range strings.Split(manifest, "\n---\n") {
		var m map[string]any
		if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
			t.Fatal(err)
		}
		md, _ := m["metadata"].(map[string]any)
		if m["kind"] == kind && md["name"] == name {
			return m
		}
	}
	t.Fatalf("no %s %s", kind, name)
	return nil
}

// TestInstallGeneratesCertificates: without certificates install makes a
// root and an issuer that chains to it, valid for a year, and renders
// them into the ConfigMap and the issuer Secret.
func TestInstallGeneratesCertificates(t *testing.T) {
	code, out, stderr := run("install")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.HasPrefix(out, "---\n# Source: linkerd install\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: linkerd\n") {
		t.Errorf("the output does not start with the Namespace:\n%.300s", out)
	}
	cm := docByKindName(t, out, "ConfigMap", "linkerd-identity-trust-roots")
	anchors := cm["data"].(map[string]any)["ca-bundle.crt"].(string)
	sec := docByKindName(t, out, "Secret", "linkerd-identity-issuer")
	data := sec["data"].(map[string]any)
	crt, key := b64(t, data["crt.pem"]), b64(t, data["key.pem"])
	if err := pki.CheckIssuer([]byte(anchors), crt, key, time.Now()); err != nil {
		t.Fatal(err)
	}
	roots, _ := pki.ParseCertificates([]byte(anchors))
	issuer, _ := pki.ParseCertificates(crt)
	if roots[0].Subject.CommonName != "root.linkerd.cluster.local" || issuer[0].Subject.CommonName != "identity.linkerd.cluster.local" {
		t.Errorf("names %q, %q", roots[0].Subject.CommonName, issuer[0].Subject.CommonName)
	}
	if d := issuer[0].NotAfter.Sub(issuer[0].NotBefore); d < 364*24*time.Hour || d > 366*24*time.Hour {
		t.Errorf("issuer lifetime %s, want a year", d)
	}
	if !issuer[0].MaxPathLenZero || !roots[0].IsCA {
		t.Error("issuer must be a CA of path length 0 under a CA root")
	}
	// Two installs generate different roots.
	_, out2, _ := run("install")
	if docByKindName(t, out2, "ConfigMap", "linkerd-identity-trust-roots")["data"].(map[string]any)["ca-bundle.crt"] == anchors {
		t.Error("two installs generated the same trust anchor")
	}
}

func b64(t *testing.T, v any) []byte {
	t.Helper()
	out, err := base64Decode(v.(string))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestInstallWithFlagsIsHelmTemplate: the --identity-* flags give the same
// render as helm's --set-file of the same values (render is compared with
// the helm binary in render's integration test).
func TestInstallWithFlagsIsHelmTemplate(t *testing.T) {
	code, out, stderr := run("install", "--skip-namespace",
		"--identity-trust-anchors-file", chartTestdata+"ca.crt",
		"--identity-issuer-certificate-file", chartTestdata+"issuer.crt",
		"--identity-issuer-key-file", chartTestdata+"issuer.key",
		"--set-file", "proxyInjector.crtPEM="+chartTestdata+"webhook.crt",
		"--set-file", "proxyInjector.keyPEM="+chartTestdata+"webhook.key",
		"--set-file", "proxyInjector.caBundle="+chartTestdata+"webhook-ca.crt",
		"--set-file", "policyValidator.crtPEM="+chartTestdata+"webhook.crt",
		"--set-file", "policyValidator.keyPEM="+chartTestdata+"webhook.key",
		"--set-file", "policyValidator.caBundle="+chartTestdata+"webhook-ca.crt")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	vals, err := render.Values{SetFile: []string{
		"identityTrustAnchorsPEM=" + chartTestdata + "ca.crt",
		"identity.issuer.tls.crtPEM=" + chartTestdata + "issuer.crt",
		"identity.issuer.tls.keyPEM=" + chartTestdata + "issuer.key",
		"proxyInjector.crtPEM=" + chartTestdata + "webhook.crt",
		"proxyInjector.keyPEM=" + chartTestdata + "webhook.key",
		"proxyInjector.caBundle=" + chartTestdata + "webhook-ca.crt",
		"policyValidator.crtPEM=" + chartTestdata + "webhook.crt",
		"policyValidator.keyPEM=" + chartTestdata + "webhook.key",
		"policyValidator.caBundle=" + chartTestdata + "webhook-ca.crt",
	}}.Merge()
	if err != nil {
		t.Fatal(err)
	}
	want, err := render.Render(render.Options{Chart: render.ControlPlaneChart, Values: vals})
	if err != nil {
		t.Fatal(err)
	}
	if out != want {
		t.Error("install with --identity-* flags differs from the render with --set-file")
	}
	// --ha and --identity-external-issuer do what they say.
	code, out, stderr = run("install", "--ha", "--identity-external-issuer", "--identity-trust-anchors-file", chartTestdata+"ca.crt")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(out, "replicas: 3") || !strings.Contains(out, "failurePolicy: Fail") || strings.Contains(out, "name: linkerd-identity-issuer\n  namespace: linkerd\n  labels") && strings.Contains(out, "crt.pem:") {
		t.Error("--ha --identity-external-issuer: want 3 replicas, failurePolicy Fail and no issuer Secret")
	}
	// --crds
	code, out, _ = run("install", "--crds")
	if code != 0 || !strings.Contains(out, "name: servers.policy.linkerd.io") || strings.Contains(out, "kind: Deployment") {
		t.Errorf("--crds: exit %d", code)
	}
}

func TestInstallUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"install", "--identity-trust-anchors-file", chartTestdata + "ca.crt"}, "give the trust anchors, the issuer certificate and the issuer key together"},
		{[]string{"install", "--identity-external-issuer"}, "an external issuer needs the trust anchors"},
		{[]string{"install", "--crds", "--ha"}, "--crds takes only --set"},
		{[]string{"install", "--set", "a[0"}, "failed parsing --set data"},
		{[]string{"install", "--identity-trust-anchors-file", chartTestdata + "webhook-ca.crt", "--identity-issuer-certificate-file", chartTestdata + "issuer.crt", "--identity-issuer-key-file", chartTestdata + "issuer.key"}, "does not chain to the trust anchors"},
	} {
		code, _, stderr := run(tc.args...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
	// A values schema error is a failure of the render (exit 1) with helm's message.
	code, _, stderr := run("install", "--set", "controllerReplicas=-1")
	if code != 1 || !strings.Contains(stderr, "controllerReplicas") {
		t.Errorf("schema: exit %d, %s", code, stderr)
	}
}

func TestInjectCommand(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.yaml"), []byte("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: a\nspec:\n  template:\n    spec:\n      containers: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not yaml: ["), 0o644); err != nil {
		t.Fatal(err)
	}
	stdin = strings.NewReader("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: app\n")
	defer func() { stdin = os.Stdin }()
	code, out, stderr := run("inject", dir, "-")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	clitest.Golden(t, "inject-stdout.yaml", []byte(out))
	clitest.Golden(t, "inject-stderr.txt", []byte(stderr))
	code, _, stderr = run("inject")
	if code != 2 || !strings.Contains(stderr, "missing argument") {
		t.Errorf("no input: exit %d %q", code, stderr)
	}
	code, _, stderr = run("inject", filepath.Join(dir, "missing.yaml"))
	if code != 1 || !strings.Contains(stderr, "no such file") {
		t.Errorf("missing file: exit %d %q", code, stderr)
	}
}

func TestCheckText(t *testing.T) {
	r := check.Report{Results: []check.Result{
		{Category: "kubernetes-api", Description: "can query the Kubernetes API", Result: check.Success},
		{Category: "linkerd-existence", Description: "linkerd-identity Deployment is available", Result: check.Error, Error: "linkerd-identity is scaled to zero replicas", Hint: "kubectl -n linkerd scale deploy/linkerd-identity --replicas=1"},
		{Category: "linkerd-data-plane", Description: "data-plane proxies run the control plane's version", Result: check.Warning, Error: "proxies not at the control plane's version dev: app/web-1 (old)"},
	}}
	var b bytes.Buffer
	if err := writeCheckText(&b, r); err != nil {
		t.Fatal(err)
	}
	clitest.Golden(t, "check.txt", b.Bytes())
}

func TestCertExpiry(t *testing.T) {
	metrics, err := os.ReadFile("../../stat/testdata/proxy-2.prom")
	if err != nil {
		t.Fatal(err)
	}
	exp, err := certExpiry(metrics)
	if err != nil || exp == nil || exp.Unix() != 1795776681 {
		t.Errorf("expiry %v %v, want 1795776681", exp, err)
	}
	if exp, err := certExpiry([]byte("identity_cert_expiration_timestamp_seconds 0\n")); exp != nil || err != nil {
		t.Errorf("no certificate: %v %v", exp, err)
	}
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "app"}, Spec: corev1.PodSpec{ServiceAccountName: "web",
		InitContainers: []corev1.Container{{Name: "linkerd-proxy", Env: []corev1.EnvVar{{Name: "LINKERD2_PROXY_IDENTITY_LOCAL_NAME", Value: "$(_pod_sa).$(_pod_ns).serviceaccount.identity.linkerd.cluster.local"}}}}}}
	if got := expandPodRefs(p, stat.ProxyEnv(p, "LINKERD2_PROXY_IDENTITY_LOCAL_NAME")); got != "web.app.serviceaccount.identity.linkerd.cluster.local" {
		t.Errorf("identity %q", got)
	}
}

func TestControlPlaneVersions(t *testing.T) {
	var objs []any
	for _, c := range []struct{ name, component, image string }{
		{"linkerd-identity", "identity", "ghcr.io/linkerd-go/identity:v1.2.3"},
		{"linkerd-destination", "destination", "localhost:5000/linkerd-go/destination:v1.2.4"},
		{"linkerd-proxy-injector", "proxy-injector", "ghcr.io/linkerd-go/injector@sha256:abc"},
	} {
		objs = append(objs, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: c.name, Namespace: "linkerd"},
			Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](1), Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"linkerd.io/control-plane-component": c.component}, Annotations: map[string]string{"linkerd.io/proxy-version": "v1.2.0"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: c.component, Image: c.image}}}}},
			Status: appsv1.DeploymentStatus{ReadyReplicas: 1}})
	}
	client := fake.NewClientset()
	for _, o := range objs {
		if _, err := client.AppsV1().Deployments("linkerd").Create(context.Background(), o.(*appsv1.Deployment), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := controlPlaneVersions(context.Background(), client, "linkerd")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"identity v1.2.3 v1.2.0 1/1", "destination v1.2.4 v1.2.0 1/1", "proxy-injector sha256:abc v1.2.0 1/1"}
	for i, c := range got {
		if s := strings.Join([]string{c.Component, c.Version, c.ProxyVersion, itoa(c.ReadyReplicas) + "/" + itoa(c.Replicas)}, " "); s != want[i] {
			t.Errorf("%d: %s, want %s", i, s, want[i])
		}
	}
	if _, err := controlPlaneVersions(context.Background(), fake.NewClientset(), "linkerd"); err == nil || !strings.Contains(err.Error(), "linkerd-identity") {
		t.Errorf("no control plane: %v", err)
	}
}

func TestClusterCommandUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"stat"}, "missing argument"},
		{[]string{"stat", "pod/x"}, "only deployments"},
		{[]string{"stat", "deploy", "--window", "0s"}, "--window must be positive"},
		{[]string{"stat", "deploy/web", "-A"}, "-A lists every Deployment"},
		{[]string{"stat", "deploy", "-o", "yaml"}, `output format "yaml"`},
		{[]string{"diagnostics"}, "missing subcommand"},
		{[]string{"diagnostics", "endpoints"}, "unknown diagnostics subcommand"},
		{[]string{"diagnostics", "proxy-metrics"}, "missing argument"},
		{[]string{"identity"}, "missing argument"},
		{[]string{"check", "extra"}, `unexpected argument "extra"`},
	} {
		code, _, stderr := run(tc.args...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
}

func itoa(i int32) string { return strconv.Itoa(int(i)) }

func base64Decode(s string) ([]byte, error) { return base64.StdEncoding.DecodeString(s) }
