package machines

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

// lifecycleNow is the decision time of every lifecycle case.
var lifecycleNow = time.Date(2026, 11, 14, 10, 0, 0, 0, time.UTC)

// lifecycleCase is one decision of a machine, shared by the account,
// entitlement, subscription and tenancy tests.
type lifecycleCase struct {
	name    string
	subject string // instance subject; "" means the domain's usual subject
	state   governor.State
	data    string   // instance data before, JSON
	timers  []string // timers armed before the event
	event   governor.EventName
	payload string // event data, JSON; timeouts get the armed timer's id
	staleID bool   // send a timeout with an id that is not armed
	source  string // event source; "" means "//test", a provider's
	facts   governor.Facts

	want      governor.Outcome // "" means Accepted
	reason    string           // prefix of the rejection reason
	to        governor.State
	armed     map[string]time.Duration // timers armed by the decision, with their delay
	cancelled []string                 // timers armed before and gone after
	emits     []string                 // "event <type> <subject>" or "actuate <kind> <subject>"
	emitData  map[int]string           // data of emit i, JSON
	wantData  string                   // instance data after, JSON; "" skips the check
}

// lifecycleInstance builds the instance a case starts from.
func lifecycleInstance(m *governor.Machine, c lifecycleCase, subject string) governor.Instance {
	key := governor.Key{Tenant: "tenant-1", Domain: m.Domain, Subject: subject}
	inst := governor.Instance{Key: key, State: c.state, Version: 4, UpdatedAt: lifecycleNow.Add(-time.Hour)}
	if c.state != governor.StateNone {
		inst.LastHash = strings.Repeat("ab", 32)
	}
	if c.data != "" {
		inst.Data = json.RawMessage(c.data)
	}
	for _, name := range c.timers {
		if inst.Timers == nil {
			inst.Timers = map[string]governor.Timer{}
		}
		inst.Timers[name] = governor.Timer{Name: name, ID: governor.TimerID(key, name, 2), Due: lifecycleNow}
	}
	return inst
}

// lifecycleEvent builds the event of a case, addressed to inst.
func lifecycleEvent(m *governor.Machine, c lifecycleCase, inst governor.Instance) governor.Event {
	data := c.payload
	if name, ok := strings.CutPrefix(string(c.event), governor.TimeoutPrefix); ok {
		id := inst.Timers[name].ID
		if c.staleID || id == "" {
			id = "stale"
		}
		data = fmt.Sprintf(`{"timer_id":%q}`, id)
	}
	source := c.source
	if source == "" {
		source = "//test"
	}
	ev := governor.Event{
		ID: "ev-" + c.name, Source: source, Type: governor.TypeOf(m.Domain, c.event),
		Domain: m.Domain, Name: c.event, Tenant: inst.Tenant, Subject: inst.Subject, Time: lifecycleNow,
	}
	if data != "" {
		ev.Data = json.RawMessage(data)
	}
	return ev
}

// lifecycleEmits renders emits as "kind type subject".
func lifecycleEmits(emits []governor.Emit) []string {
	var out []string
	for _, e := range emits {
		out = append(out, fmt.Sprintf("%s %s %s", e.Kind, e.Type, e.Subject))
	}
	return out
}

// lifecycleJSONEqual reports whether a and b hold the same JSON value.
func lifecycleJSONEqual(a, b []byte) bool {
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

// runLifecycleCases decides every case with m and checks the decision.
func runLifecycleCases(t *testing.T, m *governor.Machine, subject string, cases []lifecycleCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sub := subject
			if c.subject != "" {
				sub = c.subject
			}
			inst := lifecycleInstance(m, c, sub)
			ev := lifecycleEvent(m, c, inst)
			if err := m.CheckEvent(ev); err != nil {
				t.Fatalf("CheckEvent(%s %s) = %v, want nil", ev.Name, ev.Data, err)
			}
			in := governor.Input{Instance: inst, Event: ev, Facts: c.facts, Now: lifecycleNow}
			got, err := m.Decide(in)
			if err != nil {
				t.Fatalf("Decide(%s, %s) error = %v", c.state, c.event, err)
			}
			want := c.want
			if want == "" {
				want = governor.Accepted
			}
			if got.Outcome != want || got.To != c.to || got.From != c.state {
				t.Fatalf("Decide(%s, %s) = %s %s→%s (%s), want %s %s→%s",
					c.state, c.event, got.Outcome, got.From, got.To, got.Reason, want, c.state, c.to)
			}
			if want == governor.Rejected {
				if !strings.HasPrefix(got.Reason, c.reason) {
					t.Errorf("Decide(%s, %s).Reason = %q, want prefix %q", c.state, c.event, got.Reason, c.reason)
				}
				if !bytes.Equal(got.Data, inst.Data) || !maps.Equal(got.Timers, inst.Timers) || len(got.Emits) != 0 {
					t.Errorf("Decide(%s, %s) rejected with data %s, timers %v, emits %v; want data %s, timers %v, no emits",
						c.state, c.event, got.Data, got.Timers, got.Emits, inst.Data, inst.Timers)
				}
				return
			}
			if got.Reason != "" {
				t.Errorf("Decide(%s, %s).Reason = %q, want empty", c.state, c.event, got.Reason)
			}
			armed := map[string]time.Duration{}
			for name, tm := range got.Timers {
				if before, ok := inst.Timers[name]; !ok || before.ID != tm.ID {
					armed[name] = tm.Due.Sub(lifecycleNow)
				}
			}
			if !maps.Equal(armed, c.armed) {
				t.Errorf("Decide(%s, %s) armed %v, want %v", c.state, c.event, armed, c.armed)
			}
			var cancelled []string
			for name := range inst.Timers {
				if _, ok := got.Timers[name]; !ok {
					cancelled = append(cancelled, name)
				}
			}
			slices.Sort(cancelled)
			if !slices.Equal(cancelled, c.cancelled) {
				t.Errorf("Decide(%s, %s) cancelled %v, want %v", c.state, c.event, cancelled, c.cancelled)
			}
			if emits := lifecycleEmits(got.Emits); !slices.Equal(emits, c.emits) {
				t.Errorf("Decide(%s, %s) emits\n%q\nwant\n%q", c.state, c.event, emits, c.emits)
			}
			for i, data := range c.emitData {
				if i >= len(got.Emits) {
					continue
				}
				if !lifecycleJSONEqual(got.Emits[i].Data, []byte(data)) {
					t.Errorf("Decide(%s, %s) emit %d data = %s, want %s", c.state, c.event, i, got.Emits[i].Data, data)
				}
			}
			if c.wantData != "" && !lifecycleJSONEqual(got.Data, []byte(c.wantData)) {
				t.Errorf("Decide(%s, %s) data = %s, want %s", c.state, c.event, got.Data, c.wantData)
			}
		})
	}
}

func TestAccountMachineValidate(t *testing.T) {
	m := accountMachine()
	if err := m.Validate(); err != nil {
		t.Fatalf("accountMachine().Validate() = %v, want nil", err)
	}
	want := map[string]time.Duration{"verification": 7 * 24 * time.Hour, "suspension": 30 * 24 * time.Hour}
	if !maps.Equal(m.Timers, want) {
		t.Errorf("accountMachine().Timers = %v, want %v", m.Timers, want)
	}
}

func TestAccountDecide(t *testing.T) {
	const day = 24 * time.Hour
	closeEmits := []string{
		"event autonomics.subscription.cancel *",
		"event autonomics.entitlement.cancelled *",
		"event autonomics.multi_tenant.deprovision default",
	}
	cases := []lifecycleCase{
		{
			name: "requested", state: governor.StateNone, event: "requested",
			to: acctPendingVerification, armed: map[string]time.Duration{"verification": 7 * day},
		},
		{
			name: "verified", state: acctPendingVerification, timers: []string{"verification"}, event: "verified",
			to: acctActive, cancelled: []string{"verification"},
			emits: []string{
				"event autonomics.entitlement.account_activated *",
				"actuate marketplace.approve_account default",
			},
		},
		{
			name: "rejected", state: acctPendingVerification, timers: []string{"verification"}, event: "rejected",
			to: acctClosed, cancelled: []string{"verification"},
			emits:    []string{"actuate marketplace.reject_account default"},
			emitData: map[int]string{0: `{"reason":"rejected by the provider"}`},
		},
		{
			name: "rejected with a reason", state: acctPendingVerification, timers: []string{"verification"},
			event: "rejected", payload: `{"reason":"billing account not in good standing"}`,
			source: "marketplace/acme-provider",
			to:     acctClosed, cancelled: []string{"verification"},
			emits:    []string{"actuate marketplace.reject_account default"},
			emitData: map[int]string{0: `{"reason":"billing account not in good standing"}`},
		},
		{
			name: "verification timeout", state: acctPendingVerification, timers: []string{"verification"},
			event: governor.Timeout("verification"),
			to:    acctClosed, cancelled: []string{"verification"},
			emits:    []string{"actuate marketplace.reject_account default"},
			emitData: map[int]string{0: `{"reason":"verification timed out after 7d"}`},
		},
		{
			name: "restricted", state: acctActive, event: "restricted", to: acctRestricted,
		},
		{
			name: "suspended from active", state: acctActive, event: "suspended",
			to: acctSuspended, armed: map[string]time.Duration{"suspension": 30 * day},
			emits: []string{
				"event autonomics.entitlement.suspend *",
				"event autonomics.multi_tenant.suspend default",
			},
		},
		{
			name: "suspended from restricted", state: acctRestricted, event: "suspended",
			to: acctSuspended, armed: map[string]time.Duration{"suspension": 30 * day},
			emits: []string{
				"event autonomics.entitlement.suspend *",
				"event autonomics.multi_tenant.suspend default",
			},
		},
		{
			name: "reinstated from restricted", state: acctRestricted, event: "reinstated", to: acctActive,
			emits: []string{
				"event autonomics.entitlement.reinstate *",
				"event autonomics.multi_tenant.resume default",
			},
		},
		{
			name: "reinstated from suspended", state: acctSuspended, timers: []string{"suspension"}, event: "reinstated",
			to: acctActive, cancelled: []string{"suspension"},
			emits: []string{
				"event autonomics.entitlement.reinstate *",
				"event autonomics.multi_tenant.resume default",
			},
		},
		{
			name: "suspension timeout", state: acctSuspended, timers: []string{"suspension"},
			event: governor.Timeout("suspension"),
			to:    acctClosed, cancelled: []string{"suspension"}, emits: closeEmits,
		},
		{
			name: "closed from pending_verification", state: acctPendingVerification, timers: []string{"verification"},
			event: "closed", to: acctClosed, cancelled: []string{"verification"}, emits: closeEmits,
		},
		{name: "closed from active", state: acctActive, event: "closed", to: acctClosed, emits: closeEmits},
		{name: "closed from restricted", state: acctRestricted, event: "closed", to: acctClosed, emits: closeEmits},
		{
			name: "closed from suspended", state: acctSuspended, timers: []string{"suspension"},
			event: "closed", to: acctClosed, cancelled: []string{"suspension"}, emits: closeEmits,
		},

		// Rejections.
		{
			name: "verified without instance", state: governor.StateNone, event: "verified",
			want: governor.Rejected, reason: governor.ReasonNoTransition, to: governor.StateNone,
		},
		{
			name: "requested twice", state: acctPendingVerification, timers: []string{"verification"}, event: "requested",
			want: governor.Rejected, reason: governor.ReasonNoTransition, to: acctPendingVerification,
		},
		{
			name: "restricted when suspended", state: acctSuspended, timers: []string{"suspension"}, event: "restricted",
			want: governor.Rejected, reason: governor.ReasonNoTransition, to: acctSuspended,
		},
		{
			name: "reinstated when active", state: acctActive, event: "reinstated",
			want: governor.Rejected, reason: governor.ReasonNoTransition, to: acctActive,
		},
		{
			name: "closed when closed", state: acctClosed, event: "closed",
			want: governor.Rejected, reason: governor.ReasonNoTransition, to: acctClosed,
		},
		{
			name: "stale suspension timer", state: acctSuspended, timers: []string{"suspension"},
			event: governor.Timeout("suspension"), staleID: true,
			want: governor.Rejected, reason: governor.ReasonTimerCancelled, to: acctSuspended,
		},
		{
			name: "suspension timeout after reinstatement", state: acctActive,
			event: governor.Timeout("suspension"),
			want:  governor.Rejected, reason: governor.ReasonTimerCancelled, to: acctActive,
		},
	}
	runLifecycleCases(t, accountMachine(), governor.DefaultSubject, cases)
}

// TestAccountRejectionReasonIsBounded refuses a customer_account.rejected
// whose reason is oversized, carries control characters or hides a second
// member under another spelling; the reason reaches the Marketplace.
func TestAccountRejectionReasonIsBounded(t *testing.T) {
	m := accountMachine()
	cases := []struct {
		data string
		ok   bool
	}{
		{``, true},
		{`{}`, true},
		{`{"reason":"duplicate sign-up"}`, true},
		{`{"reason":"` + strings.Repeat("r", 512) + `"}`, true},
		{`{"reason":"` + strings.Repeat("r", 513) + `"}`, false},
		{`{"reason":"line\nbreak"}`, false},
		{`{"reason":"a","Reason":"b"}`, false},
		{`{"reason":7}`, false},
		{`{"why":"x"}`, false},
	}
	for _, c := range cases {
		ev := governor.Event{Type: governor.TypeOf(governor.CustomerAccount, "rejected"), Domain: governor.CustomerAccount,
			Name: "rejected", Data: json.RawMessage(c.data)}
		err := m.CheckEvent(ev)
		if (err == nil) != c.ok {
			t.Errorf("CheckEvent(rejected %.40s) = %v, want ok %v", c.data, err, c.ok)
		}
		if err != nil && fault.ErrorCode(err) != fault.Invalid {
			t.Errorf("ErrorCode(CheckEvent(rejected %.40s)) = %s, want invalid", c.data, fault.ErrorCode(err))
		}
	}
	for _, name := range []governor.EventName{"requested", "verified", "closed"} {
		ev := governor.Event{Type: governor.TypeOf(governor.CustomerAccount, name), Domain: governor.CustomerAccount,
			Name: name, Data: json.RawMessage(`{"reason":"x"}`)}
		if err := m.CheckEvent(ev); err == nil {
			t.Errorf("CheckEvent(%s {reason}) = nil, want an error: it carries no data", name)
		}
	}
}

// TestAccountCascadeTargets checks that every static cascade of the four
// lifecycle machines names an event the target machine handles.
func TestAccountCascadeTargets(t *testing.T) {
	machines := map[governor.Domain]*governor.Machine{}
	for _, m := range []*governor.Machine{accountMachine(), entitlementMachine(), subscriptionMachine(), tenancyMachine()} {
		machines[m.Domain] = m
	}
	for _, m := range machines {
		for _, tr := range m.Transitions {
			for _, cs := range tr.Cascade {
				target, ok := machines[cs.Domain]
				if !ok {
					continue
				}
				if !target.HasEvent(cs.Event) {
					t.Errorf("%s %s cascades %s.%s, which %s does not handle", m.Domain, tr.On, cs.Domain, cs.Event, cs.Domain)
				}
				wantSubject := ""
				switch cs.Domain {
				case governor.CustomerAccount, governor.MultiTenant:
					wantSubject = governor.DefaultSubject
				}
				if wantSubject != "" && cs.Subject != wantSubject {
					t.Errorf("%s %s cascades %s.%s to subject %q, want %q", m.Domain, tr.On, cs.Domain, cs.Event, cs.Subject, wantSubject)
				}
			}
		}
	}
}
