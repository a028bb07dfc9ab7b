// Package machinetest runs table-driven decision cases against a
// governor's machine: Lifecycle cases (state, event, expected target,
// timers and emits) and Row cases (the same, with the instance data and
// the emitted data compared as JSON), and payload cases against the
// machine's payload checks. Every governor package's tests use it.
package machinetest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
)

// LifecycleNow is the decision time of every lifecycle case.
var LifecycleNow = time.Date(2026, 11, 14, 10, 0, 0, 0, time.UTC)

// Lifecycle is one decision of a machine, shared by the account,
// entitlement, subscription and tenancy tests.
type Lifecycle struct {
	Name    string
	Subject string // instance subject; "" means the domain's usual subject
	State   governor.State
	Data    string   // instance data before, JSON
	Timers  []string // timers armed before the event
	Event   governor.EventName
	Payload string                             // event data, JSON; timeouts get the armed timer's id
	StaleID bool                               // send a timeout with an id that is not armed
	Source  string                             // event source; "" means "//test", a provider's
	Reads   map[governor.Key]governor.Instance // instances the row needs, as read

	Want      governor.Outcome // "" means Accepted
	Reason    string           // prefix of the rejection reason
	To        governor.State
	Armed     map[string]time.Duration // timers armed by the decision, with their delay
	Cancelled []string                 // timers armed before and gone after
	Emits     []string                 // "event <type> <subject>" or "actuate <kind> <subject>"
	EmitData  map[int]string           // data of emit i, JSON
	WantData  string                   // instance data after, JSON; "" skips the check
}

// LifecycleInstance builds the instance a case starts from.
func LifecycleInstance(m *governor.Machine, c Lifecycle, subject string) governor.Instance {
	key := governor.Key{Tenant: "tenant-1", Domain: m.Domain, Subject: subject}
	inst := governor.Instance{Key: key, State: c.State, Version: 4, UpdatedAt: LifecycleNow.Add(-time.Hour)}
	if c.State != governor.StateNone {
		inst.LastHash = strings.Repeat("ab", 32)
	}
	if c.Data != "" {
		inst.Data = json.RawMessage(c.Data)
	}
	for _, name := range c.Timers {
		if inst.Timers == nil {
			inst.Timers = map[string]governor.Timer{}
		}
		inst.Timers[name] = governor.Timer{Name: name, ID: governor.TimerID(key, name, 2), Due: LifecycleNow}
	}
	return inst
}

// LifecycleEvent builds the event of a case, addressed to inst.
func LifecycleEvent(m *governor.Machine, c Lifecycle, inst governor.Instance) governor.Event {
	data := c.Payload
	if name, ok := strings.CutPrefix(string(c.Event), governor.TimeoutPrefix); ok {
		id := inst.Timers[name].ID
		if c.StaleID || id == "" {
			id = "stale"
		}
		data = fmt.Sprintf(`{"timer_id":%q}`, id)
	}
	source := c.Source
	if source == "" {
		source = "//test"
	}
	ev := governor.Event{
		ID: "ev-" + c.Name, Source: source, Type: governor.TypeOf(m.Domain, c.Event),
		Domain: m.Domain, Name: c.Event, Tenant: inst.Tenant, Subject: inst.Subject, Time: LifecycleNow,
	}
	if data != "" {
		ev.Data = json.RawMessage(data)
	}
	return ev
}

// EmitStrings renders emits as "kind type subject".
func EmitStrings(emits []governor.Emit) []string {
	var out []string
	for _, e := range emits {
		out = append(out, fmt.Sprintf("%s %s %s", e.Kind, e.Type, e.Subject))
	}
	return out
}

// JSONEqual reports whether a and b hold the same JSON value.
func JSONEqual(a, b []byte) bool {
	var x, y any
	if len(bytes.TrimSpace(a)) == 0 {
		a = []byte("{}")
	}
	if len(bytes.TrimSpace(b)) == 0 {
		b = []byte("{}")
	}
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

// RunLifecycle decides every case with m and checks the decision.
func RunLifecycle(t *testing.T, m *governor.Machine, subject string, cases []Lifecycle) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			sub := subject
			if c.Subject != "" {
				sub = c.Subject
			}
			inst := LifecycleInstance(m, c, sub)
			ev := LifecycleEvent(m, c, inst)
			if err := m.CheckEvent(ev); err != nil {
				t.Fatalf("CheckEvent(%s %s) = %v, want nil", ev.Name, ev.Data, err)
			}
			in := governor.Input{Instance: inst, Event: ev, Reads: c.Reads, Now: LifecycleNow}
			got, err := m.Decide(in)
			if err != nil {
				t.Fatalf("Decide(%s, %s) error = %v", c.State, c.Event, err)
			}
			want := c.Want
			if want == "" {
				want = governor.Accepted
			}
			if got.Outcome != want || got.To != c.To || got.From != c.State {
				t.Fatalf("Decide(%s, %s) = %s %s→%s (%s), want %s %s→%s",
					c.State, c.Event, got.Outcome, got.From, got.To, got.Reason, want, c.State, c.To)
			}
			if want == governor.Rejected {
				if !strings.HasPrefix(got.Reason, c.Reason) {
					t.Errorf("Decide(%s, %s).Reason = %q, want prefix %q", c.State, c.Event, got.Reason, c.Reason)
				}
				if !bytes.Equal(got.Data, inst.Data) || !maps.Equal(got.Timers, inst.Timers) || len(got.Emits) != 0 {
					t.Errorf("Decide(%s, %s) rejected with data %s, timers %v, emits %v; want data %s, timers %v, no emits",
						c.State, c.Event, got.Data, got.Timers, got.Emits, inst.Data, inst.Timers)
				}
				return
			}
			if got.Reason != "" {
				t.Errorf("Decide(%s, %s).Reason = %q, want empty", c.State, c.Event, got.Reason)
			}
			armed := map[string]time.Duration{}
			for name, tm := range got.Timers {
				if before, ok := inst.Timers[name]; !ok || before.ID != tm.ID {
					armed[name] = tm.Due.Sub(LifecycleNow)
				}
			}
			if !maps.Equal(armed, c.Armed) {
				t.Errorf("Decide(%s, %s) armed %v, want %v", c.State, c.Event, armed, c.Armed)
			}
			var cancelled []string
			for name := range inst.Timers {
				if _, ok := got.Timers[name]; !ok {
					cancelled = append(cancelled, name)
				}
			}
			slices.Sort(cancelled)
			if !slices.Equal(cancelled, c.Cancelled) {
				t.Errorf("Decide(%s, %s) cancelled %v, want %v", c.State, c.Event, cancelled, c.Cancelled)
			}
			if emits := EmitStrings(got.Emits); !slices.Equal(emits, c.Emits) {
				t.Errorf("Decide(%s, %s) emits\n%q\nwant\n%q", c.State, c.Event, emits, c.Emits)
			}
			for i, data := range c.EmitData {
				if i >= len(got.Emits) {
					continue
				}
				if !JSONEqual(got.Emits[i].Data, []byte(data)) {
					t.Errorf("Decide(%s, %s) emit %d data = %s, want %s", c.State, c.Event, i, got.Emits[i].Data, data)
				}
			}
			if c.WantData != "" && !JSONEqual(got.Data, []byte(c.WantData)) {
				t.Errorf("Decide(%s, %s) data = %s, want %s", c.State, c.Event, got.Data, c.WantData)
			}
		})
	}
}

// RowNow is the default decision time of the billing, catalog, quota and
// compliance cases.
var RowNow = time.Date(2026, 11, 14, 10, 0, 0, 0, time.UTC)

// RowVersion is the version of every instance a Row starts from.
const RowVersion = 4

// Row is one decision of the billing, catalog, quota or compliance
// machine: the instance and event before, the expected decision after.
type Row struct {
	Name    string
	Subject string // instance subject; "" means the runner's default
	State   governor.State
	Data    string                   // instance data before, JSON
	Timers  map[string]time.Duration // timers armed before, by due time − now
	Event   governor.EventName
	Payload string                             // event data, JSON; timeouts get the armed timer's id
	Stale   bool                               // a timeout carries an id that is not armed
	Reads   map[governor.Key]governor.Instance // instances the row needs, as read
	Now     time.Time                          // decision time; zero means RowNow

	Reject     string                   // if set, the decision is rejected with this reason prefix
	To         governor.State           // target of an accepted decision
	WantData   string                   // instance data after, JSON; "" means unchanged
	WantTimers map[string]time.Duration // timers after, by due time − now
	Emits      []Emit
}

// Emit is an expected emitted message.
type Emit struct {
	Kind    governor.EmitKind
	Typ     string
	Subject string
	Data    string // JSON; "" means {}
}

// String renders the expectation like EmitOf renders a governor.Emit.
func (e Emit) String() string {
	data := e.Data
	if data == "" {
		data = "{}"
	}
	return fmt.Sprintf("%s %s %s %s", e.Kind, e.Typ, e.Subject, Compact(data))
}

// EmitOf renders an emitted message for comparison.
func EmitOf(e governor.Emit) string {
	return fmt.Sprintf("%s %s %s %s", e.Kind, e.Type, e.Subject, Compact(string(e.Data)))
}

// Compact re-encodes JSON with sorted keys and no spaces, or returns s
// unchanged if it is not JSON.
func Compact(s string) string {
	if strings.TrimSpace(s) == "" {
		s = "{}"
	}
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// Cascade returns an "event" Emit.
func Cascade(d governor.Domain, name governor.EventName, subject, data string) Emit {
	return Emit{Kind: governor.KindEvent, Typ: governor.TypeOf(d, name), Subject: subject, Data: data}
}

// Action returns an "actuate" Emit.
func Action(kind, subject, data string) Emit {
	return Emit{Kind: governor.KindActuate, Typ: kind, Subject: subject, Data: data}
}

// RowInput builds the decision input of a case.
func RowInput(m *governor.Machine, c Row, subject string) governor.Input {
	if c.Subject != "" {
		subject = c.Subject
	}
	now := c.Now
	if now.IsZero() {
		now = RowNow
	}
	key := governor.Key{Tenant: "tenant-1", Domain: m.Domain, Subject: subject}
	inst := governor.Instance{Key: key, State: c.State, UpdatedAt: now.Add(-time.Hour)}
	if c.State != governor.StateNone {
		inst.Version, inst.LastHash = RowVersion, strings.Repeat("cd", 32)
	}
	if c.Data != "" {
		inst.Data = json.RawMessage(c.Data)
	}
	for name, due := range c.Timers {
		if inst.Timers == nil {
			inst.Timers = map[string]governor.Timer{}
		}
		inst.Timers[name] = governor.Timer{Name: name, ID: governor.TimerID(key, name, 2), Due: now.Add(due)}
	}
	payload := c.Payload
	if name, ok := strings.CutPrefix(string(c.Event), governor.TimeoutPrefix); ok {
		id := inst.Timers[name].ID
		if c.Stale || id == "" {
			id = "not-armed"
		}
		payload = fmt.Sprintf(`{"timer_id":%q}`, id)
	}
	ev := governor.Event{
		ID: "ev-" + c.Name, Source: "//tests", Type: governor.TypeOf(m.Domain, c.Event),
		Domain: m.Domain, Name: c.Event, Tenant: key.Tenant, Subject: subject, Time: now,
	}
	if payload != "" {
		ev.Data = json.RawMessage(payload)
	}
	return governor.Input{Instance: inst, Event: ev, Reads: c.Reads, Now: now}
}

// CompactEqual reports whether a and b hold the same JSON value; empty
// means {}.
func CompactEqual(a, b []byte) bool {
	return Compact(string(a)) == Compact(string(b))
}

// TimerOffsets returns the due times of timers relative to now.
func TimerOffsets(timers map[string]governor.Timer, now time.Time) map[string]time.Duration {
	out := map[string]time.Duration{}
	for name, t := range timers {
		out[name] = t.Due.Sub(now)
	}
	return out
}

// RunRows decides every case with m and checks the whole decision.
func RunRows(t *testing.T, m *governor.Machine, subject string, cases []Row) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			in := RowInput(m, c, subject)
			inst, ev := in.Instance, in.Event
			if err := m.CheckEvent(ev); err != nil {
				t.Fatalf("CheckEvent(%s %s) = %v, want nil", ev.Name, ev.Data, err)
			}
			got, err := m.Decide(in)
			if err != nil {
				t.Fatalf("Decide(%s, %s %s) error %v, want a decision", inst.State, ev.Name, ev.Data, err)
			}
			var emits []string
			for _, e := range got.Emits {
				emits = append(emits, EmitOf(e))
				if e.Kind == governor.KindEvent && e.Type != governor.TypeOf(e.Domain, governor.EventName(strings.TrimPrefix(e.Type, "autonomics."+string(e.Domain)+"."))) {
					t.Errorf("emit %s: type does not match domain %s", e.Type, e.Domain)
				}
			}
			if c.Reject != "" {
				if got.Outcome != governor.Rejected || !strings.HasPrefix(got.Reason, c.Reject) {
					t.Fatalf("Decide(%s, %s %s) = %s %q, want rejected %q", inst.State, ev.Name, ev.Data, got.Outcome, got.Reason, c.Reject)
				}
				if got.From != inst.State || got.To != inst.State {
					t.Errorf("Decide(%s, %s) moved %s → %s, want no move", inst.State, ev.Name, got.From, got.To)
				}
				if !bytes.Equal(got.Data, inst.Data) {
					t.Errorf("Decide(%s, %s) data = %s, want unchanged %s", inst.State, ev.Name, got.Data, inst.Data)
				}
				if !reflect.DeepEqual(got.Timers, inst.Timers) {
					t.Errorf("Decide(%s, %s) timers = %v, want unchanged %v", inst.State, ev.Name, got.Timers, inst.Timers)
				}
				if len(got.Emits) != 0 {
					t.Errorf("Decide(%s, %s) emits = %v, want none", inst.State, ev.Name, emits)
				}
				return
			}
			if got.Outcome != governor.Accepted || got.To != c.To {
				t.Fatalf("Decide(%s, %s %s) = %s %s %q, want accepted %s", inst.State, ev.Name, ev.Data, got.Outcome, got.To, got.Reason, c.To)
			}
			want := c.WantData
			if want == "" {
				want = c.Data
			}
			if !CompactEqual(got.Data, []byte(want)) {
				t.Errorf("Decide(%s, %s) data = %s, want %s", inst.State, ev.Name, Compact(string(got.Data)), Compact(want))
			}
			gotTimers := TimerOffsets(got.Timers, in.Now)
			wantTimers := c.WantTimers
			if wantTimers == nil {
				wantTimers = map[string]time.Duration{}
			}
			if !maps.Equal(gotTimers, wantTimers) {
				t.Errorf("Decide(%s, %s) timers = %v, want %v", inst.State, ev.Name, gotTimers, wantTimers)
			}
			for name, tm := range got.Timers {
				if old, kept := inst.Timers[name]; kept && old == tm {
					continue
				}
				if id := governor.TimerID(inst.Key, name, inst.Version+1); tm.ID != id {
					t.Errorf("Decide(%s, %s) timer %s id = %s, want %s", inst.State, ev.Name, name, tm.ID, id)
				}
			}
			var wantEmits []string
			for _, e := range c.Emits {
				wantEmits = append(wantEmits, e.String())
			}
			if !slices.Equal(emits, wantEmits) {
				t.Errorf("Decide(%s, %s) emits =\n  %s\nwant\n  %s", inst.State, ev.Name, strings.Join(emits, "\n  "), strings.Join(wantEmits, "\n  "))
			}
		})
	}
}

// Coverage fails unless every (from state, event) pair of m's table is
// accepted by at least one case.
func Coverage(t *testing.T, m *governor.Machine, cases []Row) {
	t.Helper()
	covered := map[string]bool{}
	for _, c := range cases {
		if c.Reject == "" {
			covered[string(c.State)+" "+string(c.Event)] = true
		}
	}
	for _, tr := range m.Transitions {
		for _, s := range tr.From {
			if !covered[string(s)+" "+string(tr.On)] {
				t.Errorf("%s: no accepted case for %s in %s", m.Domain, tr.On, s)
			}
		}
	}
}

// Step applies an accepted decision to inst, as the store would.
func Step(inst governor.Instance, d governor.Decision, now time.Time) governor.Instance {
	inst.State, inst.Data, inst.Timers = d.To, d.Data, d.Timers
	inst.Version++
	inst.UpdatedAt = now
	return inst
}

// Payload is one payload validation case.
type Payload struct {
	Event   governor.EventName
	Payload string
	OK      bool
}

// RunPayloads checks m.CheckEvent against each payload case.
func RunPayloads(t *testing.T, m *governor.Machine, cases []Payload) {
	t.Helper()
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s %s", c.Event, c.Payload), func(t *testing.T) {
			ev := governor.Event{
				ID: "p", Source: "//tests", Type: governor.TypeOf(m.Domain, c.Event), Domain: m.Domain,
				Name: c.Event, Tenant: "tenant-1", Subject: "s", Data: json.RawMessage(c.Payload),
			}
			err := m.CheckEvent(ev)
			if c.OK && err != nil {
				t.Errorf("CheckEvent(%s %s) = %v, want nil", c.Event, c.Payload, err)
			}
			if !c.OK && fault.ErrorCode(err) != fault.Invalid {
				t.Errorf("CheckEvent(%s %s) = %v, want an invalid error", c.Event, c.Payload, err)
			}
		})
	}
}
