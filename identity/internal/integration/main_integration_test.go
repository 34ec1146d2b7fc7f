//go:build integration

package integration

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	identityv1 "github.com/linkerd-go/linkerd-go/api/linkerd/identity/v1"
	"github.com/linkerd-go/linkerd-go/identity/internal/app"
	"github.com/linkerd-go/linkerd-go/tools/testkit/kubetest"
	"github.com/linkerd-go/linkerd-go/tools/testkit/pkitest"
)

const controlPlaneNS = "linkerd"

// One API server for the package.
var (
	env   *kubetest.Env
	admin kubernetes.Interface
)

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	var err error
	env, err = kubetest.StartEnv(ctx, kubetest.Options{})
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "kubetest: %v\n", err)
		os.Exit(1)
	}
	code := func() int {
		defer func() { _ = env.Stop() }()
		admin = kubernetes.NewForConfigOrDie(env.Config)
		if err := setupControlPlane(context.Background()); err != nil {
			fmt.Fprintf(os.Stderr, "setup: %v\n", err)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

// setupControlPlane creates the control-plane namespace and the identity
// component's ServiceAccount with the least RBAC it needs: create
// TokenReviews, create and patch Events.
func setupControlPlane(ctx context.Context) error {
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: controlPlaneNS}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	if _, err := admin.CoreV1().ServiceAccounts(controlPlaneNS).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "linkerd-identity"}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	if _, err := admin.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "linkerd-identity"},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{"authentication.k8s.io"}, Resources: []string{"tokenreviews"}, Verbs: []string{"create"}},
			{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
		},
	}, metav1.CreateOptions{}); err != nil {
		return err
	}
	_, err := admin.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "linkerd-identity"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "linkerd-identity"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: controlPlaneNS, Name: "linkerd-identity"}},
	}, metav1.CreateOptions{})
	return err
}

// identityClient returns a client that acts as the identity component's
// ServiceAccount, not as an admin, so that the tests exercise its RBAC.
func identityClient(t testing.TB) kubernetes.Interface {
	t.Helper()
	tok := createToken(t, controlPlaneNS, "linkerd-identity", "")
	cfg := rest.AnonymousClientConfig(env.Config)
	cfg.BearerToken = tok
	cfg.QPS, cfg.Burst = 2000, 4000
	return kubernetes.NewForConfigOrDie(cfg)
}

var nsCounter atomic.Int32

// newNamespace creates a namespace with the ServiceAccounts sas.
func newNamespace(t testing.TB, sas ...string) string {
	t.Helper()
	ctx := context.Background()
	ns := fmt.Sprintf("ns%d", nsCounter.Add(1))
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, sa := range sas {
		if _, err := admin.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	return ns
}

// createToken makes a ServiceAccount token with the TokenRequest API, for
// audience ("" for the API server's own).
func createToken(t testing.TB, ns, sa, audience string) string {
	t.Helper()
	req := &authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{ExpirationSeconds: new(int64(3600))}}
	if audience != "" {
		req.Spec.Audiences = []string{audience}
	}
	tr, err := admin.CoreV1().ServiceAccounts(ns).CreateToken(context.Background(), sa, req, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tr.Status.Token
}

func identityName(sa, ns string) string {
	return identityv1.Name{ServiceAccount: sa, Namespace: ns, ControlPlaneNamespace: controlPlaneNS, TrustDomain: "cluster.local"}.String()
}

// component is an identity component running in process.
type component struct {
	app     *app.App
	cfg     app.Config
	anchors *x509.CertPool
	issuer  *pkitest.Volume
	// trustRoots is the mounted trust-roots ConfigMap (ca-bundle.crt).
	trustRoots *pkitest.Volume
	done       chan error
}

type componentOptions struct {
	anchors      []*pkitest.CA
	scheme       string
	issuerFiles  map[string][]byte
	issuerSecret string
}

func startComponent(t testing.TB, o componentOptions) *component {
	t.Helper()
	var bundle []byte
	pool := x509.NewCertPool()
	for _, a := range o.anchors {
		bundle = append(bundle, pkitest.CertsPEM(a.Cert)...)
		pool.AddCert(a.Cert)
	}
	anchorsVol := pkitest.NewVolume(t)
	anchorsVol.Publish(t, map[string][]byte{"ca-bundle.crt": bundle})
	vol := pkitest.NewVolume(t)
	vol.Publish(t, o.issuerFiles)

	cfg := app.DefaultConfig()
	cfg.Addr, cfg.AdminAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.TrustAnchorsFile = filepath.Join(anchorsVol.Dir, "ca-bundle.crt")
	cfg.IssuerDir = vol.Dir
	if o.scheme != "" {
		cfg.IssuerScheme = o.scheme
	}
	if o.issuerSecret != "" {
		cfg.IssuerSecret = o.issuerSecret
	}
	cfg.ControlPlaneNamespace = controlPlaneNS
	a, err := app.New(cfg, app.Deps{Kube: identityClient(t), Log: logr.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &component{app: a, cfg: cfg, anchors: pool, issuer: vol, trustRoots: anchorsVol, done: make(chan error, 1)}
	go func() { c.done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-c.done; err != nil {
			t.Errorf("identity stopped with %v", err)
		}
	})
	return c
}

// dial opens a new connection to the component, verifying its certificate
// against the trust anchors for its own identity name, as a proxy does.
func (c *component) dial(t testing.TB) identityv1.IdentityServiceClient {
	t.Helper()
	creds := credentials.NewTLS(&tls.Config{
		RootCAs:    c.anchors,
		ServerName: c.cfg.SelfName().String(),
		MinVersion: tls.VersionTLS13,
	})
	conn, err := grpc.NewClient(c.app.GRPCAddr().String(), grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return identityv1.NewIdentityServiceClient(conn)
}

// running reports whether the component is still running (it never
// restarted).
func (c *component) running() bool {
	select {
	case err := <-c.done:
		c.done <- err
		return false
	default:
		return true
	}
}

// watchEvents starts watching the Events recorded on the issuer Secret.
func watchEvents(t testing.TB, secret string) watch.Interface {
	t.Helper()
	sel := fields.OneTermEqualSelector("involvedObject.name", secret).String()
	// Watch from now on: events of earlier runs are not replayed.
	list, err := admin.CoreV1().Events(controlPlaneNS).List(context.Background(), metav1.ListOptions{FieldSelector: sel})
	if err != nil {
		t.Fatal(err)
	}
	w, err := admin.CoreV1().Events(controlPlaneNS).Watch(context.Background(), metav1.ListOptions{
		FieldSelector: sel, ResourceVersion: list.ResourceVersion,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	return w
}

// nextEvent returns the next Event with reason, skipping others.
func nextEvent(t testing.TB, w watch.Interface, reason string) *corev1.Event {
	t.Helper()
	timeout := time.After(time.Minute) // a bound for a hung test, not a timing assumption
	for {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatalf("event watch closed while waiting for %s", reason)
			}
			if e, ok := ev.Object.(*corev1.Event); ok && e.Reason == reason {
				return e
			}
		case <-timeout:
			t.Fatalf("no %s event", reason)
		}
	}
}
