package main

import (
	"slices"
	"testing"
	"time"
)

// series returns 1ms, 2ms, … n ms.
func series(n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = time.Duration(i+1) * time.Millisecond
	}
	return out
}

func TestPercentile(t *testing.T) {
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"single p50", series(1), 50, time.Millisecond},
		{"single p99", series(1), 99, time.Millisecond},
		{"100 p50", series(100), 50, 50 * time.Millisecond},
		{"100 p99", series(100), 99, 99 * time.Millisecond},
		{"100 p100", series(100), 100, 100 * time.Millisecond},
		{"10 p50", series(10), 50, 5 * time.Millisecond},
		{"10 p99 rounds up", series(10), 99, 10 * time.Millisecond},
		{"1000 p99", series(1000), 99, 990 * time.Millisecond},
		{"3 p50", series(3), 50, 2 * time.Millisecond},
		{"tiny p", series(10), 0.1, time.Millisecond},
		{"p0 clamps", series(10), 0, time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("percentile(%d values, %v) = %v, want %v", len(tt.sorted), tt.p, got, tt.want)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	in := []time.Duration{30 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond}
	orig := slices.Clone(in)
	got := summarize(in)
	want := latencySummary{
		Count: 4, Min: 10 * time.Millisecond, P50: 20 * time.Millisecond, P99: 40 * time.Millisecond,
		Max: 40 * time.Millisecond, Mean: 25 * time.Millisecond,
	}
	if got != want {
		t.Errorf("summarize(%v) = %+v, want %+v", orig, got, want)
	}
	if !slices.Equal(in, orig) {
		t.Errorf("summarize modified its input: %v, was %v", in, orig)
	}
	if got := summarize(nil); got != (latencySummary{}) {
		t.Errorf("summarize(nil) = %+v, want zero", got)
	}
}

func TestRate(t *testing.T) {
	tests := []struct {
		n    int
		d    time.Duration
		want float64
	}{
		{100, time.Second, 100},
		{5000, 40 * time.Second, 125},
		{10, 0, 0},
		{10, -time.Second, 0},
	}
	for _, tt := range tests {
		if got := rate(tt.n, tt.d); got != tt.want {
			t.Errorf("rate(%d, %v) = %v, want %v", tt.n, tt.d, got, tt.want)
		}
	}
}

func TestNewPhaseResult(t *testing.T) {
	got := newPhaseResult(5, series(4), 2*time.Second, 1)
	want := phaseResult{Planned: 5, Completed: 4, Seconds: 2, PerSecond: 2, P50Ms: 2, P99Ms: 4, MaxMs: 4, MeanMs: 2.5, Errors: 1}
	if got != want {
		t.Errorf("newPhaseResult(5, 1..4ms, 2s, 1) = %+v, want %+v", got, want)
	}
}

func TestParseVmRSS(t *testing.T) {
	tests := []struct {
		name    string
		status  string
		want    int64
		wantErr bool
	}{
		{"linux", "Name:\tserve\nVmPeak:\t  812344 kB\nVmRSS:\t   45128 kB\nRssAnon:\t   30000 kB\n", 45128, false},
		{"missing", "Name:\tserve\nVmPeak:\t  812344 kB\n", 0, true},
		{"wrong unit", "VmRSS:\t 45 MB\n", 0, true},
		{"not a number", "VmRSS:\t x kB\n", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseVmRSS(tt.status)
			if got != tt.want || (err != nil) != tt.wantErr {
				t.Errorf("parseVmRSS(%q) = %d, %v, want %d, error %v", tt.status, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestTracker(t *testing.T) {
	tr := newTracker(3, 3)
	base := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	for i, id := range []string{"a", "b", "c"} {
		tr.slots <- struct{}{}
		tr.start(id, base.Add(time.Duration(i)*time.Millisecond))
	}
	steps := []struct {
		id, outcome string
		at          time.Duration
	}{
		{"a", "accepted", 10 * time.Millisecond},
		{"a", "accepted", 20 * time.Millisecond}, // re-published receipt
		{"other", "accepted", 5 * time.Millisecond},
		{"b", "rejected", 30 * time.Millisecond},
		{"c", "dead", 40 * time.Millisecond},
	}
	for _, s := range steps {
		tr.complete(s.id, s.outcome, base.Add(s.at))
	}
	select {
	case <-tr.finished:
	default:
		t.Fatalf("tracker not finished after every event completed")
	}
	if tr.accepted != 1 || tr.rejected != 1 || tr.dead != 1 || tr.dups != 1 || len(tr.slots) != 0 {
		t.Errorf("tracker counts accepted %d rejected %d dead %d dups %d slots %d, want 1 1 1 1 0",
			tr.accepted, tr.rejected, tr.dead, tr.dups, len(tr.slots))
	}
	want := []time.Duration{10 * time.Millisecond, 29 * time.Millisecond}
	if !slices.Equal(tr.lat, want) {
		t.Errorf("tracker latencies = %v, want %v", tr.lat, want)
	}
}
