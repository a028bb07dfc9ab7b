package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	fs "cloud.google.com/go/firestore"
	ps "cloud.google.com/go/pubsub/v2"

	"github.com/autonomics/autonomics/shared/engine"
	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/machines"
	"github.com/autonomics/autonomics/shared/pubsub"
	"github.com/autonomics/autonomics/shared/store"
	"github.com/autonomics/autonomics/shared/topic"
	"github.com/autonomics/autonomics/shared/webhook"
	"github.com/autonomics/autonomics/shared/webhook/fswebhook"
	"github.com/autonomics/autonomics/shared/webhook/webhooktest"
)

const emulatorProject = "demo-autonomics"

// TestEmulatorActuationFailedReachesTheGovernorsInternalTopic runs the
// actuator on the emulators as it is deployed: the Pub/Sub emulator pushes
// the actions topic to it, its state is in Firestore, and a permanent
// refusal comes back to the billing governor's internal topic as an
// actuation_failed event its machine accepts, while the next action of the
// tenant is delivered.
func TestEmulatorActuationFailedReachesTheGovernorsInternalTopic(t *testing.T) {
	if os.Getenv("FIRESTORE_EMULATOR_HOST") == "" || os.Getenv("PUBSUB_EMULATOR_HOST") == "" {
		t.Skip("FIRESTORE_EMULATOR_HOST and PUBSUB_EMULATOR_HOST are not both set: start the emulators (make emulators)")
	}
	ctx := context.Background()
	var b [4]byte
	_, _ = rand.Read(b[:])
	prefix := "act" + hex.EncodeToString(b[:]) + "-"
	topics := topic.Names{Prefix: prefix}
	fc, err := fs.NewClientWithDatabase(ctx, emulatorProject, "actuator-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fc.Close() })
	pc, err := ps.NewClient(ctx, emulatorProject)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	st, err := fswebhook.New(fc, fswebhook.Options{Namespace: prefix[:len(prefix)-1], MaxAttempts: 200})
	if err != nil {
		t.Fatal(err)
	}
	pub := pubsub.NewPublisher(pc, pubsub.PublisherOptions{DelayThreshold: time.Millisecond})
	t.Cleanup(pub.Close)
	log := slog.New(slog.DiscardHandler)
	d, err := webhook.New(webhook.Options{
		Store: st, Publisher: pub, Topics: topics, Kinds: webhook.KindsOf(machines.New(nil)),
		Guard: &webhook.Guard{AllowLoopback: true}, InlineSecrets: true, Logger: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer((&server{d: d, publisher: pub, topics: topics, log: log, inlineWait: 5 * time.Second}).handler())
	t.Cleanup(srv.Close)
	t.Cleanup(func() { _ = d.Wait(ctx) })

	recv := webhooktest.NewReceiver(t)
	recv.Respond(func(r webhooktest.Request, _ int) (int, string) {
		if r.ID == "inv-1" {
			return http.StatusUnprocessableEntity, "unknown customer"
		}
		return http.StatusOK, "ok"
	})
	if _, _, err := d.PutEndpoint(ctx, webhook.Endpoint{ID: "billing", URL: recv.URL, Kinds: []string{"billing.issue_invoice"}, Secrets: []string{webhook.NewSecret().Encode()}}); err != nil {
		t.Fatal(err)
	}
	internal := prefix + "billing-internal-tail"
	if err := pubsub.Ensure(ctx, pc, emulatorProject, topics.All(), []pubsub.Subscription{
		{Name: topic.Push(topics.Actions()), Topic: topics.Actions(), PushEndpoint: srv.URL + "/v1/actions/push", Ordered: true},
		{Name: internal, Topic: topics.Internal(governor.Billing), Ordered: true},
	}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"inv-1", "inv-2"} {
		m := webhooktest.ActionSpec{ID: id, Domain: governor.Billing, Kind: "billing.issue_invoice", Tenant: "acme", Subject: "2026-03", Time: time.Now().UTC(), Data: `{"amount_cents":1200}`}.Message()
		if err := pub.Publish(ctx, store.Message{Topic: topics.Actions(), Data: m.Data, Attributes: m.Attributes, OrderingKey: "acme"}); err != nil {
			t.Fatal(err)
		}
	}

	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var mu sync.Mutex
	var got []*ps.Message
	err = pubsub.Receive(rctx, pc, internal, func(_ context.Context, m *ps.Message) {
		m.Ack()
		mu.Lock()
		got = append(got, m)
		mu.Unlock()
		cancel()
	})
	if err != nil && rctx.Err() == nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) == 0 {
		t.Fatal("no actuation_failed event reached the billing internal topic")
	}
	ev, err := event.Decode(event.Message{Data: got[0].Data, Attributes: got[0].Attributes})
	if err != nil {
		t.Fatalf("the governor cannot decode the event: %v", err)
	}
	m := machines.New(nil)[governor.Billing]
	if err := m.CheckEvent(ev); err != nil {
		t.Errorf("the billing machine refuses it: %v", err)
	}
	if s, err := engine.SenderOf(true, ev); err != nil || !m.May(s, ev.Name) {
		t.Errorf("sender %s (%v) may not send %s", s, err, ev.Name)
	}
	if ev.ID != webhook.FailureID("inv-1", "billing", 1) || ev.Tenant != "acme" || ev.Subject != "2026-03" || got[0].OrderingKey != "acme" {
		t.Errorf("event %+v (ordering key %q)", ev, got[0].OrderingKey)
	}
	recv.WaitFor(t, 2)
	if ids := recv.IDs(); ids[0] != "inv-1" || ids[1] != "inv-2" {
		t.Errorf("receiver got %q, want inv-1 then inv-2", ids)
	}
}
