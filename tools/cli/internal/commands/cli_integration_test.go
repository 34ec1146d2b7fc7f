//go:build integration

package commands

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/restmapper"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/linkerd-go/linkerd-go/tools/cli/check"
	"github.com/linkerd-go/linkerd-go/tools/testkit/kubetest"
	"github.com/linkerd-go/linkerd-go/tools/testkit/pkitest"
)

// cluster is a real kube-apiserver with the clients the tests use.
type cluster struct {
	env        *kubetest.Env
	kube       kubernetes.Interface
	dyn        dynamic.Interface
	mapper     *restmapper.DeferredDiscoveryRESTMapper
	kubeconfig string
}

func startCluster(t *testing.T) *cluster {
	env := kubetest.Start(t, kubetest.Options{})
	c := &cluster{env: env, kube: kubernetes.NewForConfigOrDie(env.Config), dyn: dynamic.NewForConfigOrDie(env.Config)}
	c.mapper = restmapper.NewDeferredDiscoveryRESTMapper(memCache{discovery.NewDiscoveryClientForConfigOrDie(env.Config)})
	var err error
	if c.kubeconfig, err = env.AdminKubeconfig(); err != nil {
		t.Fatal(err)
	}
	return c
}

// memCache adapts a discovery client for the deferred mapper (no caching:
// every Reset rediscovers, so new CRDs are found).
type memCache struct{ discovery.DiscoveryInterface }

func (memCache) Fresh() bool { return true }
func (memCache) Invalidate() {}

func objects(t *testing.T, manifest string) []*unstructured.Unstructured {
	t.Helper()
	objs, err := kubetest.DecodeObjects([]byte(manifest))
	if err != nil {
		t.Fatalf("%s: %v", "YAML does not parse", err)
	}
	return objs
}

// apply creates every object of a manifest, as kubectl apply would on an
// empty cluster (dryRun: server-side dry run with strict validation).
func (c *cluster) apply(t *testing.T, ctx context.Context, manifest string, dryRun bool) {
	t.Helper()
	opts := metav1.CreateOptions{FieldValidation: "Strict"}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	for _, obj := range objects(t, manifest) {
		gvk := obj.GroupVersionKind()
		m, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			c.mapper.Reset()
			if m, err = c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version); err != nil {
				t.Fatalf("%s %s: %v", gvk, obj.GetName(), err)
			}
		}
		var ri dynamic.ResourceInterface = c.dyn.Resource(m.Resource)
		if m.Scope.Name() == "namespace" {
			ri = c.dyn.Resource(m.Resource).Namespace(obj.GetNamespace())
		}
		if _, err := ri.Create(ctx, obj, opts); err != nil {
			t.Errorf("the API server refuses %s %s: %v", gvk.Kind, obj.GetName(), err)
		}
	}
}

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	code, out, errOut := run(args...)
	return code, out, errOut
}

// TestInstallApplyCheck installs the CRDs and the control plane from
// `linkerd install` into a real API server, makes the control plane look
// healthy (no kubelet or controllers run: Deployment and pod statuses and
// the injector's EndpointSlice are written by the test), and runs `linkerd
// check` against it: healthy, identity scaled to zero, issuer expiring in
// 30 days, a missing CRD — each failing with the problem named.
func TestInstallApplyCheck(t *testing.T) {
	c := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	code, crds, stderr := runCLI(t, "install", "--crds")
	if code != 0 {
		t.Fatalf("install --crds: exit %d: %s", code, stderr)
	}
	c.apply(t, ctx, crds, true)
	c.apply(t, ctx, crds, false)
	waitEstablished(t, ctx, c)

	dir := t.TempDir()
	creds := newTestCA(t, 365*24*time.Hour)
	anchors, issuerCrt, issuerKey := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "issuer.crt"), filepath.Join(dir, "issuer.key")
	write(t, anchors, creds.rootPEM)
	crt, key := creds.issuer(t, 365*24*time.Hour)
	write(t, issuerCrt, crt)
	write(t, issuerKey, key)

	// Generated certificates: every object passes a server-side dry run
	// (after the Namespace, which must exist for the others).
	code, generated, stderr := runCLI(t, "install", "--ha")
	if code != 0 {
		t.Fatalf("install --ha: exit %d: %s", code, stderr)
	}
	objs := objects(t, generated)
	if objs[0].GetKind() != "Namespace" || objs[0].GetName() != "linkerd" {
		t.Fatalf("first object is %s %s, want Namespace linkerd", objs[0].GetKind(), objs[0].GetName())
	}
	nsYAML, _ := yaml.Marshal(objs[0].Object)
	c.apply(t, ctx, string(nsYAML), false)
	c.apply(t, ctx, strings.SplitN(generated, "\n---\n", 2)[1], true)

	code, manifest, stderr := runCLI(t, "install", "--skip-namespace", "--identity-trust-anchors-file", anchors, "--identity-issuer-certificate-file", issuerCrt, "--identity-issuer-key-file", issuerKey)
	if code != 0 {
		t.Fatalf("install: exit %d: %s", code, stderr)
	}
	c.apply(t, ctx, manifest, false)
	c.makeHealthy(t, ctx, "linkerd")

	checkOK := func(t *testing.T) {
		t.Helper()
		code, out, stderr := runCLI(t, "check", "--kubeconfig", c.kubeconfig, "--injection-probe=false", "--policy-probe=false")
		if code != 0 || !strings.Contains(out, "Status check results are ✓") {
			t.Fatalf("check: exit %d\n%s\n%s", code, out, stderr)
		}
	}
	// checkFails runs check -o json and wants the named check to fail with
	// an error containing want, and every other check to pass.
	checkFails := func(t *testing.T, description, want string) {
		t.Helper()
		code, out, stderr := runCLI(t, "check", "--kubeconfig", c.kubeconfig, "--injection-probe=false", "--policy-probe=false", "-o", "json")
		if code != 1 {
			t.Errorf("check: exit %d, want 1 (stderr %s)", code, stderr)
		}
		var r check.Report
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("check -o json: %v\n%s", err, out)
		}
		failed := r.Failed()
		if r.Success || len(failed) != 1 || failed[0].Description != description || !strings.Contains(failed[0].Error, want) || failed[0].Hint == "" {
			t.Errorf("want only %q failing with %q and a hint; got %+v", description, want, failed)
		}
		// The text output names the problem too.
		code, text, _ := runCLI(t, "check", "--kubeconfig", c.kubeconfig, "--injection-probe=false", "--policy-probe=false")
		if code != 1 || !strings.Contains(text, "× "+description+"\n    ") || !strings.Contains(text, want) || !strings.Contains(text, "Status check results are ×") {
			t.Errorf("text output: exit %d\n%s", code, text)
		}
	}

	t.Run("healthy", checkOK)

	t.Run("version", func(t *testing.T) {
		code, out, stderr := runCLI(t, "version", "--kubeconfig", c.kubeconfig, "-o", "json")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		var v versionInfo
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Fatal(err)
		}
		if len(v.ControlPlane) != 3 || v.ServerError != "" {
			t.Fatalf("version: %+v", v)
		}
		for _, comp := range v.ControlPlane {
			if comp.Version != "dev" || comp.ProxyVersion != "dev" || comp.ReadyReplicas != 1 || comp.Replicas != 1 {
				t.Errorf("component %+v: want version dev, proxy dev, 1/1", comp)
			}
		}
	})

	t.Run("data plane", func(t *testing.T) {
		// A meshed pod as the injector makes it: its proxy is ready, at
		// the control plane's version, with the current trust root.
		if _, err := c.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "app"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(bytes.TrimSpace(creds.rootPEM))
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "app", Labels: map[string]string{"linkerd.io/control-plane-ns": "linkerd"},
				Annotations: map[string]string{"linkerd.io/proxy-version": "dev", "linkerd.io/trust-root-sha256": hex.EncodeToString(sum[:])}},
			Spec: corev1.PodSpec{NodeName: "node", InitContainers: []corev1.Container{{Name: "linkerd-proxy", Image: "proxy", RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways)}},
				Containers: []corev1.Container{{Name: "web", Image: "web"}}},
		}
		pod, err := c.kube.CoreV1().Pods("app").Create(ctx, pod, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		pod.Status.Phase = corev1.PodRunning
		pod.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: "linkerd-proxy", Ready: true, Image: "proxy"}}
		pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "web", Ready: true, Image: "web"}}
		if pod, err = c.kube.CoreV1().Pods("app").UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		code, out, stderr := runCLI(t, "check", "--kubeconfig", c.kubeconfig, "--injection-probe=false", "--policy-probe=false", "--proxy", "-n", "app")
		if code != 0 || !strings.Contains(out, "✓ data-plane proxies are ready (namespace app)") {
			t.Fatalf("check --proxy: exit %d\n%s\n%s", code, out, stderr)
		}
		// The proxy stops being ready.
		pod.Status.InitContainerStatuses[0].Ready = false
		if _, err := c.kube.CoreV1().Pods("app").UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		code, out, _ = runCLI(t, "check", "--kubeconfig", c.kubeconfig, "--injection-probe=false", "--policy-probe=false", "--proxy", "-n", "app")
		if code != 1 || !strings.Contains(out, "proxies not ready: app/web-1") {
			t.Errorf("check --proxy with an unready proxy: exit %d\n%s", code, out)
		}
		if err := c.kube.CoreV1().Pods("app").Delete(ctx, "web-1", metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("identity scaled to zero", func(t *testing.T) {
		deps := c.kube.AppsV1().Deployments("linkerd")
		d, err := deps.Get(ctx, "linkerd-identity", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		d.Spec.Replicas = ptr.To[int32](0)
		if d, err = deps.Update(ctx, d, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation}
		if _, err := deps.UpdateStatus(ctx, d, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		checkFails(t, "linkerd-identity Deployment is available", "linkerd-identity is scaled to zero replicas")
		d, _ = deps.Get(ctx, "linkerd-identity", metav1.GetOptions{})
		d.Spec.Replicas = ptr.To[int32](1)
		if _, err := deps.Update(ctx, d, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		c.makeHealthy(t, ctx, "linkerd")
		checkOK(t)
	})

	t.Run("issuer expires in 30 days", func(t *testing.T) {
		secrets := c.kube.CoreV1().Secrets("linkerd")
		s, err := secrets.Get(ctx, check.IssuerSecret, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		old := s.Data
		crt, key := creds.issuer(t, 30*24*time.Hour)
		s.Data = map[string][]byte{"crt.pem": crt, "key.pem": key}
		if s, err = secrets.Update(ctx, s, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		checkFails(t, "issuer certificate is valid for at least 60 days", `issuer certificate "identity.linkerd.cluster.local" expires in 29 days`)
		s.Data = old
		if _, err := secrets.Update(ctx, s, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		checkOK(t)
	})

	t.Run("cert-manager issuer expires in 30 days", func(t *testing.T) {
		// The kubernetes.io/tls scheme is read too (a replaced Secret, as
		// cert-manager writes it).
		secrets := c.kube.CoreV1().Secrets("linkerd")
		old, err := secrets.Get(ctx, check.IssuerSecret, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := secrets.Delete(ctx, check.IssuerSecret, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		crt, key := creds.issuer(t, 30*24*time.Hour)
		tlsSecret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: check.IssuerSecret, Namespace: "linkerd"}, Type: corev1.SecretTypeTLS,
			Data: map[string][]byte{"tls.crt": crt, "tls.key": key, "ca.crt": creds.rootPEM}}
		if _, err := secrets.Create(ctx, tlsSecret, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		checkFails(t, "issuer certificate is valid for at least 60 days", "expires in 29 days")
		if err := secrets.Delete(ctx, check.IssuerSecret, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		old.ResourceVersion, old.UID = "", ""
		if _, err := secrets.Create(ctx, old, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		checkOK(t)
	})

	t.Run("policy CRD without the version destination reads", func(t *testing.T) {
		// An older linkerd-crds chart: servers without v1beta3 served.
		ext := apiextclient.NewForConfigOrDie(c.env.Config).ApiextensionsV1().CustomResourceDefinitions()
		crd, err := ext.Get(ctx, "servers.policy.linkerd.io", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		orig := crd.DeepCopy()
		for i := range crd.Spec.Versions {
			if crd.Spec.Versions[i].Name == "v1beta3" {
				crd.Spec.Versions[i].Served = false
			}
		}
		if _, err := ext.Update(ctx, crd, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		checkFails(t, "policy CRDs serve the versions the control plane reads", "servers.policy.linkerd.io does not serve v1beta3")
		restored, err := ext.Get(ctx, orig.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		restored.Spec.Versions = orig.Spec.Versions
		if _, err := ext.Update(ctx, restored, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		checkOK(t)
	})

	t.Run("missing CRD", func(t *testing.T) {
		ext := apiextclient.NewForConfigOrDie(c.env.Config)
		if err := ext.ApiextensionsV1().CustomResourceDefinitions().Delete(ctx, "httproutes.policy.linkerd.io", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		checkFails(t, "control plane CustomResourceDefinitions exist and are established", "httproutes.policy.linkerd.io")
	})
}

// makeHealthy writes what the controllers and kubelet would: Deployment
// statuses, one Ready pod per Deployment (from its pod template, with a
// ready proxy) and the injector Service's EndpointSlice.
func (c *cluster) makeHealthy(t *testing.T, ctx context.Context, ns string) {
	t.Helper()
	for _, name := range check.Deployments {
		deps := c.kube.AppsV1().Deployments(ns)
		d, err := deps.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		n := *d.Spec.Replicas
		d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: n, ReadyReplicas: n, AvailableReplicas: n, UpdatedReplicas: n}
		if _, err := deps.UpdateStatus(ctx, d, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		podName := name + "-0"
		pods := c.kube.CoreV1().Pods(ns)
		if _, err := pods.Get(ctx, podName, metav1.GetOptions{}); err == nil {
			continue
		}
		pod := &corev1.Pod{ObjectMeta: *d.Spec.Template.ObjectMeta.DeepCopy(), Spec: *d.Spec.Template.Spec.DeepCopy()}
		pod.Name, pod.Namespace, pod.Spec.NodeName = podName, ns, "node"
		pod, err = pods.Create(ctx, pod, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		now := metav1.Now()
		pod.Status.Phase = corev1.PodRunning
		pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now}}
		for _, ic := range pod.Spec.InitContainers {
			pod.Status.InitContainerStatuses = append(pod.Status.InitContainerStatuses, corev1.ContainerStatus{Name: ic.Name, Image: ic.Image, Ready: ic.RestartPolicy != nil, Started: ptr.To(true),
				State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}})
		}
		for _, ct := range pod.Spec.Containers {
			pod.Status.ContainerStatuses = append(pod.Status.ContainerStatuses, corev1.ContainerStatus{Name: ct.Name, Image: ct.Image, Ready: true, Started: ptr.To(true),
				State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}})
		}
		if _, err := pods.UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// The webhooks' Services, as the EndpointSlice controller would fill them.
	slices := c.kube.DiscoveryV1().EndpointSlices(ns)
	for _, svc := range []struct {
		name, port string
		number     int32
	}{{"linkerd-proxy-injector", "proxy-injector", 8443}, {"linkerd-policy-validator", "policy-https", 9443}} {
		if _, err := slices.Get(ctx, svc.name+"-1", metav1.GetOptions{}); err == nil {
			continue
		}
		slice := &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Name: svc.name + "-1", Namespace: ns, Labels: map[string]string{discoveryv1.LabelServiceName: svc.name}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.5"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
			Ports:       []discoveryv1.EndpointPort{{Name: ptr.To(svc.port), Port: ptr.To(svc.number)}},
		}
		if _, err := slices.Create(ctx, slice, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

func waitEstablished(t *testing.T, ctx context.Context, c *cluster) {
	t.Helper()
	ext := apiextclient.NewForConfigOrDie(c.env.Config)
	for _, name := range check.CRDs {
		err := wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			crd, err := ext.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			for _, cond := range crd.Status.Conditions {
				if cond.Type == apiextv1.Established && cond.Status == apiextv1.ConditionTrue {
					return true, nil
				}
			}
			return false, nil
		})
		if err != nil {
			t.Fatalf("CRD %s not established: %v", name, err)
		}
	}
}

func write(t *testing.T, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(name, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// testCA is a trust anchor that signs issuers of any lifetime.
type testCA struct {
	*pkitest.CA
	rootPEM []byte
}

func newTestCA(t *testing.T, lifetime time.Duration) *testCA {
	t.Helper()
	ca := pkitest.NewRoot(t, "root.linkerd.cluster.local", pkitest.Options{NotAfter: time.Now().Add(lifetime)})
	return &testCA{CA: ca, rootPEM: ca.CertPEM()}
}

// issuer returns an issuer certificate and its key as linkerd install
// writes them (the key in SEC 1 form).
func (ca *testCA) issuer(t *testing.T, lifetime time.Duration) (crtPEM, keyPEM []byte) {
	t.Helper()
	key := pkitest.ECKey(t)
	iss := pkitest.NewIssuer(t, "identity.linkerd.cluster.local", ca.CA, pkitest.Options{Key: key, NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(lifetime)})
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pkitest.CertsPEM(iss.Cert), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}
