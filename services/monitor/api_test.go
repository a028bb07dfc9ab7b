package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/autonomics/autonomics/services/monitor/monitorenv"
	"github.com/autonomics/autonomics/shared/alerting"
	"github.com/autonomics/autonomics/shared/alerting/memalerts"
	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/health"
	"github.com/autonomics/autonomics/shared/machines"
	"github.com/autonomics/autonomics/shared/promtest"
	"github.com/autonomics/autonomics/shared/receipt"
	"github.com/autonomics/autonomics/shared/store"
	"github.com/autonomics/autonomics/shared/topic"
)

var t0 = time.Date(2026, 11, 3, 8, 0, 0, 0, time.UTC)

// messages records published messages.
type messages struct {
	mu  sync.Mutex
	got []store.Message
}

func (m *messages) Publish(_ context.Context, msg store.Message) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.got = append(m.got, msg)
	return nil
}

func (m *messages) on(topic string) []store.Message {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []store.Message
	for _, g := range m.got {
		if g.Topic == topic {
			out = append(out, g)
		}
	}
	return out
}

// fixture is one service on a controlled clock, over a real Prometheus
// server fed by remote write.
type fixture struct {
	t    *testing.T
	now  time.Time
	svc  *service
	h    http.Handler
	pub  *messages
	prom *promtest.Server
}

func testConfig(t *testing.T, env map[string]string) config {
	t.Helper()
	cfg, err := loadConfig(func(k string) string {
		if k == "AUTONOMICS_PROJECT" {
			return "demo-autonomics"
		}
		return env[k]
	})
	if err != nil {
		t.Fatalf("loadConfig = %v", err)
	}
	return cfg
}

func newFixture(t *testing.T, st alerting.Store, holder string) *fixture {
	t.Helper()
	return newFixtureOn(t, st, holder, promtest.Start(t), nil, nil)
}

// newFixtureOn builds a fixture over the store and the engine srv, with
// the configuration changed by tune and log records kept in logs (both
// optional).
func newFixtureOn(t *testing.T, st alerting.Store, holder string, srv *promtest.Server, tune func(*config), logs *records) *fixture {
	t.Helper()
	f := &fixture{t: t, now: t0, pub: &messages{}, prom: srv}
	cfg := testConfig(t, map[string]string{monitorenv.HolderID: holder, monitorenv.FairnessWindow: "1m",
		monitorenv.PrometheusURL: srv.URL, monitorenv.RemoteWriteURL: srv.WriteURL})
	if tune != nil {
		tune(&cfg)
	}
	var h slog.Handler = slog.DiscardHandler
	if logs != nil {
		h = logs
	}
	eng, in, err := wireEngine(t.Context(), cfg, slog.New(h))
	if err != nil {
		t.Fatalf("wireEngine = %v", err)
	}
	svc, err := newService(deps{
		cfg: cfg, alerts: st, publisher: f.pub, topics: topic.Names{Prefix: "test-"}, engine: eng, intake: in,
		clock: func() time.Time { return f.now }, fsys: fstest.MapFS{}, log: slog.New(h),
		checks: []health.Checker{health.Ping("firestore", func(context.Context) error { return nil })},
	})
	if err != nil {
		t.Fatalf("newService = %v", err)
	}
	f.svc, f.h = svc, svc.Handler()
	return f
}

// query asks the fixture's engine expr a second after the fixture's clock
// (forwards on a frozen clock take the next milliseconds).
func (f *fixture) query(expr string) []alerting.Element {
	f.t.Helper()
	got, err := f.prom.Querier().Query(f.t.Context(), expr, f.now.Add(time.Second))
	if err != nil {
		f.t.Fatalf("query %s = %v", expr, err)
	}
	return got
}

// value returns the value of the one series expr returns, and whether
// there is exactly one.
func (f *fixture) value(expr string) (float64, bool) {
	f.t.Helper()
	got := f.query(expr)
	if len(got) != 1 {
		return 0, false
	}
	return got[0].Value, true
}

// do sends a request and decodes the JSON answer into out (if not nil).
func (f *fixture) do(method, path, body string, out any) int {
	f.t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	if out != nil && rec.Body.Len() > 0 {
		if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
			f.f("%s %s: body %s: %v", method, path, rec.Body, err)
		}
	}
	return rec.Code
}

func (f *fixture) f(format string, args ...any) { f.t.Helper(); f.t.Fatalf(format, args...) }

type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func TestMalformedRequests(t *testing.T) {
	f := newFixture(t, memalerts.New(), "a")
	tests := []struct {
		name, method, path, body string
		status                   int
		msg                      string
	}{
		{"policy bad comparison", "PUT", "/v1/policies/cpu", `{"metric":"cpu","comparison":"above","threshold":1,"severity":"warning"}`, 400, `comparison "above": want gt, gte, lt or lte`},
		{"policy bad duration", "PUT", "/v1/policies/cpu", `{"metric":"cpu","comparison":"gt","threshold":1,"for":"ten","severity":"warning"}`, 400, `for "ten": want a duration`},
		{"policy bad name", "PUT", "/v1/policies/-cpu", `{"metric":"cpu","comparison":"gt","threshold":1,"severity":"warning"}`, 400, "policy name"},
		{"policy not json", "PUT", "/v1/policies/cpu", `metric=cpu`, 400, "invalid character"},
		{"policy missing", "GET", "/v1/policies/nope", ``, 404, `no policy "nope"`},
		{"metrics not finite", "POST", "/v1/metrics", `[{"name":"cpu","value":1e400}]`, 400, "metrics[0]: value 1e400 is not a finite number"},
		{"metrics bad label", "POST", "/v1/metrics", `[{"name":"cpu","labels":{"bad-name":"x"},"value":1}]`, 400, `name "bad-name" must match`},
		{"metrics future", "POST", "/v1/metrics", `[{"name":"cpu","value":1,"time":"2027-01-01T00:00:00Z"}]`, 400, "ahead of the monitor's clock"},
		{"alerts bad state", "GET", "/v1/alerts?state=burning", ``, 400, `state="burning": want pending, firing or resolved`},
		{"silence no matchers", "PUT", "/v1/silences/s1", `{"ends_at":"2026-11-03T09:00:00Z"}`, 400, "matchers are required"},
		{"silence past", "PUT", "/v1/silences/s1", `{"matchers":{"tenant":"a"},"starts_at":"2026-11-03T06:00:00Z","ends_at":"2026-11-03T07:00:00Z"}`, 400, "in the past"},
		{"silence bad time", "PUT", "/v1/silences/s1", `{"matchers":{"tenant":"a"},"ends_at":"tomorrow"}`, 400, `ends_at "tomorrow"`},
		{"silence unknown field", "PUT", "/v1/silences/s1", `{"matchers":{"tenant":"a"},"ends_at":"2026-11-03T09:00:00Z","until":"x"}`, 400, `unknown field "until"`},
		{"no route", "GET", "/v2/alerts", ``, 404, "no route"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e apiError
			if got := f.do(tt.method, tt.path, tt.body, &e); got != tt.status || !strings.Contains(e.Error.Message, tt.msg) {
				t.Errorf("%s %s %s = %d %+v, want %d with %q", tt.method, tt.path, tt.body, got, e, tt.status, tt.msg)
			}
		})
	}
}

func TestPolicyCRUD(t *testing.T) {
	f := newFixture(t, memalerts.New(), "a")
	body := `{"metric":"cpu","labels":{"region":"eu"},"comparison":"gt","threshold":0.8,"for":"5m","severity":"critical"}`
	if got := f.do("PUT", "/v1/policies/cpu-high", body, nil); got != http.StatusCreated {
		t.Errorf("PUT new policy = %d, want 201", got)
	}
	if got := f.do("PUT", "/v1/policies/cpu-high", body, nil); got != http.StatusOK {
		t.Errorf("PUT existing policy = %d, want 200", got)
	}
	var p map[string]any
	if got := f.do("GET", "/v1/policies/cpu-high", "", &p); got != 200 || p["for"] != "5m0s" || p["threshold"] != 0.8 || p["name"] != "cpu-high" {
		t.Errorf("GET policy = %d %v", got, p)
	}
	var list struct{ Policies []map[string]any }
	if got := f.do("GET", "/v1/policies", "", &list); got != 200 || len(list.Policies) != 1 {
		t.Errorf("GET policies = %d %v", got, list)
	}
	if got := f.do("DELETE", "/v1/policies/cpu-high", "", nil); got != http.StatusNoContent {
		t.Errorf("DELETE = %d, want 204", got)
	}
	if got := f.do("DELETE", "/v1/policies/cpu-high", "", nil); got != http.StatusNotFound {
		t.Errorf("second DELETE = %d, want 404", got)
	}
}

func TestAlertFlow(t *testing.T) {
	f := newFixture(t, memalerts.New(), "a")
	f.do("PUT", "/v1/policies/cpu-high", `{"metric":"cpu","comparison":"gt","threshold":0.8,"severity":"critical"}`, nil)
	if got := f.do("PUT", "/v1/silences/quiet-globex", `{"matchers":{"tenant":"globex"},"ends_at":"2026-11-03T10:00:00Z","comment":"known"}`, nil); got != http.StatusCreated {
		t.Fatalf("PUT silence = %d", got)
	}
	var acc map[string]int
	if got := f.do("POST", "/v1/metrics", `[{"name":"cpu","labels":{"tenant":"acme"},"value":0.9},{"name":"cpu","labels":{"tenant":"globex"},"value":0.95}]`, &acc); got != http.StatusAccepted || acc["accepted"] != 2 {
		t.Fatalf("POST metrics = %d %v", got, acc)
	}
	var rep alerting.Report
	if got := f.do("POST", "/v1/evaluate", "", &rep); got != 200 || !rep.Evaluated || rep.Firing != 2 || rep.Notified != 1 {
		t.Fatalf("POST evaluate = %d %+v, want 2 firing, 1 notified", got, rep)
	}
	var alerts struct{ Alerts []alertView }
	f.do("GET", "/v1/alerts?state=firing", "", &alerts)
	if len(alerts.Alerts) != 2 {
		t.Fatalf("GET alerts?state=firing = %+v, want 2", alerts)
	}
	for _, a := range alerts.Alerts {
		want := alerting.Fingerprint("cpu-high", a.Labels)
		if a.Fingerprint != want || a.FiredAt == "" || a.ActiveAt == "" || a.Silenced != (a.Labels["tenant"] == "globex") {
			t.Errorf("alert %+v: want fingerprint %s, times set, silenced only for globex", a, want)
		}
	}
	f.do("GET", "/v1/alerts?state=pending", "", &alerts)
	if len(alerts.Alerts) != 0 {
		t.Errorf("GET alerts?state=pending = %d alerts, want 0", len(alerts.Alerts))
	}
	sent := f.pub.on("test-autonomics-alerts")
	if len(sent) != 1 {
		t.Fatalf("alerts topic got %d messages, want 1", len(sent))
	}
	m := sent[0]
	fp := alerting.Fingerprint("cpu-high", alerting.Labels{"tenant": "acme"})
	want := map[string]string{
		"ce-type": alerting.TypeFiring, "ce-id": alerting.NotificationID(fp, "firing", t0), "ce-source": Source,
		"ce-tenantid": "acme", "ce-specversion": "1.0", "fingerprint": fp, "severity": "critical", "policy": "cpu-high",
	}
	for k, v := range want {
		if m.Attributes[k] != v {
			t.Errorf("attribute %s = %q, want %q", k, m.Attributes[k], v)
		}
	}
	if m.OrderingKey != fp {
		t.Errorf("ordering key %q, want the fingerprint", m.OrderingKey)
	}
	// Another instance over the same store skips while the lease is held.
	g := newFixture(t, f.svc.d.alerts, "b")
	g.now = t0.Add(30 * time.Second)
	if got := g.do("POST", "/v1/evaluate", "", &rep); got != 200 || rep.Evaluated || rep.Holder != "a" {
		t.Errorf("POST evaluate on a non-holder = %d %+v, want 200, not evaluated, holder a", got, rep)
	}
}

func TestReceiptPush(t *testing.T) {
	f := newFixture(t, memalerts.New(), "a")
	inst := governor.Instance{Key: governor.Key{Tenant: "acme", Domain: governor.Billing, Subject: "2026-11"}}
	ev := governor.Event{ID: "e1", Source: "test", Type: "autonomics.billing.opened", Domain: governor.Billing, Name: "opened", Tenant: "acme", Subject: "2026-11"}
	rc := receipt.New(inst, ev, governor.Decision{Outcome: governor.Rejected, Reason: "no_transition", From: "none", To: "none"}, t0.Add(-time.Second))
	push := event.PushBody(rc.JSON(), map[string]string{"domain": "billing", "outcome": "rejected"}, "m1")
	if got := f.do("POST", "/v1/receipts/push", string(push), nil); got != http.StatusNoContent {
		t.Fatalf("push receipt = %d, want 204", got)
	}
	f.do("POST", "/v1/evaluate", "", nil)
	if v, ok := f.value(`autonomics_decisions_total{domain="billing",outcome="rejected",monitor_instance="a"}`); !ok || v != 1 {
		t.Errorf("decisions_total{billing,rejected} in the engine = %v (%v), want 1 from instance a", v, ok)
	}
	if v, ok := f.value(`autonomics_rejection_ratio{domain="billing"}`); !ok || v != 1 {
		t.Errorf("rejection_ratio{billing} in the engine = %v (%v), want 1", v, ok)
	}
	tampered := rc
	tampered.ToState = "paid"
	for _, body := range []string{
		`{"message":{"data":"bm90IGpzb24="}}`,
		string(event.PushBody(tampered.JSON(), nil, "m2")),
		`not a push body`,
	} {
		if got := f.do("POST", "/v1/receipts/push", body, nil); got != http.StatusNoContent {
			t.Errorf("push %s = %d, want 204 (dead-lettered)", body, got)
		}
	}
	dl := f.pub.on("test-autonomics-dead-letter")
	if len(dl) != 3 || !strings.Contains(dl[1].Attributes["dead_letter_reason"], "does not match") || dl[1].Attributes["original_message_id"] != "m2" {
		t.Errorf("dead letters = %+v, want 3, the second for the hash mismatch of m2", dl)
	}
}

func TestNoisyNeighborEvent(t *testing.T) {
	f := newFixture(t, memalerts.New(), "a")
	for i := range 5 {
		body := `[{"name":"autonomics_tenant_usage","labels":{"tenant":"acme","resource":"cpu"},"value":8},` +
			`{"name":"autonomics_tenant_usage","labels":{"tenant":"globex","resource":"cpu"},"value":2}]`
		if got := f.do("POST", "/v1/metrics", body, nil); got != http.StatusAccepted {
			t.Fatalf("POST usage #%d = %d", i, got)
		}
		f.now = f.now.Add(15 * time.Second)
	}
	f.do("POST", "/v1/evaluate", "", nil)
	sent := f.pub.on("test-autonomics-multi-tenant-internal")
	if len(sent) != 1 {
		t.Fatalf("multi_tenant internal topic got %d messages, want 1", len(sent))
	}
	ev, err := event.Decode(event.Message{Data: sent[0].Data, Attributes: sent[0].Attributes})
	if err != nil {
		t.Fatalf("Decode(noisy neighbour event) = %v", err)
	}
	if err := machines.New(nil)[governor.MultiTenant].CheckEvent(ev); err != nil {
		t.Errorf("the multi_tenant machine refuses the event: %v", err)
	}
	if ev.Name != "noisy_neighbor_detected" || ev.Tenant != "acme" || ev.Subject != "default" || string(ev.Data) != `{"share_bp":8000}` || sent[0].OrderingKey != "acme" {
		t.Errorf("event = %+v data %s, want noisy_neighbor_detected for acme/default with share_bp 8000", ev, ev.Data)
	}
}

func TestHealth(t *testing.T) {
	f := newFixture(t, memalerts.New(), "a")
	var h struct {
		Status     string
		Checks     []health.Check
		CPU        *float64 `json:"cpu"`
		Memory     *float64 `json:"memory"`
		Goroutines int
	}
	if got := f.do("GET", "/v1/health", "", &h); got != 200 || h.Status != "healthy" || h.CPU == nil || h.Memory == nil || h.Goroutines == 0 || len(h.Checks) != 3 {
		t.Errorf("GET /v1/health = %d %+v", got, h)
	}
	req := httptest.NewRequest("GET", "/healthz", nil)
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	if b, _ := io.ReadAll(rec.Body); rec.Code != 200 || !bytes.Contains(b, []byte("ok")) {
		t.Errorf("GET /healthz = %d %s", rec.Code, b)
	}
}

func TestLoadConfig(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{}, ""},
		{map[string]string{monitorenv.EvalInterval: "2m", monitorenv.LeaseTTL: "1m"}, "must exceed"},
		{map[string]string{monitorenv.EvalInterval: "0"}, ""},
		{map[string]string{monitorenv.Lookback: "soon"}, monitorenv.Lookback},
		{map[string]string{monitorenv.CPUThreshold: "120"}, "percentage"},
		{map[string]string{monitorenv.FairnessThreshold: "5000", monitorenv.FairnessHyst: "6000"}, "hysteresis"},
		{map[string]string{monitorenv.Fairness: "maybe"}, "want on or off"},
		{map[string]string{monitorenv.OutboxDegraded: "10m", monitorenv.OutboxCritical: "5m"}, "below the degraded"},
		{map[string]string{monitorenv.Namespace: "a/b"}, "namespace"},
	}
	for _, tt := range tests {
		_, err := loadConfig(func(k string) string {
			if k == "AUTONOMICS_PROJECT" {
				return "p"
			}
			return tt.env[k]
		})
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("loadConfig(%v) = %v, want %q", tt.env, err, tt.want)
		}
	}
	cfg := testConfig(t, map[string]string{monitorenv.Fairness: "off", monitorenv.MemoryThreshold: "90"})
	if cfg.Fairness != nil || cfg.Thresholds.Memory != 0.9 || cfg.Port != "8080" || cfg.Holder == "" {
		t.Errorf("loadConfig = %+v", cfg)
	}
}

func TestPromQLPolicy(t *testing.T) {
	f := newFixture(t, memalerts.New(), "a")
	var e apiError
	if got := f.do("PUT", "/v1/policies/broken", `{"expr":"sum(rate(cpu[5m])","severity":"warning"}`, &e); got != http.StatusBadRequest || !strings.Contains(e.Error.Message, "expr") {
		t.Errorf("PUT a policy whose expression the engine refuses = %d %+v, want 400 naming expr", got, e)
	}
	if got := f.do("PUT", "/v1/policies/mixed", `{"expr":"cpu > 1","metric":"cpu","severity":"warning"}`, &e); got != http.StatusBadRequest || !strings.Contains(e.Error.Message, "exclude each other") {
		t.Errorf("PUT expr and metric = %d %+v, want 400", got, e)
	}
	body := `{"expr":"max by (tenant) (cpu) > 0.8","labels":{"team":"core"},"for":"1m","keep_firing_for":"2m","severity":"critical"}`
	if got := f.do("PUT", "/v1/policies/cpu-promql", body, nil); got != http.StatusCreated {
		t.Fatalf("PUT PromQL policy = %d, want 201", got)
	}
	var p map[string]any
	if f.do("GET", "/v1/policies/cpu-promql", "", &p); p["expr"] != "max by (tenant) (cpu) > 0.8" || p["metric"] != nil {
		t.Errorf("GET PromQL policy = %v", p)
	}
	post := func(v float64) {
		t.Helper()
		if got := f.do("POST", "/v1/metrics", fmt.Sprintf(`[{"name":"cpu","labels":{"tenant":"acme","instance":"i1"},"value":%g}]`, v), nil); got != http.StatusAccepted {
			t.Fatalf("POST metrics = %d", got)
		}
	}
	labels := alerting.Labels{"tenant": "acme", "team": "core"}
	step := func(v float64, want alerting.State) {
		t.Helper()
		post(v)
		f.do("POST", "/v1/evaluate", "", nil)
		a, _ := f.svc.d.alerts.Alert(t.Context(), alerting.Fingerprint("cpu-promql", labels))
		if a.State != want && !(want == "" && a.State == alerting.Inactive) {
			t.Errorf("at t+%v with %v: state %q, want %q", f.now.Sub(t0), v, a.State, want)
		}
		f.now = f.now.Add(time.Minute)
	}
	step(0.9, alerting.Pending)
	step(0.95, alerting.Firing)
	step(0.1, alerting.Firing) // keep_firing_for
	step(0.1, alerting.Firing)
	step(0.1, alerting.Resolved)
	sent := f.pub.on("test-autonomics-alerts")
	if len(sent) != 2 || sent[0].Attributes["ce-type"] != alerting.TypeFiring || sent[1].Attributes["ce-type"] != alerting.TypeResolved {
		t.Errorf("alerts topic got %d messages, want firing then resolved", len(sent))
	}
}

func TestMetricsEngineDownDegradesAndKeepsAlerts(t *testing.T) {
	f := newFixture(t, memalerts.New(), "a")
	f.do("PUT", "/v1/policies/cpu-high", `{"metric":"cpu","comparison":"gt","threshold":0.8,"severity":"critical"}`, nil)
	f.do("POST", "/v1/metrics", `[{"name":"cpu","labels":{"tenant":"acme"},"value":0.9}]`, nil)
	if got := f.do("POST", "/v1/evaluate", "", nil); got != http.StatusOK {
		t.Fatalf("POST evaluate = %d", got)
	}
	f.prom.Stop()
	f.now = f.now.Add(time.Hour)
	var e apiError
	if got := f.do("POST", "/v1/evaluate", "", &e); got != http.StatusServiceUnavailable || e.Error.Code != "unavailable" {
		t.Errorf("POST evaluate with the engine down = %d %+v, want 503 unavailable", got, e)
	}
	if got := f.do("POST", "/v1/metrics", `[{"name":"cpu","labels":{"tenant":"acme"},"value":0.9}]`, &e); got != http.StatusServiceUnavailable {
		t.Errorf("POST metrics with the engine down = %d %+v, want 503", got, e)
	}
	var h struct {
		Status string
		Checks []health.Check
	}
	if got := f.do("GET", "/v1/health", "", &h); got != http.StatusOK || h.Status != string(health.Degraded) {
		t.Errorf("GET /v1/health with the engine down = %d %s, want 200 degraded", got, h.Status)
	}
	var alerts struct{ Alerts []alertView }
	f.do("GET", "/v1/alerts?state=firing", "", &alerts)
	if len(alerts.Alerts) != 1 {
		t.Errorf("firing alerts with the engine down = %d, want the 1 kept", len(alerts.Alerts))
	}
	if sent := f.pub.on("test-autonomics-alerts"); len(sent) != 1 {
		t.Errorf("%d alert messages, want only the first firing", len(sent))
	}
}
