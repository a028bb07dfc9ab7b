package governor

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/fault"
)

// receiver is a small machine that other test machines cascade to: it
// accepts "poke" with an amount from governors, and "hello" from outside
// only.
func receiver() *Machine {
	return &Machine{
		Domain: Subscription,
		States: []State{"on"},
		Transitions: []Transition{
			{From: []State{StateNone, "on"}, On: "poke", To: "on"},
			{From: []State{StateNone, "on"}, On: "hello", To: "on"},
		},
		Payloads: map[EventName]PayloadCheck{"poke": poke.Schema()},
		Senders:  map[EventName][]Sender{"poke": FromGovernors, "hello": FromProvider},
	}
}

// amount is the payload of poke.
type amount struct {
	N int `json:"n"`
}

func (a amount) Validate() error {
	if a.N <= 0 {
		return fault.Errorf(fault.Invalid, "amount", "n must be positive")
	}
	return nil
}

var poke = Define(Subscription, "poke", amount{N: 1})

// sender returns a machine with one row that cascades as given.
func sender(cascade []Cascade, emits []Ref) *Machine {
	return &Machine{
		Domain: Billing,
		States: []State{"a"},
		Transitions: []Transition{
			{From: []State{StateNone}, On: "go", To: "a", Cascade: cascade, Emits: emits},
		},
		Senders: map[EventName][]Sender{"go": FromProvider},
	}
}

func TestCheckGraph(t *testing.T) {
	tests := []struct {
		name    string
		cascade []Cascade
		emits   []Ref
		want    string // "" means valid
	}{
		{"dynamic cascade with a valid example", nil, []Ref{poke.May("")}, ""},
		{"static cascade of an event whose payload needs data", []Cascade{poke.To("")}, nil, "refuses the data"},
		{"cascade to a domain nobody serves", nil, []Ref{Define(Entitlement, "poke", amount{N: 1}).May("")}, "no machine serves entitlement"},
		{"cascade of an event the receiver lacks", []Cascade{{Domain: Subscription, Event: "nudge"}}, nil, "has no such event"},
		{"cascade of an event only outsiders may send", []Cascade{{Domain: Subscription, Event: "hello"}}, nil, "does not accept it from a governor"},
		{"example the receiver's schema refuses", nil, []Ref{Define(Subscription, "poke", amount{N: 0}).May("")}, "refuses the data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms := map[Domain]*Machine{Billing: sender(tt.cascade, tt.emits), Subscription: receiver()}
			err := CheckGraph(ms)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("CheckGraph = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || fault.ErrorCode(err) != fault.Internal {
				t.Fatalf("CheckGraph = %v, want an internal error containing %q", err, tt.want)
			}
		})
	}
}

func TestCheckGraphRefusesAMachineUnderAnotherDomain(t *testing.T) {
	if err := CheckGraph(map[Domain]*Machine{Entitlement: receiver()}); err == nil {
		t.Fatal("CheckGraph of a subscription machine registered as entitlement = nil, want an error")
	}
}

func TestTypedEmitsCarryTheirPayload(t *testing.T) {
	m := sender(nil, []Ref{poke.May("")})
	m.Transitions[0].Apply = func(c *Ctx) error { return poke.Emit(c, "", amount{N: 7}) }
	inst := Instance{Key: Key{Tenant: "t1", Domain: Billing, Subject: "s1"}}
	d, err := m.Decide(Input{Instance: inst, Event: testEvent("go", "")})
	if err != nil || len(d.Emits) != 1 {
		t.Fatalf("Decide = %+v, %v; want one emit", d, err)
	}
	e := d.Emits[0]
	if e.Type != "autonomics.subscription.poke" || e.Subject != "s1" || string(e.Data) != `{"n":7}` {
		t.Errorf("emit = %s %s %s, want autonomics.subscription.poke s1 {\"n\":7}", e.Type, e.Subject, e.Data)
	}
}

func TestUndeclaredReasonIsInternal(t *testing.T) {
	m := sender(nil, nil)
	m.Reasons = []Reason{{"too_big", "the amount is too big"}}
	inst := Instance{Key: Key{Tenant: "t1", Domain: Billing, Subject: "s1"}}
	m.Transitions[0].Guard = func(*Ctx) error { return Reject("too_small", "by %d", 2) }
	if _, err := m.Decide(Input{Instance: inst, Event: testEvent("go", "")}); fault.ErrorCode(err) != fault.Internal || !strings.Contains(err.Error(), "too_small") {
		t.Fatalf("Decide with an undeclared reason = %v, want an internal error naming it", err)
	}
	m.Transitions[0].Guard = func(*Ctx) error { return Reject("too_big", "by %d", 2) }
	d, err := m.Decide(Input{Instance: inst, Event: testEvent("go", "")})
	if err != nil || d.Outcome != Rejected || d.Code != "too_big" || d.Reason != "too_big: by 2" {
		t.Fatalf("Decide = %s %q %q, %v; want rejected too_big \"too_big: by 2\"", d.Outcome, d.Code, d.Reason, err)
	}
	if CodeOf(d.Reason) != "too_big" || CodeOf("no_transition") != "no_transition" {
		t.Errorf("CodeOf(%q) = %q", d.Reason, CodeOf(d.Reason))
	}
	m.Transitions[0].Guard = func(*Ctx) error { return Reject("too_big", "") }
	if d, _ := m.Decide(Input{Instance: inst, Event: testEvent("go", "")}); d.Reason != "too_big" {
		t.Errorf("reason without detail = %q, want too_big", d.Reason)
	}
}

func TestReasonsMustBeSnakeCaseDocumentedAndUnique(t *testing.T) {
	for _, rs := range [][]Reason{
		{{"Too-Big", "x"}},
		{{"too_big", ""}},
		{{"too_big", "x"}, {"too_big", "y"}},
		{{ReasonNoTransition, "shadowing the engine's"}},
	} {
		m := sender(nil, nil)
		m.Reasons = rs
		if err := m.Validate(); fault.ErrorCode(err) != fault.Internal {
			t.Errorf("Validate with reasons %v = %v, want an internal error", rs, err)
		}
	}
}

func TestUndeclaredTimerIsInternal(t *testing.T) {
	m := sender(nil, nil)
	m.Timers = map[string]time.Duration{"known": time.Hour}
	m.Transitions[0].Apply = func(c *Ctx) error { c.Arm("unknown", time.Minute); return nil }
	inst := Instance{Key: Key{Tenant: "t1", Domain: Billing, Subject: "s1"}}
	if _, err := m.Decide(Input{Instance: inst, Event: testEvent("go", "")}); fault.ErrorCode(err) != fault.Internal || !strings.Contains(err.Error(), "unknown") {
		t.Fatalf("Decide arming an undeclared timer = %v, want an internal error naming it", err)
	}
}

func TestReadsAreWhatTheRowNeeds(t *testing.T) {
	other := Key{Tenant: "provider", Domain: ProductCatalog, Subject: "gold"}
	m := sender(nil, nil)
	m.Transitions[0].Needs = func(s Scope) []Key {
		return []Key{{Tenant: s.Provider, Domain: ProductCatalog, Subject: "gold"}}
	}
	var seen State
	m.Transitions[0].Guard = func(c *Ctx) error {
		inst, err := c.Read(other)
		seen = inst.State
		return err
	}
	inst := Instance{Key: Key{Tenant: "t1", Domain: Billing, Subject: "s1"}}
	ev := testEvent("go", "")
	if got := m.Reads(inst, ev, "provider"); len(got) != 1 || got[0] != other {
		t.Fatalf("Reads = %v, want [%v]", got, other)
	}
	if got := m.Reads(inst, ev, ""); len(got) != 1 || got[0].Tenant != "t1" {
		t.Errorf("Reads without a provider = %v, want the event's tenant", got)
	}
	if got := m.Reads(Instance{Key: inst.Key, State: "a"}, ev, "provider"); got != nil {
		t.Errorf("Reads in a state without a row = %v, want none", got)
	}
	// Read but absent: state none.
	d, err := m.Decide(Input{Instance: inst, Event: ev, Reads: map[Key]Instance{other: {}}})
	if err != nil || d.Outcome != Accepted || seen != StateNone {
		t.Fatalf("Decide with the read absent = %v %v, saw %q; want accepted, none", d.Outcome, err, seen)
	}
	if _, err := m.Decide(Input{Instance: inst, Event: ev}); fault.ErrorCode(err) != fault.Internal {
		t.Fatalf("Decide reading an instance the engine did not read = %v, want internal", err)
	}
	_, err = m.Decide(Input{Instance: inst, Event: ev, Reads: map[Key]Instance{other: {State: "published", Data: json.RawMessage(`{}`)}}})
	if err != nil || seen != "published" {
		t.Fatalf("Decide = %v, saw %q; want published", err, seen)
	}
}

func TestReasonsAndEmissionsAreInTheDocs(t *testing.T) {
	m := sender(nil, []Ref{poke.May("the period")})
	m.Reasons = []Reason{{"too_big", "the amount is over | the cap"}}
	md := Markdown(m)
	for _, want := range []string{
		"## Rejection reasons", "| `too_big` | the amount is over \\| the cap |", "| `no_transition` |",
		"may → subscription.`poke` (the period) {\"n\":1}",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown lacks %q:\n%s", want, md)
		}
	}
}
