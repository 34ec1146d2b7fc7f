//go:build integration

package charts

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/yaml"

	"github.com/linkerd-go/linkerd-go/tools/testkit/kubebins"
	"github.com/linkerd-go/linkerd-go/tools/testkit/kubetest"
)

var update = flag.Bool("update", false, "rewrite the golden renders in testdata/")

const (
	chartRel = "../../../deploy/charts/linkerd-control-plane"
	crdsRel  = "../../../deploy/charts/linkerd-crds"
	// kubeVersion is what helm assumes without a cluster (the chart needs
	// native sidecars; helm's own default is older).
	kubeVersion = "1.37.2"
	namespace   = "linkerd"
)

// The seed's install flags, with the chart's test certificates.
var (
	anchorsArgs = []string{"--set-file", "identityTrustAnchorsPEM=testdata/ca.crt"}
	issuerArgs  = []string{"--set-file", "identity.issuer.tls.crtPEM=testdata/issuer.crt", "--set-file", "identity.issuer.tls.keyPEM=testdata/issuer.key"}
	// A fixed webhook certificate, so that the renders are the same every
	// time (without it the chart generates one: TestGeneratedWebhookCertificate).
	webhookArgs = []string{
		"--set-file", "proxyInjector.crtPEM=testdata/webhook.crt", "--set-file", "proxyInjector.keyPEM=testdata/webhook.key", "--set-file", "proxyInjector.caBundle=testdata/webhook-ca.crt",
		"--set-file", "policyValidator.crtPEM=testdata/webhook.crt", "--set-file", "policyValidator.keyPEM=testdata/webhook.key", "--set-file", "policyValidator.caBundle=testdata/webhook-ca.crt",
	}
)

type valueSet struct {
	name string
	args []string
}

// valueSets are the golden renders: testdata/<name>.yaml.
var valueSets = []valueSet{
	{"default", concat(anchorsArgs, issuerArgs, webhookArgs)},
	{"ha", concat([]string{"-f", "values-ha.yaml"}, anchorsArgs, issuerArgs, webhookArgs)},
	{"cert-manager", concat([]string{"-f", "testdata/values-cert-manager.yaml"}, anchorsArgs)},
}

func concat(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// helmBin is the helm of the k8s-bins set.
func helmBin(t *testing.T) string {
	t.Helper()
	bins, err := kubebins.Find()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(bins, "helm")
}

func chartDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(chartRel)
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// helmEnv keeps helm's caches and config out of the user's home.
func helmEnv(t *testing.T, dir string) []string {
	return append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(dir, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(dir, "config"),
		"HELM_DATA_HOME="+filepath.Join(dir, "data"),
	)
}

// template runs helm template in the chart's folder (the value files and
// certificates are relative to it) and returns stdout and stderr.
func template(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	full := append([]string{"template", "linkerd-control-plane", ".", "-n", namespace, "--kube-version", kubeVersion}, args...)
	cmd := exec.Command(helmBin(t), full...)
	cmd.Dir = chartDir(t)
	cmd.Env = helmEnv(t, t.TempDir())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

func mustTemplate(t *testing.T, args ...string) string {
	t.Helper()
	out, stderr, err := template(t, args...)
	if err != nil {
		t.Fatalf("helm template %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return out
}

// objects splits a render into objects.
func objects(t *testing.T, manifest string) []*unstructured.Unstructured {
	t.Helper()
	objs, err := kubetest.DecodeObjects([]byte(manifest))
	if err != nil {
		t.Fatalf("%s: %v", "rendered YAML does not parse", err)
	}
	return objs
}

func find(t *testing.T, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	t.Fatalf("no %s %s in the render", kind, name)
	return nil
}

// into converts an unstructured object to a typed one.
func into[T any](t *testing.T, obj *unstructured.Unstructured) *T {
	t.Helper()
	var out T
	b, err := obj.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return &out
}

func TestGoldenRenders(t *testing.T) {
	for _, vs := range valueSets {
		t.Run(vs.name, func(t *testing.T) {
			got := mustTemplate(t, vs.args...)
			// Rendering twice gives the same manifests.
			if again := mustTemplate(t, vs.args...); again != got {
				t.Fatal("two renders of the same values differ")
			}
			golden := filepath.Join("testdata", vs.name+".yaml")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to write it)", err)
			}
			if string(want) != got {
				t.Errorf("render differs from %s (run with -update and read the diff):\n%s", golden, firstDiff(string(want), got))
			}
		})
	}
}

// firstDiff shows where two renders start to differ.
func firstDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return fmt.Sprintf("line %d:\n- %s\n+ %s", i+1, wl, gl)
		}
	}
	return ""
}

// TestRenderedPods checks what the golden files hold in a form a reader can
// trust without reading them: the control-plane pods are meshed and locked
// down, and each value set does what it says.
func TestRenderedPods(t *testing.T) {
	for _, vs := range valueSets {
		t.Run(vs.name, func(t *testing.T) {
			objs := objects(t, mustTemplate(t, vs.args...))
			for _, name := range []string{"linkerd-identity", "linkerd-destination", "linkerd-proxy-injector"} {
				d := into[appsv1.Deployment](t, find(t, objs, "Deployment", name))
				spec := d.Spec.Template.Spec
				if len(spec.InitContainers) != 2 || spec.InitContainers[0].Name != "linkerd-init" || spec.InitContainers[1].Name != "linkerd-proxy" {
					t.Fatalf("%s: init containers are not [linkerd-init linkerd-proxy]: %v", name, spec.InitContainers)
				}
				proxy := spec.InitContainers[1]
				if proxy.RestartPolicy == nil || *proxy.RestartPolicy != corev1.ContainerRestartPolicyAlways {
					t.Errorf("%s: the proxy is not a native sidecar", name)
				}
				if proxy.StartupProbe != nil {
					t.Errorf("%s: control-plane proxies must not hold the component back with a startup probe", name)
				}
				if proxy.ReadinessProbe == nil || proxy.ReadinessProbe.HTTPGet.Path != "/ready" {
					t.Errorf("%s: the proxy has no /ready readiness probe", name)
				}
				for _, c := range append(spec.InitContainers[1:], spec.Containers...) {
					sc := c.SecurityContext
					if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
						sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.Capabilities == nil ||
						len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" || len(sc.Capabilities.Add) != 0 ||
						sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
						t.Errorf("%s/%s: security context is not locked down: %+v", name, c.Name, sc)
					}
					if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() {
						t.Errorf("%s/%s: no resource requests", name, c.Name)
					}
				}
				want := int32(1)
				if vs.name == "ha" {
					want = 3
					if spec.Affinity == nil || spec.Affinity.PodAntiAffinity == nil {
						t.Errorf("%s: HA without pod anti-affinity", name)
					}
					find(t, objs, "PodDisruptionBudget", name)
				}
				if *d.Spec.Replicas != want {
					t.Errorf("%s: %d replicas, want %d", name, *d.Spec.Replicas, want)
				}
			}
			hook := find(t, objs, "MutatingWebhookConfiguration", "linkerd-proxy-injector-webhook-config")
			policy, _, _ := unstructured.NestedString(hook.Object["webhooks"].([]any)[0].(map[string]any), "failurePolicy")
			if want := map[bool]string{true: "Fail", false: "Ignore"}[vs.name == "ha"]; policy != want {
				t.Errorf("webhook failurePolicy %s, want %s", policy, want)
			}
			issuerSecret := false
			for _, o := range objs {
				issuerSecret = issuerSecret || (o.GetKind() == "Secret" && o.GetName() == "linkerd-identity-issuer")
			}
			if issuerSecret == (vs.name == "cert-manager") {
				t.Errorf("issuer Secret rendered: %v; with cert-manager the chart must only mount the existing one", issuerSecret)
			}
		})
	}
}

// TestGeneratedWebhookCertificate renders without webhook certificates: the
// chart generates a CA and a serving certificate for each webhook, and its
// caBundle is the CA that signed its Secret's certificate.
func TestGeneratedWebhookCertificate(t *testing.T) {
	objs := objects(t, mustTemplate(t, concat(anchorsArgs, issuerArgs)...))
	objs2 := objects(t, mustTemplate(t, concat(anchorsArgs, issuerArgs)...))
	for _, w := range []struct{ secret, hookKind, hook, service string }{
		{"linkerd-proxy-injector-k8s-tls", "MutatingWebhookConfiguration", "linkerd-proxy-injector-webhook-config", "linkerd-proxy-injector"},
		{"linkerd-policy-validator-k8s-tls", "ValidatingWebhookConfiguration", "linkerd-policy-validator-webhook-config", "linkerd-policy-validator"},
	} {
		t.Run(w.service, func(t *testing.T) {
			secret := into[corev1.Secret](t, find(t, objs, "Secret", w.secret))
			if secret.Type != corev1.SecretTypeTLS {
				t.Errorf("Secret type %s, want %s", secret.Type, corev1.SecretTypeTLS)
			}
			if _, err := tls.X509KeyPair(secret.Data["tls.crt"], secret.Data["tls.key"]); err != nil {
				t.Fatalf("tls.crt and tls.key do not pair: %v", err)
			}
			hook := find(t, objs, w.hookKind, w.hook)
			caBundle, _, _ := unstructured.NestedString(hook.Object["webhooks"].([]any)[0].(map[string]any), "clientConfig", "caBundle")
			if caBundle == "" {
				t.Fatal("no caBundle")
			}
			secretCA := string(mustB64(t, []byte(caBundle)))
			if secretCA != string(secret.Data["ca.crt"]) {
				t.Error("the webhook's caBundle is not the Secret's ca.crt")
			}
			roots := x509.NewCertPool()
			if !roots.AppendCertsFromPEM([]byte(secretCA)) {
				t.Fatal("caBundle holds no certificate")
			}
			block, _ := pem.Decode(secret.Data["tls.crt"])
			leaf, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			for _, name := range []string{w.service + ".linkerd.svc", w.service + ".linkerd.svc.cluster.local"} {
				if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
					t.Errorf("the serving certificate does not verify for %s against the caBundle: %v", name, err)
				}
			}
			if days := time.Until(leaf.NotAfter).Hours() / 24; days < 3600 {
				t.Errorf("the generated certificate expires in %.0f days; want about 10 years", days)
			}
			// Two renders generate two different CAs: the golden value sets
			// must give the certificate, and upgrades must read it back
			// (TestHelmInstallUpgrade).
			if s2 := into[corev1.Secret](t, find(t, objs2, "Secret", w.secret)); string(s2.Data["ca.crt"]) == secretCA {
				t.Error("two renders generated the same CA")
			}
		})
	}
}

func mustB64(t *testing.T, b []byte) []byte {
	t.Helper()
	out, err := base64.StdEncoding.DecodeString(string(b))
	if err != nil {
		t.Fatalf("caBundle is not base64: %v", err)
	}
	return out
}

// TestChartsLint runs deploy/scripts/charts-lint.sh (make charts-lint) with
// the pinned helm, so that the test command covers helm lint too.
func TestChartsLint(t *testing.T) {
	script, err := filepath.Abs("../../../deploy/scripts/charts-lint.sh")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", script, helmBin(t))
	cmd.Env = helmEnv(t, t.TempDir())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("charts-lint.sh: %v\n%s", err, out)
	}
}

// TestBadValues runs every case of the chart's testdata/bad-values.tsv (the
// same cases deploy/scripts/charts-lint.sh checks): helm refuses the values
// with the expected message.
func TestBadValues(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(chartDir(t), "testdata", "bad-values.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	cases := 0
	for _, line := range strings.Split(string(data), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 3 {
			t.Fatalf("bad-values.tsv: %d columns in %q", len(f), line)
		}
		name, want, args := f[0], f[1], strings.Fields(f[2])
		cases++
		t.Run(name, func(t *testing.T) {
			out, stderr, err := template(t, args...)
			if err == nil {
				t.Fatalf("helm template accepted %s:\n%.500s", f[2], out)
			}
			if !strings.Contains(stderr, want) {
				t.Errorf("the error does not say %q:\n%s", want, stderr)
			}
		})
	}
	if cases < 10 {
		t.Errorf("only %d cases in bad-values.tsv", cases)
	}
}

// TestServerSideDryRun sends every rendered object of every value set to a
// real kube-apiserver with dry-run and strict field validation: a field the
// API does not know, a wrong type or an invalid object fails here rather than
// at install time on a cluster.
func TestServerSideDryRun(t *testing.T) {
	crds, err := filepath.Abs(filepath.Join(crdsRel, "templates"))
	if err != nil {
		t.Fatal(err)
	}
	env := kubetest.Start(t, kubetest.Options{CRDDirs: []string{crds}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	kube := kubernetes.NewForConfigOrDie(env.Config)
	if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	groups, err := restmapper.GetAPIGroupResources(discovery.NewDiscoveryClientForConfigOrDie(env.Config))
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDiscoveryRESTMapper(groups)
	dyn := dynamic.NewForConfigOrDie(env.Config)
	renders := append(valueSets[:len(valueSets):len(valueSets)],
		valueSet{"generated-webhook-certificate", concat(anchorsArgs, issuerArgs)},
		valueSet{"legacy-sidecar-layout", concat(anchorsArgs, issuerArgs, webhookArgs,
			[]string{"--set", "proxy.nativeSidecar=false", "--set", "proxy.gid=2102", "--set", "proxyInit.runAsRoot=false"})})
	for _, vs := range renders {
		t.Run(vs.name, func(t *testing.T) {
			for _, obj := range objects(t, mustTemplate(t, vs.args...)) {
				gvk := obj.GroupVersionKind()
				m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
				if err != nil {
					t.Errorf("%s %s: %v", gvk, obj.GetName(), err)
					continue
				}
				var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
				if m.Scope.Name() == "namespace" {
					if obj.GetNamespace() != namespace {
						t.Errorf("%s %s is in namespace %q, want the release's", gvk.Kind, obj.GetName(), obj.GetNamespace())
					}
					ri = dyn.Resource(m.Resource).Namespace(obj.GetNamespace())
				}
				if _, err := ri.Create(ctx, obj, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}, FieldValidation: "Strict"}); err != nil {
					t.Errorf("the API server refuses %s %s: %v", gvk.Kind, obj.GetName(), err)
				}
			}
		})
	}
}

// TestHelmInstallUpgrade installs the chart with the seed's command against a
// real kube-apiserver (no nodes: nothing runs, but every object is stored),
// then upgrades only destination's image tag with --reuse-values: only the
// destination Deployment changes, and the generated webhook certificate is
// read back rather than made anew (so the injector is not restarted and the
// caBundle stays valid).
func TestHelmInstallUpgrade(t *testing.T) {
	env := kubetest.Start(t, kubetest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	kube := kubernetes.NewForConfigOrDie(env.Config)

	tmp := t.TempDir()
	kubeconfig, err := env.AdminKubeconfig()
	if err != nil {
		t.Fatal(err)
	}
	helm := func(args ...string) {
		t.Helper()
		cmd := exec.CommandContext(ctx, helmBin(t), append(args, "--kubeconfig", kubeconfig)...)
		cmd.Dir = chartDir(t)
		cmd.Env = helmEnv(t, tmp)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	helm(concat([]string{"install", "linkerd-control-plane", "-n", namespace, "--create-namespace"}, anchorsArgs, issuerArgs, []string{"."})...)

	type state struct {
		generations map[string]int64
		images      map[string]string
		// secrets and caBundles are the webhooks', by webhook.
		secrets   map[string]map[string][]byte
		caBundles map[string][]byte
		config    string
	}
	read := func() state {
		t.Helper()
		s := state{generations: map[string]int64{}, images: map[string]string{}, secrets: map[string]map[string][]byte{}, caBundles: map[string][]byte{}}
		for _, name := range []string{"linkerd-identity", "linkerd-destination", "linkerd-proxy-injector"} {
			d, err := kube.AppsV1().Deployments(namespace).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			s.generations[name] = d.Generation
			c := d.Spec.Template.Spec.Containers
			s.images[name] = c[len(c)-1].Image
		}
		for _, w := range []string{"linkerd-proxy-injector", "linkerd-policy-validator"} {
			sec, err := kube.CoreV1().Secrets(namespace).Get(ctx, w+"-k8s-tls", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			s.secrets[w] = sec.Data
		}
		hook, err := kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, "linkerd-proxy-injector-webhook-config", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		s.caBundles["linkerd-proxy-injector"] = hook.Webhooks[0].ClientConfig.CABundle
		vhook, err := kube.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, "linkerd-policy-validator-webhook-config", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		s.caBundles["linkerd-policy-validator"] = vhook.Webhooks[0].ClientConfig.CABundle
		cm, err := kube.CoreV1().ConfigMaps(namespace).Get(ctx, "linkerd-proxy-injector-config", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		s.config = cm.Data["config.yaml"]
		return s
	}
	before := read()
	for w, ca := range before.caBundles {
		if !bytes.Equal(ca, before.secrets[w]["ca.crt"]) {
			t.Errorf("after install, %s's caBundle is not its Secret's CA", w)
		}
	}

	helm("upgrade", "linkerd-control-plane", "-n", namespace, "--reuse-values", "--set", "destination.image.tag=other", ".")
	after := read()
	for name, gen := range before.generations {
		changed := after.generations[name] != gen
		if changed != (name == "linkerd-destination") {
			t.Errorf("%s: generation %d → %d after upgrading destination's tag", name, gen, after.generations[name])
		}
	}
	if got, want := after.images["linkerd-destination"], "ghcr.io/linkerd-go/destination:other"; got != want {
		t.Errorf("destination image %s, want %s", got, want)
	}
	for w, secret := range before.secrets {
		for _, key := range []string{"tls.crt", "tls.key", "ca.crt"} {
			if !bytes.Equal(secret[key], after.secrets[w][key]) {
				t.Errorf("the upgrade changed %s's Secret's %s", w, key)
			}
		}
		if !bytes.Equal(before.caBundles[w], after.caBundles[w]) {
			t.Errorf("the upgrade changed %s's caBundle", w)
		}
	}
	if before.config != after.config {
		t.Error("the upgrade changed the injector's config")
	}
}
