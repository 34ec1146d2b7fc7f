package meshlab

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"

	destinationv1 "github.com/linkerd-go/linkerd-go/api/linkerd/destination/v1"
	identityv1 "github.com/linkerd-go/linkerd-go/api/linkerd/identity/v1"
	"github.com/linkerd-go/linkerd-go/api/mesh"
	"github.com/linkerd-go/linkerd-go/tools/testkit/childproc"
	"github.com/linkerd-go/linkerd-go/tools/testkit/kubetest"
)

const (
	ControlPlaneNS = "linkerd"
	AppNS          = "app"
	TrustDomain    = identityv1.DefaultTrustDomain

	// WebClusterIP is the cluster IP of the Service the client calls
	// (kubetest's Service range is 198.19.0.0/20). No kube-proxy runs:
	// only the client's proxy, through destination, knows this address.
	WebClusterIP = "198.19.0.100"
	// WebPort (HTTP) and WebGRPCPort are the Service's ports; they target
	// AppPort and AppGRPCPort of the web pods.
	WebPort     = 80
	WebGRPCPort = 81
	AppPort     = 8080
	AppGRPCPort = 8081

	// Host parts of the pod addresses in the network's /24.
	ClientHost = 10
	BareHost   = 30
)

// WebHosts are the host parts of web's three replicas. They share one
// network namespace and one proxy: the same ServiceAccount, three endpoints.
var WebHosts = []int{21, 22, 23}

// startup bounds each wait for a component to become ready.
const startup = 2 * time.Minute

// IdentityName is the mesh identity of ServiceAccount ns/sa.
func IdentityName(sa, ns string) string {
	return identityv1.Name{ServiceAccount: sa, Namespace: ns, ControlPlaneNamespace: ControlPlaneNS, TrustDomain: TrustDomain}.String()
}

// Options configure Start.
type Options struct {
	// Tag prefixes the names of the bridge, veths and namespaces (at most
	// 8 characters), so leftovers say who made them.
	Tag  string
	Bins Bins
	// App is the argv of the server application, run (as root) in the
	// server namespace as web's pods and in the bare namespace; AppEnv is
	// added to its environment. It must serve AppPort (and AppGRPCPort if
	// used) on 0.0.0.0 and print AppReady once it does.
	App      []string
	AppEnv   []string
	AppReady string
	// ProxyEnv is added to both proxies' environment.
	ProxyEnv []string
	// Logf, when set, is told about each step.
	Logf func(format string, args ...any)
}

// Mesh is a running mesh: API server, control plane, and two meshed pod
// namespaces (client; server with web's three replicas), plus a bare
// namespace running the same server app without proxy-init or proxy.
type Mesh struct {
	Dir  string
	Net  *Network
	Kube kubernetes.Interface
	Env  *kubetest.Env

	Identity, Destination    *childproc.Process
	ClientProxy, ServerProxy *childproc.Process
	WebApp, BareApp          *childproc.Process
	ClientNS, ServerNS       string
	BareNS                   string
	Procs                    []*childproc.Process

	opts    Options
	cleanup Cleanup
}

func (m *Mesh) logf(format string, args ...any) {
	if m.opts.Logf != nil {
		m.opts.Logf(format, args...)
	}
}

// Start sets everything up. On error, what was started is already removed;
// otherwise the caller must Close the Mesh.
func Start(ctx context.Context, opts Options) (*Mesh, error) {
	m := &Mesh{opts: opts}
	if err := m.start(ctx); err != nil {
		tails := m.Logs(30)
		if cerr := m.Close(); cerr != nil {
			err = fmt.Errorf("%w (cleaning up: %v)", err, cerr)
		}
		return nil, fmt.Errorf("%w\n%s", err, tails)
	}
	return m, nil
}

// Close stops every process (by PID) and removes the namespaces, veths,
// bridge, API server and folders, newest first. It may be called again.
func (m *Mesh) Close() error { return m.cleanup.Run() }

// Cleanup is the Mesh's undo stack: callers may push steps that must run
// before the namespaces go (they run before everything Start registered).
func (m *Mesh) Cleanup() *Cleanup { return &m.cleanup }

func (m *Mesh) start(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, startup)
	defer cancel()
	dir, err := os.MkdirTemp("", "meshlab-")
	if err != nil {
		return err
	}
	m.cleanup.Add(func() error { return os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	m.Dir = dir

	root, err := CheckoutRoot()
	if err != nil {
		return err
	}
	m.logf("starting etcd and kube-apiserver")
	env, err := kubetest.StartEnv(ctx, kubetest.Options{CRDDirs: []string{filepath.Join(root, "deploy/charts/linkerd-crds/templates")}})
	if err != nil {
		return err
	}
	m.cleanup.Add(env.Stop)
	m.Env = env
	if m.Kube, err = kubernetes.NewForConfig(env.Config); err != nil {
		return err
	}
	if m.Net, err = NewNetwork(&m.cleanup, m.opts.Tag); err != nil {
		return err
	}
	if err := m.createObjects(ctx); err != nil {
		return fmt.Errorf("creating objects: %w", err)
	}

	// PKI and the control plane, on the node (the root namespace).
	pki, err := WritePKI(dir)
	if err != nil {
		return err
	}
	gw := m.Net.Gateway()
	identityKubeconfig, err := m.kubeconfig(ctx, ControlPlaneNS, "linkerd-identity")
	if err != nil {
		return err
	}
	m.logf("starting identity and destination on %s", gw)
	if m.Identity, err = m.StartProc("identity", nil, m.opts.Bins.Identity,
		"--addr", gw+":8080",
		"--admin-addr", gw+":9990",
		"--kubeconfig", identityKubeconfig,
		"--issuer-dir", pki.IssuerDir,
		"--trust-anchors-file", pki.AnchorsFile,
		"--trust-domain", TrustDomain,
		"--control-plane-namespace", ControlPlaneNS,
	); err != nil {
		return err
	}
	if err := WaitReady(ctx, m.Identity, "http://"+gw+":9990/ready"); err != nil {
		return err
	}
	destKubeconfig, err := m.kubeconfig(ctx, ControlPlaneNS, "linkerd-destination")
	if err != nil {
		return err
	}
	destToken, err := m.identityToken(ctx, ControlPlaneNS, "linkerd-destination")
	if err != nil {
		return err
	}
	if m.Destination, err = m.StartProc("destination", nil, m.opts.Bins.Destination,
		"--grpc-addr", gw+":8086",
		"--policy-addr", gw+":8090",
		"--admin-addr", gw+":9996",
		"--kubeconfig", destKubeconfig,
		"--controller-namespace", ControlPlaneNS,
		"--identity-trust-domain", TrustDomain,
		"--identity-addr", gw+":8080",
		"--identity-trust-anchors-file", pki.AnchorsFile,
		"--identity-token-file", destToken,
	); err != nil {
		return err
	}
	if err := WaitReady(ctx, m.Destination, "http://"+gw+":9996/ready"); err != nil {
		return err
	}

	// The pods' network namespaces. The bare one has no mesh.
	m.logf("creating the pod namespaces on bridge %s (%s0/24)", m.Net.Bridge, m.Net.Prefix)
	if m.ClientNS, err = m.Net.AddNetns(&m.cleanup, "client", ClientHost); err != nil {
		return err
	}
	if m.ServerNS, err = m.Net.AddNetns(&m.cleanup, "server", WebHosts...); err != nil {
		return err
	}
	if m.BareNS, err = m.Net.AddNetns(&m.cleanup, "bare", BareHost); err != nil {
		return err
	}

	// Each meshed pod: linkerd-init, then the proxy, then the app (the
	// native sidecar order).
	for _, ns := range []string{m.ClientNS, m.ServerNS} {
		if out, err := Run(m.opts.Bins.ProxyInit, "--netns", "/var/run/netns/"+ns); err != nil {
			return fmt.Errorf("proxy-init: %w\n%s", err, out)
		}
	}
	m.logf("starting the proxies")
	if m.ClientProxy, err = m.startProxy(ctx, m.ClientNS, "client", "client", pki.AnchorsPEM); err != nil {
		return err
	}
	if m.ServerProxy, err = m.startProxy(ctx, m.ServerNS, "web", "web-0", pki.AnchorsPEM); err != nil {
		return err
	}
	if err := WaitReady(ctx, m.ClientProxy, fmt.Sprintf("http://%s:%d/ready", m.Net.IP(ClientHost), mesh.AdminPort)); err != nil {
		return err
	}
	if err := WaitReady(ctx, m.ServerProxy, fmt.Sprintf("http://%s:%d/ready", m.Net.IP(WebHosts[0]), mesh.AdminPort)); err != nil {
		return err
	}

	if m.WebApp, err = m.StartProc("web-app", m.opts.AppEnv, append([]string{"ip", "netns", "exec", m.ServerNS}, m.opts.App...)...); err != nil {
		return err
	}
	if m.BareApp, err = m.StartProc("bare-app", m.opts.AppEnv, append([]string{"ip", "netns", "exec", m.BareNS}, m.opts.App...)...); err != nil {
		return err
	}
	for _, p := range []*childproc.Process{m.WebApp, m.BareApp} {
		if err := WaitLog(ctx, p, m.opts.AppReady); err != nil {
			return err
		}
	}
	return nil
}

// StartProc starts argv with env added to this process's environment, its
// output in the Mesh's folder as <name>.log, and registers its stop
// (SIGTERM, then SIGKILL after 10s). It dies with this process if that is
// killed without cleaning up.
func (m *Mesh) StartProc(name string, env []string, argv ...string) (*childproc.Process, error) {
	p, err := childproc.Start(name, filepath.Join(m.Dir, name+".log"), env, argv...)
	if err != nil {
		return nil, err
	}
	m.cleanup.Add(func() error { p.Stop(10 * time.Second); return nil })
	m.Procs = append(m.Procs, p)
	return p, nil
}

// AsProxyUID is the argv prefix that runs a command as the proxy's uid
// (2102), whose traffic proxy-init leaves alone.
func AsProxyUID() []string {
	uid := strconv.Itoa(mesh.DefaultProxyUID)
	return []string{"setpriv", "--reuid", uid, "--regid", uid, "--clear-groups", "--pdeathsig", "KILL", "--"}
}

// startProxy runs the proxy in ns as uid 2102 with the environment the
// injector gives a pod of ServiceAccount sa named pod.
func (m *Mesh) startProxy(ctx context.Context, ns, sa, pod string, anchorsPEM []byte) (*childproc.Process, error) {
	gw := m.Net.Gateway()
	tokenFile, err := m.identityToken(ctx, AppNS, sa)
	if err != nil {
		return nil, err
	}
	env := []string{
		"LINKERD2_PROXY_LOG=warn,linkerd=info",
		"LINKERD2_PROXY_LOG_FORMAT=plain",
		"LINKERD2_PROXY_DESTINATION_SVC_ADDR=" + gw + ":8086",
		"LINKERD2_PROXY_DESTINATION_SVC_NAME=" + IdentityName("linkerd-destination", ControlPlaneNS),
		"LINKERD2_PROXY_DESTINATION_PROFILE_SUFFIXES=svc." + TrustDomain + ".",
		"LINKERD2_PROXY_DESTINATION_CONTEXT=" + destinationv1.ContextToken{Namespace: AppNS, NodeName: "node", Pod: pod}.Encode(),
		"LINKERD2_PROXY_INBOUND_PORTS=" + strconv.Itoa(AppPort) + "," + strconv.Itoa(AppGRPCPort),
		"LINKERD2_PROXY_INBOUND_PORTS_DISABLE_PROTOCOL_DETECTION=" + mesh.DefaultOpaquePorts,
		"LINKERD2_PROXY_CONTROL_LISTEN_ADDR=0.0.0.0:4190",
		"LINKERD2_PROXY_ADMIN_LISTEN_ADDR=0.0.0.0:4191",
		"LINKERD2_PROXY_INBOUND_LISTEN_ADDR=0.0.0.0:4143",
		"LINKERD2_PROXY_OUTBOUND_LISTEN_ADDRS=127.0.0.1:4140",
		"LINKERD2_PROXY_IDENTITY_DIR=" + filepath.Join(m.Dir, "end-entity-"+sa),
		"LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS=" + string(anchorsPEM),
		"LINKERD2_PROXY_IDENTITY_TOKEN_FILE=" + tokenFile,
		"LINKERD2_PROXY_IDENTITY_SVC_ADDR=" + gw + ":8080",
		"LINKERD2_PROXY_IDENTITY_SVC_NAME=" + IdentityName("linkerd-identity", ControlPlaneNS),
		"LINKERD2_PROXY_IDENTITY_LOCAL_NAME=" + IdentityName(sa, AppNS),
		"LINKERD2_PROXY_SHUTDOWN_GRACE_PERIOD=5s",
		"LINKERD2_PROXY_POLICY_SVC_ADDR=" + gw + ":8090",
		"LINKERD2_PROXY_POLICY_SVC_NAME=" + IdentityName("linkerd-destination", ControlPlaneNS),
		`LINKERD2_PROXY_POLICY_WORKLOAD={"ns":"` + AppNS + `","pod":"` + pod + `"}`,
		"LINKERD2_PROXY_INBOUND_DEFAULT_POLICY=all-unauthenticated",
	}
	env = append(env, m.opts.ProxyEnv...)
	argv := append([]string{"ip", "netns", "exec", ns}, AsProxyUID()...)
	return m.StartProc(sa+"-proxy", env, append(argv, m.opts.Bins.Proxy)...)
}

// WaitReady polls url until it answers 200, p exits, or ctx ends.
func WaitReady(ctx context.Context, p *childproc.Process, url string) error {
	client := &http.Client{Timeout: 2 * time.Second}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var last string
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%s: %s", resp.Status, b)
		} else {
			last = err.Error()
		}
		if err := p.Running(); err != nil {
			return fmt.Errorf("%w\n%s", err, p.Tail(30))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %w: %s", p.Name, ctx.Err(), last)
		case <-tick.C: // polling: readiness has no event to wait on
		}
	}
}

// WaitLog waits until p's output holds s, p exits, or ctx ends.
func WaitLog(ctx context.Context, p *childproc.Process, s string) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if b, _ := os.ReadFile(p.LogPath); strings.Contains(string(b), s) {
			return nil
		}
		if err := p.Running(); err != nil {
			return fmt.Errorf("%w\n%s", err, p.Tail(30))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not print %q: %w", p.Name, s, ctx.Err())
		case <-tick.C: // polling: a log file has no event to wait on
		}
	}
}

// Logs returns the tail of every process's output, the API server's
// included.
func (m *Mesh) Logs(n int) string {
	var b strings.Builder
	if m.Env != nil {
		for _, name := range []string{"etcd.log", "kube-apiserver.log"} {
			path := filepath.Join(m.Env.Dir, name)
			fmt.Fprintf(&b, "--- %s ---\n%s\n", path, childproc.TailFile(path, n))
		}
	}
	for _, p := range m.Procs {
		fmt.Fprintf(&b, "--- %s (%s) ---\n%s\n", p.Name, p.LogPath, p.Tail(n))
	}
	return b.String()
}

// Rules returns the meshed pods' nftables rules.
func (m *Mesh) Rules() string {
	var b strings.Builder
	for _, ns := range []string{m.ClientNS, m.ServerNS} {
		if ns == "" {
			continue
		}
		out, err := Run("ip", "netns", "exec", ns, "nft", "list", "ruleset")
		fmt.Fprintf(&b, "--- nft list ruleset in %s (err %v) ---\n%s\n", ns, err, out)
	}
	return b.String()
}
