package machines

import (
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/machines/account"
	"github.com/autonomics/autonomics/shared/machines/billing"
	"github.com/autonomics/autonomics/shared/machines/catalog"
	"github.com/autonomics/autonomics/shared/machines/entitlement"
	"github.com/autonomics/autonomics/shared/machines/messages"
	"github.com/autonomics/autonomics/shared/machines/subscription"
	"github.com/autonomics/autonomics/shared/receipt"
)

var update = flag.Bool("update", false, "rewrite the golden docs under docs/")

// samplePayloads are candidate payloads; each event uses those its
// machine's payload check accepts.
var samplePayloads = []string{
	``, `{}`,
	`{"plan":"gold"}`, `{"plan":"silver"}`, `{"plan":"gold","trial_days":0}`, `{"plan":"gold","trial_days":14}`,
	`{"meter":"api_calls","quantity":100}`, `{"meter":"storage_gb","quantity":3}`,
	`{"amount":200}`, `{"amount":1}`,
	`{"limit":100}`, `{"limit":100,"warning_bp":8000}`, `{"usage":10}`, `{"usage":85}`, `{"usage":150}`,
	`{"tier":"enterprise"}`, `{"tier":"starter"}`,
	`{"availability_bp":10000,"p99_ms":50,"error_bp":0}`, `{"availability_bp":9000,"p99_ms":5000,"error_bp":900}`,
	`{"severity":"critical"}`, `{"severity":"low"}`,
	`{"share_bp":7000}`, `{"minutes":30}`, `{"basis_points":500}`,
	`{"name":"Gold","currency":"USD","unit_prices":{"api_calls":2},"limits":{"api_calls":1000}}`,
	`{"unit_prices":{"api_calls":2},"effective_at":"2027-06-01T00:00:00Z"}`,
	`{"unit_prices":{"api_calls":9},"effective_at":"2026-11-02T00:00:00Z"}`,
	`{"plan":"gold","product":"saas.example.com","offer":"projects/1/services/saas.example.com/privateOffers/o1",` +
		`"offer_end_time":"2027-01-31T00:00:00Z","usage_reporting_id":"project_number:123"}`,
	`{"plan":"silver","usage_reporting_id":"project_number:42"}`,
	`{"plan":"gold","trial_days":0,"billed_by":"marketplace"}`,
	`{"offer_end_time":"2027-01-31T00:00:00Z"}`,
	`{"reason":"Service Control check: SERVICE_NOT_ACTIVATED"}`,
}

func publishedPlan() catalog.Plan {
	return catalog.Plan{SKU: "gold", State: catalog.Published, Currency: "USD",
		UnitPrices: map[string]int64{"api_calls": 2, "storage_gb": 10},
		Limits:     map[string]int64{"api_calls": 1000, "seats": 5}}
}

// readsFor returns what the engine would read for a decision of ev on
// inst: the instances the row's Needs names, with the account in state
// acct and the catalog holding the published plan gold only.
func readsFor(m *governor.Machine, inst governor.Instance, ev governor.Event, acct governor.State) map[governor.Key]governor.Instance {
	keys := m.Reads(inst, ev, "")
	if len(keys) == 0 {
		return nil
	}
	out := map[governor.Key]governor.Instance{}
	for _, k := range keys {
		switch {
		case k == account.Key(ev.Tenant):
			out[k] = governor.Instance{Key: k, State: acct}
		case k == catalog.Key(ev.Tenant, "gold"):
			out[k] = catalog.Instance(ev.Tenant, publishedPlan())
		default:
			out[k] = governor.Instance{Key: k, State: governor.StateNone}
		}
	}
	return out
}

func validPayloads(t testing.TB, m *governor.Machine, name governor.EventName) []json.RawMessage {
	var out []json.RawMessage
	for _, p := range samplePayloads {
		ev := governor.Event{ID: "x", Source: "s", Type: governor.TypeOf(m.Domain, name), Domain: m.Domain, Name: name, Tenant: "t", Subject: "s", Data: json.RawMessage(p)}
		if strings.HasPrefix(string(name), governor.TimeoutPrefix) {
			ev.Data = json.RawMessage(`{"timer_id":"x"}`)
		}
		if name == governor.ActuationFailed {
			ev.Data = json.RawMessage(`{"action_id":"a1","kind":"` + m.Actions()[0] + `","reason":"HTTP 400","attempts":1}`)
		}
		if m.CheckEvent(ev) == nil {
			out = append(out, ev.Data)
		}
	}
	if len(out) == 0 {
		t.Fatalf("no sample payload passes %s.%s; add one to samplePayloads", m.Domain, name)
	}
	return out
}

func TestMachinesValidate(t *testing.T) {
	ms := New(nil)
	if len(ms) != len(governor.Domains) {
		t.Fatalf("New() has %d machines, want %d", len(ms), len(governor.Domains))
	}
	for _, d := range governor.Domains {
		m := ms[d]
		if m == nil || m.Domain != d {
			t.Fatalf("New()[%s] = %v", d, m)
		}
		if err := m.Validate(); err != nil {
			t.Errorf("%s: Validate() = %v", d, err)
		}
	}
}

func TestTimerOverrides(t *testing.T) {
	ms := New(map[string]time.Duration{"customer_account.verification": 3 * time.Second, "billing.verification": time.Hour})
	if got := ms[governor.CustomerAccount].Timers["verification"]; got != 3*time.Second {
		t.Errorf("customer_account verification = %v, want 3s", got)
	}
	if _, ok := ms[governor.Billing].Timers["verification"]; ok {
		t.Errorf("billing gained a timer it does not have")
	}
	if got := Machine(governor.CustomerAccount).Timers["verification"]; got != 7*24*time.Hour {
		t.Errorf("default verification = %v, want 7d", got)
	}
}

// TestPairsOutsideTableRejected applies every event to every state for
// which the table has no row: the decision must be a rejection that keeps
// state, data and timers.
func TestPairsOutsideTableRejected(t *testing.T) {
	now := time.Date(2026, 11, 15, 12, 0, 0, 0, time.UTC)
	for _, d := range governor.Domains {
		m := Machine(d)
		states := append([]governor.State{governor.StateNone}, m.States...)
		for _, s := range states {
			for _, name := range m.Events() {
				if m.Lookup(s, name) != nil || name == governor.ActuationFailed {
					continue
				}
				for _, data := range validPayloads(t, m, name) {
					inst := governor.Instance{Key: governor.Key{Tenant: "t", Domain: d, Subject: subjectFor(d, name)}, State: s, Version: 3, Data: json.RawMessage(`{"x":1}`)}
					ev := governor.Event{ID: "e", Source: "s", Type: governor.TypeOf(d, name), Domain: d, Name: name, Tenant: "t", Subject: inst.Subject, Data: data}
					got, err := m.Decide(governor.Input{Instance: inst, Event: ev, Reads: readsFor(m, inst, ev, account.Active), Now: now})
					if err != nil {
						t.Errorf("Decide(%s %s, %s) error %v", d, s, name, err)
						continue
					}
					if got.Outcome != governor.Rejected || got.To != s || string(got.Data) != string(inst.Data) || len(got.Emits) != 0 {
						t.Errorf("Decide(%s %s, %s) = %v to %s emits %d, want rejected in %s", d, s, name, got.Outcome, got.To, len(got.Emits), s)
					}
				}
			}
		}
	}
}

// subjectFor picks a subject the quota machine accepts for an event.
func subjectFor(d governor.Domain, name governor.EventName) string {
	if d == governor.QuotaSLA && (name == "objective_set" || name == "measured") {
		return "sla"
	}
	if d == governor.QuotaSLA {
		return "api_calls"
	}
	return "default"
}

// TestRandomWalks drives every machine with random events and checks the
// invariants: states stay in the table, rejections change nothing,
// emitted events are valid for their target machine, and the receipts
// form a verifiable chain.
func TestRandomWalks(t *testing.T) {
	ms := New(nil)
	for _, d := range governor.Domains {
		m := ms[d]
		for seed := uint64(1); seed <= 30; seed++ {
			rng := rand.New(rand.NewPCG(seed, uint64(len(d))))
			randomWalk(t, ms, m, rng, 120)
		}
	}
}

// walkSources are the sources of a random walk's events: the provider's
// and the Marketplace adapter's, whose entitlements behave differently.
var walkSources = []string{"walk", entitlement.MarketplaceSourcePrefix + "walk"}

func randomWalk(t *testing.T, ms map[governor.Domain]*governor.Machine, m *governor.Machine, rng *rand.Rand, steps int) {
	t.Helper()
	events := m.Events()
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	subject := "default"
	if m.Domain == governor.QuotaSLA && rng.IntN(2) == 0 {
		subject = "sla"
	} else if m.Domain == governor.QuotaSLA {
		subject = "api_calls"
	}
	inst := governor.Instance{Key: governor.Key{Tenant: "acme", Domain: m.Domain, Subject: subject}, State: governor.StateNone}
	var chain []receipt.Receipt
	accounts := []governor.State{account.Active, governor.StateNone, account.PendingVerification, account.Suspended}
	for i := 0; i < steps; i++ {
		name := events[rng.IntN(len(events))]
		var data json.RawMessage
		if n, ok := strings.CutPrefix(string(name), governor.TimeoutPrefix); ok {
			id := "stale"
			if tm, armed := inst.Timers[n]; armed && rng.IntN(4) != 0 {
				id = tm.ID
			}
			data = json.RawMessage(`{"timer_id":"` + id + `"}`)
		} else {
			ps := validPayloads(t, m, name)
			data = ps[rng.IntN(len(ps))]
		}
		ev := governor.Event{ID: fmt.Sprintf("e%d", i), Source: walkSources[rng.IntN(len(walkSources))], Type: governor.TypeOf(m.Domain, name), Domain: m.Domain, Name: name,
			Tenant: "acme", Subject: subject, Data: data, CascadeDepth: rng.IntN(MaxDepthSample())}
		now = now.Add(time.Duration(rng.IntN(72)) * time.Hour)
		if n, ok := strings.CutPrefix(string(name), governor.TimeoutPrefix); ok {
			// The scheduler fires a timer only once it is due.
			if tm, armed := inst.Timers[n]; armed && now.Before(tm.Due) {
				now = tm.Due
			}
		}
		reads := readsFor(m, inst, ev, accounts[rng.IntN(len(accounts))])
		d, err := m.Decide(governor.Input{Instance: inst, Event: ev, Reads: reads, Now: now})
		if err != nil {
			t.Fatalf("%s: Decide(%s, %s %s) error %v", m.Domain, inst.State, name, data, err)
		}
		if !m.HasState(d.To) {
			t.Fatalf("%s: Decide(%s, %s) reached undeclared state %s", m.Domain, inst.State, name, d.To)
		}
		switch d.Outcome {
		case governor.Accepted:
			if name == governor.ActuationFailed {
				if d.To != inst.State || string(d.Data) != string(inst.Data) || len(d.Emits) != 0 {
					t.Fatalf("%s: actuation_failed in %s changed the instance", m.Domain, inst.State)
				}
				break
			}
			row := m.Lookup(inst.State, name)
			if row == nil || !slices.Contains(row.Targets(), d.To) {
				t.Fatalf("%s: Decide(%s, %s) accepted into %s outside the table", m.Domain, inst.State, name, d.To)
			}
		case governor.Rejected:
			if d.To != inst.State || string(d.Data) != string(inst.Data) || len(d.Emits) != 0 {
				t.Fatalf("%s: rejected Decide(%s, %s) changed the instance", m.Domain, inst.State, name)
			}
		default:
			t.Fatalf("%s: outcome %q", m.Domain, d.Outcome)
		}
		for _, em := range d.Emits {
			if em.Kind != governor.KindEvent {
				continue
			}
			target := ms[em.Domain]
			name := governor.EventName(strings.TrimPrefix(em.Type, "autonomics."+string(em.Domain)+"."))
			cev := governor.Event{ID: "c", Source: "s", Type: em.Type, Domain: em.Domain, Name: name, Tenant: "acme", Subject: em.Subject, Data: em.Data}
			if err := target.CheckEvent(cev); err != nil {
				t.Fatalf("%s: %s emitted %s %s that its target refuses: %v", m.Domain, name, em.Type, em.Data, err)
			}
			if !target.May(governor.SenderGovernor, name) {
				t.Fatalf("%s: emitted %s, which %s does not accept from a governor", m.Domain, em.Type, em.Domain)
			}
		}
		r := receipt.New(inst, ev, d, now)
		chain = append(chain, r)
		inst = governor.Instance{Key: inst.Key, State: d.To, Version: r.Seq, LastHash: r.Hash, Data: d.Data, Timers: d.Timers, UpdatedAt: now}
	}
	if err := receipt.Verify(chain); err != nil {
		t.Fatalf("%s: chain of a random walk does not verify: %v", m.Domain, err)
	}
}

// MaxDepthSample makes one event in ten or so exceed the cascade limit.
func MaxDepthSample() int { return governor.MaxCascadeDepth + 1 }

// TestGolden pins the generated docs; go test -update rewrites them.
func TestGolden(t *testing.T) {
	var index strings.Builder
	index.WriteString("# Governor state machines\n\n<!-- Generated from the transition tables in shared/machines; do not edit. Run `make docs` to refresh. -->\n\n")
	index.WriteString("| domain | states | transitions | page |\n|---|---|---|---|\n")
	for _, d := range governor.Domains {
		m := Machine(d)
		fmt.Fprintf(&index, "| `%s` | %d | %d | [%s.md](%s.md) |\n", d, len(m.States), len(m.Transitions), d, d)
		checkGolden(t, filepath.Join("docs", string(d)+".md"), governor.Markdown(m))
	}
	checkGolden(t, filepath.Join("docs", "README.md"), index.String())
}

func checkGolden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run make docs)", err)
	}
	if string(want) != got {
		t.Errorf("%s is stale: run make docs (go test ./shared/machines -run TestGolden -update)", path)
	}
}

// BenchmarkDecideReceipt decides one billing usage event and builds and
// hashes its receipt: the whole pure path of one decision.
func BenchmarkDecideReceipt(b *testing.B) {
	m := Machine(governor.Billing)
	inst := governor.Instance{Key: governor.Key{Tenant: "acme", Domain: governor.Billing, Subject: "2026-11"}, State: "open", Version: 41,
		LastHash: strings.Repeat("ab", 32), Data: json.RawMessage(`{"meters":{"api_calls":1200,"storage_gb":3}}`)}
	ev := governor.Event{ID: "0f8fad5b-d9cb-469f-a165-70867728950e", Source: "//billing.example.com/meters", Type: "autonomics.billing.usage_recorded",
		Domain: governor.Billing, Name: "usage_recorded", Tenant: "acme", Subject: "2026-11", Data: json.RawMessage(`{"meter":"api_calls","quantity":25}`)}
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	if err := m.CheckEvent(ev); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		d, err := m.Decide(governor.Input{Instance: inst, Event: ev, Now: now})
		if err != nil || d.Outcome != governor.Accepted {
			b.Fatalf("Decide = %v, %v", d.Outcome, err)
		}
		r := receipt.New(inst, ev, d, now)
		if r.Hash == "" {
			b.Fatal("no hash")
		}
	}
}

// BenchmarkSHA256ReceiptBytes hashes the canonical bytes of the same
// receipt, the floor BenchmarkDecideReceipt is compared with.
func BenchmarkSHA256ReceiptBytes(b *testing.B) {
	m := Machine(governor.Billing)
	inst := governor.Instance{Key: governor.Key{Tenant: "acme", Domain: governor.Billing, Subject: "2026-11"}, State: "open", Version: 41,
		LastHash: strings.Repeat("ab", 32), Data: json.RawMessage(`{"meters":{"api_calls":1200,"storage_gb":3}}`)}
	ev := governor.Event{ID: "0f8fad5b-d9cb-469f-a165-70867728950e", Source: "//billing.example.com/meters", Type: "autonomics.billing.usage_recorded",
		Domain: governor.Billing, Name: "usage_recorded", Tenant: "acme", Subject: "2026-11", Data: json.RawMessage(`{"meter":"api_calls","quantity":25}`)}
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	d, _ := m.Decide(governor.Input{Instance: inst, Event: ev, Now: now})
	r := receipt.New(inst, ev, d, now)
	canon := r.Canonical()
	b.SetBytes(int64(len(canon)))
	b.ReportAllocs()
	for b.Loop() {
		_ = sha256.Sum256(canon)
	}
}

// TestGraph runs the engine's whole-graph check over the eight machines:
// every cascade, static or dynamic, names an event its receiving machine
// accepts from a governor, with data its payload check accepts.
func TestGraph(t *testing.T) {
	if err := governor.CheckGraph(New(nil)); err != nil {
		t.Fatal(err)
	}
}

// TestInternalOnlyEvents pins the events no outside sender may send.
func TestInternalOnlyEvents(t *testing.T) {
	ms := New(nil)
	internalOnly := map[governor.Domain][]governor.EventName{
		governor.Entitlement: {"account_activated", "suspend", "reinstate", "usage_blocked", "usage_restored"},
		governor.MultiTenant: {"provision_requested", "noisy_neighbor_detected", "recovered", "suspend", "resume", "deprovision"},
	}
	for d, names := range internalOnly {
		for _, n := range names {
			for _, s := range []governor.Sender{governor.SenderExternal, governor.SenderMarketplace} {
				if ms[d].May(s, n) {
					t.Errorf("%s.%s may be sent by %s; want internal senders only", d, n, s)
				}
			}
		}
	}
	for _, d := range governor.Domains {
		for _, n := range ms[d].Events() {
			if strings.HasPrefix(string(n), governor.TimeoutPrefix) {
				for _, s := range governor.Senders {
					if s != governor.SenderScheduler && ms[d].May(s, n) {
						t.Errorf("%s.%s may be sent by %s; timeouts are the scheduler's", d, n, s)
					}
				}
			}
		}
	}
}

// TestActuationFailedIsRecordedInEveryState checks that every machine that
// actuates accepts an actuator's failure report in each existing state,
// terminal ones included, without changing state, data or timers, and
// refuses a report about an action it never emits.
func TestActuationFailedIsRecordedInEveryState(t *testing.T) {
	now := time.Date(2026, 11, 15, 12, 0, 0, 0, time.UTC)
	for _, d := range governor.Domains {
		m := Machine(d)
		if len(m.Actions()) == 0 {
			if m.HasEvent(governor.ActuationFailed) {
				t.Errorf("%s actuates nothing but accepts %s", d, governor.ActuationFailed)
			}
			continue
		}
		data := json.RawMessage(`{"action_id":"a1","kind":"` + m.Actions()[0] + `","reason":"HTTP 400 from the endpoint","attempts":3}`)
		for _, s := range m.States {
			inst := governor.Instance{Key: governor.Key{Tenant: "t", Domain: d, Subject: "default"}, State: s, Version: 2,
				Data: json.RawMessage(`{"x":1}`), Timers: map[string]governor.Timer{"t": {Name: "t", ID: "i", Due: now}}}
			ev := governor.Event{ID: "e", Source: "autonomics/actuator/webhooks", Type: governor.TypeOf(d, governor.ActuationFailed), Domain: d,
				Name: governor.ActuationFailed, Tenant: "t", Subject: "default", Data: data}
			if err := m.CheckEvent(ev); err != nil {
				t.Fatalf("%s CheckEvent(actuation_failed) = %v", d, err)
			}
			got, err := m.Decide(governor.Input{Instance: inst, Event: ev, Now: now})
			if err != nil || got.Outcome != governor.Accepted || got.To != s || string(got.Data) != `{"x":1}` || len(got.Timers) != 1 || len(got.Emits) != 0 {
				t.Errorf("Decide(%s %s, actuation_failed) = %+v, %v; want accepted, nothing changed", d, s, got, err)
			}
			if !strings.Contains(got.Reason, m.Actions()[0]) || !strings.Contains(got.Reason, "HTTP 400") {
				t.Errorf("Decide(%s %s, actuation_failed) reason = %q, want the kind and the cause", d, s, got.Reason)
			}
		}
		for _, data := range []string{
			`{"action_id":"a1","kind":"not.mine","reason":"x","attempts":1}`,
			`{"action_id":"a1","kind":"` + m.Actions()[0] + `","Reason":"x","attempts":1}`,
		} {
			bad := governor.Event{Type: governor.TypeOf(d, governor.ActuationFailed), Domain: d, Name: governor.ActuationFailed,
				Data: json.RawMessage(data)}
			if err := m.CheckEvent(bad); err == nil {
				t.Errorf("%s CheckEvent(actuation_failed %s) = nil, want an error", d, data)
			}
		}
		for _, s := range governor.Senders {
			if got := m.May(s, governor.ActuationFailed); got != (s == governor.SenderActuator) {
				t.Errorf("%s May(%s, actuation_failed) = %v", d, s, got)
			}
		}
	}
}

// TestCascadesToPerTenantGovernorsUseTheDefaultSubject checks the subject
// convention of cascades: customer_account and multi_tenant have one
// instance per tenant, with subject "default", so every cascade to them,
// static or declared, names that subject.
func TestCascadesToPerTenantGovernorsUseTheDefaultSubject(t *testing.T) {
	perTenant := map[governor.Domain]bool{governor.CustomerAccount: true, governor.MultiTenant: true}
	for d, m := range New(nil) {
		for _, row := range m.Transitions {
			for _, c := range row.Cascade {
				if perTenant[c.Domain] && c.Subject != governor.DefaultSubject {
					t.Errorf("%s %s cascades %s.%s to subject %q, want %q", d, row.On, c.Domain, c.Event, c.Subject, governor.DefaultSubject)
				}
			}
			for _, r := range row.Emits {
				if r.Kind == governor.KindEvent && perTenant[r.Domain] && r.Subject != governor.DefaultSubject {
					t.Errorf("%s %s may emit %s.%s to subject %q, want %q", d, row.On, r.Domain, r.Name, r.Subject, governor.DefaultSubject)
				}
			}
		}
	}
}

// TestEntitlementCascadesAreAcceptedDownstream decides the entitlement
// rows that cascade with data (the subscription's creation and plan
// change, a quota limit per metric of the plan) and checks every emitted
// event against the machine that receives it, data included.
func TestEntitlementCascadesAreAcceptedDownstream(t *testing.T) {
	ms := New(nil)
	m := ms[entitlement.Domain]
	key := governor.Key{Tenant: "tenant-1", Domain: entitlement.Domain, Subject: "ent-1"}
	plans := map[string]catalog.Plan{
		"pro":   {SKU: "pro", State: catalog.Published, Currency: "USD", Limits: map[string]int64{"api_calls": 1000, "seats": 5}},
		"basic": {SKU: "basic", State: catalog.Published, Currency: "USD", Limits: map[string]int64{"api_calls": 100}},
	}
	inputs := []struct {
		state governor.State
		data  string
		event governor.EventName
		body  string
	}{
		{entitlement.ActivationRequested, `{"plan":"pro","trial_days":30}`, entitlement.Activated, ``},
		{entitlement.ActivationRequested, `{"plan":"basic"}`, entitlement.Activated, ``},
		{entitlement.ActivationRequested, `{"plan":"basic","marketplace":true}`, entitlement.Activated, ``},
		{governor.StateNone, ``, entitlement.Activated, `{"plan":"pro","trial_days":3}`},
		{entitlement.PendingPlanChange, `{"plan":"basic","pending_plan":"pro"}`, entitlement.PlanChanged, `{"plan":"pro"}`},
	}
	for _, in := range inputs {
		t.Run(string(in.event)+" "+in.data, func(t *testing.T) {
			inst := governor.Instance{Key: key, State: in.state, Data: json.RawMessage(in.data)}
			ev := governor.Event{Domain: entitlement.Domain, Name: in.event, Tenant: key.Tenant, Subject: key.Subject, Data: json.RawMessage(in.body)}
			reads := map[governor.Key]governor.Instance{}
			for _, k := range m.Reads(inst, ev, "") {
				reads[k] = governor.Instance{Key: k}
				if p, ok := plans[k.Subject]; ok && k.Domain == catalog.Domain {
					reads[k] = catalog.Instance(k.Tenant, p)
				}
			}
			d, err := m.Decide(governor.Input{Instance: inst, Event: ev, Reads: reads, Now: time.Date(2026, 11, 14, 10, 0, 0, 0, time.UTC)})
			if err != nil || d.Outcome != governor.Accepted || len(d.Emits) == 0 {
				t.Fatalf("Decide(%s, %s) = %+v, %v, want accepted with cascades", in.state, in.event, d, err)
			}
			for _, e := range d.Emits {
				if e.Kind != governor.KindEvent {
					continue
				}
				name := governor.EventName(strings.TrimPrefix(e.Type, "autonomics."+string(e.Domain)+"."))
				cev := governor.Event{ID: "c", Source: "s", Type: e.Type, Domain: e.Domain, Name: name, Tenant: key.Tenant, Subject: e.Subject, Data: e.Data}
				if err := ms[e.Domain].CheckEvent(cev); err != nil {
					t.Errorf("%s.CheckEvent(%s %s %s) = %v, want nil", e.Domain, e.Type, e.Subject, e.Data, err)
				}
			}
		})
	}
}

// TestSubscriptionRenewalClosesTheBillingPeriod checks the billing.closed
// a renewal sends: the period of the subscription's start, with its plan,
// data the billing machine accepts.
func TestSubscriptionRenewalClosesTheBillingPeriod(t *testing.T) {
	ms := New(nil)
	key := governor.Key{Tenant: "tenant-1", Domain: subscription.Domain, Subject: "sub-1"}
	d, err := ms[subscription.Domain].Decide(governor.Input{
		Instance: governor.Instance{Key: key, State: subscription.Active, Data: json.RawMessage(`{"plan":"basic","period_start":"2026-01-02T00:00:00Z"}`)},
		Event:    governor.Event{Domain: subscription.Domain, Name: subscription.Renewed, Tenant: key.Tenant, Subject: key.Subject},
		Now:      time.Date(2026, 11, 14, 10, 0, 0, 0, time.UTC),
	})
	if err != nil || len(d.Emits) != 1 {
		t.Fatalf("Decide(active, renewed) = %v, %v, want one emit", d, err)
	}
	e := d.Emits[0]
	if e.Type != messages.BillingClosed.Type() || e.Domain != billing.Domain || e.Subject != "2026-01" {
		t.Errorf("Decide(active, renewed) emits %s %s %s, want %s billing 2026-01", e.Type, e.Domain, e.Subject, messages.BillingClosed.Type())
	}
	var p messages.PeriodClose
	dec := json.NewDecoder(strings.NewReader(string(e.Data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil || p.Plan != "basic" {
		t.Errorf("billing.closed data %s: plan %q, err %v; want plan basic", e.Data, p.Plan, err)
	}
	cev := governor.Event{ID: "c", Source: "s", Type: e.Type, Domain: e.Domain, Name: messages.BillingClosed.Name, Tenant: key.Tenant, Subject: e.Subject, Data: e.Data}
	if err := ms[billing.Domain].CheckEvent(cev); err != nil {
		t.Errorf("billing.CheckEvent(%s) = %v, want nil", e.Data, err)
	}
}
