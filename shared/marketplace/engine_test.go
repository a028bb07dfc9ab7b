package marketplace_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/autonomics/autonomics/shared/engine"
	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/machines"
	"github.com/autonomics/autonomics/shared/marketplace"
	"github.com/autonomics/autonomics/shared/memstore"
	"github.com/autonomics/autonomics/shared/receipt"
	"github.com/autonomics/autonomics/shared/webhook/webhooktest"
)

// TestReorderedAndDuplicateNotificationsThroughTheEngine runs what the
// adapter publishes through the engine with the real machines: ACTIVE
// first, then the stale CREATION_REQUESTED, then ACTIVE again. The
// governor ends active; the stale notification's activated is rejected
// with a receipt and the duplicate is deduplicated.
func TestReorderedAndDuplicateNotificationsThroughTheEngine(t *testing.T) {
	h := newHarness(t)
	h.proc.entitlement(entID, marketplace.EntitlementActive, "basic")
	st := memstore.New()
	eng, err := engine.New(engine.Options{
		Store: st, Publisher: &webhooktest.Publisher{}, Machines: machines.New(nil), Topics: h.topics,
		Clock: webhooktest.NewClock().Now, Logger: discardLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range []string{"entitlement_active", "entitlement_creation_requested", "entitlement_active"} {
		if code := h.push(t, fixture(t, f), f); code != http.StatusNoContent {
			t.Fatalf("%s = %d", f, code)
		}
		msgs := h.pub.On(h.topics.Domain(governor.Entitlement))
		m := msgs[len(msgs)-1]
		if err := eng.HandleMessage(context.Background(), governor.Entitlement, event.Message{Data: m.Data, Attributes: m.Attributes, ID: f}); err != nil {
			t.Fatalf("engine, message %d: %v", i+1, err)
		}
	}
	if dl := h.pub.On(h.topics.DeadLetter()); len(dl) != 0 {
		t.Fatalf("dead-lettered: %v", dl[0].Attributes)
	}
	insts, err := st.Instances(context.Background(), tenant, governor.Entitlement)
	if err != nil || len(insts) != 1 || insts[0].State != "active" {
		t.Fatalf("instances %+v, %v; want one entitlement, active", insts, err)
	}
	chain, err := st.Chain(context.Background(), insts[0].Key, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	var outcomes []receipt.Receipt
	outcomes = append(outcomes, chain...)
	if len(outcomes) != 2 || outcomes[0].Outcome != string(governor.Accepted) || outcomes[1].Outcome != string(governor.Rejected) {
		for _, r := range outcomes {
			t.Logf("receipt %s %s→%s %s %s", r.EventType, r.FromState, r.ToState, r.Outcome, r.Reason)
		}
		t.Errorf("%d receipts; want activated accepted, the stale one rejected, the duplicate none", len(outcomes))
	}
}
