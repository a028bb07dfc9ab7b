package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	fs "cloud.google.com/go/firestore"
	ps "cloud.google.com/go/pubsub/v2"

	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/firestore"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/machines"
	"github.com/autonomics/autonomics/shared/memstore"
	"github.com/autonomics/autonomics/shared/pubsub"
	"github.com/autonomics/autonomics/shared/receipt"
	"github.com/autonomics/autonomics/shared/store"
	"github.com/autonomics/autonomics/shared/topic"
)

// tickStores returns the stores the tick tests run on, each empty of
// timers: the in-memory store, and the Firestore emulator under a project
// of the test's own when it is configured, so that no other test's timers
// are due there.
func tickStores(t testing.TB) map[string]func() store.Store {
	out := map[string]func() store.Store{"mem": func() store.Store { return memstore.New() }}
	if os.Getenv("FIRESTORE_EMULATOR_HOST") == "" {
		t.Log("FIRESTORE_EMULATOR_HOST not set: tick tests run on the in-memory store only")
		return out
	}
	out["emulator"] = func() store.Store {
		fc, err := fs.NewClient(context.Background(), fmt.Sprintf("tick-%x", rand.Uint64()))
		if err != nil {
			t.Fatalf("firestore client: %v", err)
		}
		t.Cleanup(func() { fc.Close() })
		return firestore.New(fc, firestore.Options{MaxAttempts: 200})
	}
	return out
}

// forEachTickStore runs f as a subtest on every tick store.
func forEachTickStore(t *testing.T, f func(t *testing.T, st store.Store)) {
	stores := tickStores(t)
	for _, name := range []string{"mem", "emulator"} {
		if mk, ok := stores[name]; ok {
			t.Run(name, func(t *testing.T) { f(t, mk()) })
		}
	}
}

// tickEngine returns an engine over st publishing to pub, its clock at now.
func tickEngine(t testing.TB, st store.Store, pub Publisher, now time.Time) *Engine {
	t.Helper()
	eng, err := New(Options{
		Store: st, Publisher: pub, Machines: machines.New(nil), Topics: topic.Names{Prefix: "tick-"},
		Clock:  func() time.Time { return now },
		Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatalf("engine.New: %v", err)
	}
	return eng
}

// armTimers stores n timers due at due, spread over tenants tenants, in
// commits of at most 400 timers; it returns their ids.
func armTimers(t testing.TB, st store.Store, n, tenants int, due time.Time) []string {
	t.Helper()
	run := rand.Uint32()
	all := make([]store.TimerEntry, n)
	ids := make([]string, n)
	for i := range all {
		k := governor.Key{Tenant: fmt.Sprintf("storm-%x-%d", run, i%tenants), Domain: governor.Subscription, Subject: "sub-1"}
		all[i] = store.TimerEntry{Key: k, Timer: governor.Timer{Name: "trial_end", ID: fmt.Sprintf("timer-%x-%05d", run, i), Due: due}}
		ids[i] = all[i].ID
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		aerr error
	)
	for n, chunk := 0, slices.Collect(slices.Chunk(all, 400)); n < len(chunk); n++ {
		wg.Go(func() {
			k := governor.Key{Tenant: fmt.Sprintf("storm-%x-arm", run), Domain: governor.Subscription, Subject: fmt.Sprintf("arm-%d", n)}
			inst := governor.Instance{Key: k, State: governor.StateNone}
			ev := governor.Event{
				ID: fmt.Sprintf("arm-%x-%d", run, n), Source: "//test/producer", Type: governor.TypeOf(k.Domain, "created"),
				Domain: k.Domain, Name: "created", Tenant: k.Tenant, Subject: k.Subject, Time: due, Data: json.RawMessage(`{}`),
			}
			r := receipt.New(inst, ev, governor.Decision{Outcome: governor.Accepted, From: inst.State, To: "active"}, due)
			next := inst
			next.State, next.Version, next.LastHash, next.UpdatedAt = "active", r.Seq, r.Hash, due
			err := st.RunTx(context.Background(), func(ctx context.Context, tx store.Tx) error {
				return tx.Write(store.Changes{Instance: next, Receipt: r, ArmTimers: chunk[n]})
			})
			if err != nil {
				mu.Lock()
				aerr = errors.Join(aerr, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if aerr != nil {
		t.Fatalf("arming %d timers: %v", n, aerr)
	}
	return ids
}

// countingPublisher counts the timeouts published per event id; once
// failAfter publications succeeded (when failAfter > 0) every further one
// fails, and each publication sleeps delay first.
type countingPublisher struct {
	mu        sync.Mutex
	ids       map[string]int
	ok        int
	failAfter int
	delay     time.Duration
}

func (p *countingPublisher) Publish(ctx context.Context, m store.Message) error {
	if p.delay > 0 {
		time.Sleep(p.delay)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failAfter > 0 && p.ok >= p.failAfter {
		return errors.New("injected publish failure")
	}
	if p.ids == nil {
		p.ids = map[string]int{}
	}
	p.ids[m.Attributes["ce-id"]]++
	p.ok++
	return nil
}

// heal makes every later publication succeed.
func (p *countingPublisher) heal() { p.mu.Lock(); p.failAfter = 0; p.mu.Unlock() }

// check fails the test unless every id in want was published exactly
// once and nothing else was.
func (p *countingPublisher) check(t *testing.T, want []string) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.ids) != len(want) {
		t.Errorf("published %d distinct timeouts, want %d", len(p.ids), len(want))
	}
	for _, id := range want {
		if n := p.ids[id]; n != 1 {
			t.Errorf("timeout %s published %d times, want 1", id, n)
		}
	}
}

// stillDue returns how many timers are due at now.
func stillDue(t *testing.T, st store.Store, now time.Time) int {
	t.Helper()
	due, err := st.DueTimers(context.Background(), now, 0)
	if err != nil {
		t.Fatalf("DueTimers = %v", err)
	}
	return len(due)
}

func TestTickDrainsABacklogOfSeveralBatches(t *testing.T) {
	forEachTickStore(t, func(t *testing.T, st store.Store) {
		now := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
		ids := armTimers(t, st, 2*TickBatch+3, 50, now.Add(-time.Minute))
		pub := &countingPublisher{}
		n, err := tickEngine(t, st, pub, now).Tick(context.Background(), 0)
		if err != nil || n != len(ids) {
			t.Fatalf("Tick = %d, %v, want %d, nil", n, err, len(ids))
		}
		pub.check(t, ids)
		if left := stillDue(t, st, now); left != 0 {
			t.Errorf("%d timers still due after Tick, want 0", left)
		}
	})
}

func TestTickLimitBoundsTheTimersFired(t *testing.T) {
	forEachTickStore(t, func(t *testing.T, st store.Store) {
		now := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
		ids := armTimers(t, st, 30, 7, now)
		pub := &countingPublisher{}
		eng := tickEngine(t, st, pub, now)
		if n, err := eng.Tick(context.Background(), 12); err != nil || n != 12 {
			t.Fatalf("Tick(12) = %d, %v, want 12, nil", n, err)
		}
		if left := stillDue(t, st, now); left != len(ids)-12 {
			t.Errorf("%d timers still due after Tick(12), want %d", left, len(ids)-12)
		}
		if n, err := eng.Tick(context.Background(), 0); err != nil || n != len(ids)-12 {
			t.Fatalf("second Tick = %d, %v, want %d, nil", n, err, len(ids)-12)
		}
		pub.check(t, ids)
	})
}

func TestTickPublishOutageLosesNoTimer(t *testing.T) {
	forEachTickStore(t, func(t *testing.T, st store.Store) {
		now := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
		ids := armTimers(t, st, 700, 20, now)
		pub := &countingPublisher{failAfter: 100}
		eng := tickEngine(t, st, pub, now)
		n, err := eng.Tick(context.Background(), 0)
		if fault.ErrorCode(err) != fault.Unavailable || n != 100 {
			t.Fatalf("Tick during an outage = %d, %v, want 100 and an Unavailable error", n, err)
		}
		// The published timers are gone; every other one is still armed.
		if left := stillDue(t, st, now); left != len(ids)-100 {
			t.Errorf("%d timers still due after the outage, want %d", left, len(ids)-100)
		}
		pub.heal()
		if n, err := eng.Tick(context.Background(), 0); err != nil || n != len(ids)-100 {
			t.Fatalf("Tick after the outage = %d, %v, want %d, nil", n, err, len(ids)-100)
		}
		pub.check(t, ids)
	})
}

func TestTickBudgetSpentLeavesTheRestForTheNextCall(t *testing.T) {
	forEachTickStore(t, func(t *testing.T, st store.Store) {
		now := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
		ids := armTimers(t, st, 300, 10, now)
		pub := &countingPublisher{}
		eng := tickEngine(t, st, pub, now)
		if n, err := eng.TickWithin(context.Background(), 0, 0); err != nil || n != 0 {
			t.Fatalf("TickWithin(budget 0) = %d, %v, want 0, nil", n, err)
		}
		// Every publication outlasts the budget: no goroutine starts a
		// second one, so at most TickInFlight fire.
		pub.delay = 20 * time.Millisecond
		n, err := eng.TickWithin(context.Background(), 0, time.Millisecond)
		if err != nil || n > TickInFlight {
			t.Fatalf("TickWithin(budget 1ms) = %d, %v, want at most %d, nil", n, err, TickInFlight)
		}
		if left := stillDue(t, st, now); left != len(ids)-n {
			t.Errorf("%d timers still due, want %d", left, len(ids)-n)
		}
		pub.delay = 0
		if m, err := eng.Tick(context.Background(), 0); err != nil || m != len(ids)-n {
			t.Fatalf("next Tick = %d, %v, want %d, nil", m, err, len(ids)-n)
		}
		pub.check(t, ids)
	})
}

func TestTickCancelledContextFiresNothing(t *testing.T) {
	forEachTickStore(t, func(t *testing.T, st store.Store) {
		now := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
		ids := armTimers(t, st, 5, 5, now)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		pub := &countingPublisher{}
		n, err := tickEngine(t, st, pub, now).Tick(ctx, 0)
		if fault.ErrorCode(err) != fault.Unavailable || n != 0 {
			t.Fatalf("Tick(cancelled) = %d, %v, want 0 and an Unavailable error", n, err)
		}
		if left := stillDue(t, st, now); left != len(ids) {
			t.Errorf("%d timers still due, want %d", left, len(ids))
		}
	})
}

// failingDeletes is a store whose DeleteTimers fails while down is set,
// as a Tick that crashes between publishing and deleting leaves it.
type failingDeletes struct {
	store.Store
	down atomic.Bool
}

func (s *failingDeletes) DeleteTimers(ctx context.Context, ids ...string) error {
	if s.down.Load() {
		return fault.Errorf(fault.Unavailable, "test.DeleteTimers", "injected delete failure")
	}
	return s.Store.DeleteTimers(ctx, ids...)
}

func TestTickCrashBeforeDeleteRefiresOnce(t *testing.T) {
	for name, mk := range tickStores(t) {
		t.Run(name, func(t *testing.T) {
			var pc *ps.Client
			if name == "emulator" {
				if os.Getenv("PUBSUB_EMULATOR_HOST") == "" {
					t.Skip("PUBSUB_EMULATOR_HOST not set")
				}
				var err error
				if pc, err = ps.NewClient(context.Background(), emulatorProject); err != nil {
					t.Fatalf("pubsub client: %v", err)
				}
				t.Cleanup(func() { pc.Close() })
			}
			st := &failingDeletes{Store: mk()}
			h := newHarness(t, name, st, pc)
			tenant := newTenant(t)
			k := governor.Key{Tenant: tenant, Domain: governor.Subscription, Subject: "sub-1"}
			h.apply(t, ev(tenant, governor.Subscription, "created", "sub-1", `{"plan":"gold","trial_days":3}`))
			h.clock.Add(4 * 24 * time.Hour)

			st.down.Store(true)
			mark := len(h.pub.msgs)
			if _, err := h.eng.Tick(context.Background(), 0); fault.ErrorCode(err) != fault.Unavailable {
				t.Fatalf("Tick with failing deletes = %v, want an Unavailable error", err)
			}
			first := h.pub.msgs[mark:]
			if len(first) != 1 || first[0].Attributes["ce-type"] != "autonomics.subscription.timeout.trial_end" {
				t.Fatalf("Tick published %d messages, want the trial_end timeout", len(first))
			}
			chain := h.chainLen(t, k)

			// The timer is still stored: the next tick fires it again,
			// with the same event id, and the governor applies it once.
			st.down.Store(false)
			mark = len(h.pub.msgs)
			if n, err := h.eng.Tick(context.Background(), 0); err != nil || n != 1 {
				t.Fatalf("Tick after the crash = %d, %v, want 1, nil", n, err)
			}
			again := h.pub.msgs[mark:]
			if len(again) != 1 || again[0].Attributes["ce-id"] != first[0].Attributes["ce-id"] {
				t.Fatalf("re-fired %d messages, want the same timeout again", len(again))
			}
			for i, m := range []store.Message{first[0], again[0]} {
				rs, err := h.eng.Apply(context.Background(), mustDecode(t, m))
				if err != nil || len(rs) != 1 || rs[0].Duplicate != (i == 1) {
					t.Fatalf("applying timeout %d = %+v, %v, want duplicate %v", i+1, rs, err, i == 1)
				}
			}
			if got := h.instance(t, k).State; got != "active" {
				t.Errorf("subscription after trial_end = %s, want active", got)
			}
			if got := h.chainLen(t, k); got != chain+1 {
				t.Errorf("chain after the timeout fired twice = %d receipts, want %d", got, chain+1)
			}
			if n, err := h.eng.Tick(context.Background(), 0); err != nil || n != 0 {
				t.Errorf("third Tick = %d, %v, want 0, nil", n, err)
			}
		})
	}
}

// mustDecode decodes a published message into its event.
func mustDecode(t *testing.T, m store.Message) governor.Event {
	t.Helper()
	e, err := event.Decode(event.Message{Data: m.Data, Attributes: m.Attributes})
	if err != nil {
		t.Fatalf("decoding %s: %v", m.Topic, err)
	}
	return e
}

// BenchmarkTickStorm arms 10,000 timers due now over 1,000 tenants on the
// emulators and times one Tick draining them, publishing to the Pub/Sub
// emulator.
func BenchmarkTickStorm(b *testing.B) {
	if os.Getenv("FIRESTORE_EMULATOR_HOST") == "" || os.Getenv("PUBSUB_EMULATOR_HOST") == "" {
		b.Skip("FIRESTORE_EMULATOR_HOST / PUBSUB_EMULATOR_HOST not set")
	}
	const timers, tenants = 10000, 1000
	st := tickStores(b)["emulator"]()
	pc, err := ps.NewClient(context.Background(), emulatorProject)
	if err != nil {
		b.Fatalf("pubsub client: %v", err)
	}
	b.Cleanup(func() { pc.Close() })
	names := topic.Names{Prefix: "tick-"}
	if err := pubsub.Ensure(context.Background(), pc, emulatorProject, names.All(), nil); err != nil {
		b.Fatalf("Ensure topics: %v", err)
	}
	pub := pubsub.NewPublisher(pc, pubsub.PublisherOptions{})
	b.Cleanup(pub.Close)
	now := time.Now().UTC()
	eng := tickEngine(b, st, pub, now)
	var total time.Duration
	for range b.N {
		b.StopTimer()
		armTimers(b, st, timers, tenants, now.Add(-time.Second))
		b.StartTimer()
		start := time.Now()
		n, err := eng.Tick(context.Background(), 0)
		total += time.Since(start)
		if err != nil || n != timers {
			b.Fatalf("Tick = %d, %v, want %d, nil", n, err, timers)
		}
	}
	b.ReportMetric(float64(timers*b.N)/total.Seconds(), "timers/s")
}
