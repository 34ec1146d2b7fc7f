// Package k8s holds the shared informers destination reads the cluster
// through: EndpointSlices, Services, Pods, Namespaces, ReplicaSets (metadata
// only, for owner names) and ServiceProfiles, with the indexes lookups need.
// Later features (the policy API) add their informers here so that one cache
// serves them all.
package k8s

import (
	"context"
	"fmt"
	"net/netip"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/tools/cache"

	"github.com/linkerd-go/linkerd-go/destination/internal/profile"
)

// Index names.
const (
	indexClusterIP = "clusterIP"
	indexPodIP     = "podIP"
	indexService   = "service"
)

// Cluster is the set of shared informers.
type Cluster struct {
	Services    cache.SharedIndexInformer
	Slices      cache.SharedIndexInformer
	Pods        cache.SharedIndexInformer
	Namespaces  cache.SharedIndexInformer
	ReplicaSets cache.SharedIndexInformer
	Profiles    cache.SharedIndexInformer

	factory informers.SharedInformerFactory
	meta    metadatainformer.SharedInformerFactory
	dyn     dynamicinformer.DynamicSharedInformerFactory
}

// New builds the informers; nothing runs until Start.
func New(client kubernetes.Interface, metaClient metadata.Interface, dynClient dynamic.Interface) (*Cluster, error) {
	c := &Cluster{
		factory: informers.NewSharedInformerFactory(client, 0),
		meta:    metadatainformer.NewSharedInformerFactory(metaClient, 0),
		dyn:     dynamicinformer.NewDynamicSharedInformerFactory(dynClient, 0),
	}
	c.Services = c.factory.Core().V1().Services().Informer()
	c.Slices = c.factory.Discovery().V1().EndpointSlices().Informer()
	c.Pods = c.factory.Core().V1().Pods().Informer()
	c.Namespaces = c.factory.Core().V1().Namespaces().Informer()
	c.ReplicaSets = c.meta.ForResource(appsv1.SchemeGroupVersion.WithResource("replicasets")).Informer()
	c.Profiles = c.dyn.ForResource(profile.GVR).Informer()

	for _, inf := range []cache.SharedIndexInformer{c.Services, c.Slices, c.Namespaces, c.ReplicaSets, c.Profiles} {
		if err := inf.SetTransform(stripManagedFields); err != nil {
			return nil, err
		}
	}
	if err := c.Pods.SetTransform(trimPod); err != nil {
		return nil, err
	}
	if err := c.Services.AddIndexers(cache.Indexers{indexClusterIP: serviceIPs}); err != nil {
		return nil, err
	}
	if err := c.Pods.AddIndexers(cache.Indexers{indexPodIP: podIPs}); err != nil {
		return nil, err
	}
	if err := c.Slices.AddIndexers(cache.Indexers{indexService: sliceService}); err != nil {
		return nil, err
	}
	return c, nil
}

// Start runs the informers until ctx is done. Call Shutdown after ctx is
// done to wait for them to stop.
func (c *Cluster) Start(ctx context.Context) {
	c.factory.Start(ctx.Done())
	c.meta.Start(ctx.Done())
	c.dyn.Start(ctx.Done())
}

// Shutdown waits for the informers to stop (their context must be done).
func (c *Cluster) Shutdown() {
	c.factory.Shutdown()
	c.meta.Shutdown()
	c.dyn.Shutdown()
}

// HasSynced reports whether every informer has listed its objects once.
func (c *Cluster) HasSynced() bool { return hasSynced(c.informers()) }

// WaitForSync blocks until every informer has synced or ctx is done.
func (c *Cluster) WaitForSync(ctx context.Context) error { return waitForSync(ctx, c.informers()) }

func hasSynced(infs []cache.SharedIndexInformer) bool {
	for _, inf := range infs {
		if !inf.HasSynced() {
			return false
		}
	}
	return true
}

func waitForSync(ctx context.Context, infs []cache.SharedIndexInformer) error {
	var synced []cache.InformerSynced
	for _, inf := range infs {
		synced = append(synced, inf.HasSynced)
	}
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return fmt.Errorf("informer caches did not sync: %w", context.Cause(ctx))
	}
	return nil
}

func (c *Cluster) informers() []cache.SharedIndexInformer {
	return []cache.SharedIndexInformer{c.Services, c.Slices, c.Pods, c.Namespaces, c.ReplicaSets, c.Profiles}
}

// Service returns a Service from the cache.
func (c *Cluster) Service(namespace, name string) *corev1.Service {
	return get[*corev1.Service](c.Services, namespace+"/"+name)
}

// ServicesByIP returns the Services with ip among their cluster IPs.
func (c *Cluster) ServicesByIP(ip netip.Addr) []*corev1.Service {
	return byIndex[*corev1.Service](c.Services, indexClusterIP, ip.String())
}

// SlicesOf returns the EndpointSlices of a Service, sorted by name.
func (c *Cluster) SlicesOf(namespace, service string) []*discoveryv1.EndpointSlice {
	out := byIndex[*discoveryv1.EndpointSlice](c.Slices, indexService, namespace+"/"+service)
	slices.SortFunc(out, func(a, b *discoveryv1.EndpointSlice) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return out
}

// Pod returns a Pod from the cache.
func (c *Cluster) Pod(namespace, name string) *corev1.Pod {
	return get[*corev1.Pod](c.Pods, namespace+"/"+name)
}

// PodsByIP returns the pods (not on the host network) with ip.
func (c *Cluster) PodsByIP(ip netip.Addr) []*corev1.Pod {
	return byIndex[*corev1.Pod](c.Pods, indexPodIP, ip.String())
}

// Namespace returns a Namespace from the cache.
func (c *Cluster) Namespace(name string) *corev1.Namespace {
	return get[*corev1.Namespace](c.Namespaces, name)
}

// ReplicaSet returns a ReplicaSet's metadata from the cache.
func (c *Cluster) ReplicaSet(namespace, name string) *metav1.PartialObjectMetadata {
	return get[*metav1.PartialObjectMetadata](c.ReplicaSets, namespace+"/"+name)
}

// Profile returns a ServiceProfile from the cache.
func (c *Cluster) Profile(namespace, name string) *unstructured.Unstructured {
	return get[*unstructured.Unstructured](c.Profiles, namespace+"/"+name)
}

func get[T any](inf cache.SharedIndexInformer, key string) T {
	var zero T
	obj, ok, err := inf.GetIndexer().GetByKey(key)
	if err != nil || !ok {
		return zero
	}
	t, _ := obj.(T)
	return t
}

func byIndex[T any](inf cache.SharedIndexInformer, index, value string) []T {
	objs, err := inf.GetIndexer().ByIndex(index, value)
	if err != nil {
		return nil
	}
	out := make([]T, 0, len(objs))
	for _, o := range objs {
		if t, ok := o.(T); ok {
			out = append(out, t)
		}
	}
	return out
}

// ServiceIPs returns a Service's cluster IPs (none for a headless Service).
func ServiceIPs(svc *corev1.Service) []netip.Addr {
	ips := svc.Spec.ClusterIPs
	if len(ips) == 0 && svc.Spec.ClusterIP != "" {
		ips = []string{svc.Spec.ClusterIP}
	}
	var out []netip.Addr
	for _, s := range ips {
		if ip, err := netip.ParseAddr(s); err == nil {
			out = append(out, ip.Unmap())
		}
	}
	return out
}

// PodIPs returns a pod's IPs; none for a pod on the host network, whose IP
// is its node's.
func PodIPs(pod *corev1.Pod) []netip.Addr {
	if pod.Spec.HostNetwork {
		return nil
	}
	ips := make([]string, 0, len(pod.Status.PodIPs)+1)
	for _, p := range pod.Status.PodIPs {
		ips = append(ips, p.IP)
	}
	if len(ips) == 0 && pod.Status.PodIP != "" {
		ips = append(ips, pod.Status.PodIP)
	}
	var out []netip.Addr
	for _, s := range ips {
		if ip, err := netip.ParseAddr(s); err == nil {
			out = append(out, ip.Unmap())
		}
	}
	return out
}

// SliceService returns the namespace/name of the Service an EndpointSlice
// belongs to, or "" when it has no service-name label.
func SliceService(s *discoveryv1.EndpointSlice) string {
	name := s.Labels[discoveryv1.LabelServiceName]
	if name == "" {
		return ""
	}
	return s.Namespace + "/" + name
}

func serviceIPs(obj any) ([]string, error) {
	svc, ok := obj.(*corev1.Service)
	if !ok {
		return nil, nil
	}
	var out []string
	for _, ip := range ServiceIPs(svc) {
		out = append(out, ip.String())
	}
	return out, nil
}

func podIPs(obj any) ([]string, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return nil, nil
	}
	var out []string
	for _, ip := range PodIPs(pod) {
		out = append(out, ip.String())
	}
	return out, nil
}

func sliceService(obj any) ([]string, error) {
	s, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return nil, nil
	}
	if k := SliceService(s); k != "" {
		return []string{k}, nil
	}
	return nil, nil
}

// Name returns an object's name, or "" for something that is not one.
func Name(obj any) string {
	if m, err := meta.Accessor(obj); err == nil {
		return m.GetName()
	}
	return ""
}

// Namespace returns an object's namespace, or "".
func Namespace(obj any) string {
	if m, err := meta.Accessor(obj); err == nil {
		return m.GetNamespace()
	}
	return ""
}

func stripManagedFields(obj any) (any, error) {
	if m, err := meta.Accessor(obj); err == nil {
		m.SetManagedFields(nil)
	}
	return obj, nil
}

// trimPod keeps only what destination reads of a pod, to keep the cache
// small: metadata, the ServiceAccount, host networking, hostname, the
// containers' names, ports and HTTP probes (the inbound policy lets the
// kubelet's probes through), and the pod's IPs and phase.
func trimPod(obj any) (any, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	out := &corev1.Pod{
		TypeMeta:   pod.TypeMeta,
		ObjectMeta: pod.ObjectMeta,
		Spec: corev1.PodSpec{
			ServiceAccountName: pod.Spec.ServiceAccountName,
			HostNetwork:        pod.Spec.HostNetwork,
			Hostname:           pod.Spec.Hostname,
			Subdomain:          pod.Spec.Subdomain,
			NodeName:           pod.Spec.NodeName,
			Containers:         trimContainers(pod.Spec.Containers),
			InitContainers:     trimContainers(pod.Spec.InitContainers),
		},
		Status: corev1.PodStatus{Phase: pod.Status.Phase, PodIP: pod.Status.PodIP, PodIPs: pod.Status.PodIPs},
	}
	out.ManagedFields = nil
	return out, nil
}

func trimContainers(cs []corev1.Container) []corev1.Container {
	var out []corev1.Container
	for _, c := range cs {
		t := corev1.Container{
			Name:           c.Name,
			Ports:          c.Ports,
			LivenessProbe:  trimProbe(c.LivenessProbe),
			ReadinessProbe: trimProbe(c.ReadinessProbe),
			StartupProbe:   trimProbe(c.StartupProbe),
		}
		if len(t.Ports) == 0 && t.LivenessProbe == nil && t.ReadinessProbe == nil && t.StartupProbe == nil {
			continue
		}
		out = append(out, t)
	}
	return out
}

// trimProbe keeps the port and path of an HTTP probe and the port of a
// gRPC probe; other probes go.
func trimProbe(p *corev1.Probe) *corev1.Probe {
	switch {
	case p == nil:
		return nil
	case p.HTTPGet != nil:
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: p.HTTPGet.Path, Port: p.HTTPGet.Port}}}
	case p.GRPC != nil:
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: p.GRPC.Port}}}
	}
	return nil
}
