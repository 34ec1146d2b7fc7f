package bench

import (
	"math"
	"slices"
	"time"
)

// Quantiles are the latency quantiles the report shows.
var Quantiles = []float64{0.5, 0.9, 0.99, 0.999}

// Quantile returns the q-quantile of sorted by the nearest-rank method: the
// smallest value with at least q of the samples at or below it. 0 for no
// samples.
func Quantile(sorted []time.Duration, q float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(math.Ceil(q * float64(n)))
	rank = min(max(rank, 1), n)
	return sorted[rank-1]
}

// Median returns the median of vs (the mean of the middle two for an even
// count); 0 for none.
func Median(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

// CurvePoint is one point of a latency distribution: the latency at
// quantile Q.
type CurvePoint struct {
	Q  float64 `json:"q"`
	Ms float64 `json:"ms"`
}

// curveQuantiles are where the plotted distributions are sampled: evenly
// on the "nines" axis (-log10(1-q)) from 0 to 99.99 %.
func curveQuantiles() []float64 {
	var qs []float64
	for i := 0; i <= 40; i++ {
		nines := float64(i) / 10 // 0 .. 4
		qs = append(qs, 1-math.Pow(10, -nines))
	}
	return qs
}

// Curve samples the distribution of sorted at curveQuantiles, stopping at
// the last quantile the samples can resolve (1 - 1/n).
func Curve(sorted []time.Duration) []CurvePoint {
	if len(sorted) == 0 {
		return nil
	}
	var out []CurvePoint
	for _, q := range curveQuantiles() {
		if q > 1-1/float64(len(sorted)) && q > 0 {
			break
		}
		out = append(out, CurvePoint{Q: q, Ms: ms(Quantile(sorted, q))})
	}
	return out
}

// ms is d in milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
