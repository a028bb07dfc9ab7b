package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/receipt"
	"github.com/autonomics/autonomics/shared/store"
)

// Concurrency is the number of goroutines of the concurrency test.
const Concurrency = 10

// RunConformanceTests runs the conformance suite, one subtest per
// behaviour, each on a store returned by newStore. newStore may return the
// same store every time or a store sharing data with other tests.
func RunConformanceTests(t *testing.T, newStore func(t *testing.T) store.Store) {
	t.Helper()
	tests := []struct {
		name string
		run  func(f *fixture)
	}{
		{"MissingInstance", testMissingInstance},
		{"InstanceRoundTrip", testInstanceRoundTrip},
		{"InstanceOverwrite", testInstanceOverwrite},
		{"Dedup", testDedup},
		{"Chain", testChain},
		{"ReceiptRoundTrip", testReceiptRoundTrip},
		{"Receipts", testReceipts},
		{"ReceiptsPagination", testReceiptsPagination},
		{"ReceiptsInvalidQuery", testReceiptsInvalidQuery},
		{"ReceiptsByExecution", testReceiptsByExecution},
		{"ReceiptsNewest", testReceiptsNewest},
		{"ReceiptsNewestPagination", testReceiptsNewestPagination},
		{"ReceiptsByCorrelation", testReceiptsByCorrelation},
		{"Tenants", testTenants},
		{"TenantsInvalidQuery", testTenantsInvalidQuery},
		{"ConcurrentFirstInstances", testConcurrentFirstInstances},
		{"Outbox", testOutbox},
		{"Undelivered", testUndelivered},
		{"OutboxWithoutMarker", testOutboxWithoutMarker},
		{"MarkDeliveredSeveral", testMarkDeliveredSeveral},
		{"Swept", testSwept},
		{"Timers", testTimers},
		{"MoveTimer", testMoveTimer},
		{"ManyTimers", testManyTimers},
		{"DeleteTimersInvalidID", testDeleteTimersInvalidID},
		{"Instances", testInstances},
		{"InvalidKeys", testInvalidKeys},
		{"ErrorAbortsTx", testErrorAbortsTx},
		{"WriteTwice", testWriteTwice},
		{"ReadAfterWrite", testReadAfterWrite},
		{"InvalidChanges", testInvalidChanges},
		{"DuplicateSeq", testDuplicateSeq},
		{"ConcurrentUpdates", testConcurrentUpdates},
		{"CancelledContext", testCancelledContext},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.run(newFixture(t, newStore(t)))
		})
	}
}

// testSource is the event source of the suite's events.
const testSource = "//autonomics.test/storetest"

// fixture is the state of one test: the store, a tenant id unique to the
// test and a base time in a window of the past unique to the test.
type fixture struct {
	*testing.T
	s      store.Store
	ctx    context.Context
	tenant string
	base   time.Time
}

var unsafeID = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func newFixture(t *testing.T, s store.Store) *fixture {
	name := unsafeID.ReplaceAllString(t.Name(), "-")
	if len(name) > 80 {
		name = name[len(name)-80:]
	}
	// Times lie in 1990…2010, in whole seconds, so that the window of one
	// test rarely overlaps another's and never the present.
	window := int64(20 * 365 * 24 * 3600)
	base := time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(rand.Int64N(window)) * time.Second)
	return &fixture{
		T:      t,
		s:      s,
		ctx:    t.Context(),
		tenant: fmt.Sprintf("t-%s-%08x", name, rand.Uint32()),
		base:   base,
	}
}

// with returns a copy of f reporting to t, for subtests.
func (f *fixture) with(t *testing.T) *fixture {
	g := *f
	g.T = t
	g.ctx = t.Context()
	return &g
}

// at returns the base time plus d.
func (f *fixture) at(d time.Duration) time.Time { return f.base.Add(d) }

// key returns the key of an instance of the test's tenant.
func (f *fixture) key(d governor.Domain, subject string) governor.Key {
	return governor.Key{Tenant: f.tenant, Domain: d, Subject: subject}
}

// id returns an id unique to the test, for outbox entries, timers and
// events.
func (f *fixture) id(name string) string { return f.tenant + "-" + name }

// newInstance returns the snapshot of an instance that does not exist.
func newInstance(k governor.Key) governor.Instance {
	return governor.Instance{Key: k, State: governor.StateNone}
}

// decision returns the changes of an accepted decision of event exec on
// inst, taken at at, moving it to state to and emitting emits.
func decision(inst governor.Instance, exec string, to governor.State, at time.Time, emits ...governor.Emit) store.Changes {
	ev := governor.Event{
		ID: exec, Source: testSource, Type: governor.TypeOf(inst.Domain, "step"),
		Domain: inst.Domain, Name: "step", Tenant: inst.Tenant, Subject: inst.Subject,
		Time: at, Data: json.RawMessage(`{"step":true}`),
	}
	d := governor.Decision{
		Outcome: governor.Accepted, From: inst.State, To: to,
		Data: inst.Data, Timers: inst.Timers, Emits: emits,
	}
	r := receipt.New(inst, ev, d, at)
	next := inst
	next.State = to
	next.Version = r.Seq
	next.LastHash = r.Hash
	next.UpdatedAt = at
	return store.Changes{
		Instance: next,
		Dedup: store.Dedup{
			Key: inst.Key, Source: testSource, EventID: exec,
			ReceiptHash: r.Hash, ExpireAt: at.Add(7 * 24 * time.Hour),
		},
		Receipt: r,
	}
}

// commit writes c in one transaction that first reads what an engine
// reads: the dedup marker and the instance.
func (f *fixture) commit(c store.Changes) error {
	return f.s.RunTx(f.ctx, func(ctx context.Context, tx store.Tx) error {
		if _, _, err := tx.Dedup(c.Instance.Key, c.Dedup.Source, c.Dedup.EventID); err != nil {
			return err
		}
		if _, err := tx.Instance(c.Instance.Key); err != nil {
			return err
		}
		return tx.Write(c)
	})
}

// mustCommit commits c and fails the test on error.
func (f *fixture) mustCommit(c store.Changes) {
	f.Helper()
	if err := f.commit(c); err != nil {
		f.Fatalf("RunTx(Write %s seq %d) = %v, want nil", c.Instance.Key, c.Receipt.Seq, err)
	}
	f.cleanup(c)
}

// step commits a decision on *inst and advances *inst; it returns the
// changes written.
func (f *fixture) step(inst *governor.Instance, exec string, to governor.State, at time.Time, emits ...governor.Emit) store.Changes {
	f.Helper()
	c := decision(*inst, exec, to, at, emits...)
	f.mustCommit(c)
	*inst = c.Instance
	return c
}

// cleanup removes c's outbox entries and timers from the global
// collections when the test ends.
func (f *fixture) cleanup(c store.Changes) {
	var ids []string
	for _, e := range c.Outbox {
		ids = append(ids, e.ID)
	}
	var timers []string
	for _, e := range c.ArmTimers {
		timers = append(timers, e.ID)
	}
	if len(ids) == 0 && len(timers) == 0 {
		return
	}
	f.Cleanup(func() {
		ctx := context.Background()
		if len(ids) > 0 {
			if err := f.s.MarkDelivered(ctx, ids...); err != nil {
				f.Errorf("cleanup: MarkDelivered(%v) = %v", ids, err)
			}
		}
		for _, id := range timers {
			if err := f.s.DeleteTimer(ctx, id); err != nil {
				f.Errorf("cleanup: DeleteTimer(%q) = %v", id, err)
			}
		}
	})
}

// read returns the instance at k as a new transaction sees it.
func (f *fixture) read(k governor.Key) governor.Instance {
	f.Helper()
	var inst governor.Instance
	err := f.s.RunTx(f.ctx, func(ctx context.Context, tx store.Tx) error {
		var err error
		inst, err = tx.Instance(k)
		return err
	})
	if err != nil {
		f.Fatalf("Instance(%s) = %v, want nil", k, err)
	}
	return inst
}

// dedup returns the receipt hash of the dedup marker of (k, source, id)
// as a new transaction sees it.
func (f *fixture) dedup(k governor.Key, source, id string) (string, bool) {
	f.Helper()
	m, found := f.marker(k, source, id)
	return m.ReceiptHash, found
}

// marker returns the dedup marker of (k, source, id) as a new
// transaction sees it.
func (f *fixture) marker(k governor.Key, source, id string) (store.Marker, bool) {
	f.Helper()
	var m store.Marker
	var found bool
	err := f.s.RunTx(f.ctx, func(ctx context.Context, tx store.Tx) error {
		var err error
		m, found, err = tx.Dedup(k, source, id)
		return err
	})
	if err != nil {
		f.Fatalf("Dedup(%s, %q, %q) = %v, want nil", k, source, id, err)
	}
	return m, found
}

// chain returns every receipt of k.
func (f *fixture) chain(k governor.Key) []receipt.Receipt {
	f.Helper()
	rs, err := f.s.Chain(f.ctx, k, 0, 0)
	if err != nil {
		f.Fatalf("Chain(%s, 0, 0) = %v, want nil", k, err)
	}
	return rs
}

// checkCode fails the test unless err carries code want.
func (f *fixture) checkCode(call string, err error, want fault.Code) {
	f.Helper()
	if got := fault.ErrorCode(err); got != want {
		f.Errorf("%s = %v (code %q), want code %q", call, err, got, want)
	}
}

// diffInstance describes how got differs from want, or returns "".
func diffInstance(got, want governor.Instance) string {
	var d []string
	if got.Key != want.Key {
		d = append(d, fmt.Sprintf("key %s, want %s", got.Key, want.Key))
	}
	if got.State != want.State {
		d = append(d, fmt.Sprintf("state %q, want %q", got.State, want.State))
	}
	if got.Version != want.Version {
		d = append(d, fmt.Sprintf("version %d, want %d", got.Version, want.Version))
	}
	if got.LastHash != want.LastHash {
		d = append(d, fmt.Sprintf("last hash %q, want %q", got.LastHash, want.LastHash))
	}
	if !bytes.Equal(got.Data, want.Data) {
		d = append(d, fmt.Sprintf("data %q, want %q", got.Data, want.Data))
	}
	if len(got.Timers) != len(want.Timers) {
		d = append(d, fmt.Sprintf("timers %v, want %v", got.Timers, want.Timers))
	} else {
		for name, w := range want.Timers {
			g, ok := got.Timers[name]
			if !ok || g.Name != name || g.ID != w.ID || !g.Due.Equal(w.Due) {
				d = append(d, fmt.Sprintf("timer %q = %+v, want %+v", name, g, w))
			}
		}
	}
	if !got.UpdatedAt.Equal(want.UpdatedAt) {
		d = append(d, fmt.Sprintf("updated_at %v, want %v", got.UpdatedAt, want.UpdatedAt))
	}
	if len(d) == 0 {
		return ""
	}
	return fmt.Sprint(d)
}

// ids returns "domain/subject/seq" for each receipt, to compare listings.
func ids(rs []receipt.Receipt) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = fmt.Sprintf("%s/%s/%d", r.Domain, r.Subject, r.Seq)
	}
	return out
}

// sameReceipts reports whether got and want have the same canonical JSON,
// receipt by receipt.
func sameReceipts(got, want []receipt.Receipt) bool {
	return slices.EqualFunc(got, want, func(a, b receipt.Receipt) bool {
		return bytes.Equal(a.JSON(), b.JSON())
	})
}

// checkPrefix checks a listing of a global collection that other tests
// may share: got holds at most limit items (limit <= 0: any number), all
// satisfying ok and ordered by less; the test's own items among them are
// the first items of want, in order; and an own item is missing only if
// the listing is full with items that sort before it.
func checkPrefix[T any](f *fixture, call string, got, want []T, limit int, id func(T) string, ok func(T) error, less func(a, b T) bool) {
	f.Helper()
	own := map[string]bool{}
	for _, w := range want {
		own[id(w)] = true
	}
	if limit > 0 && len(got) > limit {
		f.Errorf("%s returned %d items, want at most %d", call, len(got), limit)
	}
	var mine []string
	for i, g := range got {
		if err := ok(g); err != nil {
			f.Errorf("%s[%d] = %+v: %v", call, i, g, err)
		}
		if i > 0 && less(g, got[i-1]) {
			f.Errorf("%s[%d] = %+v sorts before [%d] = %+v", call, i, g, i-1, got[i-1])
		}
		if own[id(g)] {
			mine = append(mine, id(g))
		}
	}
	wantIDs := make([]string, len(want))
	for i, w := range want {
		wantIDs[i] = id(w)
	}
	if len(mine) > len(wantIDs) || !slices.Equal(mine, wantIDs[:len(mine)]) {
		f.Errorf("%s own items = %v, want a prefix of %v", call, mine, wantIDs)
		return
	}
	if len(mine) < len(want) {
		next := want[len(mine)]
		if limit <= 0 || len(got) < limit {
			f.Errorf("%s own items = %v, want %v (listing not full: %d items)", call, mine, wantIDs, len(got))
		} else if last := got[len(got)-1]; less(next, last) {
			f.Errorf("%s omits %s, which sorts before the last item %+v", call, id(next), last)
		}
	}
}
