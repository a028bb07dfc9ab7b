package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	fs "cloud.google.com/go/firestore"
	ps "cloud.google.com/go/pubsub/v2"

	"github.com/autonomics/autonomics/shared/platform"
	"github.com/autonomics/autonomics/shared/pubsub"
	"github.com/autonomics/autonomics/shared/store"
)

// TestBackfillUsageErrors: a command line that cannot run connects to
// nothing and exits 2.
func TestBackfillUsageErrors(t *testing.T) {
	project := func(name string) string {
		if name == platform.EnvProject {
			return "p"
		}
		return ""
	}
	tests := []struct {
		name   string
		args   []string
		getenv func(string) string
		want   string
	}{
		{"no project", []string{"backfill"}, nil, platform.EnvProject},
		{"page too small", []string{"backfill", "-page", "0"}, project, "-page 0"},
		{"page too large", []string{"backfill", "-page", "501"}, project, "-page 501"},
		{"arguments", []string{"backfill", "timers"}, project, "unexpected arguments"},
		{"unknown flag", []string{"backfill", "-url", "http://x"}, project, "not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errs := runTest(t, cliEnv{getenv: tt.getenv}, tt.args...)
			if code != exitUsage || !strings.Contains(errs, tt.want) {
				t.Errorf("%q = exit %d, stderr %q; want exit %d mentioning %q", tt.args, code, errs, exitUsage, tt.want)
			}
		})
	}
}

// backfillEmulators returns the Firestore and Pub/Sub clients of a fresh
// emulator project with the topic and pull subscription given, or skips
// the test when the emulators are not configured.
func backfillEmulators(t *testing.T, topic, sub string) (string, *fs.Client, *ps.Client) {
	t.Helper()
	if os.Getenv("FIRESTORE_EMULATOR_HOST") == "" || os.Getenv("PUBSUB_EMULATOR_HOST") == "" {
		t.Skip("FIRESTORE_EMULATOR_HOST and PUBSUB_EMULATOR_HOST not set; start the emulators with make emulators")
	}
	project := fmt.Sprintf("backfill-cli-%08x", rand.Uint32())
	fc, err := fs.NewClient(t.Context(), project)
	if err != nil {
		t.Fatalf("firestore.NewClient(%q) = %v", project, err)
	}
	t.Cleanup(func() { fc.Close() })
	pc, err := ps.NewClient(t.Context(), project)
	if err != nil {
		t.Fatalf("pubsub.NewClient(%q) = %v", project, err)
	}
	t.Cleanup(func() { pc.Close() })
	if err := pubsub.Ensure(t.Context(), pc, project, []string{topic}, []pubsub.Subscription{{Name: sub, Topic: topic}}); err != nil {
		t.Fatalf("pubsub.Ensure = %v", err)
	}
	return project, fc, pc
}

// legacyOutboxDoc is an entry of the former global outbox as the versions
// before the outbox moved into dedup markers wrote it.
func legacyOutboxDoc(m store.Message, delivered bool) map[string]any {
	attrs := map[string]any{}
	for k, v := range m.Attributes {
		attrs[k] = v
	}
	return map[string]any{
		"topic": m.Topic, "data": m.Data, "attributes": attrs, "ordering_key": m.OrderingKey,
		"receipt_hash": "h", "created_at": time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		"delivered": delivered, "position": int64(0),
	}
}

// TestBackfillCommandMigratesOldDocuments seeds a timer without shard
// and legacy outbox entries, one undelivered: a dry run counts them and
// changes nothing, a run gives the timer its shard and publishes the
// undelivered entry once, and a second run finds nothing to do.
func TestBackfillCommandMigratesOldDocuments(t *testing.T) {
	const topic, sub = "autonomics-receipts", "backfill-receipts"
	project, fc, pc := backfillEmulators(t, topic, sub)
	ctx := t.Context()
	if _, err := fc.Collection("timers").Doc("old-timer").Set(ctx, map[string]any{
		"tenant_id": "acme", "domain": "billing", "subject": "inv-1", "name": "retry", "due": time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC),
	}); err != nil {
		t.Fatal(err)
	}
	want := store.Message{Topic: topic, Data: []byte(`{"seq":1}`), Attributes: map[string]string{"ce-id": "h1", "domain": "billing"}, OrderingKey: "acme"}
	if _, err := fc.Collection("outbox").Doc("r-h1").Set(ctx, legacyOutboxDoc(want, false)); err != nil {
		t.Fatal(err)
	}
	done := store.Message{Topic: topic, Data: []byte(`{"seq":0}`), Attributes: map[string]string{"ce-id": "h0"}, OrderingKey: "acme"}
	if _, err := fc.Collection("outbox").Doc("r-h0").Set(ctx, legacyOutboxDoc(done, true)); err != nil {
		t.Fatal(err)
	}
	env := cliEnv{getenv: os.Getenv}

	code, out, errs := runTest(t, env, "backfill", "-dry-run", "-project", project)
	for _, s := range []string{"project " + project, "dry run", "timers: 1 read, 1 without their shard\n", "legacy outbox: 1 undelivered\n"} {
		if code != exitOK || !strings.Contains(out, s) {
			t.Errorf("backfill -dry-run = exit %d, stdout lacks %q:\n%s%s", code, s, out, errs)
		}
	}

	code, out, errs = runTest(t, env, "backfill", "-json", "-project", project)
	var got backfillOutput
	if err := json.Unmarshal([]byte(out), &got); err != nil || code != exitOK {
		t.Fatalf("backfill -json = exit %d, %v:\n%s%s", code, err, out, errs)
	}
	one := backfillCount{Read: 1, Pending: 1, Updated: 1}
	if got.Project != project || got.DryRun || got.Timers != one || got.LegacyOutbox != one {
		t.Errorf("backfill -json = %+v, want project %s and %+v for each step", got, project, one)
	}
	snap, err := fc.Collection("timers").Doc("old-timer").Get(ctx)
	if err != nil || snap.Data()["shard"] != int64(store.Shard("old-timer")) {
		t.Errorf("timers/old-timer = %v, %v; want shard %d", snap.Data(), err, store.Shard("old-timer"))
	}

	code, out, errs = runTest(t, env, "backfill", "-project", project)
	for _, s := range []string{"timers: 1 read, 0 without their shard, 0 given it\n", "legacy outbox: 0 undelivered, 0 published and marked delivered\n"} {
		if code != exitOK || !strings.Contains(out, s) {
			t.Errorf("second backfill = exit %d, stdout lacks %q:\n%s%s", code, s, out, errs)
		}
	}

	var (
		mu       sync.Mutex
		received []*ps.Message
	)
	rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := pubsub.Receive(rctx, pc, sub, func(_ context.Context, m *ps.Message) {
		m.Ack()
		mu.Lock()
		received = append(received, m)
		mu.Unlock()
	}); err != nil {
		t.Fatalf("Receive(%s) = %v", sub, err)
	}
	if len(received) != 1 {
		t.Fatalf("received %d messages, want the undelivered entry once", len(received))
	}
	m := received[0]
	if string(m.Data) != string(want.Data) || !maps.Equal(m.Attributes, want.Attributes) || m.OrderingKey != want.OrderingKey {
		t.Errorf("received data %s, attributes %v, ordering key %q; want %s, %v, %q",
			m.Data, m.Attributes, m.OrderingKey, want.Data, want.Attributes, want.OrderingKey)
	}
}

// TestBackfillCommandPublishFailureSaysRunAgain: an entry whose topic
// does not exist fails the run (exit 1) with the advice to run again, and
// stays undelivered.
func TestBackfillCommandPublishFailureSaysRunAgain(t *testing.T) {
	project, fc, _ := backfillEmulators(t, "autonomics-receipts", "backfill-receipts")
	m := store.Message{Topic: "no-such-topic", Data: []byte("{}"), Attributes: map[string]string{"ce-id": "x"}}
	if _, err := fc.Collection("outbox").Doc("r-x").Set(t.Context(), legacyOutboxDoc(m, false)); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runTest(t, cliEnv{getenv: os.Getenv}, "backfill", "-project", project)
	if code != exitFailure || !strings.Contains(errs, "run backfill again") || !strings.Contains(out, "legacy outbox: 1 undelivered, 0 published") {
		t.Errorf("backfill = exit %d, stdout %q, stderr %q; want exit 1 and the advice to run again", code, out, errs)
	}
	snap, err := fc.Collection("outbox").Doc("r-x").Get(t.Context())
	if err != nil || snap.Data()["delivered"] != false {
		t.Errorf("outbox/r-x = %v, %v; want it still undelivered", snap.Data(), err)
	}
}
