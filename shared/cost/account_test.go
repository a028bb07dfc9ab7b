package cost_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	fs "cloud.google.com/go/firestore"
	ps "cloud.google.com/go/pubsub/v2"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/autonomics/autonomics/shared/cost"
	"github.com/autonomics/autonomics/shared/engine"
	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/firestore"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/ledger"
	"github.com/autonomics/autonomics/shared/machines"
	"github.com/autonomics/autonomics/shared/pubsub"
	"github.com/autonomics/autonomics/shared/receipt"
	"github.com/autonomics/autonomics/shared/store"
	"github.com/autonomics/autonomics/shared/topic"
)

var (
	update = flag.Bool("update", false, "write the account to testdata/account.md")
	runs   = flag.Int("runs", 20, "tenants played through the account")
)

// emulatorProject is this process's project on the emulators.
var emulatorProject = fmt.Sprintf("cost-test-%08x", rand.Uint32())

// emulatorCreds authenticates to the Firestore emulator as its owner, as
// the Firestore client does for the emulator.
type emulatorCreds struct{}

func (emulatorCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer owner"}, nil
}
func (emulatorCreds) RequireTransportSecurity() bool { return false }

// firestoreClient returns a client of database db of the Firestore
// emulator whose RPCs rec records. The client dials the emulator itself,
// ignoring dial options, so the connection is dialled here.
func firestoreClient(t *testing.T, db string, rec *cost.Recorder) *fs.Client {
	t.Helper()
	conn, err := grpc.NewClient(os.Getenv("FIRESTORE_EMULATOR_HOST"), append(rec.DialOptions(),
		grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithPerRPCCredentials(emulatorCreds{}))...)
	if err != nil {
		t.Fatalf("grpc.NewClient(Firestore emulator) = %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	c, err := fs.NewClientWithDatabase(context.Background(), emulatorProject, db, option.WithGRPCConn(conn))
	if err != nil {
		t.Fatalf("firestore.NewClientWithDatabase(%q, %q) = %v", emulatorProject, db, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// tap is a publisher that keeps what it publishes, for the test to
// deliver some of it again.
type tap struct {
	inner engine.Publisher
	mu    sync.Mutex
	msgs  []store.Message
}

func (p *tap) Publish(ctx context.Context, m store.Message) error {
	if err := p.inner.Publish(ctx, m); err != nil {
		return err
	}
	p.mu.Lock()
	p.msgs = append(p.msgs, m)
	p.mu.Unlock()
	return nil
}

// find returns the last message published of event type typ for tenant.
func (p *tap) find(t *testing.T, tenant, typ string) store.Message {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(p.msgs) - 1; i >= 0; i-- {
		ev, err := event.Decode(event.Message{Data: p.msgs[i].Data, Attributes: p.msgs[i].Attributes})
		if err == nil && ev.Tenant == tenant && ev.Type == typ {
			return p.msgs[i]
		}
	}
	t.Fatalf("no %s published for %s", typ, tenant)
	return store.Message{}
}

// on returns the messages published on topic id.
func (p *tap) on(id string) []store.Message {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []store.Message
	for _, m := range p.msgs {
		if m.Topic == id {
			out = append(out, m)
		}
	}
	return out
}

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// cpuMillis returns the CPU time of this process, user and system, in
// milliseconds.
func cpuMillis(t *testing.T) float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatalf("getrusage: %v", err)
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e6
}

// account measures kinds of work: rows by kind, in the order first seen.
type account struct {
	t             *testing.T
	client, iface *cost.Recorder
	rows          map[string]*cost.Row
	order         []string
}

// measure runs f, which does n runs of kind, and adds what it cost.
func (a *account) measure(kind string, n int, f func()) {
	a.t.Helper()
	a.client.Reset()
	a.iface.Reset()
	cpu0 := cpuMillis(a.t)
	f()
	cpu := cpuMillis(a.t) - cpu0
	if raceEnabled {
		cpu = -1
	}
	r := a.rows[kind]
	if r == nil {
		r = &cost.Row{Kind: kind}
		a.rows[kind] = r
		a.order = append(a.order, kind)
	}
	r.Add(n, a.client.Counts(), a.iface.Counts(), cpu)
}

func (a *account) table() []cost.Row {
	out := make([]cost.Row, len(a.order))
	for i, k := range a.order {
		out[i] = *a.rows[k]
	}
	return out
}

// Kinds of the account's rows.
const (
	kindPlain     = "plain (no emits, no timers)"
	kindCascades  = "cascades (2 emitted events)"
	kindTimer     = "timer armed"
	kindBroadcast = "broadcast (subject *, 3 instances)"
	kindDuplicate = "duplicate (redelivered event)"
	kindNewTenant = "first decision of a new tenant (arms a timer)"
	kindTick      = "tick, per due timer"
	kindPending   = "ledger: receipt recorded pending (push), per receipt"
	kindIntegrate = "ledger: integration pass, per receipt"
	kindGroup     = "ledger: group commit (push to the running integrator), per receipt"
)

// TestCostAccount plays tenants through the real engine on the emulators
// (the Firestore store, the Pub/Sub publisher, the eight machines) and
// the ledger's integrator on a Firestore ledger, counts what every kind of
// decision costs at the client level (RPCs, documents, messages) and at
// the store and publisher interfaces, checks the counts against each
// other, and prints the account; -update writes it to
// testdata/account.md.
func TestCostAccount(t *testing.T) {
	if os.Getenv("FIRESTORE_EMULATOR_HOST") == "" || os.Getenv("PUBSUB_EMULATOR_HOST") == "" {
		t.Skip("FIRESTORE_EMULATOR_HOST and PUBSUB_EMULATOR_HOST are not set; start the emulators (make emulators) to run the cost account")
	}
	ctx := context.Background()
	a := &account{t: t, client: cost.NewRecorder(), iface: cost.NewRecorder(), rows: map[string]*cost.Row{}}
	suffix := fmt.Sprintf("%08x", rand.Uint32())
	fc := firestoreClient(t, "cost-gov-"+suffix, a.client)
	pc, err := ps.NewClient(ctx, emulatorProject, a.client.ClientOptions()...)
	if err != nil {
		t.Fatalf("pubsub.NewClient = %v", err)
	}
	t.Cleanup(func() { pc.Close() })
	names := topic.Names{Prefix: "cost-" + suffix + "-"}
	if err := pubsub.Ensure(ctx, pc, emulatorProject, names.All(), nil); err != nil {
		t.Fatalf("pubsub.Ensure = %v", err)
	}
	psPub := pubsub.NewPublisher(pc, pubsub.PublisherOptions{})
	t.Cleanup(psPub.Close)
	gov := firestore.New(fc, firestore.Options{})
	taps := &tap{inner: psPub}
	var internal []string
	for _, d := range governor.Domains {
		internal = append(internal, topic.SubscriptionName(emulatorProject, topic.Push(names.Internal(d))))
	}
	clk := &clock{t: time.Now().UTC()}
	// The ledger the engine asks about delivery: a duplicate whose
	// receipt it holds publishes nothing. Its reads are counted with the
	// decision's; the ledger the receipts are integrated in is another.
	witness := firestore.NewLedger(firestoreClient(t, "cost-witness-"+suffix, a.client), firestore.LedgerOptions{Name: "witness"})
	eng, err := engine.New(engine.Options{
		Store: cost.NewStore(gov, a.iface), Publisher: cost.NewPublisher(taps, a.iface),
		Machines: machines.New(nil), Topics: names, InternalSubscriptions: internal,
		Clock: clk.Now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Witness: ledger.DeliveryWitness{Store: witness},
	})
	if err != nil {
		t.Fatalf("engine.New = %v", err)
	}

	// deliver hands a message to the domain's function as its push
	// subscription does.
	deliver := func(d governor.Domain, m store.Message) event.Message {
		t.Helper()
		msg := event.Message{Data: m.Data, Attributes: m.Attributes, ID: fmt.Sprintf("m-%x", rand.Uint64()),
			Subscription: topic.SubscriptionName(emulatorProject, topic.Push(m.Topic))}
		if err := eng.HandleMessage(ctx, d, msg); err != nil {
			t.Fatalf("HandleMessage(%s) = %v", m.Topic, err)
		}
		return msg
	}
	// external sends an event from the provider's systems by its domain
	// topic.
	external := func(tenant string, d governor.Domain, name governor.EventName, subject, data string) event.Message {
		t.Helper()
		ev := governor.Event{ID: fmt.Sprintf("e-%x", rand.Uint64()), Source: "//provider/billing-system",
			Type: governor.TypeOf(d, name), Domain: d, Name: name, Tenant: tenant, Subject: subject,
			Time: clk.Now(), Data: json.RawMessage(data)}
		body, attrs := event.Encode(ev)
		return deliver(d, store.Message{Topic: names.Domain(d), Data: body, Attributes: attrs, OrderingKey: tenant})
	}

	const entitlements = 3
	for i := range *runs {
		tenant := fmt.Sprintf("cost-%s-%03d", suffix, i)
		a.measure(kindNewTenant, 1, func() {
			external(tenant, governor.Subscription, "created", "sub-1", `{"plan":"pro","trial_days":0}`)
		})
		a.measure(kindTimer, 1, func() { external(tenant, governor.Subscription, "payment_failed", "sub-1", "") })
		external(tenant, governor.CustomerAccount, "requested", governor.DefaultSubject, "")
		external(tenant, governor.CustomerAccount, "verified", governor.DefaultSubject, "")
		for e := range entitlements {
			external(tenant, governor.Entitlement, "activated", fmt.Sprintf("E-%d", e), `{"plan":"pro"}`)
		}
		var plain event.Message
		a.measure(kindPlain, 1, func() {
			plain = external(tenant, governor.CustomerAccount, "restricted", governor.DefaultSubject, "")
		})
		a.measure(kindCascades, 1, func() { external(tenant, governor.CustomerAccount, "reinstated", governor.DefaultSubject, "") })
		external(tenant, governor.CustomerAccount, "suspended", governor.DefaultSubject, "")
		suspend := taps.find(t, tenant, governor.TypeOf(governor.Entitlement, "suspend"))
		a.measure(kindBroadcast, 1, func() { deliver(governor.Entitlement, suspend) })
		// By the time Pub/Sub redelivers an event (its acknowledgement
		// deadline, 10 s or more), the decision's receipt is in the
		// ledger.
		var plainReceipt []byte
		for _, m := range taps.on(names.Receipts()) {
			if r, err := receipt.Parse(m.Data); err == nil && r.TenantID == tenant && r.EventType == governor.TypeOf(governor.CustomerAccount, "restricted") {
				plainReceipt = m.Data
			}
		}
		e, err := ledger.NewEntry(plainReceipt, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := witness.AddPending(ctx, []ledger.Entry{e}); err != nil {
			t.Fatalf("AddPending = %v", err)
		}
		a.measure(kindDuplicate, 1, func() {
			if err := eng.HandleMessage(ctx, governor.CustomerAccount, plain); err != nil {
				t.Fatalf("HandleMessage(duplicate) = %v", err)
			}
		})
	}
	for e := range entitlements {
		k := governor.Key{Tenant: fmt.Sprintf("cost-%s-%03d", suffix, 0), Domain: governor.Entitlement, Subject: fmt.Sprintf("E-%d", e)}
		rs, err := gov.Chain(ctx, k, 0, 0)
		if err != nil || len(rs) == 0 || rs[len(rs)-1].ToState != "suspended" {
			t.Fatalf("chain of %s = %d receipts, %v; want the broadcast's suspension last", k, len(rs), err)
		}
	}

	// Every armed timer falls due.
	clk.add(60 * 24 * time.Hour)
	fired := 0
	a.measure(kindTick, 0, func() {
		if fired, err = eng.Tick(ctx, 0); err != nil {
			t.Fatalf("Tick = %v", err)
		}
	})
	a.rows[kindTick].Runs = fired
	if fired == 0 {
		t.Fatal("Tick fired no timer")
	}

	// The ledger: every receipt published, recorded pending one per push
	// as the integrator's push endpoint does, then integrated in one pass.
	integrated := integrate(t, a, gov, taps.on(names.Receipts()), suffix)

	rows := a.table()
	check(t, a.rows, integrated)
	doc := render(rows)
	if testing.Verbose() || *update {
		fmt.Print(doc)
	}
	if *update {
		if err := os.WriteFile("testdata/account.md", []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// integrate records the receipts pending and integrates them, measuring
// both, and returns how many the pass integrated.
func integrate(t *testing.T, a *account, gov *firestore.Store, msgs []store.Message, suffix string) int {
	t.Helper()
	ctx := context.Background()
	l := firestore.NewLedger(firestoreClient(t, "cost-ledger-"+suffix, a.client), firestore.LedgerOptions{Name: "cost"})
	skey, vkey, err := ledger.GenerateKey("autonomics.cost/ledger")
	if err != nil {
		t.Fatal(err)
	}
	signer, _, err := ledger.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	in, err := ledger.NewIntegrator(ledger.IntegratorOptions{
		Store: l, Witness: gov, Signer: signer, VerifierKey: vkey, Holder: "cost",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.Integrate(ctx); err != nil {
		t.Fatalf("first Integrate = %v", err)
	}
	// A redelivered event's duplicate publishes its receipt again; the
	// ledger takes each receipt once.
	var entries []ledger.Entry
	seen := map[string]bool{}
	for _, m := range msgs {
		e, err := ledger.NewEntry(m.Data, time.Now())
		if err != nil {
			t.Fatalf("ledger.NewEntry = %v", err)
		}
		if !seen[e.Hash] {
			seen[e.Hash] = true
			entries = append(entries, e)
		}
	}
	// The pending path takes half the receipts; the group commit, the
	// push endpoint's path while Run holds the lease, the other half.
	pending, grouped := entries[:len(entries)/2], entries[len(entries)/2:]
	a.measure(kindPending, len(pending), func() {
		for _, e := range pending {
			if _, err := l.AddPending(ctx, []ledger.Entry{e}); err != nil {
				t.Fatalf("AddPending = %v", err)
			}
		}
	})
	var p ledger.Pass
	a.measure(kindIntegrate, len(pending), func() {
		if p, err = in.Integrate(ctx); err != nil {
			t.Fatalf("Integrate = %v", err)
		}
	})
	if p.Integrated != len(pending) {
		t.Fatalf("Integrate integrated %d receipts of %d (refused %d, forged %d)", p.Integrated, len(pending), p.Refused, p.Forged)
	}
	return p.Integrated + groupCommit(t, a, in, grouped)
}

// groupCommit submits entries as the integrator's push endpoint does
// while Run holds the lease, 32 at a time, measuring them, and returns
// how many were integrated.
func groupCommit(t *testing.T, a *account, in *ledger.Integrator, entries []ledger.Entry) int {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx, 50*time.Millisecond, time.Second) }()
	defer func() {
		cancel()
		<-done
	}()
	// Run takes the lease on its first pass; until then Submit defers.
	// The first entry waits for that, outside the measure.
	var integrated atomic.Int64
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := in.Submit(ctx, entries[0])
		if err != nil {
			t.Fatalf("Submit = %v", err)
		}
		if got == ledger.Integrated {
			integrated.Add(1)
			break
		}
		if got != ledger.Deferred || time.Now().After(deadline) {
			t.Fatalf("Submit = %v; want integrated once Run holds the lease (within 10s)", got)
		}
		time.Sleep(10 * time.Millisecond)
	}
	entries = entries[1:]
	a.measure(kindGroup, len(entries), func() {
		var wg sync.WaitGroup
		sem := make(chan struct{}, 32)
		for _, e := range entries {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				got, err := in.Submit(ctx, e)
				if err != nil || got != ledger.Integrated {
					t.Errorf("Submit = %v, %v; want integrated", got, err)
					return
				}
				integrated.Add(1)
			}()
		}
		wg.Wait()
	})
	return int(integrated.Load())
}

// check holds the account to what the counts must say of each other.
func check(t *testing.T, rows map[string]*cost.Row, integrated int) {
	t.Helper()
	per := func(kind string) cost.Op { return rows[kind].Per() }
	perRT := func(kind string) float64 { return float64(rows[kind].RoundTrips) / float64(rows[kind].Runs) }
	plain, casc, timer, bc, dup := per(kindPlain), per(kindCascades), per(kindTimer), per(kindBroadcast), per(kindDuplicate)
	if plain.Writes < 3 || plain.Reads < 2 || plain.Messages < 1 {
		t.Errorf("plain decision: %d writes, %d reads, %d messages; want at least the instance, dedup marker and receipt written, the marker and instance read, the receipt published",
			plain.Writes, plain.Reads, plain.Messages)
	}
	if perRT(kindPlain) < 3 {
		t.Errorf("plain decision: %.2f sequential round trips; want at least a transaction read, its commit and a publish", perRT(kindPlain))
	}
	// The targets of the hot path: a decision whose guards read no other
	// instance writes at most 3 documents and reads at most 2, whatever it
	// emits, in at most 3 sequential round trips.
	for _, kind := range []string{kindPlain, kindCascades} {
		if p := per(kind); p.Writes > 3 || p.Reads > 2 {
			t.Errorf("%s: %d writes and %d reads; want at most 3 and 2", kind, p.Writes, p.Reads)
		}
	}
	if perRT(kindPlain) > 3 {
		t.Errorf("plain decision: %.2f sequential round trips; want at most 3 (the reads, the commit, the publish)", perRT(kindPlain))
	}
	if casc.Messages != plain.Messages+2 || casc.Writes < plain.Writes {
		t.Errorf("cascades: %d messages published and %d writes; want the plain decision's %d messages and the 2 cascades, and at least its %d writes",
			casc.Messages, casc.Writes, plain.Messages, plain.Writes)
	}
	if nt := per(kindNewTenant); timer.Writes < plain.Writes || nt.Writes < plain.Writes {
		t.Errorf("timer armed: %d writes, new tenant: %d; want at least the plain decision's %d", timer.Writes, nt.Writes, plain.Writes)
	}
	if bc.Writes < 3*plain.Writes || bc.Reads < 3 || bc.Messages != 3*plain.Messages {
		t.Errorf("broadcast to 3 instances: %d writes, %d reads, %d messages; want 3 plain decisions' %d writes and %d messages, a read each",
			bc.Writes, bc.Reads, bc.Messages, 3*plain.Writes, 3*plain.Messages)
	}
	if dup.Writes != 0 || dup.Messages != 0 || dup.Reads < 1 {
		t.Errorf("duplicate: %d writes, %d messages, %d reads; want nothing written or published and the marker read", dup.Writes, dup.Messages, dup.Reads)
	}
	for _, kind := range []string{kindPlain, kindCascades, kindTimer, kindBroadcast, kindDuplicate, kindNewTenant} {
		r := rows[kind]
		if r.Client.Writes < r.Interface.Writes || r.Client.Messages != r.Interface.Messages {
			t.Errorf("%s: %d writes and %d messages at the client, %d and %d at the interfaces; the client must see every write and exactly the messages",
				kind, r.Client.Writes, r.Client.Messages, r.Interface.Writes, r.Interface.Messages)
		}
	}
	for kind, r := range rows {
		if r.RoundTrips > r.Client.Calls || r.RoundTrips == 0 {
			t.Errorf("%s: %d round trips for %d RPCs; want 1 to one per RPC", kind, r.RoundTrips, r.Client.Calls)
		}
	}
	if w := rows[kindPending].Client.Writes + rows[kindIntegrate].Client.Writes; integrated == 0 || w == 0 {
		t.Errorf("ledger: %d receipts integrated with %d writes; want every receipt integrated, and written", integrated, w)
	}
	if g, pe, in := per(kindGroup), per(kindPending), per(kindIntegrate); g.Writes == 0 || g.Writes >= pe.Writes+in.Writes || g.Deletes != 0 {
		t.Errorf("ledger group commit: %d writes and %d deletes per receipt, against %d+%d writes for the pending path; want fewer, and no pending record to delete",
			g.Writes, g.Deletes, pe.Writes, in.Writes)
	}
	if tick := rows[kindTick]; tick.Client.Messages != int64(tick.Runs) {
		t.Errorf("tick: %d timers fired, %d published; want a timeout published per timer", tick.Runs, tick.Client.Messages)
	}
}

// render returns the account as Markdown.
func render(rows []cost.Row) string {
	p := cost.ListPrices
	var b strings.Builder
	fmt.Fprintf(&b, "# Cost per decision\n\n<!-- Generated by `make cost` (go test ./shared/cost -run TestCostAccount -update); do not edit. -->\n\n")
	fmt.Fprintf(&b, "Measured on the emulators: the engine with the eight machines, the Firestore store and the Pub/Sub publisher; "+
		"counts per decision (per receipt for the ledger, per timer for the tick) at the gRPC client, the round trips being the RPCs "+
		"that did not overlap. Prices of %s: Firestore $%.2f / $%.2f / $%.2f per 100,000 reads / writes / deletes, Pub/Sub $%.0f per TiB "+
		"(publish plus one push delivery, at least %d bytes a request), Cloud Run $%.6f per vCPU-second; "+
		"CPU is this process's (engine, clients) without the emulators.\n\n",
		p.Date, p.FirestoreRead*1e5, p.FirestoreWrite*1e5, p.FirestoreDelete*1e5, p.PubSubByte*(1<<40), cost.MinRequestBytes, p.CPUSecond)
	b.WriteString(cost.Table(rows, p))
	b.WriteString("\nRound trips in order (concurrent calls joined by +):\n\n")
	b.WriteString(cost.Paths(rows))
	b.WriteString("\nCalls per decision:\n\n")
	b.WriteString(cost.Breakdown(rows))
	return b.String()
}
