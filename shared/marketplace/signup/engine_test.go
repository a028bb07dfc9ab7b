package signup

import (
	"context"
	"log/slog"
	"net/http"
	"testing"

	"github.com/autonomics/autonomics/shared/engine"
	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/machines"
	"github.com/autonomics/autonomics/shared/marketplace"
	"github.com/autonomics/autonomics/shared/memstore"
	"github.com/autonomics/autonomics/shared/webhook"
	"github.com/autonomics/autonomics/shared/webhook/webhooktest"
)

// TestSignupEventsDriveTheAccountGovernor feeds what a sign-up publishes,
// twice (a replayed sign-up), to the engine and its customer_account
// governor: the account becomes active and marketplace.approve_account is
// emitted exactly once.
func TestSignupEventsDriveTheAccountGovernor(t *testing.T) {
	h := newHarness(t, nil)
	tok := h.certs.valid(t, h.clock.Now())
	for range 2 {
		if w := h.post(tok, nil); w.Code != http.StatusOK {
			t.Fatalf("sign-up: %d %s", w.Code, w.Body.String())
		}
	}
	msgs := h.pub.On(h.topics.Domain(governor.CustomerAccount))
	if len(msgs) != 4 {
		t.Fatalf("%d messages, want 4", len(msgs))
	}

	ms := machines.New(nil)
	out := &webhooktest.Publisher{}
	st := memstore.New()
	eng, err := engine.New(engine.Options{
		Store: st, Publisher: out, Machines: ms, Topics: h.topics,
		Clock: h.clock.Now, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i, m := range msgs {
		if err := eng.HandleMessage(ctx, governor.CustomerAccount, event.Message{Data: m.Data, Attributes: m.Attributes}); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	if dl := out.On(h.topics.DeadLetter()); len(dl) != 0 {
		t.Fatalf("%d messages dead-lettered: %v", len(dl), dl[0].Attributes)
	}
	tenant := marketplace.DefaultTenant(testAccount)
	inst, err := st.Instances(ctx, tenant, governor.CustomerAccount)
	if err != nil || len(inst) != 1 || inst[0].State != "active" {
		t.Fatalf("instances %+v (%v), want one active account", inst, err)
	}
	kinds := webhook.KindsOf(ms)
	var approvals int
	for _, m := range out.On(h.topics.Actions()) {
		a, err := webhook.DecodeAction(event.Message{Data: m.Data, Attributes: m.Attributes}, kinds)
		if err != nil {
			t.Fatal(err)
		}
		if a.Kind == "marketplace.approve_account" && a.Tenant == tenant && a.Subject == governor.DefaultSubject {
			approvals++
		}
	}
	if approvals != 1 {
		t.Errorf("%d marketplace.approve_account actions, want exactly 1", approvals)
	}
}
