//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	identityv1 "github.com/linkerd-go/linkerd-go/api/linkerd/identity/v1"
	"github.com/linkerd-go/linkerd-go/api/mesh"
	"github.com/linkerd-go/linkerd-go/tools/cli/check"
	"github.com/linkerd-go/linkerd-go/tools/cli/stat"
	"github.com/linkerd-go/linkerd-go/tools/dev/cluster"
	"github.com/linkerd-go/linkerd-go/tools/dev/demo"
	"github.com/linkerd-go/linkerd-go/tools/dev/demo/app"
)

const (
	// demoNS holds the demo on the first install, certManagerDemoNS on the
	// cert-manager one.
	demoNS            = "demo"
	certManagerDemoNS = "demo-cm"
	// spreadRequests is how many frontend → backend requests are counted
	// before judging how they spread over the replicas; minShare is the
	// share each replica must have answered (a third would be even).
	spreadRequests = 150
	minShare       = 0.1
	// afterRestart is how many load requests must complete after the new
	// destination pod is Ready, inside the window that is judged.
	afterRestart = 50
)

// identityName is the mesh identity of ServiceAccount sa in ns.
func identityName(sa, ns string) string {
	return identityv1.Name{ServiceAccount: sa, Namespace: ns, ControlPlaneNamespace: namespace, TrustDomain: identityv1.DefaultTrustDomain}.String()
}

// testDemo deploys the demo app in a namespace annotated for injection and
// checks what the mesh does for it, from outside: the API server, and the
// proxies' metrics read through the pods/proxy subresource. Last, it types
// the next steps `make demo` prints into a shell, as printed, but the one
// that stops the cluster: that one is left in session for TestMesh's end.
func testDemo(t *testing.T, ctx context.Context, kube kubernetes.Interface, c *cluster.Cluster, root string, session *nextStepsSession) {
	ns := demoNS
	t.Run("deploy", func(t *testing.T) { deployDemo(t, ctx, kube, ns, true) })
	if t.Failed() {
		return
	}
	t.Run("injected-and-certified", func(t *testing.T) { checkDemoPods(t, ctx, kube, ns) })
	t.Run("inject-disabled-pod-left-alone", func(t *testing.T) {
		p, err := kube.CoreV1().Pods(ns).Get(ctx, demo.Unmeshed, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range append(p.Spec.InitContainers, p.Spec.Containers...) {
			if strings.HasPrefix(c.Name, "linkerd-") {
				t.Errorf("pod %s annotated %s=disabled has container %s", p.Name, mesh.AnnotationInject, c.Name)
			}
		}
		for k := range p.Labels {
			if strings.HasPrefix(k, "linkerd.io/") {
				t.Errorf("pod %s annotated %s=disabled has label %s", p.Name, mesh.AnnotationInject, k)
			}
		}
		if !ready(*p) {
			t.Errorf("pod %s is not Ready", p.Name)
		}
	})
	t.Run("mtls", func(t *testing.T) { checkMTLS(t, ctx, kube, ns, true) })
	t.Run("spread-over-replicas", func(t *testing.T) { checkSpread(t, ctx, kube, ns) })
	t.Run("job-completes", func(t *testing.T) { runJob(t, ctx, kube, ns, "smoke") })
	t.Run("stat", func(t *testing.T) { checkStat(t, ctx, kube, ns) })
	t.Run("check-healthy", func(t *testing.T) {
		report := runCheck(t, ctx, c, ns)
		if !report.Success {
			t.Fatalf("linkerd check failed on a healthy install: %+v", report.Failed())
		}
		t.Logf("linkerd check: %d checks passed", len(report.Results))
	})
	t.Run("inbound-policy", func(t *testing.T) { testPolicy(t, ctx, kube, c, ns) })
	t.Run("destination-restart-keeps-traffic", func(t *testing.T) { checkDestinationRestart(t, ctx, kube, ns) })
	t.Run("control-plane-outage-with-pod-replacement", func(t *testing.T) { checkControlPlaneOutage(t, ctx, kube, ns) })
	t.Run("next-steps", func(t *testing.T) { runNextSteps(t, ctx, c, root, ns, session) })
}

// nextStepsSession is the shell that typed the demo's next steps, and the
// last of them (it stops the cluster), still to be typed.
type nextStepsSession struct {
	sh   *userShell
	last demo.Step
}

// runNextSteps types what `make demo` prints as next steps (demo.NextSteps,
// the list dev demo prints) into one shell started in the checkout, in
// workspace mode, but the last; each must exit 0 and show what it is for.
func runNextSteps(t *testing.T, ctx context.Context, c *cluster.Cluster, root, ns string, session *nextStepsSession) {
	steps := demo.NextSteps(root, c.KubeconfigPath(), filepath.Join(c.BinDir, "kubectl"), ns)
	// The shell outlives TestMesh's body (the last step is typed in its
	// cleanup, after ctx is cancelled); each typed line has its own timeout.
	sh, err := startUserShell(context.WithoutCancel(ctx), root)
	if err != nil {
		t.Fatal(err)
	}
	session.sh, session.last = sh, steps[len(steps)-1]
	for _, s := range steps[:len(steps)-1] {
		start := time.Now()
		out, status, err := sh.run(s.Command, stepTimeout)
		t.Logf("$ %s   (exit %d, %s)\n%s", s.Command, status, time.Since(start).Round(100*time.Millisecond), out)
		if err != nil {
			t.Fatalf("%s: %v", s.Command, err)
		}
		if status != 0 {
			t.Errorf("%s: exit status %d", s.Command, status)
			continue
		}
		if err := nextStepShows(s.Command, ns, out); err != nil {
			t.Errorf("%s: %v", s.Command, err)
		}
	}
}

// nextStepShows checks the output of a next step for what the step is for:
// a shell built-in prints nothing; the CLI's commands and kubectl show the
// demo as the rest of testDemo found it.
func nextStepShows(command, ns, out string) error {
	var want []string // regular expressions the output must match
	switch {
	case strings.HasPrefix(command, "export ") || strings.HasPrefix(command, "cd "):
		if out != "" {
			return fmt.Errorf("printed %q", out)
		}
	case strings.Contains(command, "linkerd stat deploy"):
		want = []string{
			fmt.Sprintf(`(?m)^%s\s+%d/%d\s+100\.00%%\s`, demo.Backend, demo.BackendReplicas, demo.BackendReplicas),
			fmt.Sprintf(`(?m)^%s\s+1/1\s+100\.00%%\s`, demo.Frontend),
			fmt.Sprintf(`(?m)^%s\s+1/1\s`, demo.Load),
		}
	case strings.Contains(command, "linkerd check"):
		want = []string{`(?m)^Status check results are ✓$`}
	case strings.Contains(command, "linkerd diagnostics proxy-metrics"):
		want = []string{`(?m)^request_total\{[^}]*direction="outbound"`, `(?m)^identity_cert_expiration_timestamp_seconds `}
	case strings.Contains(command, "linkerd identity deploy/"+demo.Backend):
		if n := strings.Count(out, identityName(demo.Backend, ns)); n != demo.BackendReplicas {
			return fmt.Errorf("%d lines name %s, want one per backend pod (%d)", n, identityName(demo.Backend, ns), demo.BackendReplicas)
		}
	case strings.Contains(command, " get pods"):
		for _, d := range demo.Deployments {
			want = append(want, fmt.Sprintf(`(?m)^%s-\S+\s+\d+/\d+\s+Running\s`, d))
		}
	}
	for _, re := range want {
		if !regexp.MustCompile(re).MatchString(out) {
			return fmt.Errorf("output does not match %s", re)
		}
	}
	return nil
}

// finishNextSteps types the last next step, which stops the cluster, into
// the shell that typed the others; afterwards nothing of the cluster runs.
func finishNextSteps(t *testing.T, c *cluster.Cluster, session *nextStepsSession) {
	t.Helper()
	defer func() {
		if err := session.sh.close(); err != nil {
			t.Logf("the next steps' shell: %v", err)
		}
	}()
	start := time.Now()
	out, status, err := session.sh.run(session.last.Command, 5*time.Minute)
	t.Logf("$ %s   (exit %d, %s)\n%s", session.last.Command, status, time.Since(start).Round(100*time.Millisecond), out)
	if err != nil || status != 0 {
		t.Errorf("%s: exit status %d, %v", session.last.Command, status, err)
		return
	}
	if s := c.Status(context.Background()); anyRunning(s) {
		t.Errorf("after %s the cluster still runs: %v", session.last.Command, s.Components)
	}
}

// deployDemo applies the demo's objects (and the unmeshed pod) and waits
// for them to be Ready.
func deployDemo(t *testing.T, ctx context.Context, kube kubernetes.Interface, ns string, unmeshed bool) {
	t.Helper()
	objs := demo.Objects(demo.Options{Namespace: ns})
	if unmeshed {
		objs = append(objs, demo.UnmeshedPod(ns))
	}
	start := time.Now()
	if err := demo.Apply(ctx, kube, objs...); err != nil {
		t.Fatal(err)
	}
	// Applying again changes nothing (what a second `make demo` does).
	if err := demo.Apply(ctx, kube, objs...); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, ctx, "demo Deployments Ready", func() error {
		if err := demo.DeploymentsReady(ctx, kube, ns, demo.Deployments...); err != nil {
			return err
		}
		if unmeshed {
			p, err := kube.CoreV1().Pods(ns).Get(ctx, demo.Unmeshed, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if !ready(*p) {
				return fmt.Errorf("pod %s not Ready", p.Name)
			}
		}
		return nil
	})
	t.Logf("demo Ready in %s %s after applying", ns, time.Since(start).Round(100*time.Millisecond))
}

// checkDemoPods checks that every demo pod has the proxy as a native
// sidecar, with its ServiceAccount's identity, a certificate, and the
// labels the injector records.
func checkDemoPods(t *testing.T, ctx context.Context, kube kubernetes.Interface, ns string) {
	t.Helper()
	for _, d := range demo.Deployments {
		pods, err := demo.Pods(ctx, kube, ns, d)
		if err != nil {
			t.Fatal(err)
		}
		want := 1
		if d == demo.Backend {
			want = demo.BackendReplicas
		}
		if len(pods) != want {
			t.Errorf("%s: %d pods, want %d", d, len(pods), want)
		}
		for _, p := range pods {
			checkPodProxy(t, ctx, kube, p)
			if got := p.Labels["linkerd.io/proxy-deployment"]; got != d {
				t.Errorf("%s: label linkerd.io/proxy-deployment=%q, want %q", p.Name, got, d)
			}
			if got, want := stat.ProxyEnv(&p, "LINKERD2_PROXY_IDENTITY_LOCAL_NAME"), identityName(d, ns); got != want {
				t.Errorf("%s: proxy identity %q, want %q", p.Name, got, want)
			}
		}
	}
}

// checkMTLS waits for frontend → backend requests in the proxies' metrics
// and checks that every one went over mesh TLS: the frontend's outbound
// series to the backend say tls="true" and the backend's identity as
// server_id; each backend's inbound series from the frontend say tls="true"
// and the frontend's identity as client_id; and (when inbound is set) the
// frontend's inbound series from the load generator name its identity.
func checkMTLS(t *testing.T, ctx context.Context, kube kubernetes.Interface, ns string, inbound bool) {
	t.Helper()
	frontendID, backendID, loadID := identityName(demo.Frontend, ns), identityName(demo.Backend, ns), identityName(demo.Load, ns)
	frontend := onePod(t, ctx, kube, ns, demo.Frontend)
	var m map[string][]series
	waitUntil(t, ctx, "frontend → backend requests in the frontend's outbound metrics", func() error {
		var err error
		if m, err = proxyMetrics(ctx, kube, frontend); err != nil {
			return err
		}
		if sum(where(m["request_total"], map[string]string{"direction": "outbound", "dst_deployment": demo.Backend})) == 0 {
			return errors.New("no outbound requests to the backend yet")
		}
		if inbound && sum(where(m["request_total"], map[string]string{"direction": "inbound", "client_id": loadID})) == 0 {
			return fmt.Errorf("no inbound requests from %s at the frontend yet", loadID)
		}
		return nil
	})
	toBackend := where(m["request_total"], map[string]string{"direction": "outbound", "dst_deployment": demo.Backend})
	for _, s := range toBackend {
		if s.labels["tls"] != "true" || s.labels["server_id"] != backendID || s.labels["dst_namespace"] != ns {
			t.Errorf("frontend → backend series not mTLS to %s: %v = %v", backendID, s.labels, s.value)
		}
	}
	t.Logf("frontend → backend: %v requests, all tls=\"true\" server_id=%s", sum(toBackend), backendID)
	if inbound {
		for _, s := range where(m["request_total"], map[string]string{"direction": "inbound", "client_id": loadID}) {
			if s.labels["tls"] != "true" {
				t.Errorf("load → frontend series without mTLS: %v", s.labels)
			}
		}
	}
	if !inbound {
		return
	}
	backends, err := demo.Pods(ctx, kube, ns, demo.Backend)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range backends {
		waitUntil(t, ctx, b.Name+" inbound requests from the frontend", func() error {
			if m, err = proxyMetrics(ctx, kube, b); err != nil {
				return err
			}
			if sum(where(m["request_total"], map[string]string{"direction": "inbound", "client_id": frontendID})) == 0 {
				return fmt.Errorf("no inbound requests with client_id %s", frontendID)
			}
			return nil
		})
		for _, s := range where(m["request_total"], map[string]string{"direction": "inbound", "client_id": frontendID}) {
			if s.labels["tls"] != "true" {
				t.Errorf("%s: inbound series from the frontend without mTLS: %v", b.Name, s.labels)
			}
		}
	}
	t.Logf("each backend's inbound requests from the frontend: tls=\"true\" client_id=%s", frontendID)
}

// checkSpread counts, in each backend's inbound metrics, the requests from
// the frontend once they are spreadRequests or more in all, and checks
// that every replica answered at least minShare of them; the frontend's
// outbound series must name exactly the three backend pods.
func checkSpread(t *testing.T, ctx context.Context, kube kubernetes.Interface, ns string) {
	t.Helper()
	frontendID := identityName(demo.Frontend, ns)
	backends, err := demo.Pods(ctx, kube, ns, demo.Backend)
	if err != nil {
		t.Fatal(err)
	}
	if len(backends) != demo.BackendReplicas {
		t.Fatalf("%d backend pods, want %d", len(backends), demo.BackendReplicas)
	}
	// answered reads how many of the frontend's requests each backend has
	// served so far.
	answered := func() (map[string]float64, error) {
		n := map[string]float64{}
		for _, b := range backends {
			m, err := proxyMetrics(ctx, kube, b)
			if err != nil {
				return nil, err
			}
			n[b.Name] = sum(where(m["request_total"], map[string]string{"direction": "inbound", "client_id": frontendID}))
		}
		return n, nil
	}
	// Count from the moment every replica has served the frontend at least
	// once, i.e. is in its balancer: a replica that became Ready after the
	// load started has missed the requests before, which says nothing of
	// the balancing.
	var baseline map[string]float64
	waitUntil(t, ctx, "every backend replica answering the frontend", func() error {
		n, err := answered()
		if err != nil {
			return err
		}
		for pod, v := range n {
			if v == 0 {
				return fmt.Errorf("%s has answered none yet: %v", pod, n)
			}
		}
		baseline = n
		return nil
	})
	counts := map[string]float64{}
	waitUntil(t, ctx, fmt.Sprintf("%d more frontend → backend requests", spreadRequests), func() error {
		n, err := answered()
		if err != nil {
			return err
		}
		var total float64
		for pod, v := range n {
			counts[pod] = v - baseline[pod]
			total += counts[pod]
		}
		if total < spreadRequests {
			return fmt.Errorf("%v so far: %v", total, counts)
		}
		return nil
	})
	var total float64
	for _, n := range counts {
		total += n
	}
	t.Logf("requests answered per backend replica since each answered its first: %v", counts)
	for pod, n := range counts {
		if n < minShare*total {
			t.Errorf("%s answered %v of %v requests (less than %.0f%%): %v", pod, n, total, 100*minShare, counts)
		}
	}
	m, err := proxyMetrics(ctx, kube, onePod(t, ctx, kube, ns, demo.Frontend))
	if err != nil {
		t.Fatal(err)
	}
	byPod := map[string]float64{}
	for _, s := range where(m["request_total"], map[string]string{"direction": "outbound", "dst_deployment": demo.Backend}) {
		byPod[s.labels["dst_pod"]] += s.value
	}
	var names []string
	for _, b := range backends {
		names = append(names, b.Name)
	}
	if got := slices.Sorted(maps.Keys(byPod)); !slices.Equal(got, names) {
		t.Errorf("the frontend's outbound series name pods %v, want the backends %v", got, names)
	}
}

// runJob runs the demo Job to completion and checks that its pod was
// meshed (the native sidecar is what lets a meshed Job complete).
func runJob(t *testing.T, ctx context.Context, kube kubernetes.Interface, ns, name string) {
	t.Helper()
	start := time.Now()
	if err := demo.RunJob(ctx, kube, ns, name, 20, stepTimeout); err != nil {
		t.Fatal(err)
	}
	t.Logf("job %s completed %s after its creation", name, time.Since(start).Round(100*time.Millisecond))
	pods, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "job-name=" + name})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 1 {
		t.Fatalf("job %s has %d pods, want 1", name, len(pods.Items))
	}
	p := pods.Items[0]
	if !stat.HasProxy(&p) {
		t.Errorf("job pod %s has no proxy", p.Name)
	}
	if p.Status.Phase != corev1.PodSucceeded {
		t.Errorf("job pod %s: phase %s", p.Name, p.Status.Phase)
	}
	logs, err := kube.CoreV1().Pods(ns).GetLogs(p.Name, &corev1.PodLogOptions{Container: "job"}).DoRaw(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("job %s: %s", name, bytes.TrimSpace(logs))
}

// checkStat runs linkerd stat's collector over the demo namespace: the
// frontend and the backend show traffic, all of it successful.
func checkStat(t *testing.T, ctx context.Context, kube kubernetes.Interface, ns string) {
	t.Helper()
	rows, err := stat.Collect(ctx, kube, stat.Selector{Namespace: ns}, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var table bytes.Buffer
	if err := stat.WriteTable(&table, rows, false); err != nil {
		t.Fatal(err)
	}
	t.Logf("linkerd stat deploy -n %s:\n%s", ns, table.String())
	seen := map[string]bool{}
	for _, r := range rows {
		seen[r.Name] = true
		if len(r.Errors) > 0 {
			t.Errorf("%s: scrape errors %v", r.Name, r.Errors)
		}
		if r.MeshedPods != r.Pods || r.ScrapedPods != r.Pods || r.Pods == 0 {
			t.Errorf("%s: %d/%d pods meshed, %d scraped", r.Name, r.MeshedPods, r.Pods, r.ScrapedPods)
		}
		if r.Name != demo.Frontend && r.Name != demo.Backend {
			continue // the load generator is a client: only probes reach it
		}
		if r.RPS <= 0 || r.Requests == 0 {
			t.Errorf("%s: %v requests, %v RPS; want traffic", r.Name, r.Requests, r.RPS)
		}
		if r.SuccessRate == nil || *r.SuccessRate != 1 {
			t.Errorf("%s: success rate %v, want 100%%", r.Name, r.SuccessRate)
		}
		if r.LatencyP50 == nil || r.LatencyP99 == nil {
			t.Errorf("%s: no latency percentiles", r.Name)
		}
	}
	for _, d := range demo.Deployments {
		if !seen[d] {
			t.Errorf("stat has no row for Deployment %s", d)
		}
	}
}

// checkDestinationRestart deletes the destination pod while the load runs,
// and checks that no request failed from before the deletion until
// afterRestart requests after the new pod is Ready — by the load
// generator's own count and by the frontend's proxy — and that a new pod
// (the Job's) is meshed and served by the new destination.
func checkDestinationRestart(t *testing.T, ctx context.Context, kube kubernetes.Interface, ns string) {
	t.Helper()
	frontend := onePod(t, ctx, kube, ns, demo.Frontend)
	before := loadReport(t, ctx, kube, ns)
	frontBefore := frontendFailures(t, ctx, kube, frontend)
	old := controlPlanePods(t, ctx, kube)["destination"]
	if len(old) != 1 {
		t.Fatalf("%d destination pods", len(old))
	}
	if err := kube.CoreV1().Pods(namespace).Delete(ctx, old[0].Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	waitUntil(t, ctx, "a new destination pod Ready", func() error {
		pods := controlPlanePods(t, ctx, kube)["destination"]
		if len(pods) != 1 || pods[0].UID == old[0].UID || !ready(pods[0]) {
			return fmt.Errorf("destination pods %v", uids(pods))
		}
		return nil
	})
	t.Logf("destination pod %s deleted; its replacement Ready %s later", old[0].Name, time.Since(start).Round(100*time.Millisecond))
	mid := loadReport(t, ctx, kube, ns)
	waitUntil(t, ctx, fmt.Sprintf("%d more load requests completed", afterRestart), func() error {
		r, err := demo.LoadReport(ctx, kube, ns)
		if err != nil {
			return err
		}
		if done := r.Succeeded + r.Failed; done < mid.Sent+afterRestart {
			return fmt.Errorf("%d completed, waiting for %d", done, mid.Sent+afterRestart)
		}
		return nil
	})
	after := loadReport(t, ctx, kube, ns)
	t.Logf("load across the restart: %d requests succeeded, %d failed (backends %v)", after.Succeeded-before.Succeeded, after.Failed-before.Failed, after.Backends)
	if after.Failed != before.Failed {
		t.Errorf("%d load requests failed across the destination restart; last error: %s", after.Failed-before.Failed, after.LastError)
	}
	if after.Succeeded <= before.Succeeded {
		t.Errorf("no load request succeeded across the destination restart")
	}
	if f := frontendFailures(t, ctx, kube, frontend); f != frontBefore {
		t.Errorf("the frontend's proxy counted %v failed inbound responses across the restart", f-frontBefore)
	}
	// A pod started now is meshed by and discovers through the new pod.
	runJob(t, ctx, kube, ns, "smoke-after-restart")
}

func loadReport(t *testing.T, ctx context.Context, kube kubernetes.Interface, ns string) app.Report {
	t.Helper()
	r, err := demo.LoadReport(ctx, kube, ns)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// frontendFailures is the frontend proxy's count of inbound responses
// classified failure.
func frontendFailures(t *testing.T, ctx context.Context, kube kubernetes.Interface, p corev1.Pod) float64 {
	t.Helper()
	m, err := proxyMetrics(ctx, kube, p)
	if err != nil {
		t.Fatal(err)
	}
	return sum(where(m["response_total"], map[string]string{"direction": "inbound", "classification": "failure"}))
}

// runCheck runs linkerd check (its Go API) with the data-plane checks of ns
// and the injection probe.
func runCheck(t *testing.T, ctx context.Context, c *cluster.Cluster, ns string) check.Report {
	t.Helper()
	rc, err := clientcmd.BuildConfigFromFlags("", c.KubeconfigPath())
	if err != nil {
		t.Fatal(err)
	}
	report, err := check.Run(ctx, check.Config{RESTConfig: rc, Proxy: true, ProxyNamespace: ns, InjectionProbe: true, InjectionProbeNamespace: ns, PolicyProbe: true})
	if err != nil {
		t.Fatal(err)
	}
	return report
}

// checkFailsWith waits until linkerd check fails with the check named
// description failing for a reason containing reason.
func checkFailsWith(t *testing.T, ctx context.Context, c *cluster.Cluster, ns, description, reason string) {
	t.Helper()
	var last check.Report
	waitUntil(t, ctx, "linkerd check failing: "+description, func() error {
		last = runCheck(t, ctx, c, ns)
		for _, f := range last.Failed() {
			if f.Description == description && strings.Contains(f.Error, reason) {
				return nil
			}
		}
		return fmt.Errorf("failed checks: %+v", last.Failed())
	})
	if last.Success {
		t.Errorf("check reports success with failed checks %+v", last.Failed())
	}
	for _, f := range last.Failed() {
		t.Logf("linkerd check: × %s: %s (hint: %s)", f.Description, f.Error, f.Hint)
	}
}

// testCheckIdentityDown scales identity to zero: linkerd check must fail
// and say so.
func testCheckIdentityDown(t *testing.T, ctx context.Context, kube kubernetes.Interface, c *cluster.Cluster) {
	patch := []byte(`{"spec":{"replicas":0}}`)
	if _, err := kube.AppsV1().Deployments(namespace).Patch(ctx, components["identity"], types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	checkFailsWith(t, ctx, c, demoNS, "linkerd-identity Deployment is available", "scaled to zero")
}

// testCertManagerDemo deploys the demo on the cert-manager install: its
// pods get certificates from the pre-created issuer and a Job's requests
// go through mTLS.
func testCertManagerDemo(t *testing.T, ctx context.Context, kube kubernetes.Interface) {
	t.Helper()
	ns := certManagerDemoNS
	deployDemo(t, ctx, kube, ns, false)
	if t.Failed() {
		return
	}
	checkDemoPods(t, ctx, kube, ns)
	runJob(t, ctx, kube, ns, "smoke")
	checkMTLS(t, ctx, kube, ns, true)
}

// testCheckIssuerExpiring: the cert-manager install's issuer lives 12
// hours, so linkerd check fails on it.
func testCheckIssuerExpiring(t *testing.T, ctx context.Context, c *cluster.Cluster) {
	t.Helper()
	checkFailsWith(t, ctx, c, certManagerDemoNS, "issuer certificate is valid for at least 60 days", "expires")
	// The root lives a year: the issuer is the one problem named.
	report := runCheck(t, ctx, c, certManagerDemoNS)
	for _, f := range report.Failed() {
		if f.Description != "issuer certificate is valid for at least 60 days" {
			t.Errorf("linkerd check also failed %q: %s", f.Description, f.Error)
		}
	}
}

// deleteNamespace deletes ns and waits until it is gone.
func deleteNamespace(t *testing.T, ctx context.Context, kube kubernetes.Interface, ns string) {
	t.Helper()
	if err := kube.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	waitUntil(t, ctx, "namespace "+ns+" deleted", func() error {
		_, err := kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("still there (%v)", err)
	})
}

func onePod(t *testing.T, ctx context.Context, kube kubernetes.Interface, ns, app string) corev1.Pod {
	t.Helper()
	pods, err := demo.Pods(ctx, kube, ns, app)
	if err != nil {
		t.Fatal(err)
	}
	if len(pods) != 1 {
		t.Fatalf("%d %s pods, want 1", len(pods), app)
	}
	return pods[0]
}

// --- Proxy metrics.

type series struct {
	labels map[string]string
	value  float64
}

// proxyMetrics reads a pod's proxy /metrics through the API server (as
// linkerd stat does) and returns its series by family.
func proxyMetrics(ctx context.Context, kube kubernetes.Interface, p corev1.Pod) (map[string][]series, error) {
	b, err := stat.APIServerScrape(kube)(ctx, &p)
	if err != nil {
		return nil, fmt.Errorf("%s/%s metrics: %w", p.Namespace, p.Name, err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%s/%s metrics: %w", p.Namespace, p.Name, err)
	}
	out := map[string][]series{}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			s := series{labels: map[string]string{}, value: value(m)}
			for _, l := range m.GetLabel() {
				s.labels[l.GetName()] = l.GetValue()
			}
			out[name] = append(out[name], s)
		}
	}
	return out, nil
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Untyped != nil:
		return m.GetUntyped().GetValue()
	}
	return 0
}

// where returns the series whose labels include match.
func where(ss []series, match map[string]string) []series {
	var out []series
	for _, s := range ss {
		ok := true
		for k, v := range match {
			if s.labels[k] != v {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, s)
		}
	}
	return out
}

func sum(ss []series) float64 {
	var n float64
	for _, s := range ss {
		n += s.value
	}
	return n
}
