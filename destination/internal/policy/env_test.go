package policy

import (
	"os"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/testr"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/cache"

	"github.com/linkerd-go/linkerd-go/api/mesh"
	"github.com/linkerd-go/linkerd-go/destination/internal/updatetest"
	"github.com/linkerd-go/linkerd-go/tools/testkit/kubetest"
)

func testConfig() Config {
	opaque, _ := mesh.ParsePortRanges(mesh.DefaultOpaquePorts)
	cluster, _ := ParseNetworks("10.0.0.0/8")
	probes, _ := ParseNetworks("0.0.0.0/0,::/0")
	return Config{
		ControlPlaneNamespace: "linkerd",
		TrustDomain:           "cluster.local",
		DefaultPolicy:         AllUnauthenticated,
		ClusterNetworks:       cluster,
		ProbeNetworks:         probes,
		DefaultOpaquePorts:    opaque,
	}
}

func newIndexer() cache.Indexer {
	return cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
}

func emptyStore() Store {
	return Store{
		Pods: newIndexer(), Namespaces: newIndexer(), Servers: newIndexer(), ServerAuthorizations: newIndexer(),
		AuthorizationPolicies: newIndexer(), MeshTLSAuthentications: newIndexer(), NetworkAuthentications: newIndexer(), HTTPRoutes: newIndexer(),
	}
}

// storeOf loads a multi-document YAML manifest into a Store: pods and
// namespaces as typed objects, the policy kinds as unstructured ones, as the
// informers hold them.
func storeOf(t testing.TB, manifest string) Store {
	t.Helper()
	objs, err := kubetest.DecodeObjects([]byte(manifest))
	if err != nil {
		t.Fatal(err)
	}
	s := emptyStore()
	for _, u := range objs {
		if err := s.add(u); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// add puts one object in the cache of its kind.
func (s Store) add(u *unstructured.Unstructured) error {
	ix, ok := map[string]cache.Indexer{
		"Pod": s.Pods, "Namespace": s.Namespaces, KindServer: s.Servers, KindServerAuthorization: s.ServerAuthorizations,
		KindAuthorizationPolicy: s.AuthorizationPolicies, KindMeshTLSAuthentication: s.MeshTLSAuthentications,
		KindNetworkAuthentication: s.NetworkAuthentications, KindHTTPRoute: s.HTTPRoutes,
	}[u.GetKind()]
	if !ok {
		return nil
	}
	if u.GetKind() == "Pod" || u.GetKind() == "Namespace" {
		typed, err := toTyped(u)
		if err != nil {
			return err
		}
		return ix.Add(typed)
	}
	return ix.Add(u)
}

func mustJSON(u *unstructured.Unstructured) []byte {
	b, err := u.MarshalJSON()
	if err != nil {
		panic(err)
	}
	return b
}

// describe computes the policy of ns/pod:port over store as text.
func describe(t testing.TB, store Store, ns, pod string, port uint16) string {
	t.Helper()
	c := NewComputer(testr.NewWithInterface(t, testr.Options{}), testConfig(), store)
	p := c.Pod(ns, pod)
	if p == nil {
		t.Fatalf("no pod %s/%s", ns, pod)
	}
	return strings.TrimSpace(updatetest.Describe(c.Compute(p, port)))
}

func expectPolicy(t *testing.T, store Store, ns, pod string, port uint16, want string) {
	t.Helper()
	got := describe(t, store, ns, pod, port)
	if got != strings.TrimSpace(want) {
		t.Errorf("%s/%s:%d:\n%s\nwant:\n%s", ns, pod, port, got, strings.TrimSpace(want))
	}
}

// basePods are the pods and namespace most tests use.
var basePods = readFile("testdata/pods.yaml")

func readFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func firstOfKind(t testing.TB, ix cache.Indexer) *unstructured.Unstructured {
	t.Helper()
	objs := ix.List()
	if len(objs) == 0 {
		t.Fatal("no objects")
	}
	return objs[0].(*unstructured.Unstructured)
}

func trim(s string) string { return strings.TrimSpace(s) }

func discard() logr.Logger { return logr.Discard() }

func decodeObjects(manifest string) ([]*unstructured.Unstructured, error) {
	return kubetest.DecodeObjects([]byte(manifest))
}

func toTyped(u *unstructured.Unstructured) (runtime.Object, error) {
	return runtime.Decode(scheme.Codecs.UniversalDeserializer(), mustJSON(u))
}
