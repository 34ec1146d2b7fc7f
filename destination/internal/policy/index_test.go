package policy

import (
	"context"
	goruntime "runtime"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"

	policyv1 "github.com/linkerd-go/linkerd-go/api/linkerd/policy/v1"
	"github.com/linkerd-go/linkerd-go/api/mesh"
	"github.com/linkerd-go/linkerd-go/destination/internal/informertest"
	"github.com/linkerd-go/linkerd-go/destination/internal/k8s"
	"github.com/linkerd-go/linkerd-go/destination/internal/metrics"
	"github.com/linkerd-go/linkerd-go/destination/internal/updatetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const waitFor = 20 * time.Second

// indexEnv is an Index over informers on fake clientsets.
type indexEnv struct {
	t       *testing.T
	kube    *fake.Clientset
	dyn     *dynamicfake.FakeDynamicClient
	index   *Index
	metrics *metrics.Metrics
	// leftOut receives each policy object the Index logs as unusable, once
	// its handler has counted it; events gets the Events it records.
	leftOut chan string
	events  *record.FakeRecorder
}

// newIndexEnv starts informers over the fixture (the Index's queue size
// is queue) and waits until every informer watches, so that the fakes see
// every later change.
func newIndexEnv(t *testing.T, fixture string, queue int) *indexEnv {
	t.Helper()
	objs, err := decodeObjects(fixture)
	if err != nil {
		t.Fatal(err)
	}
	var typed, dyn []runtime.Object
	for _, u := range objs {
		if u.GetKind() == "Pod" || u.GetKind() == "Namespace" {
			o, err := toTyped(u)
			if err != nil {
				t.Fatal(err)
			}
			typed = append(typed, o)
		} else {
			dyn = append(dyn, u)
		}
	}
	e := &indexEnv{t: t, kube: fake.NewSimpleClientset(typed...), dyn: dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), k8s.PolicyGVRs, dyn...)}
	watching := informertest.New(8)
	watching.Attach(e.kube)
	watching.Attach(e.dyn)

	factory := informers.NewSharedInformerFactory(e.kube, 0)
	pods, nss := factory.Core().V1().Pods().Informer(), factory.Core().V1().Namespaces().Informer()
	pol, err := k8s.NewPolicy(e.dyn)
	if err != nil {
		t.Fatal(err)
	}
	e.metrics = metrics.New(prometheus.NewRegistry())
	cfg := testConfig()
	cfg.QueueSize = queue
	e.events = record.NewFakeRecorder(16)
	cfg.Events = e.events
	e.leftOut = make(chan string, 16)
	log := funcr.New(func(prefix, args string) {
		t.Log(prefix, args)
		if strings.Contains(args, `"msg"="unusable policy object: `) {
			select {
			case e.leftOut <- args:
			default:
			}
		}
	}, funcr.Options{})
	e.index, err = New(log, cfg, pods, nss, pol, e.metrics)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	factory.Start(ctx.Done())
	pol.Start(ctx)
	done := make(chan struct{})
	go func() { e.index.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		factory.Shutdown()
		pol.Shutdown()
		<-done
	})
	if err := pol.WaitForSync(ctx); err != nil {
		t.Fatal(err)
	}
	factory.WaitForCacheSync(ctx.Done())
	select {
	case <-watching.All():
	case <-time.After(waitFor):
		t.Fatal("informers did not start watching")
	}
	return e
}

func (e *indexEnv) create(manifest string) {
	e.t.Helper()
	objs, err := decodeObjects(manifest)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, u := range objs {
		gvr := gvrOf(e.t, u.GetKind())
		if err := e.dyn.Tracker().Create(gvr, u, u.GetNamespace()); err != nil {
			e.t.Fatal(err)
		}
	}
}

func (e *indexEnv) deletePolicy(kind, ns, name string) {
	e.t.Helper()
	if err := e.dyn.Tracker().Delete(gvrOf(e.t, kind), ns, name); err != nil {
		e.t.Fatal(err)
	}
}

func gvrOf(t testing.TB, kind string) schema.GroupVersionResource {
	for gvr, list := range k8s.PolicyGVRs {
		if list == kind+"List" {
			return gvr
		}
	}
	t.Fatalf("no resource for kind %s", kind)
	return schema.GroupVersionResource{}
}

func next(t *testing.T, sub *Subscription) *policyv1.WatchPortResponse {
	t.Helper()
	select {
	case m := <-sub.C():
		return m
	case <-sub.Reset():
		t.Fatal("stream was reset")
	case <-time.After(waitFor):
		t.Fatal("no update arrived")
	}
	return nil
}

func expectNext(t *testing.T, sub *Subscription, want string) {
	t.Helper()
	got := strings.TrimSpace(updatetest.Describe(next(t, sub)))
	if got != strings.TrimSpace(want) {
		t.Fatalf("update:\n%s\nwant:\n%s", got, strings.TrimSpace(want))
	}
}

const defaultWeb8080 = `
server default/all-unauthenticated detect
  authz default/all-unauthenticated any from 0.0.0.0/0,::/0
  route default/default
    rule /*`

func TestIndexFollowsChanges(t *testing.T) {
	e := newIndexEnv(t, basePods, 16)
	key := Key{Namespace: "emoji", Pod: "web-1", Port: 8080}
	sub, unsubscribe, err := e.index.Subscribe(key)
	if err != nil {
		t.Fatal(err)
	}
	defer unsubscribe()
	expectNext(t, sub, defaultWeb8080)

	// A second stream shares the watcher.
	sub2, unsubscribe2, err := e.index.Subscribe(key)
	if err != nil {
		t.Fatal(err)
	}
	expectNext(t, sub2, defaultWeb8080)
	unsubscribe2()
	if n := e.index.WatcherCount(); n != 1 {
		t.Fatalf("%d watchers, want 1", n)
	}

	e.create(`
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: web-http, namespace: emoji}
spec:
  podSelector: {matchLabels: {app: web}}
  port: http
`)
	expectNext(t, sub, `
server server/web-http detect
  route default/default
    rule /*`)

	// An authentication in another namespace reaches every watcher.
	e.create(`
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: from-shared, namespace: emoji}
spec:
  targetRef: {group: policy.linkerd.io, kind: Server, name: web-http}
  requiredAuthenticationRefs: [{group: policy.linkerd.io, kind: MeshTLSAuthentication, name: ids, namespace: shared}]
`)
	// The policy names an authentication that does not exist yet: no
	// change. Creating it changes the port's policy.
	e.create(`
apiVersion: policy.linkerd.io/v1alpha1
kind: MeshTLSAuthentication
metadata: {name: ids, namespace: shared}
spec:
  identities: ["*.shared.serviceaccount.identity.linkerd.cluster.local"]
`)
	expectNext(t, sub, `
server server/web-http detect
  authz authorizationpolicy/from-shared *.shared.serviceaccount.identity.linkerd.cluster.local from 0.0.0.0/0,::/0
  route default/default
    rule /*`)

	// An unusable object is counted and changes nothing. Its event is
	// handled on the informer's own goroutine, and a recompute marked
	// earlier may already see the store after the next change: so wait
	// until it was handled (counted, then logged) before that change.
	e.create(`
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: bad, namespace: emoji}
spec:
  podSelector: {}
  port: 0
`)
	select {
	case <-e.leftOut:
	case <-time.After(waitFor):
		t.Fatal("the invalid Server was not reported")
	}
	select {
	case ev := <-e.events.Events:
		if !strings.HasPrefix(ev, "Warning "+ReasonInvalid+" left out of every proxy's policy: ") || !strings.Contains(ev, "port") {
			t.Errorf("event %q", ev)
		}
	case <-time.After(waitFor):
		t.Fatal("no Event on the invalid Server")
	}
	invalid := e.metrics.PolicyInvalid.WithLabelValues(KindServer)
	e.deletePolicy(KindServer, "emoji", "web-http")
	expectNext(t, sub, defaultWeb8080)
	if got := testutil.ToFloat64(invalid); got != 1 {
		t.Errorf("invalid Servers counted %v, want 1", got)
	}

	// The pod goes: a nil message ends the stream.
	if err := e.kube.Tracker().Delete(schema.GroupVersionResource{Version: "v1", Resource: "pods"}, "emoji", "web-1"); err != nil {
		t.Fatal(err)
	}
	if m := next(t, sub); m != nil {
		t.Fatalf("after the pod was deleted: %v, want nil", m)
	}
	if _, _, err := e.index.Subscribe(key); err != ErrNoPod {
		t.Fatalf("Subscribe to a deleted pod: %v, want ErrNoPod", err)
	}
	unsubscribe()
	if n := e.index.WatcherCount(); n != 0 {
		t.Fatalf("%d watchers left, want 0", n)
	}
}

func TestIndexUnknownPod(t *testing.T) {
	e := newIndexEnv(t, basePods, 16)
	if _, _, err := e.index.Subscribe(Key{Namespace: "emoji", Pod: "nope", Port: 80}); err != ErrNoPod {
		t.Fatalf("got %v, want ErrNoPod", err)
	}
	if n := e.index.WatcherCount(); n != 0 {
		t.Fatalf("%d watchers, want 0", n)
	}
}

func TestIndexResetsASlowStream(t *testing.T) {
	e := newIndexEnv(t, basePods, 1)
	sub, unsubscribe, err := e.index.Subscribe(Key{Namespace: "emoji", Pod: "web-1", Port: 8080})
	if err != nil {
		t.Fatal(err)
	}
	defer unsubscribe()
	// Nobody reads: the first message and one change fill the queue, the
	// next change overflows it. Each change waits until the one before is
	// queued, so that the worker cannot fold them into one.
	setDefault := func(policy string) {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "emoji", Annotations: map[string]string{mesh.AnnotationDefaultInboundPolicy: policy}}}
		if err := e.kube.Tracker().Update(schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}, ns, ""); err != nil {
			t.Fatal(err)
		}
	}
	setDefault("deny")
	deadline := time.Now().Add(waitFor)
	for len(sub.C()) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the change was not queued")
		}
		goruntime.Gosched()
	}
	setDefault("audit")
	select {
	case <-sub.Reset():
	case <-time.After(waitFor):
		t.Fatal("the stream was not reset")
	}
	if got := testutil.ToFloat64(e.metrics.StreamResets.WithLabelValues(metrics.RPCWatchPort)); got != 1 {
		t.Errorf("resets counted %v, want 1", got)
	}
}
