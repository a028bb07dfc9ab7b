package main

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/engine"
	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/ingest"
	"github.com/autonomics/autonomics/shared/machines"
	"github.com/autonomics/autonomics/shared/memstore"
	"github.com/autonomics/autonomics/shared/store"
	"github.com/autonomics/autonomics/shared/topic"
)

// TestScenarioTable checks the demo's table against the machines: every
// event exists and its data passes the machine's payload check, every
// expected state and event exists, and ids are valid.
func TestScenarioTable(t *testing.T) {
	sc := demoScenario("provider")
	if len(sc.Tenants) != 3 {
		t.Fatalf("demoScenario has %d customer tenants, want 3", len(sc.Tenants))
	}
	seen := map[string]bool{}
	for _, ts := range sc.All() {
		t.Run(ts.Tenant, func(t *testing.T) {
			if err := event.ValidTenant(ts.Tenant); err != nil {
				t.Errorf("tenant %q: %v", ts.Tenant, err)
			}
			if seen[ts.Tenant] {
				t.Errorf("tenant %q appears twice", ts.Tenant)
			}
			seen[ts.Tenant] = true
			if len(ts.Steps) == 0 {
				t.Errorf("tenant %q has no steps", ts.Tenant)
			}
			for i, st := range ts.Steps {
				if st.Title == "" || len(st.Wait) == 0 || (len(st.Publish) == 0 && st.Advance == nil && i == 0) {
					t.Errorf("step %d %q: want a title, conditions, and a first step that publishes", i+1, st.Title)
				}
				for _, e := range st.Publish {
					m := machines.Machine(e.Domain)
					if e.TimerOf != "" {
						e.Data = `{"timer_id":"filled-in-when-played"}`
					}
					err := m.CheckEvent(governor.Event{
						ID: "x", Source: demoSource, Type: governor.TypeOf(e.Domain, e.Name), Domain: e.Domain, Name: e.Name,
						Tenant: ts.Tenant, Subject: e.Subject, Data: []byte(e.Data),
					})
					if err != nil {
						t.Errorf("step %d publishes %s.%s %s: CheckEvent = %v", i+1, e.Domain, e.Name, e.Data, err)
					}
					if err := event.ValidSubject(e.Subject); err != nil || e.Subject == governor.BroadcastSubject {
						t.Errorf("step %d publishes to subject %q: want a single instance", i+1, e.Subject)
					}
				}
				for _, w := range st.Wait {
					m := machines.Machine(w.Domain)
					if m == nil || !m.HasState(w.State) || w.State == governor.StateNone {
						t.Errorf("step %d waits for %v: no such state", i+1, w)
					}
					if w.Seen != "" && (!m.HasEvent(w.Seen) || w.Times < 1) {
						t.Errorf("step %d waits for %v: no such event, or no count", i+1, w)
					}
				}
				if rc := st.Reaction; rc != nil {
					checkReaction(t, ts.Tenant, i+1, *rc)
				}
				if a := st.Advance; a != nil {
					if _, ok := machines.Machine(a.Domain).Timers[a.Timer]; !ok {
						t.Errorf("step %d advances timer %s of %s: no such timer", i+1, a.Timer, a.Domain)
					}
				}
			}
		})
	}
}

// checkReaction checks a reaction against the machines and the stack's
// producer rules: the action is one a machine emits, the event passes its
// machine's checks, and the ingest API's producer with the reaction's
// source may send it for the tenant.
func checkReaction(t *testing.T, tenant string, n int, rc reaction) {
	t.Helper()
	ms := machines.New(nil)
	emitted := false
	for _, m := range ms {
		emitted = emitted || slices.Contains(m.Actions(), rc.Action)
	}
	if !emitted {
		t.Errorf("step %d reacts to %s, which no machine emits", n, rc.Action)
	}
	e := rc.Event
	typ := governor.TypeOf(e.Domain, e.Name)
	err := machines.Machine(e.Domain).CheckEvent(governor.Event{
		ID: "x", Source: rc.Source, Type: typ, Domain: e.Domain, Name: e.Name,
		Tenant: tenant, Subject: e.Subject, Data: []byte(e.Data),
	})
	if err != nil {
		t.Errorf("step %d: reaction %s: CheckEvent = %v", n, rc, err)
	}
	rules, err := ingest.ParseRules(producerRules(), ms)
	if err != nil {
		t.Fatalf("the stack's producer rules: %v", err)
	}
	var p *ingest.Producer
	for _, x := range rules.Producers() {
		if x.Source() == rc.Source {
			p = x
		}
	}
	switch {
	case p == nil:
		t.Errorf("step %d: reaction %s: no producer of the stack's ingest API publishes with source %s", n, rc, rc.Source)
	case !slices.Contains(p.Types, typ) || !slices.Contains(p.Tenants, ingest.AnyTenant):
		t.Errorf("step %d: reaction %s: producer %s may send %v for %v", n, rc, p.Name, p.Types, p.Tenants)
	}
}

func TestInvoiceAmounts(t *testing.T) {
	tests := []struct {
		plan  demoPlan
		usage map[string]int64
		want  int64
	}{
		{planGold, acmeUsage, 1200*2 + 3*25},
		{planStarter, globexUsage, 800 * 3},
		{planStarter, map[string]int64{"seats": 4}, 0},
	}
	for _, tt := range tests {
		if got := tt.plan.invoice(tt.usage); got != tt.want {
			t.Errorf("%s.invoice(%v) = %d, want %d", tt.plan.SKU, tt.usage, got, tt.want)
		}
	}
}

func TestDataAt(t *testing.T) {
	data := []byte(`{"plan":"gold","invoice":{"amount":2475,"lines":{"api_calls":2400}},"ok":true,"none":null,"list":[1]}`)
	tests := []struct {
		path string
		want string
		ok   bool
	}{
		{"plan", "gold", true},
		{"invoice.amount", "2475", true},
		{"invoice.lines.api_calls", "2400", true},
		{"ok", "true", true},
		{"none", "null", true},
		{"list", "[1]", true},
		{"invoice.missing", "", false},
		{"plan.deeper", "", false},
	}
	for _, tt := range tests {
		got, ok := dataAt(data, tt.path)
		if got != tt.want || ok != tt.ok {
			t.Errorf("dataAt(%s) = %q, %v, want %q, %v", tt.path, got, ok, tt.want, tt.ok)
		}
	}
}

// queue is a Publisher that keeps messages for the simulation. The engine
// publishes a decision's topics concurrently.
type queue struct {
	mu   sync.Mutex
	msgs []store.Message
}

func (q *queue) Publish(_ context.Context, m store.Message) error {
	q.mu.Lock()
	q.msgs = append(q.msgs, m)
	q.mu.Unlock()
	return nil
}

// pop removes and returns the oldest message.
func (q *queue) pop() (store.Message, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.msgs) == 0 {
		return store.Message{}, false
	}
	m := q.msgs[0]
	q.msgs = q.msgs[1:]
	return m, true
}

// simulation plays the demo on the engine with an in-memory store and a
// clock that jumps to the next due timer whenever a step's conditions do
// not hold yet.
type simulation struct {
	t       *testing.T
	st      *memstore.Store
	eng     *engine.Engine
	q       *queue
	names   topic.Names
	now     time.Time
	n       int
	actions map[actionCount]int
}

func newSimulation(t *testing.T, provider string) *simulation {
	s := &simulation{
		t: t, st: memstore.New(), q: &queue{},
		now:     time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC),
		actions: map[actionCount]int{},
	}
	eng, err := engine.New(engine.Options{
		Store: s.st, Publisher: s.q, Machines: machines.New(demoTimers), Topics: s.names,
		Clock: func() time.Time { return s.now }, ProviderTenant: provider,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatalf("engine.New: %v", err)
	}
	s.eng = eng
	return s
}

// drain delivers queued cascades and counts actions.
func (s *simulation) drain(ctx context.Context) {
	for {
		m, ok := s.q.pop()
		if !ok {
			break
		}
		switch {
		case m.Topic == s.names.Actions():
			s.actions[actionCount{Kind: m.Attributes["action"], Tenant: m.Attributes["ce-tenantid"], Subject: m.Attributes["ce-subject"]}]++
		case m.Topic == s.names.Receipts():
		default:
			ev, err := event.Decode(event.Message{Data: m.Data, Attributes: m.Attributes})
			if err != nil {
				s.t.Fatalf("decode cascade on %s: %v", m.Topic, err)
			}
			if _, err := s.eng.Apply(ctx, ev); err != nil {
				s.t.Fatalf("Apply(%s) = %v", ev.Type, err)
			}
		}
	}
}

// nextTimer moves the clock to the earliest armed timer and fires the
// timers due then; it reports false when none is armed.
func (s *simulation) nextTimer(ctx context.Context) bool {
	due, err := s.st.DueTimers(ctx, s.now.Add(365*24*time.Hour), 1)
	if err != nil || len(due) == 0 {
		return false
	}
	if due[0].Due.After(s.now) {
		s.now = due[0].Due
	}
	if _, err := s.eng.Tick(ctx, 0); err != nil {
		s.t.Fatalf("Tick: %v", err)
	}
	s.drain(ctx)
	return true
}

// holds reports whether w holds for tenant, describing what is otherwise.
func (s *simulation) holds(ctx context.Context, tenant string, w want) (bool, string) {
	insts, err := s.st.Instances(ctx, tenant, w.Domain)
	if err != nil {
		s.t.Fatalf("Instances: %v", err)
	}
	for _, in := range insts {
		if in.Subject != w.Subject {
			continue
		}
		is := fmt.Sprintf("%s (data %s)", in.State, in.Data)
		if w.Reached {
			chain, err := s.st.Chain(ctx, in.Key, 0, 1000)
			if err != nil {
				s.t.Fatalf("Chain: %v", err)
			}
			return enteredState(chain, w.State), is + ", never entered " + string(w.State)
		}
		if in.State != w.State {
			return false, is
		}
		if v, ok := dataAt(in.Data, w.Path); w.Path != "" && (!ok || v != w.Value) {
			return false, is
		}
		if w.Seen != "" {
			chain, err := s.st.Chain(ctx, in.Key, 0, 1000)
			if err != nil {
				s.t.Fatalf("Chain: %v", err)
			}
			n := 0
			for _, r := range chain {
				if r.EventType == governor.TypeOf(w.Domain, w.Seen) && r.Outcome == string(governor.Accepted) {
					n++
				}
			}
			if n < w.Times {
				return false, fmt.Sprintf("%s, %s accepted %d times", is, w.Seen, n)
			}
		}
		return true, is
	}
	return false, "no instance"
}

// play runs one tenant's steps.
func (s *simulation) play(ctx context.Context, ts tenantScenario) {
	for i, st := range ts.Steps {
		if a := st.Advance; a != nil {
			insts, _ := s.st.Instances(ctx, ts.Tenant, a.Domain)
			for _, in := range insts {
				if tm, ok := in.Timers[a.Timer]; ok && in.Subject == a.Subject && tm.Due.After(s.now) {
					s.now = tm.Due
				}
			}
			if _, err := s.eng.Tick(ctx, 0); err != nil {
				s.t.Fatalf("Tick: %v", err)
			}
			s.drain(ctx)
		}
		for _, e := range st.Publish {
			s.publish(ctx, ts.Tenant, i+1, st.Title, e)
		}
		if rc := st.Reaction; rc != nil {
			// The provider's system reacts to an action it received: it
			// must have been emitted, and its event arrives with the
			// ingest API's source.
			if n := s.actions[actionCount{Kind: rc.Action, Tenant: ts.Tenant, Subject: rc.Subject}]; n == 0 {
				s.t.Errorf("%s step %d (%s): %s, but no %s was emitted", ts.Tenant, i+1, st.Title, rc, rc.Action)
			}
			e := rc.Event
			e.Source = rc.Source
			s.publish(ctx, ts.Tenant, i+1, st.Title, e)
		}
		for _, w := range st.Wait {
			ok, is := s.holds(ctx, ts.Tenant, w)
			for jumps := 0; !ok && jumps < 10 && s.nextTimer(ctx); jumps++ {
				ok, is = s.holds(ctx, ts.Tenant, w)
			}
			if !ok {
				s.t.Errorf("%s step %d (%s): expected %v, is %s", ts.Tenant, i+1, st.Title, w, is)
			}
		}
	}
	for _, a := range ts.Actions {
		if n := s.actions[actionCount{Kind: a.Kind, Tenant: ts.Tenant, Subject: a.Subject}]; n < a.Min {
			s.t.Errorf("%s: action %s on %s emitted %d times, want at least %d", ts.Tenant, a.Kind, a.Subject, n, a.Min)
		}
	}
}

// publish delivers e as a producer publishing to the domain topic would,
// checks its authorisation and receipt, and drains what it caused.
func (s *simulation) publish(ctx context.Context, tenant string, n int, title string, e demoEvent) {
	s.n++
	src := demoSource
	if e.Source != "" {
		src = e.Source
	}
	if e.TimerOf != "" {
		insts, _ := s.st.Instances(ctx, tenant, e.Domain)
		for _, in := range insts {
			if tm, ok := in.Timers[e.TimerOf]; ok && in.Subject == e.Subject {
				e.Data = `{"timer_id":"` + tm.ID + `"}`
			}
		}
	}
	data, attrs := event.Encode(governor.Event{
		ID: fmt.Sprintf("sim-%d", s.n), Source: src, Domain: e.Domain, Name: e.Name,
		Tenant: tenant, Subject: e.Subject, Time: s.now, Data: []byte(e.Data),
	})
	ev, err := event.Decode(event.Message{Data: data, Attributes: attrs})
	if err != nil {
		s.t.Fatalf("%s step %d: decode %s.%s: %v", tenant, n, e.Domain, e.Name, err)
	}
	// The demo publishes to the domain topics, as a producer does.
	aerr := s.eng.Authorize(false, ev)
	if e.DeadLetter != "" {
		if aerr == nil || !strings.Contains(aerr.Error(), e.DeadLetter) {
			s.t.Errorf("%s step %d: forged %s from %s: Authorize = %v, want a refusal containing %q", tenant, n, ev.Type, src, aerr, e.DeadLetter)
		}
		return
	}
	if aerr != nil {
		s.t.Fatalf("%s step %d: %s from %s is refused from outside: %v", tenant, n, ev.Type, src, aerr)
	}
	res, err := s.eng.Apply(ctx, ev)
	if err != nil || len(res) != 1 {
		s.t.Fatalf("%s step %d: Apply(%s) = %v, %v", tenant, n, ev.Type, res, err)
	}
	r := res[0].Receipt
	if governor.Outcome(r.Outcome) != e.wantOutcome() {
		s.t.Errorf("%s step %d (%s): %s was %s (%s), want %s", tenant, n, title, ev.Type, r.Outcome, r.Reason, e.wantOutcome())
	}
	if r.EventSource != src {
		s.t.Errorf("%s step %d (%s): receipt of %s has event_source %q, want %q", tenant, n, title, ev.Type, r.EventSource, src)
	}
	s.drain(ctx)
	s.now = s.now.Add(100 * time.Millisecond)
}

// TestScenarioOnEngine plays the whole demo on the engine with an
// in-memory store, so that the scenario and the machines cannot drift
// apart unnoticed.
func TestScenarioOnEngine(t *testing.T) {
	ctx := context.Background()
	sc := demoScenario("provider")
	s := newSimulation(t, sc.Provider.Tenant)
	for _, ts := range sc.All() {
		s.play(ctx, ts)
	}
}

func TestLoadPlan(t *testing.T) {
	const tenants = 7
	created := map[string]bool{}
	for i := range tenants * 12 {
		e := loadPlan(i, tenants)
		if want := loadTenant(i % tenants); e.Tenant != want {
			t.Errorf("loadPlan(%d, %d).Tenant = %q, want %q", i, tenants, e.Tenant, want)
		}
		if i < tenants && (e.Domain != account || e.Name != evRequested) {
			t.Errorf("loadPlan(%d, %d) = %s.%s, want the tenant's first event customer_account.requested", i, tenants, e.Domain, e.Name)
		}
		created[e.Tenant] = true
		err := machines.Machine(e.Domain).CheckEvent(governor.Event{
			ID: "x", Source: loadSource, Type: governor.TypeOf(e.Domain, e.Name), Domain: e.Domain, Name: e.Name,
			Tenant: e.Tenant, Subject: e.Subject, Data: []byte(e.Data),
		})
		if err != nil {
			t.Errorf("loadPlan(%d, %d) = %+v: CheckEvent = %v", i, tenants, e, err)
		}
	}
	if len(created) != tenants {
		t.Errorf("loadPlan over %d tenants reached %d tenants", tenants, len(created))
	}
}

// TestLoadPlanOnEngine checks that every event of the load's script is
// accepted, so that the load measures decisions that change state.
func TestLoadPlanOnEngine(t *testing.T) {
	ctx := context.Background()
	s := newSimulation(t, "provider")
	const tenants, events = 3, 3 * 9
	for i := range events {
		e := loadPlan(i, tenants)
		data, attrs := event.Encode(governor.Event{
			ID: fmt.Sprint("load-", i), Source: loadSource, Domain: e.Domain, Name: e.Name,
			Tenant: e.Tenant, Subject: e.Subject, Time: s.now, Data: []byte(e.Data),
		})
		ev, err := event.Decode(event.Message{Data: data, Attributes: attrs})
		if err != nil {
			t.Fatalf("decode loadPlan(%d): %v", i, err)
		}
		res, err := s.eng.Apply(ctx, ev)
		if err != nil || len(res) != 1 {
			t.Fatalf("Apply(loadPlan(%d)) = %v, %v", i, res, err)
		}
		if r := res[0].Receipt; r.Outcome != string(governor.Accepted) {
			t.Errorf("loadPlan(%d) %s on %s: %s (%s), want accepted", i, ev.Type, e.Tenant, r.Outcome, r.Reason)
		}
		s.drain(ctx)
	}
}
