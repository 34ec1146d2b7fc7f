package balance

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkPickEndpoints is the per-request cost of choosing an endpoint
// and recording the request's latency when it ends, by the size of the
// set (BenchmarkPick: 10 endpoints).
func BenchmarkPickEndpoints(b *testing.B) {
	for _, n := range []int{1, 3, 100} {
		b.Run(fmt.Sprintf("endpoints=%d", n), func(b *testing.B) {
			bal := New[int]()
			bal.Update(targets(n))
			b.ReportAllocs()
			for b.Loop() {
				_, done, ok := bal.Pick()
				if !ok {
					b.Fatal("empty")
				}
				done(time.Millisecond)
			}
		})
	}
}

// BenchmarkPickParallel is Pick from every core at once on one balancer,
// as concurrent requests to one service do.
func BenchmarkPickParallel(b *testing.B) {
	bal := New[int]()
	bal.Update(targets(3))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_, done, _ := bal.Pick()
			done(time.Millisecond)
		}
	})
}
