package firestore

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	fs "cloud.google.com/go/firestore"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/store"
)

// backfillStore returns a Store of the emulator in a project of its own:
// the backfills read whole collections. It skips the test when
// FIRESTORE_EMULATOR_HOST is not set.
func backfillStore(t *testing.T) *Store {
	t.Helper()
	emulatorClient(t)
	project := fmt.Sprintf("firestore-backfill-%08x", rand.Uint32())
	c, err := fs.NewClient(t.Context(), project)
	if err != nil {
		t.Fatalf("firestore.NewClient(%q) = %v", project, err)
	}
	t.Cleanup(func() { c.Close() })
	return New(c, Options{})
}

// backfillNow is the time the seeded timers fall due before.
var backfillNow = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

// seedTimers writes n timers as a version before the shard field wrote
// them (without shard) and returns them in DueTimers order.
func seedTimers(t *testing.T, s *Store, prefix string, n int) []store.TimerEntry {
	t.Helper()
	out := make([]store.TimerEntry, n)
	for i := range out {
		id := fmt.Sprintf("%s-%03d", prefix, i)
		out[i] = store.TimerEntry{
			Timer: governor.Timer{Name: "retry", ID: id, Due: backfillNow.Add(-time.Duration(n-i) * time.Minute)},
			Key:   governor.Key{Tenant: "acme", Domain: governor.Billing, Subject: id},
		}
		doc := timerDoc(out[i])
		delete(doc, "shard")
		if _, err := s.timerRef(id).Set(t.Context(), doc); err != nil {
			t.Fatalf("Set(timers/%s) = %v", id, err)
		}
	}
	return out
}

// legacySeed is an entry of the former global outbox as the test writes it.
type legacySeed struct {
	id        string
	msg       store.Message
	createdAt time.Time
	position  int
	delivered bool
}

// seedLegacyOutbox writes decisions entries of the former global outbox,
// two per decision (a receipt and an action, in that position), the
// decisions of index i%3 == 0 delivered, and returns the undelivered ones
// in the order the previous sweep published them.
func seedLegacyOutbox(t *testing.T, s *Store, decisions int) (undelivered []legacySeed) {
	t.Helper()
	for i := range decisions {
		createdAt := backfillNow.Add(-time.Duration(decisions-i) * time.Second)
		tenant := fmt.Sprintf("tenant-%d", i%2)
		for pos, kind := range []string{"receipt", "action"} {
			// Ids that do not sort in publishing order.
			id := fmt.Sprintf("%s-%03d", kind, decisions-i)
			e := legacySeed{
				id: id,
				msg: store.Message{
					Topic:       "autonomics-" + kind + "s",
					Data:        []byte(fmt.Sprintf(`{"n":%d,"kind":%q}`, i, kind)),
					Attributes:  map[string]string{"ce-id": id, "ce-tenantid": tenant, "domain": "billing"},
					OrderingKey: tenant,
				},
				createdAt: createdAt,
				position:  pos,
				delivered: i%3 == 0,
			}
			doc := map[string]any{
				"topic":        e.msg.Topic,
				"data":         e.msg.Data,
				"attributes":   map[string]any{"ce-id": id, "ce-tenantid": tenant, "domain": "billing"},
				"ordering_key": e.msg.OrderingKey,
				"receipt_hash": fmt.Sprintf("hash-%d", i),
				"created_at":   e.createdAt,
				"delivered":    e.delivered,
				"position":     int64(e.position),
			}
			if _, err := s.c.Collection(colLegacyOutbox).Doc(id).Set(t.Context(), doc); err != nil {
				t.Fatalf("Set(outbox/%s) = %v", id, err)
			}
			if !e.delivered {
				undelivered = append(undelivered, e)
			}
		}
	}
	return undelivered
}

// publisher records the messages published through it; the calls listed
// in fail (counted from 1) fail.
type publisher struct {
	mu    sync.Mutex
	calls int
	fail  map[int]bool
	msgs  []store.Message
}

func (p *publisher) publish(_ context.Context, m store.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	if p.fail[p.calls] {
		return errors.New("pubsub: unavailable")
	}
	p.msgs = append(p.msgs, m)
	return nil
}

// checkPublishedOnce checks that got holds every message of want exactly
// once, attributes and ordering key included, and nothing else.
func checkPublishedOnce(t *testing.T, got []store.Message, want []legacySeed) {
	t.Helper()
	byID := map[string]store.Message{}
	for _, m := range got {
		id := m.Attributes["ce-id"]
		if _, dup := byID[id]; dup {
			t.Errorf("outbox/%s published twice", id)
		}
		byID[id] = m
	}
	for _, e := range want {
		m, ok := byID[e.id]
		if !ok {
			t.Errorf("outbox/%s not published", e.id)
			continue
		}
		if m.Topic != e.msg.Topic || string(m.Data) != string(e.msg.Data) || m.OrderingKey != e.msg.OrderingKey || !maps.Equal(m.Attributes, e.msg.Attributes) {
			t.Errorf("outbox/%s published as %+v, want %+v", e.id, m, e.msg)
		}
		delete(byID, e.id)
	}
	for id := range byID {
		t.Errorf("outbox/%s published, want it left alone (delivered before)", id)
	}
}

// checkDelivered checks that every legacy entry is marked delivered.
func checkDelivered(t *testing.T, s *Store) {
	t.Helper()
	snaps, err := s.c.Collection(colLegacyOutbox).Where("delivered", "==", false).Documents(t.Context()).GetAll()
	if err != nil || len(snaps) != 0 {
		t.Errorf("outbox where delivered == false = %d documents, %v; want none", len(snaps), err)
	}
}

func TestTimerWithoutShardIsFoundAfterBackfill(t *testing.T) {
	tests := []struct {
		name string
		// old and current are the timers written without and with shard.
		old, current, page int
	}{
		{"one page", 7, 2, 0},
		{"several pages", 7, 2, 3},
		{"whole pages", 4, 2, 3},
		{"only current timers", 0, 3, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := backfillStore(t)
			old := seedTimers(t, s, "old", tt.old)
			var current []store.TimerEntry
			for i := range tt.current {
				e := store.TimerEntry{
					Timer: governor.Timer{Name: "grace", ID: fmt.Sprintf("new-%03d", i), Due: backfillNow.Add(-time.Hour)},
					Key:   governor.Key{Tenant: "acme", Domain: governor.Billing, Subject: "current"},
				}
				if _, err := s.timerRef(e.ID).Set(t.Context(), timerDoc(e)); err != nil {
					t.Fatal(err)
				}
				current = append(current, e)
			}
			if got, err := s.DueTimers(t.Context(), backfillNow, 0); err != nil || len(got) != tt.current {
				t.Fatalf("DueTimers before the backfill = %d timers, %v; want the %d written with their shard", len(got), err, tt.current)
			}
			b, err := s.BackfillTimerShards(t.Context(), BackfillOptions{Page: tt.page})
			if want := (Backfill{Read: tt.old + tt.current, Pending: tt.old, Updated: tt.old}); err != nil || b != want {
				t.Fatalf("BackfillTimerShards(page %d) = %+v, %v; want %+v, nil", tt.page, b, err, want)
			}
			got, err := s.DueTimers(t.Context(), backfillNow, 0)
			want := append(current, old...)
			slices.SortFunc(want, compareTimers)
			if err != nil || !slices.Equal(got, want) {
				t.Errorf("DueTimers after the backfill = %v, %v; want %v", got, err, want)
			}
			for _, e := range old {
				snap, err := s.timerRef(e.ID).Get(t.Context())
				if err != nil || newDecoder(snap).int("shard") != int64(store.Shard(e.ID)) || newDecoder(snap).str("name") != e.Name {
					t.Errorf("timers/%s = %v, %v; want its fields and shard %d", e.ID, snap.Data(), err, store.Shard(e.ID))
				}
			}
		})
	}
}

// TestTimerWithWrongShardIsCorrected: a shard of another value or type
// hides a timer as much as a missing one.
func TestTimerWithWrongShardIsCorrected(t *testing.T) {
	s := backfillStore(t)
	old := seedTimers(t, s, "wrong", 2)
	for i, v := range []any{int64((store.Shard(old[0].ID) + 1) % store.Shards), "3"} {
		if _, err := s.timerRef(old[i].ID).Update(t.Context(), []fs.Update{{Path: "shard", Value: v}}); err != nil {
			t.Fatal(err)
		}
	}
	b, err := s.BackfillTimerShards(t.Context(), BackfillOptions{})
	if want := (Backfill{Read: 2, Pending: 2, Updated: 2}); err != nil || b != want {
		t.Fatalf("BackfillTimerShards = %+v, %v; want %+v, nil", b, err, want)
	}
	if got, err := s.DueTimers(t.Context(), backfillNow, 0); err != nil || !slices.Equal(got, old) {
		t.Errorf("DueTimers after the backfill = %v, %v; want %v", got, err, old)
	}
}

func TestLegacyOutboxIsPublishedOnce(t *testing.T) {
	for _, page := range []int{0, 1, 4, 6} {
		t.Run(fmt.Sprintf("page %d", page), func(t *testing.T) {
			s := backfillStore(t)
			want := seedLegacyOutbox(t, s, 6) // 12 entries, 8 undelivered
			p := &publisher{}
			b, err := s.DrainLegacyOutbox(t.Context(), p.publish, BackfillOptions{Page: page})
			if w := (Backfill{Read: len(want), Pending: len(want), Updated: len(want)}); err != nil || b != w {
				t.Fatalf("DrainLegacyOutbox(page %d) = %+v, %v; want %+v, nil", page, b, err, w)
			}
			checkPublishedOnce(t, p.msgs, want)
			checkDelivered(t, s)
			if page == 0 {
				// One page: in the order the sweep published them.
				var order []string
				for _, m := range p.msgs {
					order = append(order, m.Attributes["ce-id"])
				}
				var wantOrder []string
				for _, e := range want {
					wantOrder = append(wantOrder, e.id)
				}
				if !slices.Equal(order, wantOrder) {
					t.Errorf("published %q, want %q", order, wantOrder)
				}
			}
		})
	}
}

func TestBackfillTwiceChangesNothing(t *testing.T) {
	s := backfillStore(t)
	seedTimers(t, s, "old", 5)
	want := seedLegacyOutbox(t, s, 4)
	p := &publisher{}
	for run, w := range []struct{ timers, outbox Backfill }{
		{Backfill{Read: 5, Pending: 5, Updated: 5}, Backfill{Read: len(want), Pending: len(want), Updated: len(want)}},
		{Backfill{Read: 5}, Backfill{}},
	} {
		tb, err := s.BackfillTimerShards(t.Context(), BackfillOptions{Page: 2})
		if err != nil || tb != w.timers {
			t.Errorf("BackfillTimerShards run %d = %+v, %v; want %+v, nil", run+1, tb, err, w.timers)
		}
		ob, err := s.DrainLegacyOutbox(t.Context(), p.publish, BackfillOptions{Page: 2})
		if err != nil || ob != w.outbox {
			t.Errorf("DrainLegacyOutbox run %d = %+v, %v; want %+v, nil", run+1, ob, err, w.outbox)
		}
	}
	checkPublishedOnce(t, p.msgs, want)
}

// TestDryRunChangesNothing: a dry run counts what a run would change and
// neither writes nor publishes.
func TestDryRunChangesNothing(t *testing.T) {
	s := backfillStore(t)
	seedTimers(t, s, "old", 3)
	want := seedLegacyOutbox(t, s, 3)
	dry := BackfillOptions{Page: 2, DryRun: true}
	tb, err := s.BackfillTimerShards(t.Context(), dry)
	if w := (Backfill{Read: 3, Pending: 3}); err != nil || tb != w {
		t.Errorf("BackfillTimerShards(dry run) = %+v, %v; want %+v, nil", tb, err, w)
	}
	ob, err := s.DrainLegacyOutbox(t.Context(), nil, dry)
	if w := (Backfill{Read: len(want), Pending: len(want)}); err != nil || ob != w {
		t.Errorf("DrainLegacyOutbox(dry run) = %+v, %v; want %+v, nil", ob, err, w)
	}
	if got, err := s.DueTimers(t.Context(), backfillNow, 0); err != nil || len(got) != 0 {
		t.Errorf("DueTimers after a dry run = %v, %v; want none", got, err)
	}
	p := &publisher{}
	if ob, err := s.DrainLegacyOutbox(t.Context(), p.publish, BackfillOptions{}); err != nil || ob.Updated != len(want) {
		t.Errorf("DrainLegacyOutbox after a dry run = %+v, %v; want %d published", ob, err, len(want))
	}
}

func TestPublishFailureResumes(t *testing.T) {
	// 6 decisions: 8 undelivered entries, in pages of 3.
	const undelivered, page = 8, 3
	tests := []struct {
		name string
		// fail is the publish call that fails.
		fail int
	}{
		{"first entry", 1},
		{"within the first page", 2},
		{"first of the second page", page + 1},
		{"last entry", undelivered},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := backfillStore(t)
			want := seedLegacyOutbox(t, s, 6)
			if len(want) != undelivered {
				t.Fatalf("seeded %d undelivered entries, want %d", len(want), undelivered)
			}
			p := &publisher{fail: map[int]bool{tt.fail: true}}
			b, err := s.DrainLegacyOutbox(t.Context(), p.publish, BackfillOptions{Page: page})
			if fault.ErrorCode(err) != fault.Unavailable || b.Updated != tt.fail-1 {
				t.Fatalf("DrainLegacyOutbox with call %d failing = %+v, %v; want %d marked and an unavailable error", tt.fail, b, err, tt.fail-1)
			}
			if len(p.msgs) != tt.fail-1 {
				t.Fatalf("published %d before the failure, want %d", len(p.msgs), tt.fail-1)
			}
			b, err = s.DrainLegacyOutbox(t.Context(), p.publish, BackfillOptions{Page: page})
			if rest := undelivered - (tt.fail - 1); err != nil || b != (Backfill{Read: rest, Pending: rest, Updated: rest}) {
				t.Fatalf("DrainLegacyOutbox rerun = %+v, %v; want the %d left published", b, err, rest)
			}
			checkPublishedOnce(t, p.msgs, want)
			checkDelivered(t, s)
		})
	}
}

// TestMalformedLegacyEntryStopsTheDrain: an entry that is not an outbox
// entry fails the drain with an internal error before its page is
// published.
func TestMalformedLegacyEntryStopsTheDrain(t *testing.T) {
	tests := []struct {
		name string
		doc  map[string]any
	}{
		{"no topic", map[string]any{"delivered": false, "data": []byte("x")}},
		{"data not bytes", map[string]any{"delivered": false, "topic": "t", "data": 3}},
		{"attribute not a string", map[string]any{"delivered": false, "topic": "t", "attributes": map[string]any{"a": 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := backfillStore(t)
			if _, err := s.c.Collection(colLegacyOutbox).Doc("bad").Set(t.Context(), tt.doc); err != nil {
				t.Fatal(err)
			}
			p := &publisher{}
			_, err := s.DrainLegacyOutbox(t.Context(), p.publish, BackfillOptions{})
			if fault.ErrorCode(err) != fault.Internal || len(p.msgs) != 0 {
				t.Errorf("DrainLegacyOutbox over %v = %v, %d published; want an internal error, none", tt.doc, err, len(p.msgs))
			}
		})
	}
}

// TestBackfillPageOutOfRangeIsInvalid needs no emulator: the page is
// checked before anything is read.
func TestBackfillPageOutOfRangeIsInvalid(t *testing.T) {
	s := New(nil, Options{})
	p := &publisher{}
	for _, page := range []int{-1, MaxBackfillPage + 1} {
		if _, err := s.BackfillTimerShards(t.Context(), BackfillOptions{Page: page}); fault.ErrorCode(err) != fault.Invalid {
			t.Errorf("BackfillTimerShards(page %d) = %v, want an invalid error", page, err)
		}
		if _, err := s.DrainLegacyOutbox(t.Context(), p.publish, BackfillOptions{Page: page}); fault.ErrorCode(err) != fault.Invalid {
			t.Errorf("DrainLegacyOutbox(page %d) = %v, want an invalid error", page, err)
		}
	}
	if _, err := s.DrainLegacyOutbox(t.Context(), nil, BackfillOptions{}); fault.ErrorCode(err) != fault.Invalid {
		t.Errorf("DrainLegacyOutbox(nil publish) = %v, want an invalid error", err)
	}
}
