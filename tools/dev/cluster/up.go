package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/linkerd-go/linkerd-go/tools/testkit/childproc"
)

// daemons in start order; Down stops them in the reverse tiers.
var daemons = []string{"etcd", "containerd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy"}

// Up brings the cluster up, or the parts of it that are not running, and
// returns when the node is Ready and cluster DNS answers. Running it again
// on a healthy cluster changes nothing.
func (c *Cluster) Up(ctx context.Context) error {
	start := time.Now()
	h, err := preflight()
	if err != nil {
		return err
	}
	for _, d := range []string{"run", "logs", "etcd", "kubelet", "cni/net.d", "manifests"} {
		if err := os.MkdirAll(c.path(d), 0o755); err != nil {
			return err
		}
	}
	if err := c.ensurePKI(); err != nil {
		return fmt.Errorf("PKI: %w", err)
	}
	v := c.values(h)
	if err := c.writeConfigs(v); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	if err := c.recordHost(ctx); err != nil {
		return err
	}
	if err := c.prepareHost(ctx); err != nil {
		return err
	}
	images, err := c.buildImages(ctx)
	if err != nil {
		return fmt.Errorf("images: %w", err)
	}
	c.logf("state in %s, logs in %s (cgroup v2: %v, CAP_SYS_RESOURCE: %v)", c.StateDir, c.LogDir(), h.cgroupV2, h.capSysResource)

	etcdURL := "http://127.0.0.1:" + strconv.Itoa(etcdClientPort)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(etcdPeerPort)
	if err := c.startDaemon("etcd", c.bin("etcd"),
		"--name=dev", "--data-dir="+c.path("etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=dev="+peerURL, "--listen-metrics-urls=", "--log-level=warn"); err != nil {
		return err
	}
	if err := c.startDaemon("containerd", c.bin("containerd"), "--config", c.path("containerd", "config.toml")); err != nil {
		return err
	}
	if err := c.waitFor(ctx, "etcd", time.Minute, func(ctx context.Context) error {
		return httpOK(ctx, etcdURL+"/health")
	}, "etcd"); err != nil {
		return err
	}
	if err := c.startAPIServer(); err != nil {
		return err
	}
	if err := c.waitFor(ctx, "containerd", time.Minute, func(ctx context.Context) error {
		_, err := c.ctr(ctx, "version")
		return err
	}, "containerd"); err != nil {
		return err
	}
	for _, img := range images {
		if err := c.LoadImage(ctx, img); err != nil {
			return err
		}
	}
	kube, err := c.Client()
	if err != nil {
		return err
	}
	if err := c.waitFor(ctx, "kube-apiserver", 2*time.Minute, func(ctx context.Context) error {
		body, err := kube.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if err != nil {
			return fmt.Errorf("%w: %s", err, body)
		}
		return nil
	}, "etcd", "kube-apiserver"); err != nil {
		return err
	}
	if err := c.startNodeAndControllers(); err != nil {
		return err
	}
	if out, err := command(ctx, c.bin("kubectl"), "--kubeconfig", c.KubeconfigPath(), "apply", "-f", c.path("manifests", "coredns.yaml")).CombinedOutput(); err != nil {
		return fmt.Errorf("applying CoreDNS: %w: %s", err, out)
	}
	// kube-proxy exits on purpose when the node's addresses change under it,
	// so it starts once the kubelet has registered the node with its IP.
	if err := c.waitFor(ctx, "node "+c.NodeName+" registered", 2*time.Minute, func(ctx context.Context) error {
		return nodeRegistered(ctx, kube, c.NodeName)
	}, "kube-apiserver", "kubelet"); err != nil {
		return err
	}
	if err := c.startDaemon("kube-proxy", c.bin("kube-proxy"), "--config="+c.path("kube-proxy.yaml")); err != nil {
		return err
	}
	if err := c.waitFor(ctx, "node "+c.NodeName+" Ready", 3*time.Minute, func(ctx context.Context) error {
		return nodeReady(ctx, kube, c.NodeName)
	}, daemons...); err != nil {
		return err
	}
	if err := c.waitFor(ctx, "cluster DNS", 3*time.Minute, func(ctx context.Context) error {
		return dnsAnswers(ctx)
	}, daemons...); err != nil {
		return err
	}
	c.logf("up in %s; kubeconfig: %s", time.Since(start).Round(100*time.Millisecond), c.KubeconfigPath())
	return nil
}

func (c *Cluster) startAPIServer() error {
	p := func(f string) string { return c.path("pki", f) }
	return c.startDaemon("kube-apiserver", c.bin("kube-apiserver"),
		"--etcd-servers=http://127.0.0.1:"+strconv.Itoa(etcdClientPort),
		"--bind-address="+NodeIP, "--advertise-address="+NodeIP, "--secure-port="+strconv.Itoa(APIServerPort),
		"--tls-cert-file="+p("apiserver.crt"), "--tls-private-key-file="+p("apiserver.key"),
		"--client-ca-file="+p("ca.crt"), "--token-auth-file="+p("tokens.csv"),
		"--authorization-mode=Node,RBAC",
		// The default plugins (with the admission webhooks) plus NodeRestriction.
		"--enable-admission-plugins=NodeRestriction",
		"--allow-privileged=true",
		"--service-cluster-ip-range="+ServiceCIDR,
		"--service-account-issuer=https://kubernetes.default.svc."+ClusterDomain,
		"--service-account-key-file="+p("sa.pub"), "--service-account-signing-key-file="+p("sa.key"),
		"--kubelet-client-certificate="+p("apiserver-kubelet-client.crt"), "--kubelet-client-key="+p("apiserver-kubelet-client.key"),
		"--kubelet-preferred-address-types=InternalIP",
		"--enable-aggregator-routing=true",
		"--requestheader-client-ca-file="+p("front-proxy-ca.crt"),
		"--proxy-client-cert-file="+p("front-proxy-client.crt"), "--proxy-client-key-file="+p("front-proxy-client.key"),
		"--requestheader-allowed-names=front-proxy-client",
		"--requestheader-username-headers=X-Remote-User", "--requestheader-group-headers=X-Remote-Group",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
	)
}

func (c *Cluster) startNodeAndControllers() error {
	kc := func(name string) string { return c.path("kubeconfig", name+".conf") }
	p := func(f string) string { return c.path("pki", f) }
	if err := c.startDaemon("kube-controller-manager", c.bin("kube-controller-manager"),
		"--kubeconfig="+kc("controller-manager"),
		"--authentication-kubeconfig="+kc("controller-manager"), "--authorization-kubeconfig="+kc("controller-manager"),
		"--bind-address=127.0.0.1", "--leader-elect=false",
		"--service-account-private-key-file="+p("sa.key"), "--root-ca-file="+p("ca.crt"),
		"--use-service-account-credentials=true",
		"--cluster-signing-cert-file="+p("ca.crt"), "--cluster-signing-key-file="+p("ca.key"),
		"--service-cluster-ip-range="+ServiceCIDR, "--cluster-cidr="+PodCIDR, "--allocate-node-cidrs=false",
	); err != nil {
		return err
	}
	if err := c.startDaemon("kube-scheduler", c.bin("kube-scheduler"),
		"--kubeconfig="+kc("scheduler"),
		"--authentication-kubeconfig="+kc("scheduler"), "--authorization-kubeconfig="+kc("scheduler"),
		"--bind-address=127.0.0.1", "--leader-elect=false",
	); err != nil {
		return err
	}
	if err := c.startDaemon("kubelet", c.bin("kubelet"),
		"--config="+c.path("kubelet", "config.yaml"), "--kubeconfig="+kc("kubelet"),
		"--root-dir="+c.path("kubelet"), "--cert-dir="+c.path("kubelet", "pki"),
		"--node-ip="+NodeIP, "--hostname-override="+c.NodeName, "--v=1",
	); err != nil {
		return err
	}
	return nil
}

// Client returns a clientset for the cluster's admin kubeconfig.
func (c *Cluster) Client() (*kubernetes.Clientset, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", c.KubeconfigPath())
	if err != nil {
		return nil, err
	}
	cfg.Timeout = 10 * time.Second
	return kubernetes.NewForConfig(cfg)
}

// waitFor polls check until it succeeds, the timeout passes or ctx ends.
//
// It fails at once, with the end of its log, when one of the daemons the
// check depends on has exited: waiting minutes for a crashed component
// helps nobody.
func (c *Cluster) waitFor(ctx context.Context, what string, timeout time.Duration, check func(context.Context) error, needs ...string) error {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		err := check(ctx)
		if err == nil {
			c.logf("%s: ok after %s", what, time.Since(start).Round(10*time.Millisecond))
			return nil
		}
		for _, d := range needs {
			if _, ok := c.running(d); !ok {
				return fmt.Errorf("%s exited while waiting for %s; end of %s:\n%s", d, what, c.logPath(d), childproc.TailFile(c.logPath(d), 15))
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %s: %v (logs in %s)", what, timeout, err, c.LogDir())
		case <-tick.C:
		}
	}
}

func httpOK(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errors.New(resp.Status)
	}
	return nil
}

func nodeReady(ctx context.Context, kube kubernetes.Interface, name string) error {
	node, err := kube.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	for _, cond := range node.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			if cond.Status == corev1.ConditionTrue {
				return nil
			}
			return fmt.Errorf("node %s: %s", cond.Reason, cond.Message)
		}
	}
	return errors.New("node has no Ready condition yet")
}

func nodeRegistered(ctx context.Context, kube kubernetes.Interface, name string) error {
	node, err := kube.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	for _, a := range node.Status.Addresses {
		if a.Type == corev1.NodeInternalIP && a.Address == NodeIP {
			return nil
		}
	}
	return fmt.Errorf("node has addresses %v, want InternalIP %s", node.Status.Addresses, NodeIP)
}

// dnsAnswers asks cluster DNS, through the kube-dns Service, for the
// kubernetes Service's name and checks the address.
func dnsAnswers(ctx context.Context) error {
	r := &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, net.JoinHostPort(DNSServiceIP, "53"))
		},
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	name := "kubernetes.default.svc." + ClusterDomain
	addrs, err := r.LookupHost(ctx, name)
	if err != nil {
		return err
	}
	for _, a := range addrs {
		if a == firstServiceIP() {
			return nil
		}
	}
	return fmt.Errorf("%s resolved to %v, want %s", name, addrs, firstServiceIP())
}
