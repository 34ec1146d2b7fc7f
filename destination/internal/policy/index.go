package policy

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/cache"

	policyv1 "github.com/linkerd-go/linkerd-go/api/linkerd/policy/v1"
	"github.com/linkerd-go/linkerd-go/destination/internal/k8s"
	"github.com/linkerd-go/linkerd-go/destination/internal/metrics"
	"github.com/linkerd-go/linkerd-go/destination/internal/subscription"
)

// ErrNoPod is returned by Subscribe for a pod the caches do not hold.
var ErrNoPod = errors.New("no such pod")

// Subscription is one stream's queue of policies. A nil message means the
// pod is gone: the stream must end.
type Subscription = subscription.Queue[*policyv1.WatchPortResponse]

// Key names a watched port.
type Key struct {
	Namespace, Pod string
	Port           uint16
}

type podKey struct{ ns, name string }

// watcher keeps one port's policy and the streams that watch it.
type watcher struct {
	key     Key
	mu      sync.Mutex
	subs    map[*Subscription]struct{}
	current *policyv1.Server
	gone    bool
}

// Index keeps one watcher per watched port, shared by every stream of it.
// Informer handlers only mark watchers dirty (never blocking); one worker
// recomputes them and queues a new policy on each stream when it changed.
// A stream whose queue is full is reset. Which watchers an event touches:
// a pod's; a namespace's for the Namespace and the namespaced policy kinds;
// every watcher for the authentications, which policies of any namespace
// may name.
type Index struct {
	log      logr.Logger
	cfg      Config
	computer *Computer
	metrics  *metrics.Metrics
	invalid  *prometheus.CounterVec

	mu       sync.Mutex
	watchers map[Key]*watcher
	byPod    map[podKey]map[*watcher]struct{}
	byNS     map[string]map[*watcher]struct{}

	dirty *subscription.Dirty[*watcher]
}

// New makes an Index over the pod, namespace and policy informers, and
// registers its handlers; their caches form the Store it computes from.
// Call Run to process changes.
func New(log logr.Logger, cfg Config, pods, namespaces cache.SharedIndexInformer, infs *k8s.Policy, m *metrics.Metrics) (*Index, error) {
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 64
	}
	store := Store{
		Pods: pods.GetIndexer(), Namespaces: namespaces.GetIndexer(),
		Servers: infs.Servers.GetIndexer(), ServerAuthorizations: infs.ServerAuthorizations.GetIndexer(),
		AuthorizationPolicies: infs.AuthorizationPolicies.GetIndexer(), MeshTLSAuthentications: infs.MeshTLSAuthentications.GetIndexer(),
		NetworkAuthentications: infs.NetworkAuthentications.GetIndexer(), HTTPRoutes: infs.HTTPRoutes.GetIndexer(),
	}
	ix := &Index{
		log:      log,
		cfg:      cfg,
		computer: &Computer{log: log, cfg: cfg, store: store, parsed: &parseCache{}},
		metrics:  m,
		invalid:  m.PolicyInvalid,
		watchers: map[Key]*watcher{},
		byPod:    map[podKey]map[*watcher]struct{}{},
		byNS:     map[string]map[*watcher]struct{}{},
		dirty:    subscription.NewDirty[*watcher](),
	}
	handlers := []struct {
		inf      cache.SharedIndexInformer
		resource string
		kind     string // a policy kind, checked on every change
		touches  func(obj any) []*watcher
	}{
		{pods, "pods", "", ix.podWatchers},
		{namespaces, "namespaces", "", func(obj any) []*watcher { return ix.nsWatchers(k8s.Name(obj)) }},
		{infs.Servers, "servers", KindServer, ix.objNSWatchers},
		{infs.ServerAuthorizations, "serverauthorizations", KindServerAuthorization, ix.objNSWatchers},
		{infs.AuthorizationPolicies, "authorizationpolicies", KindAuthorizationPolicy, ix.objNSWatchers},
		{infs.HTTPRoutes, "httproutes", KindHTTPRoute, ix.objNSWatchers},
		{infs.MeshTLSAuthentications, "meshtlsauthentications", KindMeshTLSAuthentication, ix.allWatchers},
		{infs.NetworkAuthentications, "networkauthentications", KindNetworkAuthentication, ix.allWatchers},
	}
	for _, h := range handlers {
		events := m.InformerEvents.WithLabelValues(h.resource)
		h := h
		apply := func(obj any) {
			events.Inc()
			if h.kind != "" {
				ix.check(h.kind, obj)
			}
			ix.dirty.Mark(time.Now(), h.touches(obj)...)
		}
		_, err := h.inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    apply,
			UpdateFunc: func(_, obj any) { apply(obj) },
			DeleteFunc: func(obj any) {
				if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
					obj = t.Obj
				}
				events.Inc()
				ix.computer.parsed.forget(h.kind, obj)
				ix.dirty.Mark(time.Now(), h.touches(obj)...)
			},
		})
		if err != nil {
			return nil, err
		}
	}
	return ix, nil
}

// check logs (once per change) a policy object that cannot be used.
func (ix *Index) check(kind string, obj any) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return
	}
	if err := ix.computer.check(kind, u); err != nil {
		ix.invalid.WithLabelValues(kind).Inc()
		what := "left out of every proxy's policy"
		var d deniedPorts
		if errors.As(err, &d) {
			what = "its ports denied to every client"
		}
		ix.log.Info("unusable policy object: "+what, "kind", kind, "namespace", u.GetNamespace(), "name", u.GetName(), "err", err)
		if ix.cfg.Events != nil {
			ix.cfg.Events.Eventf(u, corev1.EventTypeWarning, ReasonInvalid, "%s: %v", what, err)
		}
	}
}

// Run recomputes dirty watchers until ctx is done.
func (ix *Index) Run(ctx context.Context) {
	ix.dirty.Run(ctx, ix.recompute, ix.metrics.UpdateDelay)
}

func (ix *Index) recompute(w *watcher) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.gone || len(w.subs) == 0 {
		return
	}
	pod := ix.computer.Pod(w.key.Namespace, w.key.Pod)
	if pod == nil {
		w.gone = true
		ix.log.V(1).Info("watched pod is gone", "namespace", w.key.Namespace, "pod", w.key.Pod)
		ix.publish(w, nil)
		return
	}
	next := ix.computer.Compute(pod, w.key.Port)
	if proto.Equal(next, w.current) {
		return
	}
	w.current = next
	ix.log.V(2).Info("policy changed", "namespace", w.key.Namespace, "pod", w.key.Pod, "port", w.key.Port, "server", next.GetLabels()["name"])
	ix.publish(w, &policyv1.WatchPortResponse{Server: next})
}

// publish queues m on every subscriber of w, resetting those whose queue
// is full. Called with w.mu held; never blocks.
func (ix *Index) publish(w *watcher, m *policyv1.WatchPortResponse) {
	for s := range w.subs {
		if s.TryPut(m) {
			continue
		}
		// Counted before the reset is signalled, so that whoever sees the
		// reset sees it counted.
		ix.metrics.StreamResets.WithLabelValues(metrics.RPCWatchPort).Inc()
		delete(w.subs, s)
		s.Abort()
	}
}

// Subscribe subscribes to the policy of key; the first message is the
// current policy. It fails with ErrNoPod when the pod is not known. The
// returned function unsubscribes; it may be called more than once.
func (ix *Index) Subscribe(key Key) (*Subscription, func(), error) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	w := ix.watchers[key]
	if w == nil {
		// Registered before the first computation: a change from here on
		// marks it dirty, and one before is already in the caches.
		w = &watcher{key: key, subs: map[*Subscription]struct{}{}}
		pod := ix.computer.Pod(key.Namespace, key.Pod)
		if pod == nil {
			return nil, nil, ErrNoPod
		}
		ix.watchers[key] = w
		add(ix.byPod, podKey{key.Namespace, key.Pod}, w)
		add(ix.byNS, key.Namespace, w)
		ix.metrics.Watchers.WithLabelValues(metrics.RPCWatchPort).Inc()
		w.current = ix.computer.Compute(pod, key.Port)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.gone {
		return nil, nil, ErrNoPod
	}
	sub := subscription.NewQueue(ix.cfg.QueueSize, []*policyv1.WatchPortResponse{{Server: w.current}})
	w.subs[sub] = struct{}{}
	var once sync.Once
	return sub, func() { once.Do(func() { ix.unsubscribe(w, sub) }) }, nil
}

func (ix *Index) unsubscribe(w *watcher, sub *Subscription) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	w.mu.Lock()
	delete(w.subs, sub)
	empty := len(w.subs) == 0
	w.mu.Unlock()
	if !empty || ix.watchers[w.key] != w {
		return
	}
	delete(ix.watchers, w.key)
	remove(ix.byPod, podKey{w.key.Namespace, w.key.Pod}, w)
	remove(ix.byNS, w.key.Namespace, w)
	ix.metrics.Watchers.WithLabelValues(metrics.RPCWatchPort).Dec()
}

// WatcherCount returns the number of live watchers (for tests).
func (ix *Index) WatcherCount() int {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	return len(ix.watchers)
}

func add[K comparable](m map[K]map[*watcher]struct{}, k K, w *watcher) {
	set := m[k]
	if set == nil {
		set = map[*watcher]struct{}{}
		m[k] = set
	}
	set[w] = struct{}{}
}

func remove[K comparable](m map[K]map[*watcher]struct{}, k K, w *watcher) {
	if set := m[k]; set != nil {
		delete(set, w)
		if len(set) == 0 {
			delete(m, k)
		}
	}
}

func (ix *Index) collect(set map[*watcher]struct{}) []*watcher {
	out := make([]*watcher, 0, len(set))
	for w := range set {
		out = append(out, w)
	}
	return out
}

func (ix *Index) podWatchers(obj any) []*watcher {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return nil
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	return ix.collect(ix.byPod[podKey{pod.Namespace, pod.Name}])
}

func (ix *Index) nsWatchers(ns string) []*watcher {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	return ix.collect(ix.byNS[ns])
}

func (ix *Index) objNSWatchers(obj any) []*watcher { return ix.nsWatchers(k8s.Namespace(obj)) }

func (ix *Index) allWatchers(any) []*watcher {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	out := make([]*watcher, 0, len(ix.watchers))
	for _, w := range ix.watchers {
		out = append(out, w)
	}
	return out
}

// Opaque reports whether the Server that takes port on pod declares
// proxyProtocol opaque: discovery then hints the port as opaque, as the
// opaque-ports annotation does.
func (ix *Index) Opaque(pod *corev1.Pod, port uint16) bool {
	_, srv := ix.computer.matchServer(pod, port)
	return srv != nil && srv.protocol.GetOpaque() != nil
}
