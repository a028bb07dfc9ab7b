package engine

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/memstore"
)

// pokeMachine is a one-row machine of the billing domain: "poked" moves an
// instance to "open", running apply. It cascades nowhere, so that it passes
// governor.CheckGraph alone.
func pokeMachine(apply func(*governor.Ctx) error) *governor.Machine {
	return &governor.Machine{
		Domain: governor.Billing,
		States: []governor.State{"open"},
		Transitions: []governor.Transition{{
			From: []governor.State{governor.StateNone, "open"}, On: "poked", To: "open", Apply: apply,
		}},
		Senders: map[governor.EventName][]governor.Sender{"poked": {governor.SenderExternal}},
	}
}

// poke is a "poked" event of id for the instance acme/billing/s1.
func poke(id string) governor.Event {
	return governor.Event{ID: id, Source: "//test/producer", Type: governor.TypeOf(governor.Billing, "poked"),
		Domain: governor.Billing, Name: "poked", Tenant: "acme", Subject: "s1"}
}

// TestPanicInDecisionDoesNotWedgeTheStripe panics in a row's Apply once.
// The panic reaches the caller of Apply, as it reaches the Functions
// Framework, which recovers it per request; the instance's stripe is
// unlocked on the way out, so that the next event on the same instance is
// decided rather than blocked for the life of the process.
func TestPanicInDecisionDoesNotWedgeTheStripe(t *testing.T) {
	var panicking atomic.Bool
	panicking.Store(true)
	m := pokeMachine(func(*governor.Ctx) error {
		if panicking.CompareAndSwap(true, false) {
			panic("injected panic in Apply")
		}
		return nil
	})
	eng, err := New(Options{Store: memstore.New(), Publisher: &discard{},
		Machines: map[governor.Domain]*governor.Machine{m.Domain: m},
		Logger:   slog.New(slog.NewJSONHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("New = %v", err)
	}
	ctx := context.Background()

	recovered := func() (v any) {
		defer func() { v = recover() }()
		_, _ = eng.Apply(ctx, poke("e1"))
		return nil
	}()
	if recovered == nil {
		t.Fatal("Apply(e1) with a panicking row returned, want the panic to reach the caller")
	}

	type applied struct {
		res []Result
		err error
	}
	for _, id := range []string{"e1", "e2"} {
		done := make(chan applied, 1)
		go func() {
			res, err := eng.Apply(ctx, poke(id))
			done <- applied{res, err}
		}()
		select {
		case got := <-done:
			if got.err != nil {
				t.Fatalf("Apply(%s) after the panic = %v", id, got.err)
			}
			// The panicking transaction wrote nothing: e1 delivered
			// again is decided, not a duplicate.
			if len(got.res) != 1 || got.res[0].Duplicate || got.res[0].Receipt.Outcome != string(governor.Accepted) {
				t.Errorf("Apply(%s) after the panic = %+v, want one accepted decision", id, got.res)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("Apply(%s) after the panic did not return within 5s: the instance's stripe is still locked", id)
		}
	}
}
