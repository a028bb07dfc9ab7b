package main

import (
	"math"
	"slices"
	"time"
)

// latencySummary summarises a set of latencies.
type latencySummary struct {
	Count int
	Min   time.Duration
	P50   time.Duration
	P99   time.Duration
	Max   time.Duration
	Mean  time.Duration
}

// summarize computes the summary of ds, which it does not modify.
func summarize(ds []time.Duration) latencySummary {
	if len(ds) == 0 {
		return latencySummary{}
	}
	sorted := slices.Clone(ds)
	slices.Sort(sorted)
	var sum time.Duration
	for _, d := range sorted {
		sum += d
	}
	return latencySummary{
		Count: len(sorted),
		Min:   sorted[0],
		P50:   percentile(sorted, 50),
		P99:   percentile(sorted, 99),
		Max:   sorted[len(sorted)-1],
		Mean:  sum / time.Duration(len(sorted)),
	}
}

// percentile returns the p-th percentile (0 < p ≤ 100) of sorted by the
// nearest-rank method: the smallest value such that at least p percent of
// the values are less than or equal to it. It returns 0 for no values.
func percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(math.Ceil(float64(n) * p / 100))
	rank = min(max(rank, 1), n)
	return sorted[rank-1]
}

// rate returns n per second over d, or 0 when d is not positive.
func rate(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// ms renders a duration in milliseconds with one decimal.
func ms(d time.Duration) float64 {
	return math.Round(float64(d)/float64(time.Millisecond)*10) / 10
}
