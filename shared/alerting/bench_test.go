package alerting_test

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/alerting"
	"github.com/autonomics/autonomics/shared/alerting/memalerts"
	"github.com/autonomics/autonomics/shared/promtest"
)

// Benchmark shape: 100 metrics of series each (labels tenant, instance
// and region), and 10 policies per metric (1,000 policies): half match
// every series of their metric, half one region (a fifth of them). Values
// are uniform in [0, 1) and thresholds 0.99, so about 1% of the (policy,
// series) pairs hold.
const (
	benchMetrics     = 100
	benchPoliciesPer = 10
)

// benchEngine starts a Prometheus server holding perMetric series of each
// of the bench metrics, with one sample at start, and returns it with the
// policies.
func benchEngine(b *testing.B, perMetric int, start time.Time) (*promtest.Server, []alerting.Policy) {
	s := promtest.Start(b)
	rng := rand.New(rand.NewPCG(1, 2))
	batch := make([]alerting.Sample, 0, 10_000)
	for m := range benchMetrics {
		for i := range perMetric {
			batch = append(batch, alerting.Sample{
				Name: fmt.Sprintf("metric_%03d", m),
				Labels: alerting.Labels{
					"tenant":   fmt.Sprintf("tenant-%03d", i%200),
					"instance": fmt.Sprintf("i-%05d", i),
					"region":   fmt.Sprintf("r%d", i%5),
				},
				Value: rng.Float64(), Time: start,
			})
			if len(batch) == cap(batch) {
				s.Write(b, batch...)
				batch = batch[:0]
			}
		}
	}
	if len(batch) > 0 {
		s.Write(b, batch...)
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

// rss returns the resident set size of this process in bytes (Linux), or
// 0 when unknown.
func rss() uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// BenchmarkEvaluate measures the pure part of one cycle over 1,000
// policies whose answers hold about 1% of 100,000 series, in the steady
// state where the alerts of the previous cycle exist.
func BenchmarkEvaluate(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	now := t0.Add(30 * time.Second)
	var policies []alerting.Policy
	results := map[string][]alerting.Active{}
	for m := range benchMetrics {
		for k := range benchPoliciesPer {
			p := alerting.Policy{Name: fmt.Sprintf("p-%03d-%d", m, k), Metric: fmt.Sprintf("metric_%03d", m),
				Comparison: alerting.GT, Threshold: 0.99, For: time.Minute, Severity: alerting.Warning}
			policies = append(policies, p)
			var elems []alerting.Element
			for i := range 1000 {
				if rng.Float64() > 0.99 {
					elems = append(elems, alerting.Element{Labels: alerting.Labels{"tenant": fmt.Sprintf("tenant-%03d", i%200), "instance": fmt.Sprintf("i-%05d", i)}, Value: 0.995})
				}
			}
			results[p.Name] = p.Activate(p.Compile(alerting.CompileOptions{}), [][]alerting.Element{elems})
		}
	}
	first := alerting.Evaluate(alerting.Input{Now: now, Policies: policies, Results: results})
	alerts := first.Put
	b.ReportAllocs()
	var out alerting.Output
	for b.Loop() {
		out = alerting.Evaluate(alerting.Input{Now: now, Policies: policies, Results: results, Alerts: alerts})
	}
	b.ReportMetric(float64(len(alerts)), "alerts")
	if out.Pending != len(alerts) {
		b.Fatalf("steady state: %d pending, want %d", out.Pending, len(alerts))
	}
}

// BenchmarkRunnerCycle measures one whole evaluation cycle of 1,000
// policies and fairness against a real Prometheus holding the series
// (series= is their number): lease, loading policies and alerts from the
// in-memory store, the PromQL queries (queries/op: the simple policies
// of one metric share theirs), evaluation, and a commit in
// which every pending alert fires and is notified. peak-heap-MB and
// rss-MB are the monitor's (this process's) own: the series are in the
// engine's process, so they must not grow with series=.
func BenchmarkRunnerCycle(b *testing.B) {
	for _, perMetric := range []int{100, 1000} {
		b.Run(fmt.Sprintf("series=%d", perMetric*benchMetrics), func(b *testing.B) {
			start := time.Now().UTC().Truncate(time.Second)
			engine, policies := benchEngine(b, perMetric, start)
			ctx := context.Background()
			fair := alerting.DefaultFairness()
			var now time.Time
			q := &countingQuerier{q: engine.Querier()}
			var queries int64
			runtime.GC()
			stop := peakHeap()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				b.StopTimer()
				now = start
				st := memalerts.New()
				for _, p := range policies {
					if _, err := st.PutPolicy(ctx, p); err != nil {
						b.Fatal(err)
					}
				}
				r, err := alerting.NewRunner(alerting.RunnerOptions{
					Store: st, Publisher: discard{}, Querier: q, Holder: "bench", Fairness: &fair,
					Clock: func() time.Time { return now }, Logger: slog.New(slog.DiscardHandler),
				})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := r.Evaluate(ctx); err != nil { // creates the pending alerts
					b.Fatal(err)
				}
				now = now.Add(time.Minute)
				before := q.n.Load()
				b.StartTimer()
				rep, err := r.Evaluate(ctx) // every pending alert fires and is notified
				b.StopTimer()
				queries += q.n.Load() - before
				if err != nil || rep.Notified == 0 {
					b.Fatalf("Evaluate = %+v, %v", rep, err)
				}
				b.StartTimer()
			}
			b.StopTimer()
			b.ReportMetric(float64(queries)/float64(b.N), "queries/op")
			b.ReportMetric(float64(stop())/(1<<20), "peak-heap-MB")
			b.ReportMetric(float64(rss())/(1<<20), "rss-MB")
		})
	}
}

// countingQuerier counts the queries it forwards.
type countingQuerier struct {
	q alerting.Querier
	n atomic.Int64
}

func (c *countingQuerier) Query(ctx context.Context, expr string, at time.Time) ([]alerting.Element, error) {
	c.n.Add(1)
	return c.q.Query(ctx, expr, at)
}

type discard struct{}

func (discard) Publish(context.Context, alerting.Notification) error { return nil }
