package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/deadletter"
	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/receipt"
)

func TestApplyWritesStateReceiptAndOutbox(t *testing.T) {
	forEach(t, func(t *testing.T, h *harness) {
		tenant := newTenant(t)
		e := ev(tenant, governor.CustomerAccount, "requested", "", "")
		rs := h.apply(t, e)
		if len(rs) != 1 || rs[0].Duplicate {
			t.Fatalf("Apply = %+v, want one new result", rs)
		}
		r := rs[0].Receipt
		if r.Seq != 1 || r.Outcome != "accepted" || r.ToState != "pending_verification" || r.PrevHash != receipt.ZeroHash {
			t.Errorf("receipt = %+v", r)
		}
		k := governor.Key{Tenant: tenant, Domain: governor.CustomerAccount, Subject: governor.DefaultSubject}
		inst := h.instance(t, k)
		if inst.State != "pending_verification" || inst.Version != 1 || inst.LastHash != r.Hash {
			t.Errorf("instance = %+v", inst)
		}
		if _, ok := inst.Timers["verification"]; !ok {
			t.Errorf("verification timer not armed: %+v", inst.Timers)
		}
		got := h.pub.on(h.topics.Receipts())
		if len(got) != 1 {
			t.Fatalf("receipts published = %d, want 1", len(got))
		}
		pub, err := receipt.Parse(got[0].Data)
		if err != nil || pub.Hash != r.Hash {
			t.Errorf("published receipt = %v, %v; want hash %s", pub.Hash, err, r.Hash)
		}
		if got[0].OrderingKey != tenant {
			t.Errorf("ordering key = %q, want %q", got[0].OrderingKey, tenant)
		}
		entries, err := h.store.Outbox(context.Background(), r.Hash)
		if err != nil || len(entries) != 1 || !entries[0].Delivered {
			t.Errorf("Outbox = %+v, %v; want one delivered entry", entries, err)
		}
		due, err := h.store.DueTimers(context.Background(), h.clock.Now().Add(8*24*time.Hour), 1000)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, d := range due {
			found = found || d.Key == k
		}
		if !found {
			t.Errorf("DueTimers does not list the verification timer of %v", k)
		}
	})
}

func TestDuplicateDelivery(t *testing.T) {
	forEach(t, func(t *testing.T, h *harness) {
		tenant := newTenant(t)
		e := ev(tenant, governor.CustomerAccount, "requested", "", "")
		first := h.apply(t, e)[0]
		second := h.apply(t, e)[0]
		if !second.Duplicate || second.Receipt.Hash != first.Receipt.Hash {
			t.Errorf("second Apply = %+v, want duplicate of %s", second, first.Receipt.Hash)
		}
		// 20 concurrent deliveries of one new event.
		e2 := ev(tenant, governor.CustomerAccount, "verified", "", "")
		var wg sync.WaitGroup
		errs := make(chan error, 20)
		for range 20 {
			wg.Go(func() {
				if err := h.eng.HandleMessage(context.Background(), governor.CustomerAccount, message(e2)); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("HandleMessage = %v", err)
		}
		k := governor.Key{Tenant: tenant, Domain: governor.CustomerAccount, Subject: governor.DefaultSubject}
		if n := h.chainLen(t, k); n != 2 {
			t.Errorf("receipts = %d, want 2 (one per distinct event)", n)
		}
		if inst := h.instance(t, k); inst.State != "active" || inst.Version != 2 {
			t.Errorf("instance = %s v%d, want active v2", inst.State, inst.Version)
		}
		rs, err := h.store.ReceiptsByExecution(context.Background(), e2.ID)
		if err != nil || len(rs) != 1 {
			t.Errorf("ReceiptsByExecution = %d, %v; want 1", len(rs), err)
		}
	})
}

func TestConcurrentEventsOnOneInstance(t *testing.T) {
	forEach(t, func(t *testing.T, h *harness) {
		tenant := newTenant(t)
		const n = 30
		// Three engines over one store stand for three function instances,
		// so that transactions on the instance really contend in storage.
		engines := []*Engine{h.eng, h.sibling(t), h.sibling(t)}
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			e := ev(tenant, governor.Billing, "usage_recorded", "2026-11", fmt.Sprintf(`{"meter":"api_calls","quantity":%d}`, i+1))
			eng := engines[i%len(engines)]
			wg.Go(func() {
				if err := eng.HandleMessage(context.Background(), governor.Billing, message(e)); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("HandleMessage = %v", err)
		}
		k := governor.Key{Tenant: tenant, Domain: governor.Billing, Subject: "2026-11"}
		chain, err := h.store.Chain(context.Background(), k, 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(chain) != n {
			t.Fatalf("receipts = %d, want %d", len(chain), n)
		}
		if err := receipt.Verify(chain); err != nil {
			t.Errorf("Verify = %v", err)
		}
		inst := h.instance(t, k)
		var data struct {
			Meters map[string]int64 `json:"meters"`
		}
		if err := json.Unmarshal(inst.Data, &data); err != nil {
			t.Fatal(err)
		}
		if want := int64(n * (n + 1) / 2); data.Meters["api_calls"] != want || inst.Version != n {
			t.Errorf("meters = %v v%d, want api_calls=%d v%d (a lost update?)", data.Meters, inst.Version, want, n)
		}
	})
}

func TestCrashBetweenCommitAndPublish(t *testing.T) {
	forEach(t, func(t *testing.T, h *harness) {
		for _, recover := range []string{"redelivery", "sweeper"} {
			t.Run(recover, func(t *testing.T) {
				tenant := newTenant(t)
				e := ev(tenant, governor.CustomerAccount, "requested", "", "")
				h.pub.setDown(true)
				err := h.eng.HandleMessage(context.Background(), governor.CustomerAccount, message(e))
				h.pub.setDown(false)
				if err == nil || !fault.IsRetryable(err) {
					t.Fatalf("HandleMessage with failing publisher = %v, want a retryable error", err)
				}
				k := governor.Key{Tenant: tenant, Domain: governor.CustomerAccount, Subject: governor.DefaultSubject}
				if n := h.chainLen(t, k); n != 1 {
					t.Fatalf("receipts after commit = %d, want 1", n)
				}
				rs, _ := h.store.ReceiptsByExecution(context.Background(), e.ID)
				hash := rs[0].Hash
				countPublished := func() int {
					n := 0
					for _, m := range h.pub.on(h.topics.Receipts()) {
						if r, err := receipt.Parse(m.Data); err == nil && r.Hash == hash {
							n++
						}
					}
					return n
				}
				if countPublished() != 0 {
					t.Fatalf("receipt published despite the failure")
				}
				switch recover {
				case "redelivery":
					if err := h.eng.HandleMessage(context.Background(), governor.CustomerAccount, message(e)); err != nil {
						t.Fatalf("redelivery = %v", err)
					}
				case "sweeper":
					h.clock.Add(2 * time.Minute)
					n, err := h.eng.Sweep(context.Background(), time.Minute, 10000)
					if err != nil || n < 1 {
						t.Fatalf("Sweep = %d, %v; want at least 1", n, err)
					}
				}
				if got := countPublished(); got != 1 {
					t.Errorf("receipt published %d times, want 1", got)
				}
				if n := h.chainLen(t, k); n != 1 {
					t.Errorf("receipts = %d, want exactly 1", n)
				}
				entries, _ := h.store.Outbox(context.Background(), hash)
				for _, en := range entries {
					if !en.Delivered {
						t.Errorf("outbox entry %s still undelivered", en.ID)
					}
				}
			})
		}
	})
}

func TestBroadcast(t *testing.T) {
	forEach(t, func(t *testing.T, h *harness) {
		tenant := newTenant(t)
		for _, id := range []string{"ent-a", "ent-b", "ent-c"} {
			h.apply(t, ev(tenant, governor.Entitlement, "creation_requested", id, `{"plan":"gold"}`))
		}
		h.apply(t, ev(tenant, governor.Entitlement, "activated", "ent-c", ""))
		rs := h.apply(t, ev(tenant, governor.Entitlement, "account_activated", governor.BroadcastSubject, ""))
		if len(rs) != 3 {
			t.Fatalf("broadcast results = %d, want 3", len(rs))
		}
		outcomes := map[string]string{}
		for _, r := range rs {
			outcomes[r.Key.Subject] = r.Receipt.Outcome
		}
		want := map[string]string{"ent-a": "accepted", "ent-b": "accepted", "ent-c": "rejected"}
		for s, o := range want {
			if outcomes[s] != o {
				t.Errorf("broadcast on %s = %q, want %q", s, outcomes[s], o)
			}
		}
		// A broadcast to a domain without instances changes nothing.
		if rs := h.apply(t, ev(tenant, governor.Subscription, "cancel", governor.BroadcastSubject, "")); len(rs) != 0 {
			t.Errorf("broadcast without instances = %d results, want 0", len(rs))
		}
	})
}

func TestInvalidInputIsDeadLetteredAndWritesNothing(t *testing.T) {
	forEach(t, func(t *testing.T, h *harness) {
		tenant := newTenant(t)
		good := ev(tenant, governor.CustomerAccount, "requested", "", "")
		data, attrs := event.Encode(good)
		with := func(k, v string) map[string]string {
			a := map[string]string{}
			for x, y := range attrs {
				a[x] = y
			}
			if v == "\x00delete" {
				delete(a, k)
			} else {
				a[k] = v
			}
			return a
		}
		long := strings.Repeat("a", 10*1024)
		tests := []struct {
			name   string
			domain governor.Domain
			msg    event.Message
		}{
			{"bad json structured", governor.CustomerAccount, event.Message{Data: []byte(`{"specversion":"1.0",`), Attributes: map[string]string{"content-type": "application/cloudevents+json"}}},
			{"missing id", governor.CustomerAccount, event.Message{Data: data, Attributes: with("ce-id", "\x00delete")}},
			{"missing tenant", governor.CustomerAccount, event.Message{Data: data, Attributes: with("ce-tenantid", "\x00delete")}},
			{"tenant path traversal", governor.CustomerAccount, event.Message{Data: data, Attributes: with("ce-tenantid", "../x")}},
			{"tenant reserved", governor.CustomerAccount, event.Message{Data: data, Attributes: with("ce-tenantid", "__x__")}},
			{"tenant 10KB", governor.CustomerAccount, event.Message{Data: data, Attributes: with("ce-tenantid", long)}},
			{"tenant non-ASCII", governor.CustomerAccount, event.Message{Data: data, Attributes: with("ce-tenantid", "tenañt")}},
			{"subject hostile", governor.CustomerAccount, event.Message{Data: data, Attributes: with("ce-subject", "a/b")}},
			{"unknown type", governor.CustomerAccount, event.Message{Data: data, Attributes: with("ce-type", "autonomics.customer_account.exploded")}},
			{"unknown domain", governor.CustomerAccount, event.Message{Data: data, Attributes: with("ce-type", "autonomics.nope.requested")}},
			{"wrong function", governor.Billing, event.Message{Data: data, Attributes: attrs}},
			{"data not object", governor.CustomerAccount, event.Message{Data: []byte(`[1,2]`), Attributes: attrs}},
			{"payload invalid", governor.Entitlement, message(ev(tenant, governor.Entitlement, "creation_requested", "e1", `{"plan":""}`))},
			{"payload unknown field", governor.Entitlement, message(ev(tenant, governor.Entitlement, "creation_requested", "e1", `{"plan":"gold","admin":true}`))},
			{"oversized data", governor.CustomerAccount, event.Message{Data: []byte(`{"x":"` + strings.Repeat("x", 300*1024) + `"}`), Attributes: attrs}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				before := len(h.pub.on(h.topics.DeadLetter()))
				if err := h.eng.HandleMessage(context.Background(), tt.domain, tt.msg); err != nil {
					t.Fatalf("HandleMessage = %v, want nil (acknowledged after dead-lettering)", err)
				}
				dl := h.pub.on(h.topics.DeadLetter())
				if len(dl) != before+1 {
					t.Fatalf("dead-letters = %d, want %d", len(dl), before+1)
				}
				last := dl[len(dl)-1]
				if last.Attributes[deadletter.AttrReason] == "" || last.Attributes[deadletter.AttrCode] != string(fault.Invalid) {
					t.Errorf("dead-letter attributes = %v, want a reason and code invalid", last.Attributes)
				}
			})
		}
		insts, err := h.store.Instances(context.Background(), tenant, "")
		if err != nil || len(insts) != 0 {
			t.Errorf("Instances(%s) = %d, %v; want none written", tenant, len(insts), err)
		}
		if n := len(h.pub.on(h.topics.Receipts())); n != 0 {
			t.Errorf("receipts published = %d, want 0", n)
		}
	})
}

func TestCascadeAcrossGovernors(t *testing.T) {
	forEach(t, func(t *testing.T, h *harness) {
		tenant := newTenant(t)
		mark := 0
		h.apply(t, ev(tenant, governor.CustomerAccount, "requested", "", ""))
		h.apply(t, ev(tenant, governor.Entitlement, "creation_requested", "ent-1", `{"plan":"gold"}`))
		root := ev(tenant, governor.CustomerAccount, "verified", "", "")
		h.apply(t, root)
		mark = h.deliverAll(t, mark)
		ent := h.instance(t, governor.Key{Tenant: tenant, Domain: governor.Entitlement, Subject: "ent-1"})
		if ent.Version != 2 {
			t.Fatalf("entitlement version = %d, want 2 (account_activated applied)", ent.Version)
		}
		chain, _ := h.store.Chain(context.Background(), ent.Key, 0, 10)
		last := chain[len(chain)-1]
		if last.EventType != "autonomics.entitlement.account_activated" || last.CorrelationID != root.ID {
			t.Errorf("cascaded receipt = %s corr %s, want account_activated with correlation %s", last.EventType, last.CorrelationID, root.ID)
		}
		actions := h.pub.on(h.topics.Actions())
		kinds := map[string]int{}
		for _, a := range actions {
			kinds[a.Attributes["action"]]++
		}
		if kinds["marketplace.approve_account"] != 1 || kinds["marketplace.approve_entitlement"] != 1 {
			t.Errorf("actions = %v, want approve_account and approve_entitlement once", kinds)
		}
		// Suspending the account cascades to the entitlement and the tenant.
		h.apply(t, ev(tenant, governor.Entitlement, "activated", "ent-1", ""))
		mark = h.deliverAll(t, mark)
		h.apply(t, ev(tenant, governor.MultiTenant, "provisioned", "", ""))
		h.apply(t, ev(tenant, governor.CustomerAccount, "suspended", "", ""))
		h.deliverAll(t, mark)
		for _, c := range []struct {
			d    governor.Domain
			s    string
			want governor.State
		}{
			{governor.Entitlement, "ent-1", "suspended"},
			{governor.MultiTenant, "default", "suspended"},
			{governor.Subscription, "ent-1", "active"},
		} {
			if got := h.instance(t, governor.Key{Tenant: tenant, Domain: c.d, Subject: c.s}).State; got != c.want {
				t.Errorf("%s/%s = %s, want %s", c.d, c.s, got, c.want)
			}
		}
	})
}

func TestTimersFireAndCancel(t *testing.T) {
	forEach(t, func(t *testing.T, h *harness) {
		tenant := newTenant(t)
		h.apply(t, ev(tenant, governor.Subscription, "created", "sub-1", `{"plan":"gold","trial_days":3}`))
		h.apply(t, ev(tenant, governor.CustomerAccount, "requested", "", ""))
		h.apply(t, ev(tenant, governor.CustomerAccount, "verified", "", "")) // cancels verification
		mark := len(h.pub.msgs)
		h.clock.Add(4 * 24 * time.Hour)
		if _, err := h.eng.Tick(context.Background(), 100000); err != nil {
			t.Fatalf("Tick = %v", err)
		}
		fired := 0
		for _, m := range h.pub.msgs[mark:] {
			if strings.Contains(m.Attributes["ce-type"], ".timeout.") && m.Attributes["ce-tenantid"] == tenant {
				fired++
				if m.Attributes["ce-type"] != "autonomics.subscription.timeout.trial_end" {
					t.Errorf("fired %s, want only trial_end", m.Attributes["ce-type"])
				}
			}
		}
		if fired != 1 {
			t.Fatalf("timers fired for tenant = %d, want 1", fired)
		}
		h.deliverAll(t, mark)
		sub := h.instance(t, governor.Key{Tenant: tenant, Domain: governor.Subscription, Subject: "sub-1"})
		if sub.State != "active" {
			t.Errorf("subscription after trial_end = %s, want active", sub.State)
		}
		if _, ok := sub.Timers["period_end"]; !ok {
			t.Errorf("period_end not armed: %v", sub.Timers)
		}
		// Ticking again publishes nothing more for this tenant's fired timer.
		mark = len(h.pub.msgs)
		if _, err := h.eng.Tick(context.Background(), 100000); err != nil {
			t.Fatal(err)
		}
		for _, m := range h.pub.msgs[mark:] {
			if m.Attributes["ce-tenantid"] == tenant {
				t.Errorf("tick re-fired %s", m.Attributes["ce-type"])
			}
		}
	})
}

func TestCascadeDepthLimit(t *testing.T) {
	forEach(t, func(t *testing.T, h *harness) {
		tenant := newTenant(t)
		e := ev(tenant, governor.CustomerAccount, "requested", "", "")
		e.CascadeDepth = governor.MaxCascadeDepth
		r := h.apply(t, e)[0].Receipt
		if r.Outcome != "rejected" || !strings.HasPrefix(r.Reason, string(governor.ReasonCascadeDepth)) {
			t.Errorf("receipt = %s %q, want rejected %s", r.Outcome, r.Reason, governor.ReasonCascadeDepth)
		}
		if r.Seq != 1 || r.FromState != "none" {
			t.Errorf("rejected first event: seq %d from %s, want seq 1 from none", r.Seq, r.FromState)
		}
	})
}
