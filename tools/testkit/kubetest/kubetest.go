// Package kubetest runs a real etcd and kube-apiserver on loopback for the
// integration tests of every component (tier 2), installs CRDs into it, and
// hands back a rest.Config. The binaries come from the cache `make k8s-bins`
// fills; nothing is mocked.
//
// Start registers a cleanup that stops both processes and removes their
// folder, whether the test passed or not. The processes also die with the
// test binary if it is killed before cleanups run.
//
// The API server runs with:
//   - a static admin token in group system:masters (Env.Config uses it),
//   - RBAC authorization, so components' own credentials can be tested,
//   - ServiceAccount token signing, so TokenRequest and TokenReview work
//     (issuer https://kubernetes.default.svc.cluster.local),
//   - admission webhooks enabled, and the ServiceAccount admission plugin
//     disabled (no controller-manager creates default ServiceAccounts here).
package kubetest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/linkerd-go/linkerd-go/tools/testkit/childproc"
	"github.com/linkerd-go/linkerd-go/tools/testkit/kubebins"
)

// ServiceAccountIssuer is the issuer of the tokens the API server signs.
const ServiceAccountIssuer = "https://kubernetes.default.svc.cluster.local"

// startTimeout bounds how long etcd plus the API server may take to become
// ready; generous because CI machines are shared and the first start after a
// build reads ~150 MB of binaries from a cold page cache.
const startTimeout = 2 * time.Minute

// Options configure an Env.
type Options struct {
	// CRDDirs are folders whose *.yaml / *.yml files hold
	// CustomResourceDefinitions to install before Start returns.
	CRDDirs []string
	// BinDir holds etcd and kube-apiserver; default: the k8s-bins cache.
	BinDir string
	// ExtraAPIServerFlags are appended to the API server's command line.
	ExtraAPIServerFlags []string
}

// Env is a running etcd and kube-apiserver.
type Env struct {
	// Config reaches the API server as a cluster admin.
	Config *rest.Config
	// Dir holds the PKI, etcd data and logs (etcd.log, kube-apiserver.log).
	Dir string
	// ServiceAccountKeyFile is the public key that verifies ServiceAccount
	// tokens, for components that check tokens themselves.
	ServiceAccountKeyFile string

	etcd      *childproc.Process
	etcdURL   string
	apiserver *childproc.Process
}

// Start starts an Env for t and stops it in t.Cleanup. It fails t if the
// Env cannot start. If the test fails, the tail of each log is printed.
func Start(t testing.TB, opts Options) *Env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	env, err := StartEnv(ctx, opts)
	if err != nil {
		t.Fatalf("kubetest: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			env.logTails(t)
		}
		if err := env.Stop(); err != nil {
			t.Errorf("kubetest: %v", err)
		}
	})
	return env
}

// StartEnv starts etcd and the API server and installs the CRDs. Callers
// must call Stop, also on error paths after it returns (TestMain users).
func StartEnv(ctx context.Context, opts Options) (*Env, error) {
	binDir := opts.BinDir
	if binDir == "" {
		var err error
		if binDir, err = kubebins.Find(); err != nil {
			return nil, err
		}
	}
	dir, err := os.MkdirTemp("", "kubetest-")
	if err != nil {
		return nil, err
	}
	env := &Env{Dir: dir}
	if err := env.start(ctx, binDir, opts); err != nil {
		tails := env.tails()
		_ = env.Stop()
		return nil, fmt.Errorf("%w%s", err, tails)
	}
	return env, nil
}

func (e *Env) start(ctx context.Context, binDir string, opts Options) error {
	// Read the CRDs first: a bad folder fails before anything starts.
	crds, err := ReadCRDs(opts.CRDDirs)
	if err != nil {
		return fmt.Errorf("reading CRDs: %w", err)
	}
	pki, err := newPKI(e.Dir)
	if err != nil {
		return fmt.Errorf("writing PKI: %w", err)
	}
	e.ServiceAccountKeyFile = pki.saPubFile
	// A port we picked may be taken before the child binds it; try again
	// with fresh ports a few times.
	for attempt := 1; ; attempt++ {
		err := e.startEtcd(ctx, binDir)
		if err == nil {
			break
		}
		if attempt == 3 || e.etcd == nil || !portInUse(e.etcd) {
			return err
		}
		e.etcd.Stop(0)
	}
	var port int
	for attempt := 1; ; attempt++ {
		ports, err := freePorts(1)
		if err != nil {
			return err
		}
		port = ports[0]
		err = e.startAPIServer(ctx, binDir, pki, port, opts.ExtraAPIServerFlags)
		if err == nil {
			break
		}
		if attempt == 3 || e.apiserver == nil || !portInUse(e.apiserver) {
			return err
		}
		e.apiserver.Stop(0)
	}
	e.Config = &rest.Config{
		Host:            "https://" + hostPort(port),
		BearerToken:     pki.adminToken,
		TLSClientConfig: rest.TLSClientConfig{CAData: pki.caPEM},
		QPS:             -1, // no client-side rate limit in tests
	}
	if err := installCRDs(ctx, e.Config, crds); err != nil {
		return fmt.Errorf("installing CRDs: %w", err)
	}
	return nil
}

func (e *Env) startEtcd(ctx context.Context, binDir string) error {
	ports, err := freePorts(2)
	if err != nil {
		return err
	}
	client, peer := "http://"+hostPort(ports[0]), "http://"+hostPort(ports[1])
	dataDir := filepath.Join(e.Dir, "etcd")
	if err := os.RemoveAll(dataDir); err != nil {
		return err
	}
	e.etcd, err = childproc.Start("etcd", filepath.Join(e.Dir, "etcd.log"), nil, filepath.Join(binDir, "etcd"),
		"--name=kubetest",
		"--data-dir="+dataDir,
		"--listen-client-urls="+client, "--advertise-client-urls="+client,
		"--listen-peer-urls="+peer, "--initial-advertise-peer-urls="+peer,
		"--initial-cluster=kubetest="+peer,
		"--listen-metrics-urls=",
		// Test data is thrown away: skip fsync, keep the log quiet.
		"--unsafe-no-fsync",
		"--log-level=warn",
	)
	if err != nil {
		return err
	}
	e.etcdURL = client
	return waitReady(ctx, e.etcd, http.DefaultClient, client+"/health", nil)
}

func (e *Env) startAPIServer(ctx context.Context, binDir string, p *pki, port int, extra []string) error {
	args := []string{
		"--etcd-servers=" + e.etcdURL,
		// A fresh prefix per start, so a retried start never sees objects
		// of an earlier attempt.
		"--etcd-prefix=/registry-" + strconv.FormatInt(time.Now().UnixNano(), 36),
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		// The kubernetes Service's endpoints would point at loopback, which
		// the reconciler refuses; tests do not reach the API through it.
		"--endpoint-reconciler-type=none",
		"--secure-port=" + strconv.Itoa(port),
		"--tls-cert-file=" + p.certFile,
		"--tls-private-key-file=" + p.keyFile,
		"--token-auth-file=" + p.tokensFile,
		"--authorization-mode=RBAC",
		"--disable-admission-plugins=ServiceAccount",
		"--allow-privileged=true",
		"--service-cluster-ip-range=198.19.0.0/20",
		"--service-account-issuer=" + ServiceAccountIssuer,
		"--service-account-key-file=" + p.saPubFile,
		"--service-account-signing-key-file=" + p.saKeyFile,
		"--cert-dir=" + filepath.Join(e.Dir, "apiserver-certs"),
	}
	args = append(args, extra...)
	var err error
	e.apiserver, err = childproc.Start("kube-apiserver", filepath.Join(e.Dir, "kube-apiserver.log"), nil, append([]string{filepath.Join(binDir, "kube-apiserver")}, args...)...)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(p.caPEM)
	client := &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
	}
	defer client.CloseIdleConnections()
	return waitReady(ctx, e.apiserver, client, "https://"+hostPort(port)+"/readyz", map[string]string{"Authorization": "Bearer " + p.adminToken})
}

// waitReady polls url until it answers 200, the process exits, or ctx ends.
func waitReady(ctx context.Context, p *childproc.Process, client *http.Client, url string, headers map[string]string) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s: %s", url, resp.Status)
		}
		last = err
		select {
		case <-p.Exited():
			return fmt.Errorf("%w before it was ready: %v", errExited, p.Running())
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %w (last: %v)", p.Name, ctx.Err(), last)
		case <-tick.C:
		}
	}
}

// Stop stops the API server, then etcd (the API server hangs in shutdown if
// etcd goes first), and removes Dir. It is safe to call more than once.
func (e *Env) Stop() error {
	if e.apiserver != nil {
		e.apiserver.Stop(5 * time.Second)
	}
	if e.etcd != nil {
		e.etcd.Stop(5 * time.Second)
	}
	if e.Dir == "" {
		return nil
	}
	if err := os.RemoveAll(e.Dir); err != nil {
		return fmt.Errorf("removing %s: %w", e.Dir, err)
	}
	return nil
}

// PIDs returns the process IDs of etcd and the API server (for tests that
// check cleanup).
func (e *Env) PIDs() []int {
	var pids []int
	for _, p := range []*childproc.Process{e.etcd, e.apiserver} {
		if p != nil {
			pids = append(pids, p.Cmd.Process.Pid)
		}
	}
	return pids
}

func (e *Env) tails() string {
	var s string
	for _, p := range []*childproc.Process{e.etcd, e.apiserver} {
		if p != nil {
			s += fmt.Sprintf("\n--- last lines of %s ---\n%s", p.Name, p.Tail(30))
		}
	}
	return s
}

func (e *Env) logTails(t testing.TB) {
	t.Helper()
	if s := e.tails(); s != "" {
		t.Log(s)
	}
}
