package webhooktest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/machines"
	"github.com/autonomics/autonomics/shared/topic"
	"github.com/autonomics/autonomics/shared/webhook"
)

// Run runs the conformance suite of webhook.Store. newStore returns an
// empty store for each subtest.
func Run(t *testing.T, newStore func(t *testing.T) webhook.Store) {
	tests := []struct {
		name string
		f    func(t *testing.T, s webhook.Store)
	}{
		{"RecordsRoundTrip", testRoundTrip},
		{"FailedTransactionWritesNothing", testFailedTx},
		{"ReadAfterWriteRefused", testReadAfterWrite},
		{"ConcurrentTransactionsSerialise", testConcurrentTx},
		{"DueDeliveriesEarliestFirst", testDue},
		{"UnreportedAndHeld", testUnreportedHeld},
		{"DeliveriesAndAttemptsOfAnAction", testOfAction},
		{"ActionsOfAWindowInOrder", testActions},
		{"DelivererKeepsTenantOrderAndRetries", testDeliverer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.f(t, newStore(t)) })
	}
}

var ctx = context.Background()

// at is a time of the suite, at microsecond precision (Firestore's).
func at(d time.Duration) time.Time { return Epoch.Add(d) }

func put(t *testing.T, s webhook.Store, f func(tx webhook.Tx) error) {
	t.Helper()
	if err := s.RunTx(ctx, func(ctx context.Context, tx webhook.Tx) error { return f(tx) }); err != nil {
		t.Fatalf("RunTx: %v", err)
	}
}

func sampleDelivery(endpoint, action string, state webhook.State, due time.Time) webhook.Delivery {
	return webhook.Delivery{
		ID: webhook.DeliveryID(endpoint, action), ActionID: action, EndpointID: endpoint, Tenant: "acme",
		Kind: "tenant.provision", Domain: governor.MultiTenant, Lane: webhook.LaneID(endpoint, "acme"),
		State: state, Due: due, Cycle: 1, ActionTime: at(0), CreatedAt: at(0), UpdatedAt: at(0),
	}
}

func testRoundTrip(t *testing.T, s webhook.Store) {
	ep := webhook.Endpoint{
		ID: "billing", URL: "https://hooks.example.com/in", Kinds: []string{"billing.issue_invoice"},
		Secrets: []string{webhook.NewSecret().Encode()}, Disabled: true, DisabledReason: "r",
		Timeout: 3 * time.Second, MaxInFlight: 2, CreatedAt: at(0), UpdatedAt: at(time.Second),
	}
	act := webhook.Action{
		ID: "a1", Kind: "tenant.provision", Domain: governor.MultiTenant, Source: "autonomics/governor/multi_tenant",
		Tenant: "acme", Subject: "default", Time: at(0), Data: json.RawMessage(`{"plan":"pro"}`),
		CorrelationID: "c", CausationID: "h", TraceParent: "tp", MessageID: "m", PublishTime: at(time.Millisecond),
		Raw: []byte(`{"plan":"pro"}`), Attributes: map[string]string{"ce-id": "a1"}, ReceivedAt: at(2 * time.Millisecond),
	}
	del := sampleDelivery("billing", "a1", webhook.Pending, at(time.Minute))
	del.Next, del.Attempts, del.Total, del.FirstAttempt, del.Lease, del.LeaseStarted = "x", 2, 3, at(time.Second), "tok", at(2*time.Second)
	del.LastStatus, del.LastError, del.Failure, del.Reason, del.DeliveredAt = 503, "e", "", "", time.Time{}
	lane := webhook.Lane{ID: del.Lane, EndpointID: "billing", Tenant: "acme", Head: del.ID, Tail: "x"}
	att := webhook.Attempt{DeliveryID: del.ID, ActionID: "a1", EndpointID: "billing", N: 3, Cycle: 1, URL: ep.URL,
		StartedAt: at(time.Second), Latency: 1500 * time.Microsecond, Outcome: webhook.Retry, Status: 503, Error: "e", Response: "busy"}
	put(t, s, func(tx webhook.Tx) error {
		return errors.Join(tx.PutEndpoint(ep), tx.PutAction(act), tx.PutDelivery(del), tx.PutLane(lane), tx.PutAttempt(att))
	})
	put(t, s, func(tx webhook.Tx) error {
		gotE, ok, err := tx.Endpoint("billing")
		if err != nil || !ok || !equalJSON(gotE, ep) {
			t.Errorf("Endpoint = %+v, %v, %v; want %+v", gotE, ok, err, ep)
		}
		gotA, ok, err := tx.Action("a1")
		if err != nil || !ok || !equalJSON(gotA, act) {
			t.Errorf("Action = %+v, %v, %v; want %+v", gotA, ok, err, act)
		}
		gotD, ok, err := tx.Delivery(del.ID)
		if err != nil || !ok || !equalJSON(gotD, del) {
			t.Errorf("Delivery = %+v, %v, %v; want %+v", gotD, ok, err, del)
		}
		gotL, ok, err := tx.Lane(lane.ID)
		if err != nil || !ok || gotL != lane {
			t.Errorf("Lane = %+v, %v, %v; want %+v", gotL, ok, err, lane)
		}
		for _, miss := range []func() (bool, error){
			func() (bool, error) { _, ok, err := tx.Endpoint("nope"); return ok, err },
			func() (bool, error) { _, ok, err := tx.Action("nope"); return ok, err },
			func() (bool, error) { _, ok, err := tx.Delivery("nope"); return ok, err },
			func() (bool, error) { _, ok, err := tx.Lane("nope"); return ok, err },
		} {
			if ok, err := miss(); ok || err != nil {
				t.Errorf("reading a missing record = %v, %v; want false, nil", ok, err)
			}
		}
		return nil
	})
	atts, err := s.AttemptsOf(ctx, "a1")
	if err != nil || len(atts) != 1 || !equalJSON(atts[0], att) {
		t.Errorf("AttemptsOf = %+v, %v; want [%+v]", atts, err, att)
	}
	eps, err := s.Endpoints(ctx)
	if err != nil || len(eps) != 1 || eps[0].ID != "billing" {
		t.Errorf("Endpoints = %+v, %v", eps, err)
	}
	put(t, s, func(tx webhook.Tx) error { return errors.Join(tx.DeleteEndpoint("billing"), tx.DeleteLane(lane.ID)) })
	put(t, s, func(tx webhook.Tx) error {
		if _, ok, _ := tx.Endpoint("billing"); ok {
			t.Error("endpoint still there after DeleteEndpoint")
		}
		if _, ok, _ := tx.Lane(lane.ID); ok {
			t.Error("lane still there after DeleteLane")
		}
		return nil
	})
}

// equalJSON compares records by their JSON forms (times at microsecond
// precision, as Firestore keeps them).
func equalJSON(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

func testFailedTx(t *testing.T, s webhook.Store) {
	boom := errors.New("boom")
	err := s.RunTx(ctx, func(ctx context.Context, tx webhook.Tx) error {
		if err := tx.PutDelivery(sampleDelivery("e", "a", webhook.Pending, at(0))); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("RunTx = %v, want the function's error", err)
	}
	due, err := s.Due(ctx, at(time.Hour), 10)
	if err != nil || len(due) != 0 {
		t.Errorf("after a failed transaction Due = %+v, %v; want nothing", due, err)
	}
}

func testReadAfterWrite(t *testing.T, s webhook.Store) {
	err := s.RunTx(ctx, func(ctx context.Context, tx webhook.Tx) error {
		if err := tx.PutLane(webhook.Lane{ID: "l"}); err != nil {
			return err
		}
		_, _, err := tx.Lane("l")
		return err
	})
	if err == nil {
		t.Fatal("a read after a write succeeded; Firestore refuses it")
	}
}

func testConcurrentTx(t *testing.T, s webhook.Store) {
	d := sampleDelivery("e", "a", webhook.Queued, time.Time{})
	put(t, s, func(tx webhook.Tx) error { return tx.PutDelivery(d) })
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			errs <- s.RunTx(ctx, func(ctx context.Context, tx webhook.Tx) error {
				cur, _, err := tx.Delivery(d.ID)
				if err != nil {
					return err
				}
				cur.Total++
				return tx.PutDelivery(cur)
			})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent RunTx: %v", err)
		}
	}
	put(t, s, func(tx webhook.Tx) error {
		cur, _, err := tx.Delivery(d.ID)
		if cur.Total != n {
			t.Errorf("after %d concurrent increments Total = %d", n, cur.Total)
		}
		return err
	})
}

func testDue(t *testing.T, s webhook.Store) {
	held := sampleDelivery("e", "held", webhook.Pending, at(time.Second))
	held.Held, held.Due = true, time.Time{}
	put(t, s, func(tx webhook.Tx) error {
		return errors.Join(
			tx.PutDelivery(sampleDelivery("e", "late", webhook.Pending, at(3*time.Second))),
			tx.PutDelivery(sampleDelivery("e", "early", webhook.Pending, at(time.Second))),
			tx.PutDelivery(sampleDelivery("e", "mid", webhook.Pending, at(2*time.Second))),
			tx.PutDelivery(sampleDelivery("e", "future", webhook.Pending, at(time.Hour))),
			tx.PutDelivery(sampleDelivery("e", "queued", webhook.Queued, time.Time{})),
			tx.PutDelivery(sampleDelivery("e", "done", webhook.Succeeded, time.Time{})),
			tx.PutDelivery(held),
		)
	})
	due, err := s.Due(ctx, at(3*time.Second), 10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range due {
		got = append(got, d.ActionID)
	}
	if want := []string{"early", "mid", "late"}; !slices.Equal(got, want) {
		t.Errorf("Due = %q, want %q", got, want)
	}
	if due, _ := s.Due(ctx, at(3*time.Second), 2); len(due) != 2 {
		t.Errorf("Due with limit 2 returned %d", len(due))
	}
	// A delivery leaves the due set when it is no longer pending.
	d := due[0]
	d.State, d.Due = webhook.Succeeded, time.Time{}
	put(t, s, func(tx webhook.Tx) error { return tx.PutDelivery(d) })
	if due, _ := s.Due(ctx, at(3*time.Second), 10); len(due) != 2 {
		t.Errorf("after delivering one, Due returned %d, want 2", len(due))
	}
}

func testUnreportedHeld(t *testing.T, s webhook.Store) {
	failed := sampleDelivery("e", "f", webhook.Failed, time.Time{})
	reported := sampleDelivery("e", "r", webhook.Failed, time.Time{})
	reported.Reported = true
	held := sampleDelivery("e", "h", webhook.Pending, time.Time{})
	held.Held = true
	other := sampleDelivery("o", "h", webhook.Pending, time.Time{})
	other.Held = true
	put(t, s, func(tx webhook.Tx) error {
		return errors.Join(tx.PutDelivery(failed), tx.PutDelivery(reported), tx.PutDelivery(held), tx.PutDelivery(other))
	})
	un, err := s.Unreported(ctx, 10)
	if err != nil || len(un) != 1 || un[0].ID != failed.ID {
		t.Errorf("Unreported = %+v, %v; want only %s", un, err, failed.ID)
	}
	h, err := s.Held(ctx, "e", 10)
	if err != nil || len(h) != 1 || h[0].ID != held.ID {
		t.Errorf("Held(e) = %+v, %v; want only %s", h, err, held.ID)
	}
	failed.Reported = true
	put(t, s, func(tx webhook.Tx) error { return tx.PutDelivery(failed) })
	if un, _ := s.Unreported(ctx, 10); len(un) != 0 {
		t.Errorf("after reporting, Unreported = %+v", un)
	}
}

func testOfAction(t *testing.T, s webhook.Store) {
	put(t, s, func(tx webhook.Tx) error {
		var errs []error
		for _, ep := range []string{"b", "a"} {
			d := sampleDelivery(ep, "act", webhook.Pending, at(0))
			errs = append(errs, tx.PutDelivery(d))
			for _, n := range []int{2, 1, 10} {
				errs = append(errs, tx.PutAttempt(webhook.Attempt{DeliveryID: d.ID, ActionID: "act", EndpointID: ep, N: n, StartedAt: at(0), Outcome: webhook.Retry}))
			}
		}
		errs = append(errs, tx.PutDelivery(sampleDelivery("a", "other", webhook.Pending, at(0))))
		return errors.Join(errs...)
	})
	dels, err := s.DeliveriesOf(ctx, "act")
	if err != nil || len(dels) != 2 || dels[0].EndpointID != "a" || dels[1].EndpointID != "b" {
		t.Errorf("DeliveriesOf = %+v, %v; want a then b", dels, err)
	}
	atts, err := s.AttemptsOf(ctx, "act")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range atts {
		got = append(got, fmt.Sprintf("%s/%d", a.EndpointID, a.N))
	}
	if want := []string{"a/1", "a/2", "a/10", "b/1", "b/2", "b/10"}; !slices.Equal(got, want) {
		t.Errorf("AttemptsOf = %q, want %q", got, want)
	}
}

func testActions(t *testing.T, s webhook.Store) {
	put(t, s, func(tx webhook.Tx) error {
		var errs []error
		for i, id := range []string{"c", "a", "b", "d", "e"} {
			tm := at(time.Duration(i/2) * time.Minute) // c,a at 0; b,d at 1m; e at 2m
			errs = append(errs, tx.PutAction(webhook.Action{ID: id, Kind: "tenant.provision", Domain: governor.MultiTenant, Tenant: "acme", Subject: "default", Time: tm}))
		}
		return errors.Join(errs...)
	})
	ids := func(as []webhook.Action) []string {
		var out []string
		for _, a := range as {
			out = append(out, a.ID)
		}
		return out
	}
	all, err := s.Actions(ctx, at(0), at(2*time.Minute), time.Time{}, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a", "c", "b", "d"}; !slices.Equal(ids(all), want) {
		t.Errorf("Actions[0, 2m) = %q, want %q", ids(all), want)
	}
	page, err := s.Actions(ctx, at(0), at(3*time.Minute), at(0), "c", 2)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"b", "d"}; !slices.Equal(ids(page), want) {
		t.Errorf("Actions after c, limit 2 = %q, want %q", ids(page), want)
	}
}

// testDeliverer runs the delivery logic on the store: a tenant's actions
// reach an endpoint in order while the first is retried, on a controlled
// clock, each with its own webhook-id on every attempt.
func testDeliverer(t *testing.T, s webhook.Store) {
	clock := NewClock()
	pub := &Publisher{}
	kinds := webhook.KindsOf(machines.New(nil))
	d, err := webhook.New(webhook.Options{
		Store: s, Publisher: pub, Topics: topic.Names{}, Kinds: kinds, Guard: &webhook.Guard{AllowLoopback: true},
		InlineSecrets: true, Clock: clock.Now, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	recv := NewReceiver(t)
	recv.Respond(func(r Request, seen int) (int, string) {
		if r.ID == "first" && seen < 2 {
			return http.StatusServiceUnavailable, "busy"
		}
		return http.StatusOK, "ok"
	})
	if _, _, err := d.PutEndpoint(ctx, webhook.Endpoint{ID: "ops", URL: recv.URL, Kinds: []string{webhook.AllKinds}, Secrets: []string{webhook.NewSecret().Encode()}}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"first", "second", "third"} {
		a := ActionSpec{ID: id, Domain: governor.MultiTenant, Kind: "tenant.provision", Tenant: "acme", Time: clock.Now()}.Action(t, kinds)
		acc, err := d.Accept(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		d.Dispatch(acc.Heads...).Wait(ctx)
	}
	for range 10 {
		clock.Advance(time.Hour)
		if _, err := d.Sweep(ctx, 0); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := recv.IDs(), []string{"first", "first", "first", "second", "third"}; !slices.Equal(got, want) {
		t.Errorf("webhook-ids received = %q, want %q", got, want)
	}
	h, err := d.History(ctx, "first")
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Attempts) != 3 || h.Deliveries[0].State != webhook.Succeeded {
		t.Errorf("history of first: %d attempts, state %s; want 3, delivered", len(h.Attempts), h.Deliveries[0].State)
	}
}
