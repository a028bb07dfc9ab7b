package governor

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/fault"
)

// testPayload is the payload of the test machine's "start" event.
type testPayload struct {
	N int `json:"n"`
}

func (p testPayload) Validate() error {
	if p.N < 0 {
		return errors.New("n must not be negative")
	}
	return nil
}

// testMachine is a small machine exercising every engine feature.
func testMachine() *Machine {
	return &Machine{
		Domain:   Billing,
		States:   []State{"a", "b", "c", "end"},
		Terminal: []State{"end"},
		Timers:   map[string]time.Duration{"t": time.Hour},
		Reasons:  []Reason{{"unlucky", "the number is 13"}, {"no", "the counter says no"}},
		Transitions: []Transition{
			{From: []State{StateNone}, On: "start", To: "a", Arm: []string{"t"},
				Apply: func(c *Ctx) error {
					var p testPayload
					if err := c.Payload(&p); err != nil {
						return err
					}
					if p.N == 13 {
						return Reject("unlucky", "%d", p.N)
					}
					return c.Store(map[string]int{"n": p.N})
				}},
			{From: []State{"a"}, On: "next", To: "b", Alt: []State{"c"},
				Cascade: []Cascade{{Domain: Subscription, Event: "cancel", Subject: "*"}},
				Actuate: []string{"x.do"},
				Apply: func(c *Ctx) error {
					var d struct{ N int }
					if err := c.Load(&d); err != nil {
						return err
					}
					if d.N > 5 {
						c.Goto("c")
					}
					return nil
				}},
			{From: []State{"a"}, On: "stay", To: "a"},
			{From: []State{"a"}, On: "bad", To: "a", Apply: func(c *Ctx) error { c.Goto("end"); return nil }},
			{From: []State{"a", "b"}, On: Timeout("t"), To: "end"},
			{Any: true, On: "stop", To: "end"},
		},
		Payloads: map[EventName]PayloadCheck{"start": Schema[testPayload]()},
		Senders: map[EventName][]Sender{
			"start": FromOutside, "next": FromProvider, "stay": FromProvider, "bad": FromProvider, "stop": FromGovernors,
		},
	}
}

func testEvent(name EventName, data string) Event {
	return Event{ID: "e1", Source: "test", Type: TypeOf(Billing, name), Domain: Billing, Name: name,
		Tenant: "t1", Subject: "s1", Data: json.RawMessage(data)}
}

func TestDecide(t *testing.T) {
	m := testMachine()
	if err := m.Validate(); err != nil {
		t.Fatalf("Validate() = %v", err)
	}
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	key := Key{Tenant: "t1", Domain: Billing, Subject: "s1"}
	armed := map[string]Timer{"t": {Name: "t", ID: "tid", Due: now.Add(time.Hour)}}
	due := map[string]Timer{"t": {Name: "t", ID: "tid", Due: now}}
	tests := []struct {
		name       string
		inst       Instance
		ev         Event
		outcome    Outcome
		to         State
		reasonPart string
		timers     []string
		emits      int
	}{
		{"create", Instance{Key: key}, testEvent("start", `{"n":3}`), Accepted, "a", "", []string{"t"}, 0},
		{"guard rejects", Instance{Key: key}, testEvent("start", `{"n":13}`), Rejected, StateNone, "unlucky", nil, 0},
		{"no transition", Instance{Key: key, State: "b"}, testEvent("start", `{}`), Rejected, "b", string(ReasonNoTransition), nil, 0},
		{"none rejects", Instance{Key: key}, testEvent("next", ``), Rejected, StateNone, string(ReasonNoTransition), nil, 0},
		{"static effects", Instance{Key: key, State: "a", Data: json.RawMessage(`{"N":1}`), Timers: armed}, testEvent("next", ``), Accepted, "b", "", nil, 2},
		{"dynamic target", Instance{Key: key, State: "a", Data: json.RawMessage(`{"N":9}`)}, testEvent("next", ``), Accepted, "c", "", nil, 2},
		{"self keeps timers", Instance{Key: key, State: "a", Timers: armed}, testEvent("stay", ``), Accepted, "a", "", []string{"t"}, 0},
		{"timer fires", Instance{Key: key, State: "a", Timers: due}, testEvent(Timeout("t"), `{"timer_id":"tid"}`), Accepted, "end", "", nil, 0},
		{"stale timer", Instance{Key: key, State: "a", Timers: armed}, testEvent(Timeout("t"), `{"timer_id":"old"}`), Rejected, "a", string(ReasonTimerCancelled), []string{"t"}, 0},
		{"any", Instance{Key: key, State: "c"}, testEvent("stop", ``), Accepted, "end", "", nil, 0},
		{"any excludes terminal", Instance{Key: key, State: "end"}, testEvent("stop", ``), Rejected, "end", string(ReasonNoTransition), nil, 0},
		{"any excludes none", Instance{Key: key}, testEvent("stop", ``), Rejected, StateNone, string(ReasonNoTransition), nil, 0},
		{"cascade depth", Instance{Key: key, State: "a"}, func() Event { e := testEvent("stay", ``); e.CascadeDepth = MaxCascadeDepth; return e }(), Rejected, "a", string(ReasonCascadeDepth), nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := m.Decide(Input{Instance: tt.inst, Event: tt.ev, Now: now})
			if err != nil {
				t.Fatalf("Decide(%v, %v) error %v", tt.inst.State, tt.ev.Name, err)
			}
			if d.Outcome != tt.outcome || d.To != tt.to || !strings.Contains(d.Reason, tt.reasonPart) {
				t.Errorf("Decide(%v, %v) = %v %v %q, want %v %v %q", tt.inst.State, tt.ev.Name, d.Outcome, d.To, d.Reason, tt.outcome, tt.to, tt.reasonPart)
			}
			if len(d.Timers) != len(tt.timers) {
				t.Errorf("Decide(%v, %v) timers = %v, want %v", tt.inst.State, tt.ev.Name, d.Timers, tt.timers)
			}
			for _, n := range tt.timers {
				if _, ok := d.Timers[n]; !ok {
					t.Errorf("Decide(%v, %v) timers = %v, want %s armed", tt.inst.State, tt.ev.Name, d.Timers, n)
				}
			}
			if len(d.Emits) != tt.emits {
				t.Errorf("Decide(%v, %v) emits = %v, want %d", tt.inst.State, tt.ev.Name, d.Emits, tt.emits)
			}
			if d.Outcome == Rejected && string(d.Data) != string(tt.inst.Data) {
				t.Errorf("rejected decision changed data: %s -> %s", tt.inst.Data, d.Data)
			}
		})
	}
}

func TestTimeoutBeforeDueIsRefusedAsTransient(t *testing.T) {
	m := testMachine()
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	inst := Instance{Key: Key{Tenant: "t1", Domain: Billing, Subject: "s1"}, State: "a",
		Timers: map[string]Timer{"t": {Name: "t", ID: "tid", Due: now.Add(time.Second)}}}
	d, err := m.Decide(Input{Instance: inst, Event: testEvent(Timeout("t"), `{"timer_id":"tid"}`), Now: now})
	if err == nil || fault.ErrorCode(err) != fault.Unavailable {
		t.Fatalf("Decide(timeout one second early) = %+v, %v; want an unavailable error", d, err)
	}
}

func TestTimerIDsAreUnpredictableWithANonce(t *testing.T) {
	m := testMachine()
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	key := Key{Tenant: "t1", Domain: Billing, Subject: "s1"}
	in := Input{Instance: Instance{Key: key}, Event: testEvent("start", `{}`), Now: now}
	plain, _ := m.Decide(in)
	in.Nonce = []byte("nonce-one")
	one, _ := m.Decide(in)
	in.Nonce = []byte("nonce-two")
	two, _ := m.Decide(in)
	if plain.Timers["t"].ID != TimerID(key, "t", 1) {
		t.Errorf("timer id without nonce = %s, want TimerID's %s", plain.Timers["t"].ID, TimerID(key, "t", 1))
	}
	if one.Timers["t"].ID == plain.Timers["t"].ID || one.Timers["t"].ID == two.Timers["t"].ID {
		t.Errorf("timer ids with nonces %s, %s and without %s: want all different", one.Timers["t"].ID, two.Timers["t"].ID, plain.Timers["t"].ID)
	}
}

func TestUndeclaredEmissionIsInternal(t *testing.T) {
	m := testMachine()
	suspend := Define(Entitlement, "suspend", None{})
	m.Transitions[2].Apply = func(c *Ctx) error { return suspend.Emit(c, "", None{}) }
	inst := Instance{Key: Key{Tenant: "t1", Domain: Billing, Subject: "s1"}, State: "a"}
	_, err := m.Decide(Input{Instance: inst, Event: testEvent("stay", ``)})
	if fault.ErrorCode(err) != fault.Internal || !strings.Contains(err.Error(), "undeclared event autonomics.entitlement.suspend") {
		t.Fatalf("Decide with an undeclared cascade = %v, want an internal error naming it", err)
	}
	m.Transitions[2].Emits = []Ref{suspend.May("")}
	if _, err := m.Decide(Input{Instance: inst, Event: testEvent("stay", ``)}); err != nil {
		t.Fatalf("Decide with the cascade declared = %v, want nil", err)
	}
	if got := m.CascadeTargets(); len(got) != 2 || got[0] != Entitlement || got[1] != Subscription {
		t.Errorf("CascadeTargets() = %v, want [entitlement subscription]", got)
	}
	if got := m.Actions(); len(got) != 1 || got[0] != "x.do" {
		t.Errorf("Actions() = %v, want [x.do]", got)
	}
}

func TestSenderRules(t *testing.T) {
	m := testMachine()
	tests := []struct {
		sender Sender
		name   EventName
		want   bool
	}{
		{SenderExternal, "start", true},
		{SenderMarketplace, "start", true},
		{SenderGovernor, "start", false},
		{SenderExternal, "stop", false},
		{SenderGovernor, "stop", true},
		{SenderScheduler, Timeout("t"), true},
		{SenderExternal, Timeout("t"), false},
		{SenderGovernor, Timeout("t"), false},
		{SenderMonitor, "next", false},
		{SenderExternal, "unknown", false},
	}
	for _, tt := range tests {
		if got := m.May(tt.sender, tt.name); got != tt.want {
			t.Errorf("May(%s, %s) = %v, want %v", tt.sender, tt.name, got, tt.want)
		}
	}
	bad := []struct {
		name   string
		change func(*Machine)
	}{
		{"event without rule", func(m *Machine) { delete(m.Senders, "stay") }},
		{"rule for unknown event", func(m *Machine) { m.Senders["nope"] = FromProvider }},
		{"rule for a timeout", func(m *Machine) { m.Senders[Timeout("t")] = FromGovernors }},
		{"scheduler in a rule", func(m *Machine) { m.Senders["stay"] = []Sender{SenderScheduler} }},
		{"unknown sender", func(m *Machine) { m.Senders["stay"] = []Sender{"someone"} }},
	}
	for _, tt := range bad {
		m := testMachine()
		tt.change(m)
		if err := m.Validate(); err == nil {
			t.Errorf("Validate() with %s = nil, want an error", tt.name)
		}
	}
}

// TestActuatorRuleAdmitsActuatorsOnly checks that a rule naming the
// actuator class validates and admits actuators and nobody else, and that
// ActuationFailed stays the actuators' alone whatever the rules say.
func TestActuatorRuleAdmitsActuatorsOnly(t *testing.T) {
	m := testMachine()
	m.Senders["stay"] = FromActuators
	if err := m.Validate(); err != nil {
		t.Fatalf("Validate() with an actuator rule = %v, want nil", err)
	}
	for _, s := range Senders {
		if got, want := m.May(s, "stay"), s == SenderActuator; got != want {
			t.Errorf("May(%s, stay) = %v, want %v", s, got, want)
		}
		if got, want := m.May(s, ActuationFailed), s == SenderActuator; got != want {
			t.Errorf("May(%s, %s) = %v, want %v", s, ActuationFailed, got, want)
		}
	}
	if got := m.SendersOf("stay"); len(got) != 1 || got[0] != SenderActuator {
		t.Errorf("SendersOf(stay) = %v, want [actuator]", got)
	}
}

func TestEventsWithoutSchemaCarryNoData(t *testing.T) {
	m := testMachine()
	for data, ok := range map[string]bool{``: true, `{}`: true, ` { } `: true, `{"x":1}`: false, `[]`: false} {
		err := m.CheckEvent(testEvent("stay", data))
		if (err == nil) != ok {
			t.Errorf("CheckEvent(stay %q) = %v, want ok %v", data, err, ok)
		}
	}
	for _, data := range []string{`{"timer_id":"x","extra":1}`, `{"Timer_ID":"x"}`, `{"timer_id":"x","TIMER_ID":"y"}`} {
		if err := m.CheckEvent(testEvent(Timeout("t"), data)); err == nil {
			t.Errorf("CheckEvent(timeout %s) = nil, want an error", data)
		}
	}
}

func TestDecideTimerIDs(t *testing.T) {
	m := testMachine()
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	key := Key{Tenant: "t1", Domain: Billing, Subject: "s1"}
	d1, _ := m.Decide(Input{Instance: Instance{Key: key}, Event: testEvent("start", `{}`), Now: now})
	d2, _ := m.Decide(Input{Instance: Instance{Key: key}, Event: testEvent("start", `{}`), Now: now})
	if d1.Timers["t"] != d2.Timers["t"] {
		t.Errorf("timer not deterministic: %v vs %v", d1.Timers["t"], d2.Timers["t"])
	}
	if got, want := d1.Timers["t"].Due, now.Add(time.Hour); !got.Equal(want) {
		t.Errorf("due = %v, want %v", got, want)
	}
	if TimerID(key, "t", 1) == TimerID(key, "t", 2) {
		t.Error("TimerID ignores seq")
	}
	fast := m.WithTimers(map[string]time.Duration{"t": time.Second, "unknown": time.Minute})
	d3, _ := fast.Decide(Input{Instance: Instance{Key: key}, Event: testEvent("start", `{}`), Now: now})
	if got, want := d3.Timers["t"].Due, now.Add(time.Second); !got.Equal(want) {
		t.Errorf("WithTimers due = %v, want %v", got, want)
	}
	if m.Timers["t"] != time.Hour {
		t.Error("WithTimers changed the original machine")
	}
}

func TestDecideErrors(t *testing.T) {
	m := testMachine()
	key := Key{Tenant: "t1", Domain: Billing, Subject: "s1"}
	wrong := testEvent("start", `{}`)
	wrong.Domain = Entitlement
	if _, err := m.Decide(Input{Instance: Instance{Key: key}, Event: wrong}); fault.ErrorCode(err) != fault.Invalid {
		t.Errorf("Decide(wrong domain) error = %v, want invalid", err)
	}
	if _, err := m.Decide(Input{Instance: Instance{Key: key, State: "zzz"}, Event: testEvent("stay", ``)}); fault.ErrorCode(err) != fault.Internal {
		t.Errorf("Decide(unknown state) error = %v, want internal", err)
	}
	if _, err := m.Decide(Input{Instance: Instance{Key: key, State: "a"}, Event: testEvent("bad", ``)}); fault.ErrorCode(err) != fault.Internal {
		t.Errorf("Decide(target outside table) error = %v, want internal", err)
	}
}

func TestCheckEvent(t *testing.T) {
	m := testMachine()
	tests := []struct {
		name string
		ev   Event
		ok   bool
	}{
		{"valid", testEvent("start", `{"n":1}`), true},
		{"empty data", testEvent("stay", ``), true},
		{"unknown event", testEvent("nope", `{}`), false},
		{"array data", testEvent("stay", `[1]`), false},
		{"broken json", testEvent("stay", `{"a":`), false},
		{"payload unknown field", testEvent("start", `{"m":1}`), false},
		{"payload wrong type", testEvent("start", `{"n":"x"}`), false},
		{"payload invalid", testEvent("start", `{"n":-1}`), false},
		{"timer without id", testEvent(Timeout("t"), `{}`), false},
		{"timer with id", testEvent(Timeout("t"), `{"timer_id":"x"}`), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := m.CheckEvent(tt.ev)
			if (err == nil) != tt.ok {
				t.Fatalf("CheckEvent(%s %s) = %v, want ok=%v", tt.ev.Name, tt.ev.Data, err, tt.ok)
			}
			if err != nil && fault.ErrorCode(err) != fault.Invalid {
				t.Errorf("CheckEvent(%s) code = %v, want invalid", tt.ev.Name, fault.ErrorCode(err))
			}
		})
	}
}

func TestValidateRejectsBadTables(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Machine)
	}{
		{"undeclared state", func(m *Machine) { m.Transitions[0].To = "zzz" }},
		{"ambiguous rows", func(m *Machine) {
			m.Transitions = append(m.Transitions, Transition{From: []State{"a"}, On: "stay", To: "b"})
		}},
		{"timer without duration", func(m *Machine) { m.Transitions[0].Arm = []string{"nope"} }},
		{"undeclared terminal", func(m *Machine) { m.Terminal = []State{"zzz"} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := testMachine()
			tt.edit(m)
			if err := m.Validate(); err == nil {
				t.Errorf("Validate() = nil, want an error")
			}
		})
	}
}

func TestMermaid(t *testing.T) {
	got := Mermaid(testMachine())
	for _, want := range []string{"stateDiagram-v2", "[*] --> a: start", "a --> b: next", "a --> c: next", "end --> [*]", "b --> end: timeout.t, stop"} {
		if !strings.Contains(got, want) {
			t.Errorf("Mermaid() lacks %q:\n%s", want, got)
		}
	}
}

func TestUpdate(t *testing.T) {
	type counter struct{ N int }
	tests := []struct {
		name    string
		fn      func(*counter) error
		outcome Outcome
		data    string
	}{
		{"stores the change", func(c *counter) error { c.N++; return nil }, Accepted, `{"N":2}`},
		{"rejection stores nothing", func(c *counter) error { c.N++; return Reject("no", "%d", c.N) }, Rejected, `{"N":1}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &Machine{Domain: Billing, States: []State{"a"}, Reasons: []Reason{{"no", "says no"}}, Transitions: []Transition{
				{From: []State{"a"}, On: "bump", To: "a", Apply: func(c *Ctx) error { return Update(c, tt.fn) }},
			}}
			inst := Instance{Key: Key{Tenant: "t", Domain: Billing, Subject: "s"}, State: "a", Data: json.RawMessage(`{"N":1}`)}
			d, err := m.Decide(Input{Instance: inst, Event: testEvent("bump", "")})
			if err != nil || d.Outcome != tt.outcome || string(d.Data) != tt.data {
				t.Errorf("Decide = %v %s, %v; want %v %s", d.Outcome, d.Data, err, tt.outcome, tt.data)
			}
		})
	}
}

// An outsider smuggles a second value of a payload field under another
// spelling: encoding/json matches member names regardless of case, so
// {"n":-1,"N":1} would be decided as n=1 while every case-sensitive reader
// of the event (and of its receipt's data) sees n=-1. Only the exact
// spellings of the payload type are accepted.
func TestCaseVariantPayloadFieldIsRefused(t *testing.T) {
	m := testMachine()
	for _, data := range []string{`{"n":-1,"N":1}`, `{"N":1}`, `{"n":1,"N":1}`} {
		if err := m.CheckEvent(testEvent("start", data)); err == nil {
			t.Errorf("CheckEvent(start %s) = nil, want an error", data)
		}
	}
	if err := m.CheckEvent(testEvent("start", `{"n":1}`)); err != nil {
		t.Errorf("CheckEvent(start {\"n\":1}) = %v, want nil", err)
	}
}
