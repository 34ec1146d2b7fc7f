//go:build integration

package meshtest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	destinationv1 "github.com/linkerd-go/linkerd-go/api/linkerd/destination/v1"
	identityv1 "github.com/linkerd-go/linkerd-go/api/linkerd/identity/v1"
	"github.com/linkerd-go/linkerd-go/api/mesh"
	"github.com/linkerd-go/linkerd-go/tools/kubetest"

	"github.com/linkerd-go/linkerd-go/tools/internal/childproc"
)

const (
	controlPlaneNS = "linkerd"
	appNS          = "app"
	trustDomain    = identityv1.DefaultTrustDomain

	// The Service the client calls: kubetest's Service range is
	// 198.19.0.0/20. No kube-proxy runs: only the client's proxy, through
	// destination, knows what this address is.
	webClusterIP = "198.19.0.100"
	webPort      = 80
	appPort      = 8080

	// Host parts of the pod addresses in the test's /24.
	clientHost = 10
	bareHost   = 30
)

// webHosts are the host parts of web's three replicas. They share one
// network namespace and one proxy: the same ServiceAccount, three endpoints.
var webHosts = []int{21, 22, 23}

// startup bounds each wait for a component to become ready.
const startup = 2 * time.Minute

func identityName(sa, ns string) string {
	return identityv1.Name{ServiceAccount: sa, Namespace: ns, ControlPlaneNamespace: controlPlaneNS, TrustDomain: trustDomain}.String()
}

// meshEnv is a running mesh: API server, control plane, and two meshed
// pod namespaces (client; server with web's three replicas), plus a bare
// namespace running the same server app without proxy-init or proxy.
type meshEnv struct {
	dir  string
	net  *network
	kube kubernetes.Interface

	identity, destination    *childproc.Process
	clientProxy, serverProxy *childproc.Process
	webApp, bareApp          *childproc.Process
	clientNS, serverNS       string
	bareNS                   string
	procs                    []*childproc.Process
}

// startMesh sets everything up and tears it down in t.Cleanup, pass or
// fail; on failure it prints the tail of every log and the nftables rules.
func startMesh(t testing.TB) *meshEnv {
	t.Helper()
	needBins(t)
	dir, err := os.MkdirTemp("", "meshtest-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	m := &meshEnv{dir: dir}

	root, err := checkoutRoot()
	if err != nil {
		t.Fatal(err)
	}
	env := kubetest.Start(t, kubetest.Options{CRDDirs: []string{filepath.Join(root, "deploy/charts/linkerd-crds/templates")}})
	kube := kubernetes.NewForConfigOrDie(env.Config)
	m.kube = kube
	m.net = newNetwork(t)
	// Registered first, so it runs after every process has stopped (their
	// logs stay until the folder goes).
	t.Cleanup(func() {
		if t.Failed() {
			m.dumpLogs(t)
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), startup)
	defer cancel()
	m.createObjects(t, ctx, env)

	// PKI and the control plane, on the node (the root namespace).
	issuerDir, anchorsFile, anchorsPEM := writePKI(t, dir)
	gw := m.net.gateway()
	identityKubeconfig := m.kubeconfig(t, ctx, env, controlPlaneNS, "linkerd-identity")
	m.identity = m.start(t, "identity", nil, bins.identity,
		"--addr", gw+":8080",
		"--admin-addr", gw+":9990",
		"--kubeconfig", identityKubeconfig,
		"--issuer-dir", issuerDir,
		"--trust-anchors-file", anchorsFile,
		"--trust-domain", trustDomain,
		"--control-plane-namespace", controlPlaneNS,
	)
	m.waitReady(t, m.identity, "http://"+gw+":9990/ready")

	destKubeconfig := m.kubeconfig(t, ctx, env, controlPlaneNS, "linkerd-destination")
	destToken := m.identityToken(t, ctx, controlPlaneNS, "linkerd-destination")
	m.destination = m.start(t, "destination", nil, bins.destination,
		"--grpc-addr", gw+":8086",
		"--admin-addr", gw+":9996",
		"--kubeconfig", destKubeconfig,
		"--controller-namespace", controlPlaneNS,
		"--identity-trust-domain", trustDomain,
		"--identity-addr", gw+":8080",
		"--identity-trust-anchors-file", anchorsFile,
		"--identity-token-file", destToken,
	)
	m.waitReady(t, m.destination, "http://"+gw+":9996/ready")

	// The pods' network namespaces. The bare one has no mesh.
	m.clientNS = m.net.addNetns(t, "client", clientHost)
	m.serverNS = m.net.addNetns(t, "server", webHosts...)
	m.bareNS = m.net.addNetns(t, "bare", bareHost)
	// Runs before the namespaces go.
	t.Cleanup(func() {
		if t.Failed() {
			m.dumpRules(t)
		}
	})

	// Each meshed pod: linkerd-init, then the proxy, then the app (the
	// native sidecar order).
	for _, ns := range []string{m.clientNS, m.serverNS} {
		if out, err := run(bins.proxyInit, "--netns", "/var/run/netns/"+ns); err != nil {
			t.Fatalf("proxy-init: %v\n%s", err, out)
		}
	}
	m.clientProxy = m.startProxy(t, ctx, m.clientNS, "client", "client", anchorsPEM, clientHost)
	m.serverProxy = m.startProxy(t, ctx, m.serverNS, "web", "web-0", anchorsPEM, webHosts[0])
	m.waitReady(t, m.clientProxy, fmt.Sprintf("http://%s:%d/ready", m.net.ip(clientHost), mesh.AdminPort))
	m.waitReady(t, m.serverProxy, fmt.Sprintf("http://%s:%d/ready", m.net.ip(webHosts[0]), mesh.AdminPort))

	m.webApp = m.start(t, "web-app", []string{helperEnv + "=server"}, "ip", "netns", "exec", m.serverNS, bins.app)
	m.bareApp = m.start(t, "bare-app", []string{helperEnv + "=server"}, "ip", "netns", "exec", m.bareNS, bins.app)
	for _, p := range []*childproc.Process{m.webApp, m.bareApp} {
		m.waitLog(t, p, "listening on")
	}
	return m
}

// start starts a process of the mesh (see startProc) and remembers it for
// the failure report.
func (m *meshEnv) start(t testing.TB, name string, env []string, argv ...string) *childproc.Process {
	t.Helper()
	p := startProc(t, m.dir, name, env, argv...)
	m.procs = append(m.procs, p)
	return p
}

// startProxy runs the proxy in ns as uid 2102 with the environment the
// injector gives a pod of ServiceAccount sa named pod.
func (m *meshEnv) startProxy(t testing.TB, ctx context.Context, ns, sa, pod string, anchorsPEM []byte, host int) *childproc.Process {
	t.Helper()
	gw := m.net.gateway()
	tokenFile := m.identityToken(t, ctx, appNS, sa)
	env := []string{
		"LINKERD2_PROXY_LOG=warn,linkerd=info",
		"LINKERD2_PROXY_LOG_FORMAT=plain",
		"LINKERD2_PROXY_DESTINATION_SVC_ADDR=" + gw + ":8086",
		"LINKERD2_PROXY_DESTINATION_SVC_NAME=" + identityName("linkerd-destination", controlPlaneNS),
		"LINKERD2_PROXY_DESTINATION_PROFILE_SUFFIXES=svc." + trustDomain + ".",
		"LINKERD2_PROXY_DESTINATION_CONTEXT=" + destinationv1.ContextToken{Namespace: appNS, NodeName: "node", Pod: pod}.Encode(),
		"LINKERD2_PROXY_INBOUND_PORTS=" + strconv.Itoa(appPort),
		"LINKERD2_PROXY_INBOUND_PORTS_DISABLE_PROTOCOL_DETECTION=" + mesh.DefaultOpaquePorts,
		"LINKERD2_PROXY_CONTROL_LISTEN_ADDR=0.0.0.0:4190",
		"LINKERD2_PROXY_ADMIN_LISTEN_ADDR=0.0.0.0:4191",
		"LINKERD2_PROXY_INBOUND_LISTEN_ADDR=0.0.0.0:4143",
		"LINKERD2_PROXY_OUTBOUND_LISTEN_ADDRS=127.0.0.1:4140",
		"LINKERD2_PROXY_IDENTITY_DIR=" + filepath.Join(m.dir, "end-entity-"+sa),
		"LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS=" + string(anchorsPEM),
		"LINKERD2_PROXY_IDENTITY_TOKEN_FILE=" + tokenFile,
		"LINKERD2_PROXY_IDENTITY_SVC_ADDR=" + gw + ":8080",
		"LINKERD2_PROXY_IDENTITY_SVC_NAME=" + identityName("linkerd-identity", controlPlaneNS),
		"LINKERD2_PROXY_IDENTITY_LOCAL_NAME=" + identityName(sa, appNS),
		"LINKERD2_PROXY_SHUTDOWN_GRACE_PERIOD=5s",
	}
	uid := strconv.Itoa(mesh.DefaultProxyUID)
	return m.start(t, sa+"-proxy", env, "ip", "netns", "exec", ns,
		"setpriv", "--reuid", uid, "--regid", uid, "--clear-groups", "--pdeathsig", "KILL", "--", bins.proxy)
}

// waitReady polls url until it answers 200.
func (m *meshEnv) waitReady(t testing.TB, p *childproc.Process, url string) {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(startup)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var last string
	for {
		resp, err := client.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = fmt.Sprintf("%s: %s", resp.Status, b)
		} else {
			last = err.Error()
		}
		if err := p.Running(); err != nil {
			t.Fatalf("%v\n%s", err, p.Tail(30))
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after %v: %s", p.Name, startup, last)
		}
		<-tick.C // polling: readiness has no event to wait on
	}
}

// waitLog waits until p's output holds s.
func (m *meshEnv) waitLog(t testing.TB, p *childproc.Process, s string) {
	t.Helper()
	deadline := time.Now().Add(startup)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if b, _ := os.ReadFile(p.LogPath); strings.Contains(string(b), s) {
			return
		}
		if err := p.Running(); err != nil {
			t.Fatalf("%v\n%s", err, p.Tail(30))
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not print %q after %v", p.Name, s, startup)
		}
		<-tick.C // polling: a log file has no event to wait on
	}
}

// dumpLogs prints the tail of every process's output.
func (m *meshEnv) dumpLogs(t testing.TB) {
	for _, p := range m.procs {
		t.Logf("--- %s (%s) ---\n%s", p.Name, p.LogPath, p.Tail(40))
	}
}

// dumpRules prints the meshed pods' nftables rules.
func (m *meshEnv) dumpRules(t testing.TB) {
	for _, ns := range []string{m.clientNS, m.serverNS} {
		if ns == "" {
			continue
		}
		out, err := run("ip", "netns", "exec", ns, "nft", "list", "ruleset")
		t.Logf("--- nft list ruleset in %s (err %v) ---\n%s", ns, err, out)
	}
}

// kubeconfig writes a kubeconfig holding a token of ServiceAccount ns/sa
// for the API server, so a component runs with its own RBAC.
func (m *meshEnv) kubeconfig(t testing.TB, ctx context.Context, env *kubetest.Env, ns, sa string) string {
	t.Helper()
	tr, err := m.kube.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr(int64(24 * 3600))},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["kubetest"] = &clientcmdapi.Cluster{Server: env.Config.Host, CertificateAuthorityData: env.Config.CAData}
	cfg.AuthInfos[sa] = &clientcmdapi.AuthInfo{Token: tr.Status.Token}
	cfg.Contexts[sa] = &clientcmdapi.Context{Cluster: "kubetest", AuthInfo: sa}
	cfg.CurrentContext = sa
	path := filepath.Join(m.dir, sa+".kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// identityToken writes a token of ServiceAccount ns/sa for audience
// identity.l5d.io, as the projected volume would, readable by the proxy.
func (m *meshEnv) identityToken(t testing.TB, ctx context.Context, ns, sa string) string {
	t.Helper()
	tr, err := m.kube.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{
			Audiences:         []string{identityv1.TokenAudience},
			ExpirationSeconds: ptr(int64(24 * 3600)),
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(m.dir, "token-"+ns+"-"+sa)
	if err := os.WriteFile(path, []byte(tr.Status.Token), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func ptr[T any](v T) *T { return &v }

// createObjects creates what a cluster with the control plane installed and
// the two workloads injected would hold: namespaces, ServiceAccounts, the
// control plane's RBAC, the pods (their status as the kubelet would report
// it), the web Service and its EndpointSlice.
func (m *meshEnv) createObjects(t testing.TB, ctx context.Context, env *kubetest.Env) {
	t.Helper()
	c := m.kube
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, ns := range []string{controlPlaneNS, appNS} {
		must(c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}))
	}
	for ns, sas := range map[string][]string{controlPlaneNS: {"linkerd-identity", "linkerd-destination"}, appNS: {"client", "web"}} {
		for _, sa := range sas {
			must(c.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{}))
		}
	}
	rules := map[string][]rbacv1.PolicyRule{
		"linkerd-identity": {
			{APIGroups: []string{"authentication.k8s.io"}, Resources: []string{"tokenreviews"}, Verbs: []string{"create"}},
			{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
		},
		"linkerd-destination": {
			{APIGroups: []string{""}, Resources: []string{"services", "pods", "namespaces"}, Verbs: []string{"list", "watch"}},
			{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: []string{"list", "watch"}},
			{APIGroups: []string{"apps"}, Resources: []string{"replicasets"}, Verbs: []string{"list", "watch"}},
			{APIGroups: []string{"linkerd.io"}, Resources: []string{"serviceprofiles"}, Verbs: []string{"list", "watch"}},
		},
	}
	for sa, r := range rules {
		name := "meshtest-" + sa
		must(c.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: r}, metav1.CreateOptions{}))
		must(c.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: name},
			Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: controlPlaneNS, Name: sa}},
		}, metav1.CreateOptions{}))
	}

	pod := func(name, sa, app string, host int) {
		t.Helper()
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{
				Name: name, Namespace: appNS,
				Labels: map[string]string{
					"app":                         app,
					"linkerd.io/control-plane-ns": controlPlaneNS,
					"linkerd.io/workload-ns":      appNS,
					"linkerd.io/proxy-deployment": app,
				},
				Annotations: map[string]string{"linkerd.io/created-by": "linkerd/proxy-injector meshtest"},
			},
			Spec: corev1.PodSpec{
				ServiceAccountName: sa,
				NodeName:           "node",
				Containers: []corev1.Container{{
					Name: app, Image: "dev.local/testapp:dev",
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: appPort, Protocol: corev1.ProtocolTCP}},
				}},
			},
		}
		p, err := c.CoreV1().Pods(appNS).Create(ctx, p, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ip := m.net.ip(host)
		p.Status = corev1.PodStatus{
			Phase:  corev1.PodRunning,
			PodIP:  ip,
			PodIPs: []corev1.PodIP{{IP: ip}},
			HostIP: m.net.gateway(),
			Conditions: []corev1.PodCondition{
				{Type: corev1.PodReady, Status: corev1.ConditionTrue},
				{Type: corev1.ContainersReady, Status: corev1.ConditionTrue},
			},
		}
		must(c.CoreV1().Pods(appNS).UpdateStatus(ctx, p, metav1.UpdateOptions{}))
	}
	pod("client", "client", "client", clientHost)
	var eps []discoveryv1.Endpoint
	for i, h := range webHosts {
		name := fmt.Sprintf("web-%d", i)
		pod(name, "web", "web", h)
		eps = append(eps, discoveryv1.Endpoint{
			Addresses:  []string{m.net.ip(h)},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr(true), Serving: ptr(true), Terminating: ptr(false)},
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: appNS, Name: name},
			NodeName:   ptr("node"),
		})
	}
	must(c.CoreV1().Services(appNS).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: appNS},
		Spec: corev1.ServiceSpec{
			Selector:  map[string]string{"app": "web"},
			ClusterIP: webClusterIP,
			Ports: []corev1.ServicePort{{
				Name: "http", Port: webPort, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(appPort),
			}},
		},
	}, metav1.CreateOptions{}))
	must(c.DiscoveryV1().EndpointSlices(appNS).Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name: "web-abcde", Namespace: appNS,
			Labels: map[string]string{
				discoveryv1.LabelServiceName: "web",
				discoveryv1.LabelManagedBy:   "meshtest",
			},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   eps,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("http"), Port: ptr(int32(appPort)), Protocol: ptr(corev1.ProtocolTCP)}},
	}, metav1.CreateOptions{}))
}
