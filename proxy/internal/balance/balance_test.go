package balance

import (
	"net/netip"
	"sync"
	"testing"
	"time"
)

func addr(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 0, byte(i)}), 8080)
}

func targets(n int) []Target[int] {
	var ts []Target[int]
	for i := 1; i <= n; i++ {
		ts = append(ts, Target[int]{Addr: addr(i), Weight: 10000, Value: i})
	}
	return ts
}

func TestEmpty(t *testing.T) {
	b := New[int]()
	if _, _, ok := b.Pick(); ok {
		t.Fatal("picked from an empty set")
	}
}

// Equal endpoints share the load; every one of them is used.
func TestSpreadsOverEqualEndpoints(t *testing.T) {
	b := New[int]()
	b.Update(targets(3))
	counts := map[int]int{}
	for range 3000 {
		e, done, ok := b.Pick()
		if !ok {
			t.Fatal("no pick")
		}
		counts[e.Value]++
		done(0)
	}
	for i := 1; i <= 3; i++ {
		if counts[i] < 500 {
			t.Errorf("endpoint %d got %d of 3000 picks: %v", i, counts[i], counts)
		}
	}
}

// A slow endpoint (high measured latency) loses to fast ones.
func TestPrefersFastEndpoints(t *testing.T) {
	b := New[int]()
	now := time.Unix(1000, 0)
	b.now = func() time.Time { return now }
	b.Update(targets(2))
	set := *b.set.Load()
	set[0].observe(500*time.Millisecond, now)
	set[1].observe(1*time.Millisecond, now)
	slow := 0
	for range 1000 {
		e, done, _ := b.Pick()
		if e.Value == 1 {
			slow++
		}
		done(0)
	}
	// With two endpoints P2C always compares both: the slow one never wins.
	if slow != 0 {
		t.Errorf("slow endpoint picked %d times", slow)
	}
}

// A busy endpoint (requests in flight) loses to an idle one of the same
// latency.
func TestPrefersLessLoaded(t *testing.T) {
	b := New[int]()
	b.Update(targets(2))
	first, done1, _ := b.Pick()
	for range 100 {
		e, done, _ := b.Pick()
		if e == first {
			t.Fatal("picked the endpoint with a request in flight over an idle one")
		}
		done(0)
	}
	done1(0)
	if first.Pending() != 0 {
		t.Errorf("pending = %d after done", first.Pending())
	}
}

// Peaks are taken at once and forgotten over time.
func TestPeakEWMA(t *testing.T) {
	e := &Endpoint[int]{weight: 1}
	now := time.Unix(1000, 0)
	if got := e.decayed(now); got != float64(defaultRTT) {
		t.Errorf("unmeasured cost = %v, want the default RTT", got)
	}
	e.observe(10*time.Millisecond, now)
	e.observe(100*time.Millisecond, now.Add(time.Millisecond))
	if got := time.Duration(e.decayed(now.Add(time.Millisecond))); got != 100*time.Millisecond {
		t.Errorf("after a peak: %v, want 100ms", got)
	}
	later := now.Add(time.Millisecond + decay)
	if got := time.Duration(e.decayed(later)); got > 40*time.Millisecond || got < 30*time.Millisecond {
		t.Errorf("one time constant after the peak: %v, want ~36.8ms", got)
	}
}

// Updates keep the statistics of endpoints that stay; removal while a
// request is in flight lets the request finish on its endpoint.
func TestUpdateDuringRequests(t *testing.T) {
	b := New[int]()
	b.Update(targets(3))
	e, done, _ := b.Pick()
	b.Update(nil)
	if b.Len() != 0 {
		t.Fatal("set not emptied")
	}
	done(time.Millisecond) // must not panic or touch the new set
	if e.Pending() != 0 {
		t.Errorf("pending = %d", e.Pending())
	}
	b.Update(targets(2))
	kept := *b.set.Load()
	b.Update(targets(3))
	now := *b.set.Load()
	if now[0] != kept[0] || now[1] != kept[1] {
		t.Error("endpoints that stayed were replaced")
	}
}

func TestDoneIsIdempotent(t *testing.T) {
	b := New[int]()
	b.Update(targets(1))
	e, done, _ := b.Pick()
	done(0)
	done(0)
	if e.Pending() != 0 {
		t.Errorf("pending = %d after two dones", e.Pending())
	}
}

// An endpoint added to a set whose endpoints are all measured fast still
// gets traffic: it is assumed typical, not slow.
func TestNewEndpointIsProbed(t *testing.T) {
	b := New[int]()
	b.Update(targets(2))
	for range 20 {
		_, done, _ := b.Pick()
		done(time.Millisecond)
	}
	b.Update(targets(3))
	picked := 0
	for range 300 {
		e, done, _ := b.Pick()
		if e.Value == 3 {
			picked++
		}
		done(time.Millisecond)
	}
	if picked == 0 {
		t.Error("the new endpoint never got a request")
	}
}

func TestConcurrentPickAndUpdate(t *testing.T) {
	b := New[int]()
	b.Update(targets(3))
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				if w == 0 && i%100 == 0 {
					b.Update(targets(1 + i%3))
				}
				if _, done, ok := b.Pick(); ok {
					done(time.Microsecond)
				}
			}
		}()
	}
	wg.Wait()
}

func BenchmarkPick(b *testing.B) {
	bal := New[int]()
	bal.Update(targets(10))
	b.ReportAllocs()
	for b.Loop() {
		_, done, _ := bal.Pick()
		done(time.Millisecond)
	}
}

// simulate sends n sequential requests, one per interval on a fake clock,
// through b; latency says how long endpoint v takes to answer request k.
// It returns the picks per endpoint.
func simulate(b *Balancer[int], now *time.Time, n int, interval time.Duration, latency func(v, k int) time.Duration) map[int]int {
	counts := map[int]int{}
	for k := range n {
		e, done, _ := b.Pick()
		counts[e.Value]++
		rtt := latency(e.Value, k)
		*now = now.Add(rtt)
		done(rtt)
		*now = now.Add(interval - rtt)
	}
	return counts
}

// One latency spike does not keep a healthy endpoint out: at 10 requests a
// second over three equal endpoints, a 100× spike on one of them still
// leaves it its share of the next 15 seconds. (Plain peak-EWMA with a 10 s
// decay would pass it over for ~45 s.)
func TestSpikeDoesNotStarve(t *testing.T) {
	b := New[int]()
	now := time.Unix(1000, 0)
	b.now = func() time.Time { return now }
	b.Update(targets(3))
	// Warm up: every endpoint measured at 1 ms.
	simulate(b, &now, 60, 100*time.Millisecond, func(int, int) time.Duration { return time.Millisecond })
	spiked := false
	counts := simulate(b, &now, 150, 100*time.Millisecond, func(v, _ int) time.Duration {
		if v == 1 && !spiked {
			spiked = true
			return 100 * time.Millisecond
		}
		return time.Millisecond
	})
	if !spiked {
		t.Fatal("endpoint 1 was never picked")
	}
	for v := 1; v <= 3; v++ {
		if counts[v] < 30 {
			t.Errorf("endpoint %d got %d of 150 picks after the spike: %v", v, counts[v], counts)
		}
	}
}

// A steadily slow endpoint gets only the probes: one per probeAfterPicks
// requests at low rates, one per probeAfter at high ones.
func TestSlowEndpointGetsOnlyProbes(t *testing.T) {
	for _, tc := range []struct {
		name     string
		interval time.Duration
		n        int
		max      int
	}{
		{"10 rps", 100 * time.Millisecond, 600, 600/probeAfterPicks + 2},
		{"1000 rps", time.Millisecond, 60000, 60 + 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := New[int]()
			now := time.Unix(1000, 0)
			b.now = func() time.Time { return now }
			b.Update(targets(3))
			counts := simulate(b, &now, tc.n, tc.interval, func(v, _ int) time.Duration {
				if v == 1 {
					return 100 * time.Millisecond
				}
				return 100 * time.Microsecond
			})
			if counts[1] > tc.max {
				t.Errorf("slow endpoint got %d of %d picks, want at most %d: %v", counts[1], tc.n, tc.max, counts)
			}
			if counts[1] == 0 {
				t.Errorf("slow endpoint was never probed: %v", counts)
			}
		})
	}
}
