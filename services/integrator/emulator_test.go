package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	fs "cloud.google.com/go/firestore"
	ps "cloud.google.com/go/pubsub/v2"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/firestore"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/ledger"
	"github.com/autonomics/autonomics/shared/platform"
	"github.com/autonomics/autonomics/shared/pubsub"
	"github.com/autonomics/autonomics/shared/receipt"
	"github.com/autonomics/autonomics/shared/store"
	"github.com/autonomics/autonomics/shared/telemetry"
	"github.com/autonomics/autonomics/shared/topic"
)

// emulatorProject is the emulator project of this test process: new for
// every process, since the emulator answers a query by scanning its whole
// database.
var emulatorProject = fmt.Sprintf("integrator-test-%08x", rand.Uint32())

// firestoreClient returns a client of database db of the Firestore
// emulator, or skips the test when FIRESTORE_EMULATOR_HOST is not set.
func firestoreClient(t *testing.T, db string) *fs.Client {
	t.Helper()
	if os.Getenv("FIRESTORE_EMULATOR_HOST") == "" {
		t.Skip("FIRESTORE_EMULATOR_HOST is not set; start the emulator (make emulators) and export FIRESTORE_EMULATOR_HOST=127.0.0.1:8780 to run the integrator's emulator tests")
	}
	c, err := fs.NewClientWithDatabase(context.Background(), emulatorProject, db)
	if err != nil {
		t.Fatalf("firestore.NewClientWithDatabase(%q, %q) = %v", emulatorProject, db, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// deployment is the integrator service wired as main wires it, on the
// emulator: the governors' store in one database, the ledger in another
// (or the same).
type deployment struct {
	govClient, ledgerClient *fs.Client
	ledgerName              string
	srv                     *server
	hs                      *httptest.Server
	gov                     *firestore.Store
	ledger                  *firestore.Ledger
	logs                    *syncBuffer
	metrics                 *sdkmetric.ManualReader
	key                     string // verifier key
}

// deploy starts the service with the governors' database govDB and the
// ledger's database ledgerDB.
func deploy(t *testing.T, govDB, ledgerDB string) *deployment {
	t.Helper()
	govClient := firestoreClient(t, govDB)
	ledgerClient := govClient
	if ledgerDB != govDB {
		ledgerClient = firestoreClient(t, ledgerDB)
	}
	skey, _, err := ledger.GenerateKey("autonomics.test/ledger")
	if err != nil {
		t.Fatal(err)
	}
	signer, vkey, err := ledger.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	d := &deployment{
		govClient: govClient, ledgerClient: ledgerClient, ledgerName: fmt.Sprintf("test-%016x", rand.Uint64()),
		gov: firestore.New(govClient, firestore.Options{}), logs: &syncBuffer{}, metrics: sdkmetric.NewManualReader(), key: vkey,
	}
	clients := &platform.Clients{
		Logger:          slog.New(slog.NewJSONHandler(d.logs, nil)),
		Firestore:       govClient,
		LedgerFirestore: ledgerClient,
		Store:           d.gov,
		Topics:          topic.Names{},
		Telemetry:       &telemetry.Telemetry{Meter: sdkmetric.NewMeterProvider(sdkmetric.WithReader(d.metrics))},
	}
	cfg := config{
		Signer: signer, VerifierKey: vkey, LedgerName: d.ledgerName, Holder: "it",
		BatchSize: ledger.DefaultBatchSize, LeaseTTL: ledger.DefaultLeaseTTL,
	}
	if d.srv, err = newService(cfg, clients); err != nil {
		t.Fatalf("newService = %v", err)
	}
	d.ledger = firestore.NewLedger(ledgerClient, firestore.LedgerOptions{Name: cfg.LedgerName})
	d.hs = httptest.NewServer(d.srv.handler())
	t.Cleanup(d.hs.Close)
	return d
}

// push delivers r as the receipts topic's push subscription does and
// returns the answer's status.
func (d *deployment) push(t *testing.T, r receipt.Receipt) string {
	t.Helper()
	code, body := post(t, d.hs, "/v1/receipts/push", event.PushBody(r.JSON(), map[string]string{"ce-type": "autonomics.receipt"}, "m-"+r.Hash[:8]))
	var res pushResult
	if err := json.Unmarshal(body, &res); err != nil || code != http.StatusOK {
		t.Fatalf("POST /v1/receipts/push = %d %s", code, body)
	}
	return res.Status
}

// integrate runs POST /v1/integrate.
func (d *deployment) integrate(t *testing.T) integrateResult {
	t.Helper()
	code, body := post(t, d.hs, "/v1/integrate", nil)
	var res integrateResult
	if err := json.Unmarshal(body, &res); err != nil || code != http.StatusOK || !res.Held {
		t.Fatalf("POST /v1/integrate = %d %s", code, body)
	}
	return res
}

// stats returns GET /v1/stats.
func (d *deployment) stats(t *testing.T) map[string]int64 {
	t.Helper()
	code, _, body := get(t, d.hs, "/v1/stats")
	var stats map[string]int64
	if err := json.Unmarshal(body, &stats); err != nil || code != http.StatusOK {
		t.Fatalf("GET /v1/stats = %d %s", code, body)
	}
	return stats
}

// refusals returns the value of the refusal counter for reason.
func (d *deployment) refusals(t *testing.T, reason string) int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := d.metrics.Collect(t.Context(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != ledger.RefusedMetric {
				continue
			}
			for _, p := range m.Data.(metricdata.Sum[int64]).DataPoints {
				if v, ok := p.Attributes.Value(attribute.Key("reason")); ok && v.AsString() == reason {
					return p.Value
				}
			}
		}
	}
	return 0
}

// checkpoint returns the verified checkpoint of GET /v1/checkpoint.
func (d *deployment) checkpoint(t *testing.T) ledger.Checkpoint {
	t.Helper()
	code, _, note := get(t, d.hs, "/v1/checkpoint")
	v, err := ledger.NewVerifier(d.key)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := ledger.OpenCheckpoint(note, v)
	if code != http.StatusOK || err != nil {
		t.Fatalf("GET /v1/checkpoint = %d %s, %v", code, note, err)
	}
	return cp
}

// checkNeverSigned checks that r is not in the log, not pending and has
// no inclusion proof.
func (d *deployment) checkNeverSigned(t *testing.T, r receipt.Receipt) {
	t.Helper()
	found, err := d.ledger.Lookup(t.Context(), []string{r.Hash})
	if err != nil || len(found) != 0 {
		t.Errorf("Lookup(forged receipt %s) = %v, %v; want it neither in the log nor pending", r.Hash, found, err)
	}
	_, err = ledger.NewLog(d.ledger).InclusionProof(t.Context(), r.Hash, 0)
	if fault.ErrorCode(err) != fault.NotFound {
		t.Errorf("InclusionProof(forged receipt) = %v, want not found", err)
	}
}

// audit audits the whole log against the checkpoint it serves.
func (d *deployment) audit(t *testing.T) ledger.Checkpoint {
	t.Helper()
	cp := d.checkpoint(t)
	if _, err := ledger.Audit(t.Context(), ledger.NewLog(d.ledger), cp); err != nil {
		t.Errorf("Audit(%v) = %v", cp, err)
	}
	return cp
}

// uniqueTenant returns a tenant id of its own for a test.
func uniqueTenant(name string) string { return fmt.Sprintf("%s-%08x", name, rand.Uint32()) }

// forgeAfter makes up the receipt that follows head, as anyone with the
// shared receipt code can: intact, chained to head, never committed.
func forgeAfter(head receipt.Receipt, to string) receipt.Receipt {
	k := head.Key()
	inst := governor.Instance{Key: k, State: governor.State(head.ToState), Version: head.Seq, LastHash: head.Hash}
	ev := governor.Event{ID: "forged-" + to, Source: "//mallory", Type: governor.TypeOf(k.Domain, "payment_succeeded"),
		Domain: k.Domain, Name: "payment_succeeded", Tenant: k.Tenant, Subject: k.Subject}
	return receipt.New(inst, ev, governor.Decision{Outcome: governor.Accepted, From: inst.State, To: governor.State(to)}, time.Now())
}

// TestForgedReceiptChainedToRealHeadIsNeverSigned pushes a receipt made up
// with the shared receipt code, seq N+1 chained to a tenant's real head:
// the integrator drops it, counts it, and signs nothing for it.
func TestForgedReceiptChainedToRealHeadIsNeverSigned(t *testing.T) {
	d := deploy(t, "(default)", "(default)")
	k := governor.Key{Tenant: uniqueTenant("acme"), Domain: governor.Billing, Subject: "2026-11"}
	rs := commitChain(t, d.gov, k, 3)
	for _, r := range rs {
		if st := d.push(t, r); st != "pending" {
			t.Fatalf("push(genuine) = %q, want pending", st)
		}
	}
	if res := d.integrate(t); res.Integrated != 3 || res.Size != 3 {
		t.Fatalf("POST /v1/integrate = %+v, want the 3 genuine receipts", res)
	}
	forged := forgeAfter(rs[2], "paid")
	if st := d.push(t, forged); st != "pending" {
		t.Fatalf("push(forged) = %q; the push endpoint cannot tell, want pending", st)
	}
	res := d.integrate(t)
	if res.Integrated != 0 || res.Forged != 1 || res.Size != 3 {
		t.Errorf("POST /v1/integrate after the forgery = %+v, want nothing integrated, 1 forged, size 3", res)
	}
	d.checkNeverSigned(t, forged)
	if cp := d.audit(t); cp.Size != 3 {
		t.Errorf("checkpoint size = %d, want 3", cp.Size)
	}
	if pending, err := d.ledger.Pending(t.Context(), 0); err != nil || len(pending) != 0 {
		t.Errorf("Pending = %d entries, %v; want none", len(pending), err)
	}
	if got := d.stats(t)["receipts_forged"]; got != 1 {
		t.Errorf("GET /v1/stats receipts_forged = %d, want 1", got)
	}
	if got := d.refusals(t, ledger.RefusedUnstored); got != 1 {
		t.Errorf("%s{reason=%s} = %d, want 1", ledger.RefusedMetric, ledger.RefusedUnstored, got)
	}
	if logs := d.logs.String(); !strings.Contains(logs, "receipt refused by the ledger") || !strings.Contains(logs, forged.Hash) {
		t.Errorf("logs do not name the refused receipt %s:\n%s", forged.Hash, logs)
	}
}

// TestReceiptForTenantWithoutGovernorsIsRefused pushes an intact receipt
// of a tenant that has no governor at all.
func TestReceiptForTenantWithoutGovernorsIsRefused(t *testing.T) {
	d := deploy(t, "(default)", "(default)")
	ghost := governor.Key{Tenant: uniqueTenant("ghost"), Domain: governor.Entitlement, Subject: "premium"}
	ev := governor.Event{ID: "forged-1", Source: "//mallory", Type: governor.TypeOf(ghost.Domain, "granted"),
		Domain: ghost.Domain, Name: "granted", Tenant: ghost.Tenant, Subject: ghost.Subject}
	forged := receipt.New(governor.Instance{Key: ghost, State: governor.StateNone}, ev,
		governor.Decision{Outcome: governor.Accepted, From: governor.StateNone, To: "active"}, time.Now())
	if st := d.push(t, forged); st != "pending" {
		t.Fatalf("push = %q, want pending", st)
	}
	res := d.integrate(t)
	if res.Integrated != 0 || res.Forged != 1 || res.Size != 0 {
		t.Errorf("POST /v1/integrate = %+v, want nothing integrated, 1 forged, size 0", res)
	}
	d.checkNeverSigned(t, forged)
	if got := d.refusals(t, ledger.RefusedUnstored); got != 1 {
		t.Errorf("%s{reason=%s} = %d, want 1", ledger.RefusedMetric, ledger.RefusedUnstored, got)
	}
}

// TestGenuineReceiptAfterForgeryIsLogged forges seq N+1, then lets the
// governor commit its own seq N+1: the genuine one is logged, and the log
// holds exactly one receipt for that seq.
func TestGenuineReceiptAfterForgeryIsLogged(t *testing.T) {
	d := deploy(t, "(default)", "(default)")
	k := governor.Key{Tenant: uniqueTenant("acme"), Domain: governor.Subscription, Subject: "sub-1"}
	rs := commitChain(t, d.gov, k, 2)
	for _, r := range rs {
		d.push(t, r)
	}
	forged := forgeAfter(rs[1], "cancelled")
	d.push(t, forged)
	if res := d.integrate(t); res.Integrated != 2 || res.Forged != 1 {
		t.Fatalf("POST /v1/integrate = %+v, want 2 integrated, 1 forged", res)
	}
	genuine := commitChain(t, d.gov, k, 1)[0]
	if genuine.Seq != forged.Seq || genuine.PrevHash != forged.PrevHash {
		t.Fatalf("genuine receipt at seq %d after %s, forged at seq %d after %s; want the same place", genuine.Seq, genuine.PrevHash, forged.Seq, forged.PrevHash)
	}
	// The forgery is pushed again, with the genuine receipt.
	d.push(t, forged)
	if st := d.push(t, genuine); st != "pending" {
		t.Fatalf("push(genuine) = %q, want pending", st)
	}
	res := d.integrate(t)
	if res.Integrated != 1 || res.Forged != 1 || res.Size != 3 {
		t.Errorf("POST /v1/integrate = %+v, want the genuine receipt integrated, the forgery dropped again, size 3", res)
	}
	cp := d.audit(t)
	d.checkNeverSigned(t, forged)
	log := ledger.NewLog(d.ledger)
	for _, r := range append(rs, genuine) {
		p, err := log.InclusionProof(t.Context(), r.Hash, 0)
		if err == nil {
			err = ledger.VerifyInclusion(&r, &p, cp)
		}
		if err != nil {
			t.Errorf("inclusion of %s = %v", ledger.RefOf(&r), err)
		}
	}
	if got := d.refusals(t, ledger.RefusedOtherStored); got != 1 {
		t.Errorf("%s{reason=%s} = %d, want 1 (the forgery pushed after the genuine commit)", ledger.RefusedMetric, ledger.RefusedOtherStored, got)
	}
}

// TestForgedReceiptPublishedOnReceiptsTopicIsNeverSigned publishes a
// forged receipt on autonomics-receipts, whose push subscription delivers
// to the integrator, next to a governor's own receipt.
func TestForgedReceiptPublishedOnReceiptsTopicIsNeverSigned(t *testing.T) {
	if os.Getenv("PUBSUB_EMULATOR_HOST") == "" {
		t.Skip("PUBSUB_EMULATOR_HOST is not set; start the emulator (make emulators) and export PUBSUB_EMULATOR_HOST=127.0.0.1:8781")
	}
	d := deploy(t, "(default)", "(default)")
	client, err := ps.NewClient(t.Context(), emulatorProject)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	names := topic.Names{Prefix: fmt.Sprintf("t%08x-", rand.Uint32())}
	err = pubsub.Ensure(t.Context(), client, emulatorProject, []string{names.Receipts()},
		[]pubsub.Subscription{{Name: names.Receipts() + "-ledger", Topic: names.Receipts(), PushEndpoint: d.hs.URL + "/v1/receipts/push"}})
	if err != nil {
		t.Fatalf("Ensure = %v", err)
	}
	k := governor.Key{Tenant: uniqueTenant("acme"), Domain: governor.QuotaSLA, Subject: "api_calls"}
	rs := commitChain(t, d.gov, k, 2)
	forged := forgeAfter(rs[1], "unlimited")
	pub := pubsub.NewPublisher(client, pubsub.PublisherOptions{})
	defer pub.Close()
	for _, r := range []receipt.Receipt{rs[0], rs[1], forged} {
		if err := pub.Publish(t.Context(), store.Message{Topic: names.Receipts(), Data: r.JSON(), OrderingKey: k.Tenant,
			Attributes: map[string]string{"ce-type": "autonomics.receipt", "content-type": "application/json"}}); err != nil {
			t.Fatalf("Publish = %v", err)
		}
	}
	for deadline := time.Now().Add(time.Minute); d.stats(t)["receipts_accepted"] < 3; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("pushed receipts after a minute: %v, want 3 accepted", d.stats(t))
		}
	}
	res := d.integrate(t)
	if res.Integrated != 2 || res.Forged != 1 || res.Size != 2 {
		t.Errorf("POST /v1/integrate = %+v, want the 2 committed receipts integrated and the forgery dropped", res)
	}
	d.checkNeverSigned(t, forged)
	d.audit(t)
}

// TestServiceReadsGovernorsDatabaseAndWritesLedgerDatabase runs the
// service with the ledger in a database of its own: the ledger is written
// there, and only receipts of the governors' database are admitted, not
// receipt documents planted in the ledger's database.
func TestServiceReadsGovernorsDatabaseAndWritesLedgerDatabase(t *testing.T) {
	d := deploy(t, "(default)", "ledger")
	k := governor.Key{Tenant: uniqueTenant("acme"), Domain: governor.Billing, Subject: "2026-12"}
	rs := commitChain(t, d.gov, k, 1)
	// A receipt written where governors' receipts live, but in the
	// ledger's database, is not a committed receipt.
	planted := forgeAfter(rs[0], "paid")
	commitPlanted(t, firestore.New(d.ledgerClient, firestore.Options{}), planted)
	d.push(t, rs[0])
	d.push(t, planted)
	res := d.integrate(t)
	if res.Integrated != 1 || res.Forged != 1 || res.Size != 1 {
		t.Errorf("POST /v1/integrate = %+v, want the committed receipt integrated and the planted one dropped", res)
	}
	for _, tc := range []struct {
		db     string
		client *fs.Client
		size   int64
		signed bool
	}{{"ledger", d.ledgerClient, 1, true}, {"(default)", d.govClient, 0, false}} {
		st, err := firestore.NewLedger(tc.client, firestore.LedgerOptions{Name: d.ledgerName}).State(t.Context())
		if err != nil || st.Size != tc.size || (st.Checkpoint != nil) != tc.signed {
			t.Errorf("ledger state in database %s = size %d, checkpoint %v, %v; want size %d, checkpoint %v", tc.db, st.Size, st.Checkpoint != nil, err, tc.size, tc.signed)
		}
	}
}

// commitPlanted writes r with its instance into s, as a governor would.
func commitPlanted(t *testing.T, s store.Store, r receipt.Receipt) {
	t.Helper()
	err := s.RunTx(t.Context(), func(ctx context.Context, tx store.Tx) error {
		return tx.Write(store.Changes{Instance: governor.Instance{Key: r.Key(), State: governor.State(r.ToState), Version: r.Seq, LastHash: r.Hash}, Receipt: r})
	})
	if err != nil {
		t.Fatalf("commit %s = %v", ledger.RefOf(&r), err)
	}
}
