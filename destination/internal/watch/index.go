// Package watch keeps one watcher per target, shared by every stream that
// asks for it. A watcher computes its target's state from the informer
// caches whenever an object it depends on changes, and hands the difference
// to each subscribed stream's bounded queue. A stream whose queue is full is
// reset (and counted); it never blocks the watcher or the other streams.
// The watcher is dropped when its last stream leaves.
//
// Informer handlers only mark the affected watchers dirty; one worker
// goroutine recomputes them. Locks are taken in this order: Index.mu,
// a watcher's mu, Index.gate (read side), Index.refsMu; informer handlers
// take Index.gate (write side), then Index.refsMu, then the dirty set's.
package watch

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/linkerd-go/linkerd-go/api/mesh"
	"github.com/linkerd-go/linkerd-go/destination/internal/k8s"
	"github.com/linkerd-go/linkerd-go/destination/internal/metrics"
	"github.com/linkerd-go/linkerd-go/destination/internal/subscription"
	"github.com/linkerd-go/linkerd-go/destination/internal/target"
)

// Config is what resolution needs to know about the mesh.
type Config struct {
	// ClusterDomain is the cluster's DNS domain ("cluster.local").
	ClusterDomain string
	// ControlPlaneNamespace is this control plane's namespace: pods labelled
	// linkerd.io/control-plane-ns with it are meshed by us.
	ControlPlaneNamespace string
	// TrustDomain is the identity trust domain.
	TrustDomain string
	// DefaultOpaquePorts apply where no annotation says otherwise.
	DefaultOpaquePorts []mesh.PortRange
	// EnableH2Upgrade hints meshed endpoints as accepting HTTP/2.
	EnableH2Upgrade bool
	// QueueSize is each stream's queue length (updates) after its initial
	// state.
	QueueSize int
}

type depKind uint8

const (
	depService depKind = iota
	depPod
	depIP
	depNamespace
	depReplicaSet
	depProfile
	// depServers is the policy Servers of a namespace (ns; name is empty).
	depServers
)

// dep is something a watcher's state was computed from.
type dep struct {
	kind     depKind
	ns, name string
}

// recomputer is a watcher of either kind.
type recomputer interface {
	recompute()
}

// Index holds the watchers.
type Index struct {
	log     logr.Logger
	cfg     Config
	cluster *k8s.Cluster
	metrics *metrics.Metrics
	// servers, when set, reads the Servers' declared protocols.
	servers ServerProtocols

	mu        sync.Mutex
	endpoints map[target.Target]*endpointsWatcher
	profiles  map[profileKey]*profileWatcher

	// gate keeps informer handlers from looking up dependencies while a
	// watcher is between reading the caches and recording what it read, so
	// that no change can fall between the two.
	gate   sync.RWMutex
	refsMu sync.Mutex
	refs   map[dep]map[recomputer]struct{}

	dirty *subscription.Dirty[recomputer]
}

// New makes an Index over the cluster's informers and registers its event
// handlers. Call Run to process changes.
func New(log logr.Logger, cfg Config, cluster *k8s.Cluster, m *metrics.Metrics) (*Index, error) {
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 64
	}
	ix := &Index{
		log:       log,
		cfg:       cfg,
		cluster:   cluster,
		metrics:   m,
		endpoints: map[target.Target]*endpointsWatcher{},
		profiles:  map[profileKey]*profileWatcher{},
		refs:      map[dep]map[recomputer]struct{}{},
		dirty:     subscription.NewDirty[recomputer](),
	}
	handlers := []struct {
		inf      cache.SharedIndexInformer
		resource string
		deps     func(obj any) []dep
	}{
		{cluster.Services, "services", serviceDeps},
		{cluster.Slices, "endpointslices", sliceDeps},
		{cluster.Pods, "pods", podDeps},
		{cluster.Namespaces, "namespaces", func(obj any) []dep { return []dep{{kind: depNamespace, name: k8s.Name(obj)}} }},
		{cluster.ReplicaSets, "replicasets", func(obj any) []dep { return []dep{{kind: depReplicaSet, ns: k8s.Namespace(obj), name: k8s.Name(obj)}} }},
		{cluster.Profiles, "serviceprofiles", func(obj any) []dep { return []dep{{kind: depProfile, ns: k8s.Namespace(obj), name: k8s.Name(obj)}} }},
	}
	for _, h := range handlers {
		if err := ix.handle(h.inf, m.InformerEvents.WithLabelValues(h.resource), h.deps); err != nil {
			return nil, err
		}
	}
	return ix, nil
}

// ServerProtocols says which pod ports a policy.linkerd.io Server declares
// opaque (the policy index does).
type ServerProtocols interface {
	Opaque(pod *corev1.Pod, port uint16) bool
}

// UseServers makes a Server's proxyProtocol opaque mark the pod ports it
// takes as opaque, as the opaque-ports annotation does: inf is the Servers
// informer (its changes recompute the watchers of its namespace's pods),
// protocols reads it. Call it before Run.
func (ix *Index) UseServers(inf cache.SharedIndexInformer, protocols ServerProtocols) error {
	ix.servers = protocols
	// The policy index counts the Servers' informer events already.
	return ix.handle(inf, nil, func(obj any) []dep { return []dep{{kind: depServers, ns: k8s.Namespace(obj)}} })
}

// handle registers the handler that marks dirty the watchers depending on
// what depsOf says an object is; events, when set, counts the events.
func (ix *Index) handle(inf cache.SharedIndexInformer, events prometheus.Counter, depsOf func(obj any) []dep) error {
	count := func() {
		if events != nil {
			events.Inc()
		}
	}
	_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			count()
			ix.changed(depsOf(obj))
		},
		UpdateFunc: func(old, obj any) {
			count()
			ix.changed(append(depsOf(old), depsOf(obj)...))
		},
		DeleteFunc: func(obj any) {
			count()
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			ix.changed(depsOf(obj))
		},
	})
	return err
}

// Run recomputes dirty watchers until ctx is done.
func (ix *Index) Run(ctx context.Context) {
	ix.dirty.Run(ctx, recomputer.recompute, ix.metrics.UpdateDelay)
}

// changed marks the watchers that depend on any of deps dirty. It never
// blocks for long: it only takes short locks.
func (ix *Index) changed(deps []dep) {
	now := time.Now()
	ix.gate.Lock()
	ix.refsMu.Lock()
	var hit []recomputer
	for _, d := range deps {
		for w := range ix.refs[d] {
			hit = append(hit, w)
		}
	}
	ix.refsMu.Unlock()
	ix.gate.Unlock()
	if len(hit) == 0 {
		return
	}
	ix.dirty.Mark(now, hit...)
}

// setDeps records what w was computed from. Called with w's lock and the
// gate's read side held.
func (ix *Index) setDeps(w recomputer, old, deps map[dep]struct{}) {
	ix.refsMu.Lock()
	defer ix.refsMu.Unlock()
	for d := range old {
		if _, keep := deps[d]; keep {
			continue
		}
		if set := ix.refs[d]; set != nil {
			delete(set, w)
			if len(set) == 0 {
				delete(ix.refs, d)
			}
		}
	}
	for d := range deps {
		set := ix.refs[d]
		if set == nil {
			set = map[recomputer]struct{}{}
			ix.refs[d] = set
		}
		set[w] = struct{}{}
	}
}

// WatcherCount returns the number of live watchers (for tests).
func (ix *Index) WatcherCount() (endpoints, profiles int) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	return len(ix.endpoints), len(ix.profiles)
}

// depCount returns how many dependencies are recorded (for tests).
func (ix *Index) depCount() int {
	ix.refsMu.Lock()
	defer ix.refsMu.Unlock()
	return len(ix.refs)
}

func serviceDeps(obj any) []dep {
	svc, ok := obj.(*corev1.Service)
	if !ok {
		return nil
	}
	out := []dep{{kind: depService, ns: svc.Namespace, name: svc.Name}}
	for _, ip := range k8s.ServiceIPs(svc) {
		out = append(out, ipDep(ip))
	}
	return out
}

func sliceDeps(obj any) []dep {
	s, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return nil
	}
	name := s.Labels[discoveryv1.LabelServiceName]
	if name == "" {
		return nil
	}
	return []dep{{kind: depService, ns: s.Namespace, name: name}}
}

func podDeps(obj any) []dep {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return nil
	}
	out := []dep{{kind: depPod, ns: pod.Namespace, name: pod.Name}}
	for _, ip := range k8s.PodIPs(pod) {
		out = append(out, ipDep(ip))
	}
	return out
}

func ipDep(ip netip.Addr) dep { return dep{kind: depIP, name: ip.String()} }
