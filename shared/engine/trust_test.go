package engine

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/deadletter"
	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/topic"
)

// Each test replays an attack by a producer that may publish to the
// domain topics (the external path) and shows it changes nothing: the
// event is dead-lettered with the reason, no receipt is written and no
// dedup marker is left behind.

// fromOutside is the message of e as the push subscription of its domain
// topic delivers it.
func (h *harness) fromOutside(e governor.Event) event.Message {
	data, attrs := event.Encode(e)
	return event.Message{Data: data, Attributes: attrs, ID: "m-" + e.ID,
		Subscription: topic.SubscriptionName(emulatorProject, topic.Push(h.topics.Domain(e.Domain)))}
}

// fromInside is the message of e as the push subscription of its
// internal topic delivers it.
func (h *harness) fromInside(e governor.Event) event.Message {
	data, attrs := event.Encode(e)
	return event.Message{Data: data, Attributes: attrs, ID: "m-" + e.ID,
		Subscription: topic.SubscriptionName(emulatorProject, topic.Push(h.topics.Internal(e.Domain)))}
}

// refused delivers m and checks that it was dead-lettered with a reason
// containing want and that instance k did not change.
func (h *harness) refused(t *testing.T, m event.Message, d governor.Domain, k governor.Key, want string) {
	t.Helper()
	before := h.instance(t, k)
	deadBefore := len(h.pub.on(h.topics.DeadLetter()))
	if err := h.eng.HandleMessage(context.Background(), d, m); err != nil {
		t.Fatalf("HandleMessage = %v, want nil (dead-lettered)", err)
	}
	dead := h.pub.on(h.topics.DeadLetter())
	if len(dead) != deadBefore+1 {
		t.Fatalf("dead letters = %d, want %d", len(dead), deadBefore+1)
	}
	if reason := dead[len(dead)-1].Attributes[deadletter.AttrReason]; !strings.Contains(reason, want) {
		t.Errorf("dead-letter reason = %q, want it to contain %q", reason, want)
	}
	after := h.instance(t, k)
	if after.State != before.State || after.Version != before.Version || after.LastHash != before.LastHash {
		t.Errorf("instance %s changed: %s v%d -> %s v%d", k, before.State, before.Version, after.State, after.Version)
	}
}

// armedTimer returns the armed timer name of instance k.
func (h *harness) armedTimer(t *testing.T, k governor.Key, name string) governor.Timer {
	t.Helper()
	tm, ok := h.instance(t, k).Timers[name]
	if !ok {
		t.Fatalf("%s has no armed timer %s", k, name)
	}
	return tm
}

// timeout is the timeout event of tm of instance k with the given source.
func timeout(k governor.Key, tm governor.Timer, source string) governor.Event {
	return governor.Event{
		ID: tm.ID, Source: source, Type: governor.TypeOf(k.Domain, governor.Timeout(tm.Name)),
		Domain: k.Domain, Name: governor.Timeout(tm.Name), Tenant: k.Tenant, Subject: k.Subject,
		Data: json.RawMessage(`{"timer_id":"` + tm.ID + `"}`),
	}
}

func TestOutsiderCannotFireVerificationTimeoutEarly(t *testing.T) {
	forEach(t, func(t *testing.T, h *harness) {
		tenant := newTenant(t)
		h.apply(t, ev(tenant, governor.CustomerAccount, "requested", "", ""))
		k := governor.Key{Tenant: tenant, Domain: governor.CustomerAccount, Subject: governor.DefaultSubject}
		tm := h.armedTimer(t, k, "verification")
		// Even knowing the timer id, neither an outside source nor the
		// scheduler's source gets through the domain topic.
		h.refused(t, h.fromOutside(timeout(k, tm, "//evil/outsider")), governor.CustomerAccount, k, "may be sent by scheduler only")
		h.refused(t, h.fromOutside(timeout(k, tm, TimerSource)), governor.CustomerAccount, k, "reserved")
		if got := h.instance(t, k).State; got != "pending_verification" {
			t.Errorf("account = %s, want pending_verification", got)
		}
		if n := len(h.pub.on(h.topics.Actions())); n != 0 {
			t.Errorf("actions published = %d, want none (no marketplace.reject_account)", n)
		}
	})
}

func TestOutsiderCannotEndTrialEarly(t *testing.T) {
	forEach(t, func(t *testing.T, h *harness) {
		tenant := newTenant(t)
		h.apply(t, ev(tenant, governor.Subscription, "created", "sub-1", `{"plan":"gold","trial_days":14}`))
		k := governor.Key{Tenant: tenant, Domain: governor.Subscription, Subject: "sub-1"}
		tm := h.armedTimer(t, k, "trial_end")
		h.refused(t, h.fromOutside(timeout(k, tm, "//evil/outsider")), governor.Subscription, k, "scheduler only")
		if got := h.instance(t, k).State; got != "trialing" {
			t.Errorf("subscription = %s, want trialing", got)
		}
	})
}

func TestTimeoutBeforeItsDueTimeIsRetriedNotApplied(t *testing.T) {
	forEach(t, func(t *testing.T, h *harness) {
		tenant := newTenant(t)
		h.apply(t, ev(tenant, governor.Subscription, "created", "sub-1", `{"plan":"gold","trial_days":14}`))
		k := governor.Key{Tenant: tenant, Domain: governor.Subscription, Subject: "sub-1"}
		tm := h.armedTimer(t, k, "trial_end")
		err := h.eng.HandleMessage(context.Background(), governor.Subscription, h.fromInside(timeout(k, tm, TimerSource)))
		if !fault.IsRetryable(err) {
			t.Fatalf("early timeout from the scheduler = %v, want a retryable error", err)
		}
		if got := h.instance(t, k); got.State != "trialing" || got.Version != 1 {
			t.Errorf("subscription = %s v%d, want trialing v1", got.State, got.Version)
		}
		// Once due, the same delivery applies.
		h.clock.Add(15 * 24 * time.Hour)
		if err := h.eng.HandleMessage(context.Background(), governor.Subscription, h.fromInside(timeout(k, tm, TimerSource))); err != nil {
			t.Fatalf("due timeout = %v", err)
		}
		if got := h.instance(t, k).State; got != "active" {
			t.Errorf("subscription after the due timeout = %s, want active", got)
		}
	})
}

func TestTimerIDsCannotBePredictedFromPublicFields(t *testing.T) {
	forEach(t, func(t *testing.T, h *harness) {
		tenant := newTenant(t)
		h.apply(t, ev(tenant, governor.Subscription, "created", "sub-1", `{"plan":"gold","trial_days":14}`))
		k := governor.Key{Tenant: tenant, Domain: governor.Subscription, Subject: "sub-1"}
		tm := h.armedTimer(t, k, "trial_end")
		if predicted := governor.TimerID(k, "trial_end", 1); tm.ID == predicted {
			t.Fatalf("timer id %s equals the one computed from tenant, domain, subject, name and seq", tm.ID)
		}
		other := newTenant(t)
		h.apply(t, ev(other, governor.Subscription, "created", "sub-1", `{"plan":"gold","trial_days":14}`))
		k2 := governor.Key{Tenant: other, Domain: governor.Subscription, Subject: "sub-1"}
		if tm2 := h.armedTimer(t, k2, "trial_end"); len(tm2.ID) != 32 || tm2.ID == tm.ID {
			t.Errorf("timer ids %s and %s: want 32 hex digits, distinct", tm.ID, tm2.ID)
		}
	})
}

func TestOutsiderCannotPreclaimATimersDedupMarker(t *testing.T) {
	forEach(t, func(t *testing.T, h *harness) {
		tenant := newTenant(t)
		h.apply(t, ev(tenant, governor.Subscription, "created", "sub-1", `{"plan":"gold","trial_days":1}`))
		k := governor.Key{Tenant: tenant, Domain: governor.Subscription, Subject: "sub-1"}
		tm := h.armedTimer(t, k, "trial_end")
		// The attacker publishes the timeout the tick will publish, with
		// the scheduler's source and id, before it is due.
		h.refused(t, h.fromOutside(timeout(k, tm, TimerSource)), governor.Subscription, k, "reserved")
		// The real tick is not taken for a duplicate: the trial ends.
		mark := len(h.pub.msgs)
		h.clock.Add(2 * 24 * time.Hour)
		if _, err := h.eng.Tick(context.Background(), 100000); err != nil {
			t.Fatalf("Tick = %v", err)
		}
		h.deliverAll(t, mark)
		if got := h.instance(t, k).State; got != "active" {
			t.Errorf("subscription after the tick = %s, want active", got)
		}
	})
}

func TestOutsiderCannotPreclaimOrForgeACascade(t *testing.T) {
	forEach(t, func(t *testing.T, h *harness) {
		tenant := newTenant(t)
		h.apply(t, ev(tenant, governor.MultiTenant, "provision_requested", "", ""))
		h.apply(t, ev(tenant, governor.MultiTenant, "provisioned", "", ""))
		h.apply(t, ev(tenant, governor.CustomerAccount, "requested", "", ""))
		h.apply(t, ev(tenant, governor.CustomerAccount, "verified", "", ""))
		mt := governor.Key{Tenant: tenant, Domain: governor.MultiTenant, Subject: governor.DefaultSubject}
		// A forged cascade with the account governor's source, and one
		// that claims a parent receipt, are both refused: neither can
		// leave a dedup marker for the genuine cascade to collide with.
		forged := ev(tenant, governor.MultiTenant, "resume", "", "")
		forged.Source = GovernorSourcePrefix + string(governor.CustomerAccount)
		h.refused(t, h.fromOutside(forged), governor.MultiTenant, mt, "reserved")
		claimed := ev(tenant, governor.MultiTenant, "suspend", "", "")
		claimed.CausationID = strings.Repeat("a", 64)
		claimed.CascadeDepth = 1
		h.refused(t, h.fromOutside(claimed), governor.MultiTenant, mt, "set only by Autonomics")
		// The genuine cascade of the account's suspension still applies.
		mark := len(h.pub.msgs)
		h.apply(t, ev(tenant, governor.CustomerAccount, "suspended", "", ""))
		h.deliverAll(t, mark)
		if got := h.instance(t, mt).State; got != "suspended" {
			t.Errorf("tenant after the account's cascade = %s, want suspended", got)
		}
	})
}

func TestOutsiderCannotSendTheMonitorsNoisyNeighbourEvent(t *testing.T) {
	forEach(t, func(t *testing.T, h *harness) {
		tenant := newTenant(t)
		h.apply(t, ev(tenant, governor.MultiTenant, "provision_requested", "", ""))
		h.apply(t, ev(tenant, governor.MultiTenant, "provisioned", "", ""))
		k := governor.Key{Tenant: tenant, Domain: governor.MultiTenant, Subject: governor.DefaultSubject}
		noisy := ev(tenant, governor.MultiTenant, "noisy_neighbor_detected", "", `{"share_bp":9000}`)
		noisy.Source = MonitorSource
		h.refused(t, h.fromOutside(noisy), governor.MultiTenant, k, "reserved")
		noisy.Source = "//evil/outsider"
		h.refused(t, h.fromOutside(noisy), governor.MultiTenant, k, "may be sent by monitor only")
		if got := h.instance(t, k).State; got != "active" {
			t.Errorf("tenant = %s, want active (not throttled)", got)
		}
		// The monitor itself, on the internal path, is obeyed.
		noisy.Source = MonitorSource
		if err := h.eng.HandleMessage(context.Background(), governor.MultiTenant, h.fromInside(noisy)); err != nil {
			t.Fatal(err)
		}
		if got := h.instance(t, k).State; got != "degraded" {
			t.Errorf("tenant after the monitor's event = %s, want degraded", got)
		}
	})
}

func TestOutsiderCannotChooseItsCorrelationID(t *testing.T) {
	forEach(t, func(t *testing.T, h *harness) {
		tenant := newTenant(t)
		k := governor.Key{Tenant: tenant, Domain: governor.CustomerAccount, Subject: governor.DefaultSubject}
		e := ev(tenant, governor.CustomerAccount, "requested", "", "")
		e.CorrelationID = "someone-elses-cascade"
		h.refused(t, h.fromOutside(e), governor.CustomerAccount, k, "correlationid")
		e.CorrelationID = ""
		if err := h.eng.HandleMessage(context.Background(), governor.CustomerAccount, h.fromOutside(e)); err != nil {
			t.Fatal(err)
		}
		rs := h.pub.on(h.topics.Receipts())
		var r struct {
			CorrelationID string `json:"correlation_id"`
			ExecutionID   string `json:"execution_id"`
		}
		if err := json.Unmarshal(rs[len(rs)-1].Data, &r); err != nil {
			t.Fatal(err)
		}
		if r.CorrelationID != e.ID || r.ExecutionID != e.ID {
			t.Errorf("receipt correlation_id = %q, want the event's own id %q", r.CorrelationID, e.ID)
		}
	})
}

func TestInternalTopicRefusesOutsideSources(t *testing.T) {
	forEach(t, func(t *testing.T, h *harness) {
		tenant := newTenant(t)
		k := governor.Key{Tenant: tenant, Domain: governor.CustomerAccount, Subject: governor.DefaultSubject}
		for _, src := range []string{"//evil/outsider", "autonomics/governor/nope", "marketplace/p1", "autonomics/timerx"} {
			e := ev(tenant, governor.CustomerAccount, "requested", "", "")
			e.Source = src
			h.refused(t, h.fromInside(e), governor.CustomerAccount, k, "may not use an internal topic")
		}
	})
}

func TestOutsideSenderRulesAreEnforced(t *testing.T) {
	forEach(t, func(t *testing.T, h *harness) {
		tenant := newTenant(t)
		h.apply(t, ev(tenant, governor.CustomerAccount, "requested", "", ""))
		h.apply(t, ev(tenant, governor.CustomerAccount, "verified", "", ""))
		h.apply(t, ev(tenant, governor.Entitlement, "creation_requested", "ent-1", `{"plan":"gold"}`))
		k := governor.Key{Tenant: tenant, Domain: governor.Entitlement, Subject: "ent-1"}
		// Suspending an entitlement is the account's or the
		// subscription's decision, not a producer's.
		h.refused(t, h.fromOutside(ev(tenant, governor.Entitlement, "suspend", "ent-1", "")), governor.Entitlement, k, "governor only")
		// The Marketplace adapter may activate it; a reserved-looking
		// source in another case is refused all the same.
		act := ev(tenant, governor.Entitlement, "activated", "ent-1", "")
		act.Source = "Autonomics/Governor/customer_account"
		h.refused(t, h.fromOutside(act), governor.Entitlement, k, "reserved")
		act.Source = MarketplaceSourcePrefix + "provider-1"
		if err := h.eng.HandleMessage(context.Background(), governor.Entitlement, h.fromOutside(act)); err != nil {
			t.Fatal(err)
		}
		if got := h.instance(t, k).State; got != "active" {
			t.Errorf("entitlement = %s, want active", got)
		}
	})
}

func TestSenderOf(t *testing.T) {
	tests := []struct {
		internal bool
		source   string
		want     governor.Sender
		wantErr  string
	}{
		{false, "//provider/billing", governor.SenderExternal, ""},
		{false, "marketplace/p1", governor.SenderMarketplace, ""},
		{false, TimerSource, "", "reserved"},
		{false, "AUTONOMICS/monitor", "", "reserved"},
		{true, TimerSource, governor.SenderScheduler, ""},
		{true, MonitorSource, governor.SenderMonitor, ""},
		{true, GovernorSourcePrefix + "billing", governor.SenderGovernor, ""},
		{true, GovernorSourcePrefix + "nope", "", "internal topic"},
		{true, ActuatorSourcePrefix + "webhooks", governor.SenderActuator, ""},
		{true, ActuatorSourcePrefix, "", "internal topic"},
		{false, ActuatorSourcePrefix + "webhooks", "", "reserved"},
		{true, "//provider/billing", "", "internal topic"},
	}
	for _, tt := range tests {
		got, err := SenderOf(tt.internal, governor.Event{Source: tt.source})
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || fault.ErrorCode(err) != fault.Invalid {
				t.Errorf("SenderOf(%v, %q) = %v, %v; want an invalid error containing %q", tt.internal, tt.source, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("SenderOf(%v, %q) = %v, %v; want %v", tt.internal, tt.source, got, err, tt.want)
		}
	}
}
