package alerting_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/alerting"
	"github.com/autonomics/autonomics/shared/alerting/memalerts"
	"github.com/autonomics/autonomics/shared/promtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	promtest.StopShared()
	os.Exit(code)
}

// t0 is the start of the current scenario: a recent whole second, set by
// newHarness, so that the samples it writes are recent for the engine.
var t0 = time.Now().UTC().Truncate(time.Second)

// recorder is a Publisher that records notifications and can fail.
type recorder struct {
	mu   sync.Mutex
	got  []alerting.Notification
	fail bool
}

func (r *recorder) Publish(_ context.Context, n alerting.Notification) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail {
		return errors.New("broker down")
	}
	r.got = append(r.got, n)
	return nil
}

// take returns and forgets the notifications recorded so far.
func (r *recorder) take() []alerting.Notification {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.got
	r.got = nil
	return out
}

// harness runs evaluation cycles on a controlled clock against a real
// Prometheus server of its own, fed by remote write with samples at the
// clock's times.
type harness struct {
	t      *testing.T
	now    time.Time
	store  alerting.Store
	prom   *promtest.Server
	pub    *recorder
	runner *alerting.Runner
	fair   alerting.FairnessOptions
}

func newHarness(t *testing.T, policies ...alerting.Policy) *harness {
	t.Helper()
	t0 = time.Now().UTC().Truncate(time.Second)
	h := &harness{t: t, now: t0, store: memalerts.New(), pub: &recorder{}, prom: promtest.Start(t)}
	for _, p := range policies {
		if _, err := h.store.PutPolicy(t.Context(), p); err != nil {
			t.Fatalf("PutPolicy(%s) = %v", p.Name, err)
		}
	}
	h.restart("instance-1")
	return h
}

// restart replaces the process: a fresh runner over the same store,
// publisher and metrics engine.
func (h *harness) restart(holder string) {
	h.t.Helper()
	h.fair = alerting.DefaultFairness()
	r, err := alerting.NewRunner(alerting.RunnerOptions{
		Store: h.store, Publisher: h.pub, Querier: h.prom.Querier(), Holder: holder,
		LeaseTTL: time.Minute, Clock: func() time.Time { return h.now }, Fairness: &h.fair,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		h.t.Fatalf("NewRunner = %v", err)
	}
	h.runner = r
}

func (h *harness) advance(d time.Duration) { h.now = h.now.Add(d) }

// sample writes one sample at the harness's clock.
func (h *harness) sample(name string, labels alerting.Labels, v float64) {
	h.t.Helper()
	h.prom.Write(h.t, alerting.Sample{Name: name, Labels: labels, Value: v, Time: h.now})
}

func (h *harness) eval() alerting.Report {
	h.t.Helper()
	rep, err := h.runner.Evaluate(h.t.Context())
	if err != nil {
		h.t.Fatalf("Evaluate at %v = %v", h.now.Sub(t0), err)
	}
	return rep
}

// alert returns the alert of policy on labels, or a zero alert.
func (h *harness) alert(policy string, labels alerting.Labels) alerting.Alert {
	a, _ := h.store.Alert(h.t.Context(), alerting.Fingerprint(policy, labels))
	return a
}

// types returns the types of notifications sent since the last call.
func (h *harness) types() []string {
	var out []string
	for _, n := range h.pub.take() {
		out = append(out, n.Type)
	}
	return out
}
