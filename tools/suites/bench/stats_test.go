package bench

import (
	"math"
	"slices"
	"testing"
	"time"
)

func durations(ms ...int) []time.Duration {
	out := make([]time.Duration, len(ms))
	for i, m := range ms {
		out[i] = time.Duration(m) * time.Millisecond
	}
	return out
}

func TestQuantileNearestRank(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond // 1..100 ms
	}
	for _, c := range []struct {
		sorted []time.Duration
		q      float64
		want   time.Duration
	}{
		{nil, 0.5, 0},
		{durations(7), 0, 7 * time.Millisecond},
		{durations(7), 0.999, 7 * time.Millisecond},
		{durations(1, 2, 3, 4), 0.5, 2 * time.Millisecond},
		{durations(1, 2, 3, 4), 0.51, 3 * time.Millisecond},
		{durations(1, 2, 3, 4), 1, 4 * time.Millisecond},
		{hundred, 0.5, 50 * time.Millisecond},
		{hundred, 0.9, 90 * time.Millisecond},
		{hundred, 0.99, 99 * time.Millisecond},
		{hundred, 0.999, 100 * time.Millisecond},
		{hundred, 0, time.Millisecond},
	} {
		if got := Quantile(c.sorted, c.q); got != c.want {
			t.Errorf("Quantile(%d samples, %v) = %v, want %v", len(c.sorted), c.q, got, c.want)
		}
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{3}, 3},
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{5, 5, 1}, 5},
	} {
		in := slices.Clone(c.in)
		if got := Median(c.in); got != c.want {
			t.Errorf("Median(%v) = %v, want %v", c.in, got, c.want)
		}
		if !slices.Equal(in, c.in) {
			t.Errorf("Median reordered its input: %v", c.in)
		}
	}
}

func TestCurveStopsAtTheResolvableQuantile(t *testing.T) {
	if Curve(nil) != nil {
		t.Error("a curve of no samples")
	}
	lat := make([]time.Duration, 1000)
	for i := range lat {
		lat[i] = time.Duration(i+1) * time.Microsecond
	}
	c := Curve(lat)
	if c[0].Q != 0 || c[0].Ms != 0.001 {
		t.Errorf("first point %+v, want the minimum at q=0", c[0])
	}
	last := c[len(c)-1]
	if last.Q > 0.999+1e-9 || last.Q < 0.99 {
		t.Errorf("last point at q=%v; 1000 samples resolve up to 0.999", last.Q)
	}
	for i := 1; i < len(c); i++ {
		if c[i].Q <= c[i-1].Q || c[i].Ms < c[i-1].Ms {
			t.Fatalf("not increasing at %d: %+v then %+v", i, c[i-1], c[i])
		}
	}
	// Evenly spaced in nines: 10 points per decade.
	if n := -math.Log10(1 - c[10].Q); math.Abs(n-1) > 1e-9 {
		t.Errorf("point 10 at %v nines, want 1 (p90)", n)
	}
}

func TestScheduleAndCount(t *testing.T) {
	start := time.Unix(1000, 0)
	for _, c := range []struct {
		rate, i int
		want    time.Duration
	}{
		{100, 0, 0},
		{100, 1, 10 * time.Millisecond},
		{100, 250, 2500 * time.Millisecond},
		{3, 1, 333333333},
		{3, 3, time.Second}, // no drift from rounding each interval
		{5000, 4999, 999800 * time.Microsecond},
	} {
		if got := Schedule(start, c.rate, c.i).Sub(start); got != c.want {
			t.Errorf("Schedule(rate %d, %d) = +%v, want +%v", c.rate, c.i, got, c.want)
		}
	}
	for _, c := range []struct {
		rate int
		d    time.Duration
		want int
	}{
		{100, time.Second, 100},
		{5000, 5 * time.Second, 25000},
		{3, 500 * time.Millisecond, 1},
		{1, 500 * time.Millisecond, 0},
		{1000, 0, 0},
	} {
		if got := Count(c.rate, c.d); got != c.want {
			t.Errorf("Count(%d, %v) = %d, want %d", c.rate, c.d, got, c.want)
		}
	}
}

func TestRotate(t *testing.T) {
	s := []Setup{Direct, Linkerd, Nginx}
	for round, want := range [][]Setup{{Direct, Linkerd, Nginx}, {Linkerd, Nginx, Direct}, {Nginx, Direct, Linkerd}, {Direct, Linkerd, Nginx}} {
		if got := rotate(s, round); !slices.Equal(got, want) {
			t.Errorf("round %d: %v, want %v", round, got, want)
		}
	}
	if !slices.Equal(s, []Setup{Direct, Linkerd, Nginx}) {
		t.Errorf("rotate changed its input: %v", s)
	}
}
