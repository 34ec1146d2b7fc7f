package watch

import (
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	identityv1 "github.com/linkerd-go/linkerd-go/api/linkerd/identity/v1"
	"github.com/linkerd-go/linkerd-go/api/mesh"
	"github.com/linkerd-go/linkerd-go/destination/internal/discovery"
	"github.com/linkerd-go/linkerd-go/destination/internal/profile"
	"github.com/linkerd-go/linkerd-go/destination/internal/target"
)

// podTemplateHashLabel is set by Deployments on their pods. The mesh's
// own names (mesh.LabelControlPlaneNS, mesh.AnnotationOpaquePorts,
// mesh.AnnotationSkipInboundPorts) are in api/mesh.
const podTemplateHashLabel = "pod-template-hash"

// deps collects what a state was computed from.
type deps map[dep]struct{}

func (d deps) add(kind depKind, ns, name string) { d[dep{kind: kind, ns: ns, name: name}] = struct{}{} }

// resolveEndpoints computes the endpoint set of t from the caches.
func (ix *Index) resolveEndpoints(t target.Target) (endpointState, map[dep]struct{}) {
	d := deps{}
	if t.IsService() {
		d.add(depService, t.Namespace, t.Service)
		svc := ix.cluster.Service(t.Namespace, t.Service)
		if svc == nil {
			return endpointState{}, d
		}
		return ix.serviceEndpoints(svc, t.Port, t.Hostname, d), d
	}
	d[ipDep(t.Addr)] = struct{}{}
	if svc := ix.serviceByIP(t.Addr); svc != nil {
		d.add(depService, svc.Namespace, svc.Name)
		return ix.serviceEndpoints(svc, t.Port, "", d), d
	}
	if pod := ix.podByIP(t.Addr); pod != nil {
		d.add(depPod, pod.Namespace, pod.Name)
		ap := netip.AddrPortFrom(t.Addr, t.Port)
		ep := ix.endpoint(ap, pod, "", false, d)
		return endpointState{
			exists:    true,
			endpoints: map[netip.AddrPort]*discovery.Endpoint{ap: ep},
			labels:    map[string]string{"namespace": pod.Namespace},
		}, d
	}
	return endpointState{}, d
}

// serviceByIP returns the Service whose cluster IP is ip (the first by name
// should several claim it).
func (ix *Index) serviceByIP(ip netip.Addr) *corev1.Service {
	svcs := ix.cluster.ServicesByIP(ip)
	if len(svcs) == 0 {
		return nil
	}
	slices.SortFunc(svcs, func(a, b *corev1.Service) int {
		return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
	return svcs[0]
}

// podByIP returns the live pod with ip: not finished, preferring one that is
// not being deleted, then by name.
func (ix *Index) podByIP(ip netip.Addr) *corev1.Pod {
	pods := slices.DeleteFunc(ix.cluster.PodsByIP(ip), func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
	})
	if len(pods) == 0 {
		return nil
	}
	slices.SortFunc(pods, func(a, b *corev1.Pod) int {
		if da, db := a.DeletionTimestamp != nil, b.DeletionTimestamp != nil; da != db {
			if da {
				return 1
			}
			return -1
		}
		return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
	return pods[0]
}

// serviceEndpoints returns the ready endpoints of a Service's port (only
// those whose hostname is hostname, when set), from all its EndpointSlices.
func (ix *Index) serviceEndpoints(svc *corev1.Service, port uint16, hostname string, d deps) endpointState {
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		return endpointState{}
	}
	d.add(depNamespace, "", svc.Namespace)
	var svcPort *corev1.ServicePort
	for i, p := range svc.Spec.Ports {
		if p.Port == int32(port) && (p.Protocol == "" || p.Protocol == corev1.ProtocolTCP) {
			svcPort = &svc.Spec.Ports[i]
			break
		}
	}
	svcOpaque := ix.serviceOpaque(svc, port)
	state := endpointState{
		exists:    true,
		endpoints: map[netip.AddrPort]*discovery.Endpoint{},
		labels:    map[string]string{"namespace": svc.Namespace, "service": svc.Name},
	}
	for _, slice := range ix.cluster.SlicesOf(svc.Namespace, svc.Name) {
		if slice.AddressType != discoveryv1.AddressTypeIPv4 && slice.AddressType != discoveryv1.AddressTypeIPv6 {
			continue
		}
		fixed, resolveFromPod, ok := slicePort(slice, svcPort, port)
		if !ok {
			continue
		}
		for _, ep := range slice.Endpoints {
			if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
				continue
			}
			if ep.Conditions.Terminating != nil && *ep.Conditions.Terminating {
				continue
			}
			if hostname != "" && !hasHostname(ep, hostname) {
				continue
			}
			var pod *corev1.Pod
			if ref := ep.TargetRef; ref != nil && ref.Kind == "Pod" {
				ns := cmpOr(ref.Namespace, slice.Namespace)
				d.add(depPod, ns, ref.Name)
				pod = ix.cluster.Pod(ns, ref.Name)
			}
			p := fixed
			if resolveFromPod {
				p = targetPortOf(svcPort.TargetPort, pod)
				if p == 0 {
					continue
				}
			}
			zone := ""
			if ep.Zone != nil {
				zone = *ep.Zone
			}
			for _, a := range ep.Addresses {
				ip, err := netip.ParseAddr(a)
				if err != nil {
					continue
				}
				ap := netip.AddrPortFrom(ip.Unmap(), p)
				state.endpoints[ap] = ix.endpoint(ap, pod, zone, svcOpaque, d)
			}
		}
	}
	return state
}

// slicePort finds the port number a slice serves the Service port on. For a
// port the Service does not define, the dialled port is used as it is.
// resolveFromPod is set when the slice leaves the port to each pod (a port
// with no number): the Service's target port is then looked up per pod.
func slicePort(slice *discoveryv1.EndpointSlice, svcPort *corev1.ServicePort, port uint16) (fixed uint16, resolveFromPod, ok bool) {
	if svcPort == nil {
		return port, false, true
	}
	for _, sp := range slice.Ports {
		name := ""
		if sp.Name != nil {
			name = *sp.Name
		}
		if name != svcPort.Name || (sp.Protocol != nil && *sp.Protocol != corev1.ProtocolTCP) {
			continue
		}
		if sp.Port == nil {
			return 0, true, true
		}
		if *sp.Port < 1 || *sp.Port > 65535 {
			return 0, false, false
		}
		return uint16(*sp.Port), false, true
	}
	return 0, false, false
}

// targetPortOf resolves a Service's target port for one pod: a number as it
// is, a name through the pod's container ports. 0 when it cannot.
func targetPortOf(tp intstr.IntOrString, pod *corev1.Pod) uint16 {
	if tp.Type == intstr.Int {
		if tp.IntVal > 0 && tp.IntVal <= 65535 {
			return uint16(tp.IntVal)
		}
		return 0
	}
	if pod == nil {
		return 0
	}
	for _, cs := range [][]corev1.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
		for _, c := range cs {
			for _, p := range c.Ports {
				if p.Name == tp.StrVal && (p.Protocol == "" || p.Protocol == corev1.ProtocolTCP) && p.ContainerPort > 0 && p.ContainerPort <= 65535 {
					return uint16(p.ContainerPort)
				}
			}
		}
	}
	return 0
}

func hasHostname(ep discoveryv1.Endpoint, hostname string) bool {
	if ep.Hostname != nil {
		return *ep.Hostname == hostname
	}
	return ep.TargetRef != nil && ep.TargetRef.Kind == "Pod" && ep.TargetRef.Name == hostname
}

// endpoint builds the Endpoint for ap served by pod (nil when unknown).
func (ix *Index) endpoint(ap netip.AddrPort, pod *corev1.Pod, zone string, svcOpaque bool, d deps) *discovery.Endpoint {
	ep := &discovery.Endpoint{Addr: ap}
	labels := map[string]string{}
	if zone != "" {
		labels["zone"] = zone
	}
	opaque := svcOpaque
	if pod != nil {
		d.add(depNamespace, "", pod.Namespace)
		sa := cmpOr(pod.Spec.ServiceAccountName, "default")
		labels["pod"] = pod.Name
		labels["serviceaccount"] = sa
		if h := pod.Labels[podTemplateHashLabel]; h != "" {
			labels["pod_template_hash"] = h
		}
		if kind, name := ix.owner(pod, d); kind != "" {
			labels[kind] = name
		}
		opaque = opaque || ix.podOpaque(pod, ap.Port()) || ix.serverOpaque(pod, ap.Port(), d)
		if pod.Labels[mesh.LabelControlPlaneNS] == ix.cfg.ControlPlaneNamespace && !ix.portSkipped(pod, ap.Port()) {
			name := identityv1.Name{ServiceAccount: sa, Namespace: pod.Namespace, ControlPlaneNamespace: ix.cfg.ControlPlaneNamespace, TrustDomain: ix.cfg.TrustDomain}
			if name.Validate() == nil {
				ep.Identity = name.String()
			}
		}
	}
	switch {
	case opaque:
		ep.Protocol = discovery.ProtocolOpaque
		if ep.Identity != "" {
			ep.OpaqueInboundPort = mesh.InboundPort
		}
	case ep.Identity != "" && ix.cfg.EnableH2Upgrade:
		ep.Protocol = discovery.ProtocolHTTP2
	}
	if len(labels) > 0 {
		ep.Labels = labels
	}
	return ep
}

// owner returns the metric label of a pod's controller: its kind in lower
// case and its name, a ReplicaSet's Deployment standing for it.
func (ix *Index) owner(pod *corev1.Pod, d deps) (kind, name string) {
	ref := metav1.GetControllerOf(pod)
	if ref == nil {
		return "", ""
	}
	if ref.Kind == "ReplicaSet" {
		d.add(depReplicaSet, pod.Namespace, ref.Name)
		if rs := ix.cluster.ReplicaSet(pod.Namespace, ref.Name); rs != nil {
			if up := metav1.GetControllerOf(rs); up != nil && up.Kind == "Deployment" {
				return "deployment", up.Name
			}
		}
	}
	return strings.ToLower(ref.Kind), ref.Name
}

// annotatedPorts parses a port-list annotation; ok is false when it is
// absent or malformed (a malformed one is logged and ignored).
func (ix *Index) annotatedPorts(kind, name string, annotations map[string]string, key string) ([]mesh.PortRange, bool) {
	v, ok := annotations[key]
	if !ok {
		return nil, false
	}
	rs, err := mesh.ParsePortRanges(v)
	if err != nil {
		ix.log.V(1).Info("ignoring malformed annotation", "kind", kind, "name", name, "annotation", key, "err", err)
		return nil, false
	}
	return rs, true
}

// opaqueList returns the opaque ports that apply to an object: its own
// annotation, else its namespace's, else the default list.
func (ix *Index) opaqueList(kind, namespace, name string, annotations map[string]string) []mesh.PortRange {
	if rs, ok := ix.annotatedPorts(kind, namespace+"/"+name, annotations, mesh.AnnotationOpaquePorts); ok {
		return rs
	}
	if ns := ix.cluster.Namespace(namespace); ns != nil {
		if rs, ok := ix.annotatedPorts("namespace", namespace, ns.Annotations, mesh.AnnotationOpaquePorts); ok {
			return rs
		}
	}
	return ix.cfg.DefaultOpaquePorts
}

func (ix *Index) podOpaque(pod *corev1.Pod, port uint16) bool {
	return mesh.PortsContain(ix.opaqueList("pod", pod.Namespace, pod.Name, pod.Annotations), port)
}

// serverOpaque reports whether the Server that takes the pod's port
// declares it opaque.
func (ix *Index) serverOpaque(pod *corev1.Pod, port uint16, d deps) bool {
	if ix.servers == nil {
		return false
	}
	d.add(depServers, pod.Namespace, "")
	return ix.servers.Opaque(pod, port)
}

func (ix *Index) serviceOpaque(svc *corev1.Service, port uint16) bool {
	return mesh.PortsContain(ix.opaqueList("service", svc.Namespace, svc.Name, svc.Annotations), port)
}

func (ix *Index) portSkipped(pod *corev1.Pod, port uint16) bool {
	rs, _ := ix.annotatedPorts("pod", pod.Namespace+"/"+pod.Name, pod.Annotations, mesh.AnnotationSkipInboundPorts)
	return mesh.PortsContain(rs, port)
}

// resolveProfile computes the profile of a target as seen from a client
// namespace.
func (ix *Index) resolveProfile(k profileKey) (*discovery.Profile, map[dep]struct{}) {
	t := k.target
	d := deps{}
	var svc *corev1.Service
	if t.IsService() {
		d.add(depService, t.Namespace, t.Service)
		svc = ix.cluster.Service(t.Namespace, t.Service)
	} else {
		d[ipDep(t.Addr)] = struct{}{}
		if svc = ix.serviceByIP(t.Addr); svc != nil {
			d.add(depService, svc.Namespace, svc.Name)
		}
	}
	if svc != nil && svc.Spec.Type != corev1.ServiceTypeExternalName {
		d.add(depNamespace, "", svc.Namespace)
		fqdn := target.ServiceFQDN(svc.Name, svc.Namespace, ix.cfg.ClusterDomain)
		p := &discovery.Profile{FQDN: fqdn, Spec: ix.serviceProfile(svc.Namespace, fqdn, k.clientNS, d)}
		p.Opaque = ix.serviceOpaque(svc, t.Port) || (p.Spec != nil && slices.Contains(p.Spec.OpaquePortNumbers(), t.Port))
		if t.Hostname != "" {
			state := ix.serviceEndpoints(svc, t.Port, t.Hostname, d)
			if len(state.endpoints) == 1 {
				for _, ep := range state.endpoints {
					p.Endpoint = ep
					p.Opaque = p.Opaque || ep.Protocol == discovery.ProtocolOpaque
				}
			}
		}
		return withoutRoutesIfOpaque(p), d
	}
	p := &discovery.Profile{}
	if !t.IsService() {
		if pod := ix.podByIP(t.Addr); pod != nil {
			d.add(depPod, pod.Namespace, pod.Name)
			p.Endpoint = ix.endpoint(netip.AddrPortFrom(t.Addr, t.Port), pod, "", false, d)
			p.Opaque = p.Endpoint.Protocol == discovery.ProtocolOpaque
			return p, d
		}
	}
	p.Opaque = mesh.PortsContain(ix.cfg.DefaultOpaquePorts, t.Port)
	return p, d
}

// withoutRoutesIfOpaque drops the routes of an opaque port's profile:
// opaque traffic is not inspected, so routes cannot apply.
func withoutRoutesIfOpaque(p *discovery.Profile) *discovery.Profile {
	if p.Opaque && p.Spec != nil && len(p.Spec.Routes) > 0 {
		spec := *p.Spec
		spec.Routes = nil
		p.Spec = &spec
	}
	return p
}

// serviceProfile returns the servable part of the ServiceProfile of the
// Service fqdn (the client namespace's first, then the Service's), or nil
// when there is none or it does not decode.
func (ix *Index) serviceProfile(svcNS, fqdn, clientNS string, d deps) *profile.Spec {
	namespaces := []string{svcNS}
	if clientNS != "" && clientNS != svcNS {
		namespaces = []string{clientNS, svcNS}
	}
	for _, ns := range namespaces {
		d.add(depProfile, ns, fqdn)
		u := ix.cluster.Profile(ns, fqdn)
		if u == nil {
			continue
		}
		spec, err := profile.FromUnstructured(u)
		if err != nil {
			ix.metrics.ProfileProblems.Inc()
			ix.log.Info("ignoring ServiceProfile that does not decode", "namespace", ns, "name", fqdn, "err", err)
			return nil
		}
		servable, problems := profile.Servable(spec)
		for _, err := range problems {
			ix.metrics.ProfileProblems.Inc()
			ix.log.V(1).Info("ServiceProfile part left out", "namespace", ns, "name", fqdn, "err", err)
		}
		return servable
	}
	return nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
