package health

import (
	"context"
	"errors"
	"math"
	"testing"
	"testing/fstest"
	"time"

	"github.com/autonomics/autonomics/shared/store"
)

var t0 = time.Date(2026, 11, 3, 8, 0, 0, 0, time.UTC)

func file(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }

func TestSampler(t *testing.T) {
	tests := []struct {
		name string
		fs   fstest.MapFS
		// after has the counters one second later.
		after      fstest.MapFS
		source     string
		cpu, cores float64
		mem        float64
		memBytes   uint64
	}{
		{
			name: "cgroup v2 with quota and limit",
			fs: fstest.MapFS{
				"proc/self/cgroup":                     file("0::/\n"),
				"sys/fs/cgroup/cpu.stat":               file("usage_usec 1000000\nuser_usec 1\n"),
				"sys/fs/cgroup/cpu.max":                file("200000 100000\n"),
				"sys/fs/cgroup/memory.current":         file("600000000\n"),
				"sys/fs/cgroup/memory.max":             file("1000000000\n"),
				"sys/fs/cgroup/memory.stat":            file("anon 1\ninactive_file 100000000\n"),
				"sys/fs/cgroup/kubepods/cpu.stat-none": file(""),
			},
			after:  fstest.MapFS{"sys/fs/cgroup/cpu.stat": file("usage_usec 2600000\n")},
			source: "cgroup2", cpu: 0.8, cores: 2, mem: 0.5, memBytes: 500000000,
		},
		{
			name: "cgroup v2 nested path, no limits",
			fs: fstest.MapFS{
				"proc/self/cgroup": file("0::/system.slice/monitor.service\n"),
				"sys/fs/cgroup/system.slice/monitor.service/cpu.stat":       file("usage_usec 0\n"),
				"sys/fs/cgroup/system.slice/monitor.service/cpu.max":        file("max 100000\n"),
				"sys/fs/cgroup/system.slice/monitor.service/memory.current": file("1048576\n"),
				"sys/fs/cgroup/system.slice/monitor.service/memory.max":     file("max\n"),
				"proc/meminfo": file("MemTotal:        4096 kB\nMemFree: 1 kB\n"),
			},
			after:  fstest.MapFS{"sys/fs/cgroup/system.slice/monitor.service/cpu.stat": file("usage_usec 1000000\n")},
			source: "cgroup2", cpu: 0.5, cores: 2, mem: 0.25, memBytes: 1048576,
		},
		{
			name: "cgroup v1",
			fs: fstest.MapFS{
				"proc/self/cgroup":                            file("4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n"),
				"sys/fs/cgroup/cpu,cpuacct/cpuacct.usage":     file("0\n"),
				"sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us":  file("50000\n"),
				"sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us": file("100000\n"),
				"sys/fs/cgroup/memory/memory.usage_in_bytes":  file("300\n"),
				"sys/fs/cgroup/memory/memory.limit_in_bytes":  file("1000\n"),
				"sys/fs/cgroup/memory/memory.stat":            file("total_inactive_file 100\n"),
			},
			after:  fstest.MapFS{"sys/fs/cgroup/cpu,cpuacct/cpuacct.usage": file("250000000\n")},
			source: "cgroup1", cpu: 0.5, cores: 0.5, mem: 0.2, memBytes: 200,
		},
		{
			name: "proc fallback",
			fs: fstest.MapFS{
				"proc/self/cgroup": file("0::/\n"),
				"proc/self/stat":   file("42 (monitor (x)) S 1 2 3 4 5 6 7 8 9 10 100 50 0 0\n"),
				"proc/self/status": file("Name: monitor\nVmRSS:      1024 kB\n"),
				"proc/meminfo":     file("MemTotal:        4096 kB\n"),
			},
			after:  fstest.MapFS{"proc/self/stat": file("42 (monitor (x)) S 1 2 3 4 5 6 7 8 9 10 200 50 0 0\n")},
			source: "proc", cpu: 0.5, cores: 2, mem: 0.25, memBytes: 1 << 20,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := t0
			s := NewSampler(tt.fs, func() time.Time { return now })
			s.cpus = 2
			first := s.Sample()
			if first.CPU != 0 || first.Source != tt.source {
				t.Errorf("first Sample() = %+v, want cpu 0 from %s", first, tt.source)
			}
			for k, v := range tt.after {
				tt.fs[k] = v
			}
			now = now.Add(time.Second)
			u := s.Sample()
			if math.Abs(u.CPU-tt.cpu) > 1e-9 || u.CPUCores != tt.cores || math.Abs(u.Memory-tt.mem) > 1e-9 || u.MemoryBytes != tt.memBytes {
				t.Errorf("Sample() = %+v, want cpu %v of %v cores, memory %v (%d bytes)", u, tt.cpu, tt.cores, tt.mem, tt.memBytes)
			}
			// Within MinInterval the previous figure is kept.
			now = now.Add(time.Millisecond)
			if again := s.Sample(); again.CPU != u.CPU {
				t.Errorf("Sample() within MinInterval: cpu %v, want %v", again.CPU, u.CPU)
			}
		})
	}
}

func TestResourceStatus(t *testing.T) {
	tests := []struct {
		cpu, mem float64
		want     Status
	}{
		{0.5, 0.5, Healthy},
		{0.8, 0.85, Healthy},
		{0.81, 0.5, Degraded},
		{0.5, 0.86, Degraded},
		{0.9, 0.9, Critical},
	}
	for _, tt := range tests {
		if got := ResourceStatus(Usage{CPU: tt.cpu, Memory: tt.mem}, DefaultThresholds); got != tt.want {
			t.Errorf("ResourceStatus(cpu %v, memory %v) = %s, want %s", tt.cpu, tt.mem, got, tt.want)
		}
	}
}

type fakeStore struct {
	outbox []store.OutboxEntry
	timers []store.TimerEntry
	err    error
}

func (f fakeStore) Undelivered(context.Context, time.Time, int) ([]store.OutboxEntry, error) {
	return f.outbox, f.err
}

func (f fakeStore) DueTimers(context.Context, time.Time, int) ([]store.TimerEntry, error) {
	return f.timers, f.err
}

func TestChecks(t *testing.T) {
	clock := func() time.Time { return t0 }
	limits := LagLimits{Degraded: 5 * time.Minute, Critical: 30 * time.Minute}
	timer := func(due time.Time) []store.TimerEntry {
		var e store.TimerEntry
		e.Due = due
		return []store.TimerEntry{e}
	}
	tests := []struct {
		name  string
		check Checker
		want  Status
	}{
		{"empty outbox", OutboxAge(fakeStore{}, clock, limits), Healthy},
		{"fresh outbox entry", OutboxAge(fakeStore{outbox: []store.OutboxEntry{{CreatedAt: t0.Add(-time.Minute)}}}, clock, limits), Healthy},
		{"stuck outbox entry", OutboxAge(fakeStore{outbox: []store.OutboxEntry{{CreatedAt: t0.Add(-10 * time.Minute)}}}, clock, limits), Degraded},
		{"very stuck outbox entry", OutboxAge(fakeStore{outbox: []store.OutboxEntry{{CreatedAt: t0.Add(-time.Hour)}}}, clock, limits), Critical},
		{"overdue timer", OverdueTimers(fakeStore{timers: timer(t0.Add(-6 * time.Minute))}, clock, limits), Degraded},
		{"no due timer", OverdueTimers(fakeStore{}, clock, limits), Healthy},
		{"store down", OverdueTimers(fakeStore{err: errors.New("unavailable")}, clock, limits), Critical},
		{"ping ok", Ping("pubsub", func(context.Context) error { return nil }), Healthy},
		{"ping fails", Ping("pubsub", func(context.Context) error { return errors.New("no route") }), Critical},
		{"degrading ping ok", PingDegraded("metrics_engine", func(context.Context) error { return nil }), Healthy},
		{"metrics engine down degrades", PingDegraded("metrics_engine", func(context.Context) error { return errors.New("connection refused") }), Degraded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.check.Check(t.Context()); got.Status != tt.want || got.Name != tt.check.Name() {
				t.Errorf("%s.Check() = %+v, want status %s", tt.check.Name(), got, tt.want)
			}
		})
	}
}

func TestMonitorReport(t *testing.T) {
	m := &Monitor{
		Sampler:    NewSampler(fstest.MapFS{}, func() time.Time { return t0 }),
		Thresholds: DefaultThresholds,
		Timeout:    50 * time.Millisecond,
		Checks: []Checker{
			Ping("firestore", func(context.Context) error { return nil }),
			Ping("hangs", func(context.Context) error { time.Sleep(200 * time.Millisecond); return nil }),
			Lag("outbox", LagLimits{Degraded: time.Minute}, func(context.Context) (time.Duration, error) { return 2 * time.Minute, nil }),
		},
	}
	r := m.Report(t.Context())
	got := map[string]Status{}
	for _, c := range r.Checks {
		got[c.Name] = c.Status
	}
	want := map[string]Status{"resources": Healthy, "firestore": Healthy, "hangs": Critical, "outbox": Degraded}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("check %s = %s, want %s", k, got[k], w)
		}
	}
	if r.Status != Critical || r.Goroutines == 0 {
		t.Errorf("Report() status %s goroutines %d, want critical and a goroutine count", r.Status, r.Goroutines)
	}
}
