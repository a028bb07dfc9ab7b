package alerting_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/alerting"
	"github.com/autonomics/autonomics/shared/fault"
)

// scripted forwards queries to an engine, records them, and fails the
// ones fail returns an error for.
type scripted struct {
	q     alerting.Querier
	mu    sync.Mutex
	exprs []string
	fail  func(expr string) error
}

func (s *scripted) Query(ctx context.Context, expr string, at time.Time) ([]alerting.Element, error) {
	s.mu.Lock()
	s.exprs = append(s.exprs, expr)
	fail := s.fail
	s.mu.Unlock()
	if fail != nil {
		if err := fail(expr); err != nil {
			return nil, err
		}
	}
	return s.q.Query(ctx, expr, at)
}

// take returns and forgets the queries recorded so far.
func (s *scripted) take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.exprs
	s.exprs = nil
	return out
}

// sharedRunner returns a runner of h's store over q, without fairness.
func sharedRunner(t *testing.T, h *harness, q alerting.Querier, maxPerQuery int) *alerting.Runner {
	t.Helper()
	r, err := alerting.NewRunner(alerting.RunnerOptions{
		Store: h.store, Publisher: h.pub, Querier: q, Holder: "shared", MaxSeriesPerQuery: maxPerQuery,
		Clock: func() time.Time { return h.now }, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// ownQueries returns the expressions of the policies' own queries.
func ownQueries(policies []alerting.Policy) map[string]bool {
	own := map[string]bool{}
	for i := range policies {
		for _, q := range policies[i].Compile(alerting.CompileOptions{}) {
			own[q.Expr] = true
		}
	}
	return own
}

// ownAlerts evaluates the policies once at h.now from their own queries,
// each sent alone, and returns the alerts that would result, by
// fingerprint: the reference a shared evaluation must match.
func ownAlerts(t *testing.T, h *harness, policies []alerting.Policy) map[string]alerting.Alert {
	t.Helper()
	results := map[string][]alerting.Active{}
	for i := range policies {
		p := &policies[i]
		qs := p.Compile(alerting.CompileOptions{})
		answers := make([][]alerting.Element, len(qs))
		for j, q := range qs {
			elems, err := h.prom.Querier().Query(t.Context(), q.Expr, h.now)
			if err != nil {
				t.Fatalf("own query %s of %s = %v", q.Expr, p.Name, err)
			}
			answers[j] = elems
		}
		results[p.Name] = p.Activate(qs, answers)
	}
	out := map[string]alerting.Alert{}
	for _, a := range alerting.Evaluate(alerting.Input{Now: h.now, Policies: policies, Results: results}).Put {
		out[a.Fingerprint] = a
	}
	return out
}

// stored returns h's alerts by fingerprint.
func stored(t *testing.T, h *harness) map[string]alerting.Alert {
	t.Helper()
	all, err := h.store.Alerts(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]alerting.Alert{}
	for _, a := range all {
		out[a.Fingerprint] = a
	}
	return out
}

// sameAlerts reports the differences between got and want in policy,
// labels, state, reason and value.
func sameAlerts(t *testing.T, got, want map[string]alerting.Alert) {
	t.Helper()
	for fp, w := range want {
		g, ok := got[fp]
		if !ok {
			t.Errorf("missing alert %s %s (%s %s %v)", w.Policy, w.Labels, w.State, w.Reason, w.Value)
			continue
		}
		if g.Policy != w.Policy || g.Labels.Key() != w.Labels.Key() || g.State != w.State || g.Reason != w.Reason || g.Value != w.Value {
			t.Errorf("alert %s %s = %s %s %v, want %s %s %v", w.Policy, w.Labels, g.State, g.Reason, g.Value, w.State, w.Reason, w.Value)
		}
	}
	for fp, g := range got {
		if _, ok := want[fp]; !ok {
			t.Errorf("extra alert %s %s (%s %s %v)", g.Policy, g.Labels, g.State, g.Reason, g.Value)
		}
	}
}

func simple(name, metric string, labels alerting.Labels, c alerting.Comparison, threshold float64, absentFor time.Duration) alerting.Policy {
	return alerting.Policy{Name: name, Metric: metric, Labels: labels, Comparison: c, Threshold: threshold, AbsentFor: absentFor, Severity: alerting.Warning}
}

func TestSharedQueriesGiveTheAlertsOfOwnQueries(t *testing.T) {
	type L = alerting.Labels
	const m5, m10 = 5 * time.Minute, 10 * time.Minute
	policies := []alerting.Policy{
		simple("gt", "load", nil, alerting.GT, 0.5, 0),
		simple("gte", "load", nil, alerting.GTE, 0.5, 0),
		simple("gt-eu", "load", L{"region": "eu"}, alerting.GT, 0.4, 0),
		simple("lt", "load", nil, alerting.LT, 0.5, 0),
		simple("lte-us", "load", L{"region": "us"}, alerting.LTE, 0.1, 0),
		simple("lt-b", "load", L{"host": "b"}, alerting.LT, 0.95, 0),
		simple("gte-b-eu", "load", L{"host": "b", "region": "eu"}, alerting.GTE, 0.9, 0),
		simple("absent", "load", nil, "", 0, m5),
		simple("absent-eu", "load", L{"region": "eu"}, "", 0, m5),
		simple("absent-zzz", "load", L{"host": "zzz"}, "", 0, m5),
		simple("gt-or-absent-us", "load", L{"region": "us"}, alerting.GT, 0.8, m5),
		simple("gt0-or-absent-10m", "load", nil, alerting.GT, 0, m10),
		simple("absent-10m-us-zzz", "load", L{"region": "us", "host": "zzz"}, "", 0, m10),
		simple("gone", "gone", nil, "", 0, m5),
		simple("gone-x", "gone", L{"tenant": "x"}, "", 0, m5),
		{Name: "expr", Expr: "load > 0.8", Labels: L{"team": "ops"}, Severity: alerting.Warning},
	}
	h := newHarness(t, policies...)
	h.sample("load", L{"host": "e", "region": "us"}, 0.7) // goes quiet
	h.advance(6 * time.Minute)
	h.sample("load", L{"host": "a", "region": "eu"}, 0.5)
	h.sample("load", L{"host": "b", "region": "eu"}, 0.9)
	h.sample("load", L{"host": "c", "region": "us"}, 0.1)
	q := &scripted{q: h.prom.Querier()}
	if _, err := sharedRunner(t, h, q, 0).Evaluate(t.Context()); err != nil {
		t.Fatalf("Evaluate = %v", err)
	}
	want := ownAlerts(t, h, policies)
	sameAlerts(t, stored(t, h), want)
	// gt b; gte, gt-eu a b; lt, lte-us c; lt-b, gte-b-eu b; absent and
	// gt-or-absent-us the quiet e; absent-zzz, absent-10m-us-zzz, gone,
	// gone-x their matchers; gt0-or-absent-10m a b c; expr b.
	if len(want) != 19 {
		t.Errorf("reference has %d alerts, want 19", len(want))
	}
	for _, c := range []struct {
		policy string
		labels alerting.Labels
		reason string
	}{
		{"absent-zzz", L{"host": "zzz"}, alerting.ReasonAbsent},
		{"gt-or-absent-us", L{"host": "e", "region": "us"}, alerting.ReasonAbsent},
		{"gone-x", L{"tenant": "x"}, alerting.ReasonAbsent},
		{"gte", L{"host": "a", "region": "eu"}, alerting.ReasonThreshold},
		{"expr", L{"host": "b", "region": "eu", "team": "ops"}, alerting.ReasonExpr},
	} {
		if a := want[alerting.Fingerprint(c.policy, c.labels)]; a.Reason != c.reason {
			t.Errorf("reference alert %s %s has reason %q, want %q", c.policy, c.labels, a.Reason, c.reason)
		}
	}
	naive := 0
	for i := range policies {
		naive += len(policies[i].Compile(alerting.CompileOptions{}))
	}
	// load: condition, quiet and absent for 5m and for 10m; gone: quiet
	// and absent; the PromQL policy.
	if got := q.take(); len(got) != 8 {
		t.Errorf("sent %d queries (own queries: %d), want 8: %q", len(got), naive, got)
	}
}

// threeHosts writes one sample of each of three hosts and returns a
// policy per host.
func threeHosts(h *harness) []alerting.Policy {
	var ps []alerting.Policy
	for _, host := range []string{"a", "b", "c"} {
		h.sample("load", alerting.Labels{"host": host}, 1)
		ps = append(ps, simple("high-"+host, "load", alerting.Labels{"host": host}, alerting.GT, 0.5, 0))
	}
	return ps
}

func TestSharedAnswerOverTheCapFallsBackToOwnQueries(t *testing.T) {
	h := newHarness(t)
	policies := threeHosts(h)
	for _, p := range policies {
		if _, err := h.store.PutPolicy(t.Context(), p); err != nil {
			t.Fatal(err)
		}
	}
	q := &scripted{q: h.prom.Querier()}
	if _, err := sharedRunner(t, h, q, 2).Evaluate(t.Context()); err != nil {
		t.Fatalf("Evaluate = %v", err)
	}
	sameAlerts(t, stored(t, h), ownAlerts(t, h, policies))
	if got := q.take(); len(got) != 4 {
		t.Errorf("sent %q, want the shared query then the 3 own ones", got)
	}
}

func TestSharedAnswerTooLargeForTheEngineFallsBackToOwnQueries(t *testing.T) {
	h := newHarness(t)
	policies := threeHosts(h)
	for _, p := range policies {
		if _, err := h.store.PutPolicy(t.Context(), p); err != nil {
			t.Fatal(err)
		}
	}
	own := ownQueries(policies)
	q := &scripted{q: h.prom.Querier(), fail: func(expr string) error {
		if own[expr] {
			return nil
		}
		return fault.Wrap(fault.Unavailable, "test", fmt.Errorf("%w: 40 MB", alerting.ErrAnswerTooLarge))
	}}
	if _, err := sharedRunner(t, h, q, 0).Evaluate(t.Context()); err != nil {
		t.Fatalf("Evaluate = %v", err)
	}
	want := ownAlerts(t, h, policies)
	sameAlerts(t, stored(t, h), want)
	if len(want) != 3 {
		t.Errorf("reference has %d alerts, want 3", len(want))
	}
	got := q.take()
	if len(got) != 4 || own[got[0]] {
		t.Errorf("sent %q, want the shared query then the 3 own ones", got)
	}
}

func TestSharedQueryFailureKeepsAlertState(t *testing.T) {
	h := newHarness(t)
	policies := threeHosts(h)
	for _, p := range policies {
		if _, err := h.store.PutPolicy(t.Context(), p); err != nil {
			t.Fatal(err)
		}
	}
	q := &scripted{q: h.prom.Querier()}
	r := sharedRunner(t, h, q, 0)
	if rep, err := r.Evaluate(t.Context()); err != nil || rep.Firing != 3 {
		t.Fatalf("Evaluate = %+v, %v; want 3 firing", rep, err)
	}
	h.types()
	before := stored(t, h)
	q.fail = func(string) error { return fault.Errorf(fault.Unavailable, "test", "engine overloaded") }
	h.advance(time.Minute)
	rep, err := r.Evaluate(t.Context())
	if fault.ErrorCode(err) != fault.Unavailable || rep.Failed != 3 {
		t.Errorf("Evaluate with the shared query failing = %+v, %v; want 3 failed policies, unavailable", rep, err)
	}
	sameAlerts(t, stored(t, h), before)
	if got := h.types(); len(got) != 0 {
		t.Errorf("sent %v while the engine failed, want nothing", got)
	}
}

func TestManyAbsentPoliciesShareChunkedQueries(t *testing.T) {
	h := newHarness(t)
	var policies []alerting.Policy
	for i := range 70 {
		svc := alerting.Labels{"svc": fmt.Sprintf("s%02d", i)}
		if i < 10 {
			h.sample("svc_up", svc, 1)
		}
		p := simple(fmt.Sprintf("down-%02d", i), "svc_up", svc, "", 0, 5*time.Minute)
		policies = append(policies, p)
		if _, err := h.store.PutPolicy(t.Context(), p); err != nil {
			t.Fatal(err)
		}
	}
	q := &scripted{q: h.prom.Querier()}
	if _, err := sharedRunner(t, h, q, 0).Evaluate(t.Context()); err != nil {
		t.Fatalf("Evaluate = %v", err)
	}
	want := ownAlerts(t, h, policies)
	sameAlerts(t, stored(t, h), want)
	if len(want) != 60 {
		t.Errorf("reference has %d alerts, want the 60 services without samples", len(want))
	}
	got := q.take()
	// One series absent query, and the 70 metric absent terms in two
	// queries of at most 64.
	if len(got) != 3 || slices.ContainsFunc(got, func(e string) bool { return len(e) > 16<<10 }) {
		t.Errorf("sent %d queries, want 3 of at most 16 kB", len(got))
	}
}
