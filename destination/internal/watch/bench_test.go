package watch

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"

	"github.com/linkerd-go/linkerd-go/api/mesh"
	"github.com/linkerd-go/linkerd-go/destination/internal/discovery"
	"github.com/linkerd-go/linkerd-go/destination/internal/target"
)

// BenchmarkFanOut measures, over 1,000 Services of 10 endpoints each
// (10,000 meshed pods) and 1,000 Get streams (10 on each of 100 Services):
//   - B/endpoint: the heap destination's informer caches, watchers and
//     stream queues take per endpoint (the fake API's own copies are not
//     counted), measured once after everything has synced;
//   - p50-ms, p99-ms: the delay from an EndpointSlice update sent to the
//     API (here the fake clientset) until every one of the 10 streams of
//     that Service has received the resulting update.
//
// Run: cd destination && GOWORK=off go test -run '^$' -bench FanOut -benchtime 2000x ./internal/watch/
func BenchmarkFanOut(b *testing.B) {
	const (
		services        = 1000
		endpointsPerSvc = 10
		watchedServices = 100
		streamsPerSvc   = 10
	)
	var typed []k8sruntime.Object
	typed = append(typed, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bench"}})
	for i := range services {
		name := fmt.Sprintf("svc-%d", i)
		typed = append(typed, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "bench"},
			Spec:       corev1.ServiceSpec{ClusterIP: fmt.Sprintf("10.96.%d.%d", i/256, i%256), Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
		})
		typed = append(typed, benchSlice(i, endpointsPerSvc, -1))
		for j := range endpointsPerSvc {
			typed = append(typed, &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%d", name, j), Namespace: "bench",
					Labels: map[string]string{mesh.LabelControlPlaneNS: "linkerd", "app": name, podTemplateHashLabel: "abc"}},
				Spec:   corev1.PodSpec{ServiceAccountName: name, Containers: []corev1.Container{{Name: "app", Image: "app", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}}},
				Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: benchIP(i, j)},
			})
		}
	}
	var before, after runtime.MemStats
	cfg := defaultConfig()
	cfg.QueueSize = 1024
	e := newEnvFrom(b, cfg, typed, nil, nil, func() {
		runtime.GC()
		runtime.ReadMemStats(&before)
	})
	var streams [][]*Subscription[*discovery.EndpointUpdate]
	for i := range services {
		n := 1
		if i < watchedServices {
			n = streamsPerSvc
		}
		if i >= watchedServices && i%10 != 0 {
			// Services nobody watches still cost their informer cache.
			continue
		}
		var subs []*Subscription[*discovery.EndpointUpdate]
		for range n {
			sub, unsubscribe := e.index.SubscribeEndpoints(target.Target{Service: fmt.Sprintf("svc-%d", i), Namespace: "bench", Port: 80})
			b.Cleanup(unsubscribe)
			<-sub.C()
			subs = append(subs, sub)
		}
		streams = append(streams, subs)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(typed) // counted in both readings
	// The testing package runs the function more than once; a later run's
	// baseline may still hold an earlier run's objects, so the first
	// measurement is the one reported.
	if benchPerEndpoint == 0 {
		benchPerEndpoint = (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / float64(services*endpointsPerSvc)
	}
	perEndpoint := benchPerEndpoint

	ctx := context.Background()
	slicesAPI := e.client.DiscoveryV1().EndpointSlices("bench")
	delays := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for n := range b.N {
		svc := n % watchedServices
		// Alternate between dropping endpoint 0 and restoring it.
		drop := -1
		if (n/watchedServices)%2 == 0 {
			drop = 0
		}
		start := time.Now()
		if _, err := slicesAPI.Update(ctx, benchSlice(svc, endpointsPerSvc, drop), metav1.UpdateOptions{}); err != nil {
			b.Fatal(err)
		}
		for _, sub := range streams[svc] {
			select {
			case <-sub.C():
			case <-sub.Reset():
				b.Fatal("stream reset")
			}
		}
		delays = append(delays, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(delays)
	b.ReportMetric(perEndpoint, "B/endpoint")
	b.ReportMetric(float64(delays[len(delays)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(delays[len(delays)*99/100].Microseconds())/1000, "p99-ms")
}

// benchPerEndpoint is BenchmarkFanOut's first memory measurement.
var benchPerEndpoint float64

func benchIP(svc, ep int) string { return fmt.Sprintf("10.%d.%d.%d", 100+svc/256, svc%256, ep+1) }

// benchSlice is the slice of Service svc with n endpoints, leaving out
// endpoint drop (none when negative).
func benchSlice(svc, n, drop int) *discoveryv1.EndpointSlice {
	name := fmt.Sprintf("svc-%d", svc)
	port, proto, portName := int32(8080), corev1.ProtocolTCP, "http"
	s := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: name + "-a", Namespace: "bench", Labels: map[string]string{discoveryv1.LabelServiceName: name}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: &portName, Port: &port, Protocol: &proto}},
	}
	for j := range n {
		if j == drop {
			continue
		}
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{
			Addresses: []string{benchIP(svc, j)},
			TargetRef: &corev1.ObjectReference{Kind: "Pod", Name: fmt.Sprintf("%s-%d", name, j), Namespace: "bench"},
		})
	}
	return s
}
