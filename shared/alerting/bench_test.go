package alerting_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/alerting"
	"github.com/autonomics/autonomics/shared/alerting/memalerts"
)

// Benchmark shape: 100 metrics of 1,000 series each (100,000 series,
// labels tenant, instance and region), and 10 policies per metric (1,000
// policies): half match every series of their metric, half one region
// (200 series). Values are uniform in [0, 1) and thresholds 0.99, so
// about 1% of the 600,000 (policy, series) pairs hold.
const (
	benchMetrics         = 100
	benchSeriesPerMetric = 1000
	benchPoliciesPer     = 10
)

func benchInput(b *testing.B) (*alerting.SeriesSet, []alerting.Policy) {
	rng := rand.New(rand.NewPCG(1, 2))
	s := alerting.NewSeriesSet(t0.Add(-time.Hour), alerting.SeriesOptions{MaxSeries: benchMetrics * benchSeriesPerMetric})
	batch := make([]alerting.Sample, 0, benchSeriesPerMetric)
	for m := range benchMetrics {
		batch = batch[:0]
		for i := range benchSeriesPerMetric {
			batch = append(batch, alerting.Sample{
				Name: fmt.Sprintf("metric_%03d", m),
				Labels: alerting.Labels{
					"tenant":   fmt.Sprintf("tenant-%03d", i%200),
					"instance": fmt.Sprintf("i-%05d", i),
					"region":   fmt.Sprintf("r%d", i%5),
				},
				Value: rng.Float64(), Time: t0,
			})
		}
		if err := s.Add(batch...); err != nil {
			b.Fatal(err)
		}
	}
	policies := make([]alerting.Policy, 0, benchMetrics*benchPoliciesPer)
	for m := range benchMetrics {
		for k := range benchPoliciesPer {
			p := alerting.Policy{
				Name: fmt.Sprintf("p-%03d-%d", m, k), Metric: fmt.Sprintf("metric_%03d", m),
				Comparison: alerting.GT, Threshold: 0.99, For: time.Minute, Severity: alerting.Warning,
			}
			if k%2 == 1 {
				p.Labels = alerting.Labels{"region": fmt.Sprintf("r%d", k%5)}
			}
			policies = append(policies, p)
		}
	}
	return s, policies
}

// peakHeap samples the live heap until stop is called and returns the
// largest value seen, in bytes.
func peakHeap() (stop func() uint64) {
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peak.Load() {
				peak.Store(ms.HeapAlloc)
			}
			select {
			case <-done:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	})
	return func() uint64 {
		close(done)
		wg.Wait()
		return peak.Load()
	}
}

// BenchmarkEvaluate measures one pure evaluation cycle (policies and
// fairness) over 1,000 policies and 100,000 series, in the steady state
// where the alerts of the previous cycle exist.
func BenchmarkEvaluate(b *testing.B) {
	series, policies := benchInput(b)
	now := t0.Add(30 * time.Second)
	first := alerting.Evaluate(alerting.Input{Now: now, Policies: policies, Series: series})
	alerts := first.Put
	fair := alerting.DefaultFairness()
	runtime.GC()
	stop := peakHeap()
	b.ReportAllocs()
	b.ResetTimer()
	var out alerting.Output
	for b.Loop() {
		out = alerting.Evaluate(alerting.Input{Now: now, Policies: policies, Series: series, Alerts: alerts})
		alerting.EvaluateFairness(alerting.FairnessInput{Now: now, Alerts: alerts, Series: series, FairnessOptions: fair})
	}
	b.StopTimer()
	b.ReportMetric(float64(stop())/(1<<20), "peak-heap-MB")
	b.ReportMetric(float64(len(alerts)), "alerts")
	if out.Pending != len(alerts) {
		b.Fatalf("steady state: %d pending, want %d", out.Pending, len(alerts))
	}
}

// BenchmarkRunnerCycle measures a whole cycle of the Runner over the
// in-memory store: lease, loading policies and alerts, evaluation, and a
// commit in which every alert fires and is notified.
func BenchmarkRunnerCycle(b *testing.B) {
	series, policies := benchInput(b)
	ctx := context.Background()
	var now time.Time
	runtime.GC()
	stop := peakHeap()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		now = t0
		st := memalerts.New()
		for _, p := range policies {
			if _, err := st.PutPolicy(ctx, p); err != nil {
				b.Fatal(err)
			}
		}
		r, err := alerting.NewRunner(alerting.RunnerOptions{
			Store: st, Publisher: discard{}, Series: series, Holder: "bench",
			Clock: func() time.Time { return now }, Logger: slog.New(slog.DiscardHandler),
		})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := r.Evaluate(ctx); err != nil { // creates the pending alerts
			b.Fatal(err)
		}
		now = now.Add(time.Minute)
		b.StartTimer()
		rep, err := r.Evaluate(ctx) // every pending alert fires and is notified
		if err != nil || rep.Notified == 0 {
			b.Fatalf("Evaluate = %+v, %v", rep, err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(stop())/(1<<20), "peak-heap-MB")
}

type discard struct{}

func (discard) Publish(context.Context, alerting.Notification) error { return nil }
