package discovery

import (
	"fmt"
	"testing"
)

// BenchmarkWatchSnapshot is the per-request cost of reading a watch.
func BenchmarkWatchSnapshot(b *testing.B) {
	e := &entry{}
	set := newEndpointSet(DefaultMaxEndpointsPerTarget)
	for i := range 100 {
		set.apply(addMsg(nil, pbEndpoint(fmt.Sprintf("10.0.%d.%d:80", i/250, i%250+1))))
	}
	e.eps.init(set.snapshot(false))
	w := &Watch{e: e}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if len(w.Snapshot().Endpoints) != 100 {
				b.Fatal("wrong snapshot")
			}
		}
	})
}

// BenchmarkProfileRoute is the per-request cost of picking a route.
func BenchmarkProfileRoute(b *testing.B) {
	p, _, _ := profileFromProto(booksProfile(), nil)
	b.ReportAllocs()
	for b.Loop() {
		if p.Route("GET", "/admin/users").Name != "everything else" {
			b.Fatal("wrong route")
		}
	}
}
