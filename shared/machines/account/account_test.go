package account

import (
	"encoding/json"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/machines/machinetest"
)

func TestAccountMachineValidate(t *testing.T) {
	m := Machine()
	if err := m.Validate(); err != nil {
		t.Fatalf("Machine().Validate() = %v, want nil", err)
	}
	want := map[string]time.Duration{"verification": 7 * 24 * time.Hour, "suspension": 30 * 24 * time.Hour}
	if !maps.Equal(m.Timers, want) {
		t.Errorf("Machine().Timers = %v, want %v", m.Timers, want)
	}
}

func TestAccountDecide(t *testing.T) {
	const day = 24 * time.Hour
	closeEmits := []string{
		"event autonomics.subscription.cancel *",
		"event autonomics.entitlement.cancelled *",
		"event autonomics.multi_tenant.deprovision default",
	}
	cases := []machinetest.Lifecycle{
		{
			Name: "requested", State: governor.StateNone, Event: "requested",
			To: PendingVerification, Armed: map[string]time.Duration{"verification": 7 * day},
		},
		{
			Name: "verified", State: PendingVerification, Timers: []string{"verification"}, Event: "verified",
			To: Active, Cancelled: []string{"verification"},
			Emits: []string{
				"event autonomics.entitlement.account_activated *",
				"actuate marketplace.approve_account default",
			},
		},
		{
			Name: "rejected", State: PendingVerification, Timers: []string{"verification"}, Event: "rejected",
			To: Closed, Cancelled: []string{"verification"},
			Emits:    []string{"actuate marketplace.reject_account default"},
			EmitData: map[int]string{0: `{"reason":"rejected by the provider"}`},
		},
		{
			Name: "rejected with a reason", State: PendingVerification, Timers: []string{"verification"},
			Event: "rejected", Payload: `{"reason":"billing account not in good standing"}`,
			Source: "marketplace/acme-provider",
			To:     Closed, Cancelled: []string{"verification"},
			Emits:    []string{"actuate marketplace.reject_account default"},
			EmitData: map[int]string{0: `{"reason":"billing account not in good standing"}`},
		},
		{
			Name: "verification timeout", State: PendingVerification, Timers: []string{"verification"},
			Event: governor.Timeout("verification"),
			To:    Closed, Cancelled: []string{"verification"},
			Emits:    []string{"actuate marketplace.reject_account default"},
			EmitData: map[int]string{0: `{"reason":"verification timed out after 7d"}`},
		},
		{
			Name: "restricted", State: Active, Event: "restricted", To: Restricted,
		},
		{
			Name: "suspended from active", State: Active, Event: "suspended",
			To: Suspended, Armed: map[string]time.Duration{"suspension": 30 * day},
			Emits: []string{
				"event autonomics.entitlement.suspend *",
				"event autonomics.multi_tenant.suspend default",
			},
		},
		{
			Name: "suspended from restricted", State: Restricted, Event: "suspended",
			To: Suspended, Armed: map[string]time.Duration{"suspension": 30 * day},
			Emits: []string{
				"event autonomics.entitlement.suspend *",
				"event autonomics.multi_tenant.suspend default",
			},
		},
		{
			Name: "reinstated from restricted", State: Restricted, Event: "reinstated", To: Active,
			Emits: []string{
				"event autonomics.entitlement.reinstate *",
				"event autonomics.multi_tenant.resume default",
			},
		},
		{
			Name: "reinstated from suspended", State: Suspended, Timers: []string{"suspension"}, Event: "reinstated",
			To: Active, Cancelled: []string{"suspension"},
			Emits: []string{
				"event autonomics.entitlement.reinstate *",
				"event autonomics.multi_tenant.resume default",
			},
		},
		{
			Name: "suspension timeout", State: Suspended, Timers: []string{"suspension"},
			Event: governor.Timeout("suspension"),
			To:    Closed, Cancelled: []string{"suspension"}, Emits: closeEmits,
		},
		{
			Name: "closed from pending_verification", State: PendingVerification, Timers: []string{"verification"},
			Event: "closed", To: Closed, Cancelled: []string{"verification"}, Emits: closeEmits,
		},
		{Name: "closed from active", State: Active, Event: "closed", To: Closed, Emits: closeEmits},
		{Name: "closed from restricted", State: Restricted, Event: "closed", To: Closed, Emits: closeEmits},
		{
			Name: "closed from suspended", State: Suspended, Timers: []string{"suspension"},
			Event: "closed", To: Closed, Cancelled: []string{"suspension"}, Emits: closeEmits,
		},

		// Rejections.
		{
			Name: "verified without instance", State: governor.StateNone, Event: "verified",
			Want: governor.Rejected, Reason: string(governor.ReasonNoTransition), To: governor.StateNone,
		},
		{
			Name: "requested twice", State: PendingVerification, Timers: []string{"verification"}, Event: "requested",
			Want: governor.Rejected, Reason: string(governor.ReasonNoTransition), To: PendingVerification,
		},
		{
			Name: "restricted when suspended", State: Suspended, Timers: []string{"suspension"}, Event: "restricted",
			Want: governor.Rejected, Reason: string(governor.ReasonNoTransition), To: Suspended,
		},
		{
			Name: "reinstated when active", State: Active, Event: "reinstated",
			Want: governor.Rejected, Reason: string(governor.ReasonNoTransition), To: Active,
		},
		{
			Name: "closed when closed", State: Closed, Event: "closed",
			Want: governor.Rejected, Reason: string(governor.ReasonNoTransition), To: Closed,
		},
		{
			Name: "stale suspension timer", State: Suspended, Timers: []string{"suspension"},
			Event: governor.Timeout("suspension"), StaleID: true,
			Want: governor.Rejected, Reason: string(governor.ReasonTimerCancelled), To: Suspended,
		},
		{
			Name: "suspension timeout after reinstatement", State: Active,
			Event: governor.Timeout("suspension"),
			Want:  governor.Rejected, Reason: string(governor.ReasonTimerCancelled), To: Active,
		},
	}
	machinetest.RunLifecycle(t, Machine(), governor.DefaultSubject, cases)
}

// TestAccountRejectionReasonIsBounded refuses a customer_account.rejected
// whose reason is oversized, carries control characters or hides a second
// member under another spelling; the reason reaches the Marketplace.
func TestAccountRejectionReasonIsBounded(t *testing.T) {
	m := Machine()
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
