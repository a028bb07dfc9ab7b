package health

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/autonomics/autonomics/shared/store"
)

// Status is a health status.
type Status string

// Statuses, from best to worst.
const (
	Healthy  Status = "healthy"
	Degraded Status = "degraded"
	Critical Status = "critical"
)

func (s Status) rank() int {
	switch s {
	case Healthy:
		return 0
	case Degraded:
		return 1
	}
	return 2
}

// Worst returns the worst of statuses; Healthy for none.
func Worst(statuses ...Status) Status {
	w := Healthy
	for _, s := range statuses {
		if s.rank() > w.rank() {
			w = s
		}
	}
	return w
}

// Thresholds are the resource limits of the instance, as fractions.
type Thresholds struct {
	CPU    float64
	Memory float64
}

// DefaultThresholds are 80% CPU and 85% memory.
var DefaultThresholds = Thresholds{CPU: 0.80, Memory: 0.85}

// ResourceStatus applies the resource rule: degraded above either
// threshold, critical above both.
func ResourceStatus(u Usage, t Thresholds) Status {
	cpu, mem := u.CPU > t.CPU, u.Memory > t.Memory
	switch {
	case cpu && mem:
		return Critical
	case cpu || mem:
		return Degraded
	}
	return Healthy
}

// Check is the result of one check.
type Check struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
	Detail string `json:"detail,omitempty"`
	// Seconds is the measured lag of a Lag check.
	Seconds *float64 `json:"seconds,omitempty"`
}

// Checker runs one check.
type Checker interface {
	Name() string
	Check(ctx context.Context) Check
}

type checkFunc struct {
	name string
	fn   func(ctx context.Context) Check
}

func (c checkFunc) Name() string                    { return c.name }
func (c checkFunc) Check(ctx context.Context) Check { return c.fn(ctx) }

// Ping returns a check that is healthy when probe succeeds and critical
// with the error otherwise.
func Ping(name string, probe func(ctx context.Context) error) Checker {
	return checkFunc{name, func(ctx context.Context) Check {
		if err := probe(ctx); err != nil {
			return Check{Name: name, Status: Critical, Detail: err.Error()}
		}
		return Check{Name: name, Status: Healthy}
	}}
}

// LagLimits are the lags beyond which a Lag check degrades and turns
// critical; zero disables a level.
type LagLimits struct {
	Degraded time.Duration
	Critical time.Duration
}

// Lag returns a check of how far something trails: probe returns the lag
// (0 when nothing is waiting). A probe error is critical.
func Lag(name string, limits LagLimits, probe func(ctx context.Context) (time.Duration, error)) Checker {
	return checkFunc{name, func(ctx context.Context) Check {
		d, err := probe(ctx)
		if err != nil {
			return Check{Name: name, Status: Critical, Detail: err.Error()}
		}
		secs := d.Seconds()
		c := Check{Name: name, Status: Healthy, Seconds: &secs}
		switch {
		case limits.Critical > 0 && d > limits.Critical:
			c.Status, c.Detail = Critical, fmt.Sprintf("%v behind, critical above %v", d.Round(time.Second), limits.Critical)
		case limits.Degraded > 0 && d > limits.Degraded:
			c.Status, c.Detail = Degraded, fmt.Sprintf("%v behind, degraded above %v", d.Round(time.Second), limits.Degraded)
		}
		return c
	}}
}

// OutboxReader is the store read behind OutboxAge.
type OutboxReader interface {
	Undelivered(ctx context.Context, before time.Time, limit int) ([]store.OutboxEntry, error)
}

// TimerReader is the store read behind OverdueTimers.
type TimerReader interface {
	DueTimers(ctx context.Context, t time.Time, limit int) ([]store.TimerEntry, error)
}

// OutboxAge checks the age of the oldest undelivered outbox entry, which
// grows when publishing after commit fails and the sweeper lags.
func OutboxAge(r OutboxReader, clock func() time.Time, limits LagLimits) Checker {
	return Lag("outbox", limits, func(ctx context.Context) (time.Duration, error) {
		now := clock()
		es, err := r.Undelivered(ctx, now, 1)
		if err != nil || len(es) == 0 {
			return 0, err
		}
		return max(now.Sub(es[0].CreatedAt), 0), nil
	})
}

// OverdueTimers checks how long the earliest due timer has been due,
// which grows when the tick stops.
func OverdueTimers(r TimerReader, clock func() time.Time, limits LagLimits) Checker {
	return Lag("timers", limits, func(ctx context.Context) (time.Duration, error) {
		now := clock()
		ts, err := r.DueTimers(ctx, now, 1)
		if err != nil || len(ts) == 0 {
			return 0, err
		}
		return max(now.Sub(ts[0].Due), 0), nil
	})
}

// Report is the body of GET /v1/health.
type Report struct {
	Status Status  `json:"status"`
	Checks []Check `json:"checks"`
	Usage
	At time.Time `json:"at"`
}

// Monitor combines the resource sample and the checks.
type Monitor struct {
	Sampler    *Sampler
	Thresholds Thresholds
	Checks     []Checker
	// Timeout bounds each check; a check that times out is critical.
	Timeout time.Duration
	Clock   func() time.Time
}

// Report samples the resources and runs the checks concurrently.
func (m *Monitor) Report(ctx context.Context) Report {
	clock := m.Clock
	if clock == nil {
		clock = time.Now
	}
	timeout := m.Timeout
	if timeout <= 0 {
		timeout = 3 * time.Second
	}
	u := m.Sampler.Sample()
	res := Check{Name: "resources", Status: ResourceStatus(u, m.Thresholds),
		Detail: fmt.Sprintf("cpu %.0f%% (limit %.0f%%), memory %.0f%% (limit %.0f%%)", 100*u.CPU, 100*m.Thresholds.CPU, 100*u.Memory, 100*m.Thresholds.Memory)}
	checks := make([]Check, len(m.Checks))
	var wg sync.WaitGroup
	for i, c := range m.Checks {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			done := make(chan Check, 1)
			go func() { done <- c.Check(cctx) }()
			select {
			case r := <-done:
				checks[i] = r
			case <-cctx.Done():
				checks[i] = Check{Name: c.Name(), Status: Critical, Detail: fmt.Sprintf("no answer within %v", timeout)}
			}
		})
	}
	wg.Wait()
	sort.SliceStable(checks, func(i, j int) bool { return checks[i].Name < checks[j].Name })
	all := append([]Check{res}, checks...)
	statuses := make([]Status, len(all))
	for i, c := range all {
		statuses[i] = c.Status
	}
	return Report{Status: Worst(statuses...), Checks: all, Usage: u, At: clock().UTC()}
}

// PingDegraded returns a check that is healthy when probe succeeds and
// degraded with the error otherwise: for a dependency whose loss degrades
// the service without stopping it, such as the metrics engine of the
// monitor, whose alerts keep their state while it is away.
func PingDegraded(name string, probe func(ctx context.Context) error) Checker {
	return checkFunc{name, func(ctx context.Context) Check {
		if err := probe(ctx); err != nil {
			return Check{Name: name, Status: Degraded, Detail: err.Error()}
		}
		return Check{Name: name, Status: Healthy}
	}}
}
