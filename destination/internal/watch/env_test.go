package watch

import (
	"bytes"
	"context"
	"errors"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/testr"
	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/kubernetes/scheme"
	metadatafake "k8s.io/client-go/metadata/fake"

	"github.com/linkerd-go/linkerd-go/api/mesh"
	"github.com/linkerd-go/linkerd-go/destination/internal/discovery"
	"github.com/linkerd-go/linkerd-go/destination/internal/informertest"
	"github.com/linkerd-go/linkerd-go/destination/internal/k8s"
	"github.com/linkerd-go/linkerd-go/destination/internal/metrics"
	"github.com/linkerd-go/linkerd-go/destination/internal/policy"
	"github.com/linkerd-go/linkerd-go/destination/internal/profile"
	"github.com/linkerd-go/linkerd-go/destination/internal/target"
	"github.com/linkerd-go/linkerd-go/destination/internal/updatetest"
	"github.com/linkerd-go/linkerd-go/destination/internal/wire"
)

// waitFor bounds how long a test waits for an expected message before it
// fails; it is never reached in a passing run.
const waitFor = 20 * time.Second

// testEnv is an Index over fake clientsets loaded from YAML fixtures.
type testEnv struct {
	t       testing.TB
	client  *fake.Clientset
	dynamic *dynamicfake.FakeDynamicClient
	meta    *metadatafake.FakeMetadataClient
	cluster *k8s.Cluster
	index   *Index
	metrics *metrics.Metrics
	reg     *prometheus.Registry
}

func defaultConfig() Config {
	opaque, _ := mesh.ParsePortRanges(mesh.DefaultOpaquePorts)
	return Config{
		ClusterDomain:         "cluster.local",
		ControlPlaneNamespace: "linkerd",
		TrustDomain:           "cluster.local",
		DefaultOpaquePorts:    opaque,
		EnableH2Upgrade:       true,
		QueueSize:             16,
	}
}

// newEnv starts informers over the objects of the fixture files (in
// testdata) and an Index with cfg; everything stops in t.Cleanup.
func newEnv(t *testing.T, cfg Config, fixtures ...string) *testEnv {
	t.Helper()
	var typed, metas, dyn []runtime.Object
	for _, f := range fixtures {
		for _, u := range readYAML(t, filepath.Join("testdata", f)) {
			gvk := u.GroupVersionKind()
			switch {
			case gvk.Kind == "ServiceProfile" || gvk.Group == k8s.ServerGVR.Group:
				dyn = append(dyn, u)
			case gvk.Kind == "ReplicaSet":
				metas = append(metas, toPartial(u))
			default:
				typed = append(typed, toTyped(t, u))
			}
		}
	}
	return newEnvFrom(t, cfg, typed, metas, dyn, nil)
}

// newEnvFrom is newEnv over objects: typed ones for the clientset,
// ReplicaSet metadata, and ServiceProfiles. fakesBuilt, when set, is called
// once the fake API holds the objects, before anything of destination runs.
func newEnvFrom(t testing.TB, cfg Config, typed, metas, dyn []runtime.Object, fakesBuilt func()) *testEnv {
	t.Helper()
	e := &testEnv{t: t, reg: prometheus.NewRegistry()}
	e.metrics = metrics.New(e.reg)
	// The plain object tracker: the field-managed one (NewClientset) spends
	// milliseconds of its own on every write, which would swamp what the
	// benchmark measures.
	e.client = fake.NewSimpleClientset(typed...)
	metaScheme := metadatafake.NewTestScheme()
	if err := metav1.AddMetaToScheme(metaScheme); err != nil {
		t.Fatal(err)
	}
	rsGVK := schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "ReplicaSet"}
	metaScheme.AddKnownTypeWithName(rsGVK, &metav1.PartialObjectMetadata{})
	metaScheme.AddKnownTypeWithName(rsGVK.GroupVersion().WithKind("ReplicaSetList"), &metav1.PartialObjectMetadataList{})
	e.meta = metadatafake.NewSimpleMetadataClient(metaScheme, metas...)
	listKinds := map[schema.GroupVersionResource]string{profile.GVR: "ServiceProfileList"}
	maps.Copy(listKinds, k8s.PolicyGVRs)
	e.dynamic = dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), listKinds, dyn...)

	// The fakes do not replay changes made between an informer's list and
	// its watch: wait until every informer watches before changing objects.
	watching := informertest.New(6 + len(k8s.PolicyGVRs))
	watching.Attach(e.client)
	watching.Attach(e.meta)
	watching.Attach(e.dynamic)

	if fakesBuilt != nil {
		fakesBuilt()
	}
	var err error
	if e.cluster, err = k8s.New(e.client, e.meta, e.dynamic); err != nil {
		t.Fatal(err)
	}
	log := logr.Discard() // benchmarks
	if tt, ok := t.(*testing.T); ok {
		log = testr.New(tt)
	}
	if e.index, err = New(log, cfg, e.cluster, e.metrics); err != nil {
		t.Fatal(err)
	}
	// Servers declaring opaque ports, through the policy index as
	// destination wires it.
	policyInformers, err := k8s.NewPolicy(e.dynamic)
	if err != nil {
		t.Fatal(err)
	}
	policies, err := policy.New(log, policy.Config{}, e.cluster.Pods, e.cluster.Namespaces, policyInformers, e.metrics)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.index.UseServers(policyInformers.Servers, policies); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.cluster.Start(ctx)
	policyInformers.Start(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.index.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		e.cluster.Shutdown()
		policyInformers.Shutdown()
	})
	syncCtx, syncCancel := context.WithTimeout(ctx, waitFor)
	defer syncCancel()
	if err := e.cluster.WaitForSync(syncCtx); err != nil {
		t.Fatal(err)
	}
	if err := policyInformers.WaitForSync(syncCtx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-watching.All():
	case <-syncCtx.Done():
		t.Fatal("informers did not start watching")
	}
	return e
}

func readYAML(t testing.TB, path string) []*unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return decodeYAML(t, data)
}

func decodeYAML(t testing.TB, data []byte) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		u := &unstructured.Unstructured{}
		err := dec.Decode(&u.Object)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(u.Object) > 0 {
			out = append(out, u)
		}
	}
}

func toTyped(t testing.TB, u *unstructured.Unstructured) runtime.Object {
	t.Helper()
	obj, err := scheme.Scheme.New(u.GroupVersionKind())
	if err != nil {
		t.Fatalf("%s: %v", u.GetName(), err)
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, obj); err != nil {
		t.Fatalf("%s: %v", u.GetName(), err)
	}
	return obj
}

func toPartial(u *unstructured.Unstructured) *metav1.PartialObjectMetadata {
	return &metav1.PartialObjectMetadata{
		TypeMeta: metav1.TypeMeta{APIVersion: u.GetAPIVersion(), Kind: u.GetKind()},
		ObjectMeta: metav1.ObjectMeta{
			Name: u.GetName(), Namespace: u.GetNamespace(),
			Labels: u.GetLabels(), Annotations: u.GetAnnotations(), OwnerReferences: u.GetOwnerReferences(),
		},
	}
}

// apply creates or updates the objects of a YAML document.
func (e *testEnv) apply(doc string) {
	e.t.Helper()
	ctx := context.Background()
	for _, u := range decodeYAML(e.t, []byte(doc)) {
		if gvr, ok := dynamicGVR(u.GetKind()); ok {
			res := e.dynamic.Resource(gvr).Namespace(u.GetNamespace())
			if _, err := res.Get(ctx, u.GetName(), metav1.GetOptions{}); err == nil {
				_, err = res.Update(ctx, u, metav1.UpdateOptions{})
				e.check(err)
			} else {
				_, err = res.Create(ctx, u, metav1.CreateOptions{})
				e.check(err)
			}
			continue
		}
		obj := toTyped(e.t, u)
		gvr, _ := gvrOf(u)
		tr := e.client.Tracker()
		if _, err := tr.Get(gvr, u.GetNamespace(), u.GetName()); err == nil {
			e.check(tr.Update(gvr, obj, u.GetNamespace()))
		} else {
			e.check(tr.Create(gvr, obj, u.GetNamespace()))
		}
	}
}

// remove deletes an object.
func (e *testEnv) remove(kind, namespace, name string) {
	e.t.Helper()
	if gvr, ok := dynamicGVR(kind); ok {
		e.check(e.dynamic.Resource(gvr).Namespace(namespace).Delete(context.Background(), name, metav1.DeleteOptions{}))
		return
	}
	u := &unstructured.Unstructured{}
	u.SetKind(kind)
	gvr, _ := gvrOf(u)
	e.check(e.client.Tracker().Delete(gvr, namespace, name))
}

// dynamicGVR names the resource of a kind the dynamic client serves.
func dynamicGVR(kind string) (schema.GroupVersionResource, bool) {
	switch kind {
	case "ServiceProfile":
		return profile.GVR, true
	case "Server":
		return k8s.ServerGVR, true
	}
	return schema.GroupVersionResource{}, false
}

func (e *testEnv) check(err error) {
	e.t.Helper()
	if err != nil {
		e.t.Fatal(err)
	}
}

func gvrOf(u *unstructured.Unstructured) (schema.GroupVersionResource, bool) {
	switch u.GetKind() {
	case "Service":
		return schema.GroupVersionResource{Version: "v1", Resource: "services"}, true
	case "Pod":
		return schema.GroupVersionResource{Version: "v1", Resource: "pods"}, true
	case "Namespace":
		return schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}, true
	case "EndpointSlice":
		return schema.GroupVersionResource{Group: "discovery.k8s.io", Version: "v1", Resource: "endpointslices"}, true
	}
	return schema.GroupVersionResource{}, false
}

// stream is a subscription the test reads as a client would.
type stream[M any] struct {
	t     testing.TB
	sub   *Subscription[M]
	close func()
}

func (e *testEnv) get(path string) *stream[*discovery.EndpointUpdate] {
	e.t.Helper()
	tgt, err := target.Parse(path, "cluster.local")
	if err != nil {
		e.t.Fatal(err)
	}
	sub, unsubscribe := e.index.SubscribeEndpoints(tgt)
	e.t.Cleanup(unsubscribe)
	return &stream[*discovery.EndpointUpdate]{t: e.t, sub: sub, close: unsubscribe}
}

func (e *testEnv) getProfile(path, clientNS string) *stream[*discovery.Profile] {
	e.t.Helper()
	tgt, err := target.Parse(path, "cluster.local")
	if err != nil {
		e.t.Fatal(err)
	}
	sub, unsubscribe := e.index.SubscribeProfile(tgt, clientNS)
	e.t.Cleanup(unsubscribe)
	return &stream[*discovery.Profile]{t: e.t, sub: sub, close: unsubscribe}
}

func (s *stream[M]) next() M {
	s.t.Helper()
	timer := time.NewTimer(waitFor)
	defer timer.Stop()
	select {
	case m := <-s.sub.C():
		return m
	case <-s.sub.Reset():
		s.t.Fatal("stream was reset")
	case <-timer.C:
		s.t.Fatal("no update arrived")
	}
	panic("unreachable")
}

// expect reads the next update and compares the description of what a
// client receives for it (its wire form).
func (s *stream[M]) expect(want string) {
	s.t.Helper()
	var got string
	switch u := any(s.next()).(type) {
	case *discovery.EndpointUpdate:
		for _, m := range wire.Endpoints(u) {
			got += updatetest.Describe(m)
		}
	case *discovery.Profile:
		got = updatetest.Describe(wire.Profile(u))
	}
	if strings.TrimSpace(got) != strings.TrimSpace(want) {
		s.t.Fatalf("update:\n%s\nwant:\n%s", got, strings.TrimSpace(want))
	}
}
