//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/linkerd-go/linkerd-go/tools/cli/pki"
	"github.com/linkerd-go/linkerd-go/tools/dev/cluster"
	"github.com/linkerd-go/linkerd-go/tools/dev/demo"
	"github.com/linkerd-go/linkerd-go/tools/dev/images"
)

const (
	namespace = "linkerd"
	// upgradeTag is the tag the README's component-change lines build
	// destination's image with and upgrade it to, alone.
	upgradeTag = "my-fix"
	// readmeImageDir is where those lines write the image.
	readmeImageDir = "/tmp/img"
	// stepTimeout bounds each wait (pods Ready, a rollout, an uninstall).
	stepTimeout = 3 * time.Minute
)

// components are the control-plane Deployments, by their
// linkerd.io/control-plane-component label.
var components = map[string]string{
	"identity":       "linkerd-identity",
	"destination":    "linkerd-destination",
	"proxy-injector": "linkerd-proxy-injector",
}

// TestMesh is the whole story on one dev cluster, in order: the install
// steps of the README, the demo workloads meshed and exercised, linkerd check
// healthy and failing, destination upgraded alone, uninstall, and the
// cert-manager layout with the demo again. The cluster comes up and the
// images are built and loaded once.
func TestMesh(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	c, err := cluster.New(testLog{t})
	if err != nil {
		t.Fatal(err)
	}
	if s := c.Status(ctx); anyRunning(s) {
		t.Fatalf("a dev cluster is already running (%v): run `make cluster-down` first", s.Components)
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root, err := images.FindRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	crdsChart := filepath.Join(root, "deploy", "charts", "linkerd-crds")
	cpChart := filepath.Join(root, "deploy", "charts", "linkerd-control-plane")

	// The images build while the cluster comes up.
	imageDir := t.TempDir()
	buildDone := make(chan struct{})
	var buildErr error
	go func() {
		defer close(buildDone)
		buildErr = buildImages(ctx, t, c, imageDir)
	}()
	// Runs last: a test that stops early stops the build and waits for it
	// (it logs to t).
	t.Cleanup(func() {
		cancel()
		<-buildDone
	})

	before := c.HostSnapshot(ctx)
	var kube *kubernetes.Clientset
	// The demo's next steps end with the one that stops the cluster: it is
	// typed here, in the shell that typed the others, and Down after it
	// finds nothing to do.
	var nextSteps nextStepsSession
	t.Cleanup(func() {
		if t.Failed() && kube != nil {
			for _, ns := range []string{namespace, demoNS, certManagerDemoNS} {
				dumpNamespace(t, kube, ns)
			}
		}
		if nextSteps.sh != nil {
			finishNextSteps(t, c, &nextSteps)
		}
		if err := c.Down(context.Background()); err != nil {
			t.Errorf("down: %v", err)
		}
		if diff := cluster.DiffSnapshots(before, c.HostSnapshot(context.Background())); len(diff) > 0 {
			t.Errorf("host state differs after down:\n%s", strings.Join(diff, "\n"))
		}
	})
	start := time.Now()
	if err := c.Up(ctx); err != nil {
		t.Fatalf("up: %v", err)
	}
	t.Logf("cluster up in %s", time.Since(start).Round(100*time.Millisecond))
	if kube, err = c.Client(); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	<-buildDone
	if err := buildErr; err != nil {
		t.Fatalf("building the images: %v", err)
	}
	t.Logf("images built %s after the cluster was up", time.Since(start).Round(100*time.Millisecond))
	tarballs, err := filepath.Glob(filepath.Join(imageDir, "*", "*.tar"))
	if err != nil || len(tarballs) != len(images.Components)+1 {
		t.Fatalf("image tarballs: %v %v", tarballs, err)
	}
	for _, tarball := range tarballs {
		if err := c.LoadImage(ctx, tarball); err != nil {
			t.Fatal(err)
		}
	}

	// The user's folder: the certificates, named as in the seed's commands
	// (valid for a year: linkerd check wants 60 days).
	work := t.TempDir()
	writePKI(t, work, pki.DefaultLifetime)
	helm := helmRunner(t, ctx, c, work)

	t.Run("install", func(t *testing.T) {
		helm("install", "linkerd-crds", crdsChart, "-n", "linkerd", "--create-namespace")
		start := time.Now()
		helm("install", "linkerd-control-plane", "-n", "linkerd",
			"--set-file", "identityTrustAnchorsPEM=ca.crt",
			"--set-file", "identity.issuer.tls.crtPEM=issuer.crt",
			"--set-file", "identity.issuer.tls.keyPEM=issuer.key",
			cpChart)
		waitControlPlaneReady(t, ctx, kube)
		t.Logf("every control-plane pod Ready %s after helm install", time.Since(start).Round(100*time.Millisecond))
		checkProxies(t, ctx, kube)
		checkInjection(t, ctx, kube)
	})
	if t.Failed() {
		return
	}

	t.Run("demo", func(t *testing.T) { testDemo(t, ctx, kube, c, root, &nextSteps) })
	if t.Failed() {
		return
	}

	t.Run("upgrade-destination-alone", func(t *testing.T) {
		podsBefore := controlPlanePods(t, ctx, kube)
		gens := generations(t, ctx, kube)
		secret, err := kube.CoreV1().Secrets(namespace).Get(ctx, "linkerd-proxy-injector-k8s-tls", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// As a user changes one component of the dev cluster: the
		// README's lines, as they are there.
		start := time.Now()
		runREADMELines(t, c, root, "component-change")
		waitUntil(t, ctx, "destination rolled out with tag "+upgradeTag, func() error {
			pods := controlPlanePods(t, ctx, kube)
			dst := pods["destination"]
			if len(dst) != 1 {
				return fmt.Errorf("%d destination pods", len(dst))
			}
			if img := containerImage(dst[0], "destination"); img != images.Ref(images.DefaultRepositoryPrefix, "destination", upgradeTag) {
				return fmt.Errorf("destination runs %s", img)
			}
			if !ready(dst[0]) {
				return fmt.Errorf("new destination pod %s not Ready", dst[0].Name)
			}
			return nil
		})
		t.Logf("destination rebuilt, loaded, upgraded alone and Ready %s after the README's lines started", time.Since(start).Round(100*time.Millisecond))
		after := controlPlanePods(t, ctx, kube)
		for _, comp := range []string{"identity", "proxy-injector"} {
			if !slices.Equal(uids(podsBefore[comp]), uids(after[comp])) {
				t.Errorf("%s pods changed: %v → %v", comp, uids(podsBefore[comp]), uids(after[comp]))
			}
			for _, p := range after[comp] {
				for _, cs := range append(p.Status.InitContainerStatuses, p.Status.ContainerStatuses...) {
					if cs.RestartCount != 0 {
						t.Errorf("%s/%s restarted %d times", p.Name, cs.Name, cs.RestartCount)
					}
				}
			}
		}
		for name, gen := range generations(t, ctx, kube) {
			if changed := gen != gens[name]; changed != (name == "linkerd-destination") {
				t.Errorf("Deployment %s: generation %d → %d", name, gens[name], gen)
			}
		}
		secretAfter, err := kube.CoreV1().Secrets(namespace).Get(ctx, "linkerd-proxy-injector-k8s-tls", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, key := range []string{"tls.crt", "tls.key", "ca.crt"} {
			if !bytes.Equal(secret.Data[key], secretAfter.Data[key]) {
				t.Errorf("the upgrade changed the webhook certificate (%s)", key)
			}
		}
		checkProxies(t, ctx, kube)
		checkInjection(t, ctx, kube)
	})
	if t.Failed() {
		return
	}

	t.Run("check-identity-scaled-to-zero", func(t *testing.T) { testCheckIdentityDown(t, ctx, kube, c) })
	if t.Failed() {
		return
	}

	t.Run("uninstall", func(t *testing.T) {
		deleteNamespace(t, ctx, kube, demoNS)
		helm("uninstall", "linkerd-control-plane", "-n", "linkerd")
		waitUntil(t, ctx, "control-plane pods gone", func() error {
			pods, err := kube.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: "linkerd.io/control-plane-ns=" + namespace})
			if err != nil {
				return err
			}
			if n := len(pods.Items); n > 0 {
				return fmt.Errorf("%d pods left", n)
			}
			return nil
		})
	})
	if t.Failed() {
		return
	}

	t.Run("cert-manager", func(t *testing.T) {
		// What cert-manager writes: a kubernetes.io/tls Secret with tls.crt,
		// tls.key and ca.crt. New certificates, the issuer with a 12-hour
		// lifetime, so that identity's metrics show which issuer it uses and
		// linkerd check has an issuer (and only an issuer) to complain about.
		creds := writePKI(t, work, 12*time.Hour)
		issuer, err := pki.ParseCertificates(creds.IssuerCertPEM)
		if err != nil {
			t.Fatal(err)
		}
		_, err = kube.CoreV1().Secrets(namespace).Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "linkerd-identity-issuer"},
			Type:       corev1.SecretTypeTLS,
			Data:       map[string][]byte{"tls.crt": creds.IssuerCertPEM, "tls.key": creds.IssuerKeyPEM, "ca.crt": creds.TrustAnchorPEM},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		helm("install", "linkerd-control-plane", "-n", "linkerd",
			"--set-file", "identityTrustAnchorsPEM=ca.crt",
			"--set", "identity.issuer.scheme=kubernetes.io/tls",
			cpChart)
		waitControlPlaneReady(t, ctx, kube)
		t.Logf("every control-plane pod Ready %s after helm install (cert-manager layout)", time.Since(start).Round(100*time.Millisecond))
		checkProxies(t, ctx, kube)
		checkInjection(t, ctx, kube)
		// identity serves with the pre-created issuer.
		id := controlPlanePods(t, ctx, kube)["identity"][0]
		metrics := podGet(t, ctx, kube, namespace, id.Name, 9990, "metrics")
		got := metricValue(metrics, "identity_issuer_cert_expiration_timestamp_seconds")
		if want := float64(issuer[0].NotAfter.Unix()); got != want {
			t.Errorf("identity's issuer expires at %v, want the pre-created issuer's %v", got, want)
		}
		if t.Failed() {
			return
		}
		// The demo on this control plane: pods certified by the
		// cert-manager issuer, a request mTLS end to end.
		t.Run("demo", func(t *testing.T) { testCertManagerDemo(t, ctx, kube) })
		// That issuer expires in 12 hours: linkerd check says so.
		t.Run("check-issuer-expiring", func(t *testing.T) { testCheckIssuerExpiring(t, ctx, c) })
	})
}

// buildImages builds every component's image for this machine's
// architecture, and the demo app's.
func buildImages(ctx context.Context, t *testing.T, c *cluster.Cluster, dir string) error {
	platform := []string{"linux/" + runtime.GOARCH}
	log := testLog{t}
	if _, err := images.Build(ctx, images.Options{OutDir: filepath.Join(dir, "dev"), Platforms: platform, Revision: "e2e", Log: log}); err != nil {
		return err
	}
	_, err := demo.BuildImage(ctx, c, filepath.Join(dir, "demo"))
	return err
}

// runREADMELines types the lines of README.md's block name into a shell
// started in the checkout, after the KUBECONFIG export of the demo's next
// steps (the state those lines expect); each must exit 0.
func runREADMELines(t *testing.T, c *cluster.Cluster, root, name string) {
	t.Helper()
	lines, err := readmeLines(root, name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(readmeImageDir); errors.Is(err, fs.ErrNotExist) {
		t.Cleanup(func() { os.RemoveAll(readmeImageDir) })
	}
	export := ""
	for _, s := range demo.NextSteps(root, c.KubeconfigPath(), filepath.Join(c.BinDir, "kubectl"), demoNS) {
		if strings.HasPrefix(s.Command, "export KUBECONFIG=") {
			export = s.Command
		}
	}
	sh, err := startUserShell(context.Background(), root)
	if err != nil {
		t.Fatal(err)
	}
	defer sh.close()
	for _, line := range append([]string{export}, lines...) {
		start := time.Now()
		out, status, err := sh.run(line, stepTimeout)
		t.Logf("$ %s   (exit %d, %s)\n%s", line, status, time.Since(start).Round(100*time.Millisecond), out)
		if err != nil || status != 0 {
			t.Fatalf("%s: exit status %d, %v", line, status, err)
		}
	}
}

// helmRunner runs the pinned helm binary in the user's folder against the
// cluster, with its own caches.
func helmRunner(t *testing.T, ctx context.Context, c *cluster.Cluster, work string) func(args ...string) {
	helmDir := t.TempDir()
	return func(args ...string) {
		t.Helper()
		cmd := exec.CommandContext(ctx, filepath.Join(c.BinDir, "helm"), args...)
		cmd.Dir = work
		cmd.Env = append(os.Environ(),
			"KUBECONFIG="+c.KubeconfigPath(),
			"HELM_CACHE_HOME="+filepath.Join(helmDir, "cache"),
			"HELM_CONFIG_HOME="+filepath.Join(helmDir, "config"),
			"HELM_DATA_HOME="+filepath.Join(helmDir, "data"),
		)
		start := time.Now()
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		t.Logf("helm %s: %s", args[0], time.Since(start).Round(10*time.Millisecond))
	}
}

// controlPlanePods lists the control plane's pods by component, leaving out
// pods on their way out.
func controlPlanePods(t *testing.T, ctx context.Context, kube kubernetes.Interface) map[string][]corev1.Pod {
	t.Helper()
	list, err := kube.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: "linkerd.io/control-plane-ns=" + namespace})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]corev1.Pod{}
	for _, p := range list.Items {
		if p.DeletionTimestamp != nil {
			continue
		}
		comp := p.Labels["linkerd.io/control-plane-component"]
		out[comp] = append(out[comp], p)
	}
	return out
}

func ready(p corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func uids(pods []corev1.Pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, string(p.UID))
	}
	slices.Sort(out)
	return out
}

func containerImage(p corev1.Pod, name string) string {
	for _, c := range p.Spec.Containers {
		if c.Name == name {
			return c.Image
		}
	}
	return ""
}

// waitControlPlaneReady waits until each component has exactly one pod and
// every one is Ready (the proxy's readiness means it holds a certificate).
func waitControlPlaneReady(t *testing.T, ctx context.Context, kube kubernetes.Interface) {
	t.Helper()
	waitUntil(t, ctx, "every control-plane pod Ready", func() error {
		pods := controlPlanePods(t, ctx, kube)
		var notReady []string
		for comp := range components {
			if len(pods[comp]) != 1 {
				notReady = append(notReady, fmt.Sprintf("%s: %d pods", comp, len(pods[comp])))
				continue
			}
			if p := pods[comp][0]; !ready(p) {
				notReady = append(notReady, p.Name+" not Ready")
			}
		}
		if len(notReady) > 0 {
			slices.Sort(notReady)
			return fmt.Errorf("%s", strings.Join(notReady, ", "))
		}
		return nil
	})
}

func generations(t *testing.T, ctx context.Context, kube kubernetes.Interface) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, name := range components {
		d, err := kube.AppsV1().Deployments(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		out[name] = d.Generation
	}
	return out
}

// checkProxies checks that each control-plane pod runs linkerd-init and the
// proxy as a native sidecar, and that the proxy holds a certificate for the
// pod's identity: /ready answers, and its certificate expiry is in the
// future (read through the API server's pod proxy).
func checkProxies(t *testing.T, ctx context.Context, kube kubernetes.Interface) {
	t.Helper()
	for _, pods := range controlPlanePods(t, ctx, kube) {
		for _, p := range pods {
			checkPodProxy(t, ctx, kube, p)
		}
	}
}

// checkPodProxy checks that a pod has linkerd-init and then linkerd-proxy as
// a native sidecar (an init container with restartPolicy Always) and that
// its proxy is ready and holds a certificate that has not expired.
func checkPodProxy(t *testing.T, ctx context.Context, kube kubernetes.Interface, p corev1.Pod) {
	t.Helper()
	var names []string
	for _, c := range p.Spec.InitContainers {
		names = append(names, c.Name)
	}
	if !slices.Equal(names, []string{"linkerd-init", "linkerd-proxy"}) {
		t.Errorf("%s: init containers %v", p.Name, names)
		return
	}
	if rp := p.Spec.InitContainers[1].RestartPolicy; rp == nil || *rp != corev1.ContainerRestartPolicyAlways {
		t.Errorf("%s: linkerd-proxy is not a native sidecar (restartPolicy %v)", p.Name, rp)
	}
	if body := podGet(t, ctx, kube, p.Namespace, p.Name, 4191, "ready"); strings.TrimSpace(body) != "ready" {
		t.Errorf("%s: proxy /ready says %q", p.Name, body)
	}
	exp := metricValue(podGet(t, ctx, kube, p.Namespace, p.Name, 4191, "metrics"), "identity_cert_expiration_timestamp_seconds")
	if exp <= float64(time.Now().Unix()) {
		t.Errorf("%s/%s: proxy certificate expiry %v is not in the future", p.Namespace, p.Name, exp)
	}
}

// checkInjection creates a pod in an annotated namespace with a server-side
// dry run: the API server calls the injector's webhook through its Service,
// verifying its certificate with the webhook's caBundle, and the pod comes
// back with the proxy.
func checkInjection(t *testing.T, ctx context.Context, kube kubernetes.Interface) {
	t.Helper()
	ns := "e2e-injected"
	_, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: ns, Annotations: map[string]string{"linkerd.io/inject": "enabled"}}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	pod, err := kube.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "app"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: cluster.TestAppImage}}},
	}, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range pod.Spec.InitContainers {
		names = append(names, c.Name)
	}
	if !slices.Equal(names, []string{"linkerd-init", "linkerd-proxy"}) {
		t.Errorf("the injector did not inject the pod: init containers %v, annotations %v", names, pod.Annotations)
	}
}

// podGet reads a path of a pod's port through the API server's pod proxy.
func podGet(t *testing.T, ctx context.Context, kube kubernetes.Interface, ns, pod string, port int, path string) string {
	t.Helper()
	b, err := kube.CoreV1().RESTClient().Get().Namespace(ns).Resource("pods").
		Name(pod + ":" + strconv.Itoa(port)).SubResource("proxy").Suffix(path).DoRaw(ctx)
	if err != nil {
		t.Errorf("GET %s:%d/%s: %v", pod, port, path, err)
	}
	return string(b)
}

// metricValue returns the value of an unlabelled metric in Prometheus text,
// or 0.
func metricValue(text, name string) float64 {
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == name {
			v, _ := strconv.ParseFloat(f[1], 64)
			return v
		}
	}
	return 0
}

// waitUntil polls check every 500 ms until it returns nil, or fails the test
// after stepTimeout.
func waitUntil(t *testing.T, ctx context.Context, what string, check func() error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		err := check()
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not after %s: %v", what, stepTimeout, err)
		case <-tick.C:
		}
	}
}

// writePKI writes a trust anchor (ca.crt) and an issuer it signs
// (issuer.crt, issuer.key) into dir, made the way Linkerd documents (ECDSA
// P-256, an intermediate CA with path length 0) by the CLI's generator: the
// root valid for a year, the issuer for issuerLifetime.
func writePKI(t *testing.T, dir string, issuerLifetime time.Duration) pki.Credentials {
	t.Helper()
	creds, err := pki.GenerateLifetimes(namespace, "cluster.local", time.Now(), pki.DefaultLifetime, issuerLifetime)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"ca.crt": creds.TrustAnchorPEM, "issuer.crt": creds.IssuerCertPEM, "issuer.key": creds.IssuerKeyPEM} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return creds
}

// --- Diagnostics.

// dumpNamespace prints what explains a failure: each pod's status and the
// logs of every container, and the namespace's events.
func dumpNamespace(t *testing.T, kube kubernetes.Interface, ns string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		return
	}
	pods, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Logf("listing pods: %v", err)
		return
	}
	for _, p := range pods.Items {
		var b strings.Builder
		fmt.Fprintf(&b, "pod %s/%s: phase %s, node %s, IP %s\n", ns, p.Name, p.Status.Phase, p.Spec.NodeName, p.Status.PodIP)
		for _, c := range p.Status.Conditions {
			fmt.Fprintf(&b, "  condition %s=%s %s %s\n", c.Type, c.Status, c.Reason, c.Message)
		}
		for _, cs := range append(p.Status.InitContainerStatuses, p.Status.ContainerStatuses...) {
			fmt.Fprintf(&b, "  container %s: ready=%v restarts=%d image=%s state=%s\n", cs.Name, cs.Ready, cs.RestartCount, cs.Image, describeState(cs.State))
			if cs.LastTerminationState.Terminated != nil {
				fmt.Fprintf(&b, "    last: %s\n", describeState(cs.LastTerminationState))
			}
		}
		t.Log(b.String())
		restarted := map[string]bool{}
		for _, cs := range append(p.Status.InitContainerStatuses, p.Status.ContainerStatuses...) {
			restarted[cs.Name] = cs.RestartCount > 0
		}
		for _, c := range append(p.Spec.InitContainers, p.Spec.Containers...) {
			for _, previous := range []bool{false, true} {
				if previous && !restarted[c.Name] {
					continue
				}
				tail := int64(60)
				logs, err := kube.CoreV1().Pods(ns).GetLogs(p.Name, &corev1.PodLogOptions{Container: c.Name, TailLines: &tail, Previous: previous}).DoRaw(ctx)
				if err != nil {
					logs = []byte("(no logs: " + err.Error() + ")")
				}
				which := ""
				if previous {
					which = " (previous run)"
				}
				t.Logf("--- logs of %s/%s/%s%s ---\n%s", ns, p.Name, c.Name, which, logs)
			}
		}
	}
	events, err := kube.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Logf("listing events: %v", err)
		return
	}
	slices.SortFunc(events.Items, func(a, b corev1.Event) int { return a.LastTimestamp.Compare(b.LastTimestamp.Time) })
	var b strings.Builder
	for _, e := range events.Items {
		fmt.Fprintf(&b, "%s %s %s/%s %s: %s\n", e.LastTimestamp.Format(time.TimeOnly), e.Type, e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Reason, e.Message)
	}
	t.Logf("--- events in %s ---\n%s", ns, b.String())
}

func describeState(s corev1.ContainerState) string {
	switch {
	case s.Running != nil:
		return "running since " + s.Running.StartedAt.Format(time.TimeOnly)
	case s.Waiting != nil:
		return "waiting: " + s.Waiting.Reason + " " + s.Waiting.Message
	case s.Terminated != nil:
		return fmt.Sprintf("terminated: exit %d %s %s", s.Terminated.ExitCode, s.Terminated.Reason, s.Terminated.Message)
	}
	return "unknown"
}

func anyRunning(s cluster.Status) bool {
	for _, pid := range s.Components {
		if pid != 0 {
			return true
		}
	}
	return false
}

type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
