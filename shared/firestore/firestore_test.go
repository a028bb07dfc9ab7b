package firestore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	fs "cloud.google.com/go/firestore"
	pb "cloud.google.com/go/firestore/apiv1/firestorepb"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/receipt"
	"github.com/autonomics/autonomics/shared/store"
	"github.com/autonomics/autonomics/shared/store/storetest"
)

// emulatorProject is the project id the tests use on the emulator.
const emulatorProject = "firestore-test"

// emulatorClient returns a client of the Firestore emulator, or skips the
// test when FIRESTORE_EMULATOR_HOST is not set.
func emulatorClient(t *testing.T) *fs.Client {
	t.Helper()
	if os.Getenv("FIRESTORE_EMULATOR_HOST") == "" {
		t.Skip("FIRESTORE_EMULATOR_HOST is not set; start the emulator (gcloud emulators firestore start --host-port=127.0.0.1:8085) and export FIRESTORE_EMULATOR_HOST=127.0.0.1:8085 to run the Firestore tests")
	}
	c, err := fs.NewClient(context.Background(), emulatorProject)
	if err != nil {
		t.Fatalf("firestore.NewClient(%q) = %v", emulatorProject, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestConformance(t *testing.T) {
	s := New(emulatorClient(t), Options{})
	storetest.RunConformanceTests(t, func(t *testing.T) store.Store { return s })
}

// writeReceipt writes one valid decision and returns its changes.
func writeReceipt(t *testing.T, s *Store, tenant string) store.Changes {
	t.Helper()
	k := governor.Key{Tenant: tenant, Domain: governor.Billing, Subject: "2026-11"}
	inst := governor.Instance{Key: k, State: governor.StateNone}
	ev := governor.Event{ID: "evt-1", Source: "//test", Type: "autonomics.billing.opened", Domain: k.Domain, Name: "opened", Tenant: tenant, Subject: k.Subject}
	d := governor.Decision{Outcome: governor.Accepted, From: governor.StateNone, To: "open"}
	r := receipt.New(inst, ev, d, time.Date(2026, 11, 3, 8, 15, 0, 0, time.UTC))
	c := store.Changes{Instance: governor.Instance{Key: k, State: "open", Version: 1, LastHash: r.Hash}, Receipt: r}
	if err := s.RunTx(t.Context(), func(ctx context.Context, tx store.Tx) error { return tx.Write(c) }); err != nil {
		t.Fatalf("RunTx(Write) = %v, want nil", err)
	}
	return c
}

func testTenant() string {
	return fmt.Sprintf("t-firestore-%08x", rand.Uint32())
}

// TestStoredReceiptTampering alters stored receipts behind the store's
// back: altered values still load, values of the wrong type do not.
func TestStoredReceiptTampering(t *testing.T) {
	c := emulatorClient(t)
	s := New(c, Options{})
	tests := []struct {
		name    string
		update  []fs.Update
		wantErr bool
		check   func(r receipt.Receipt) bool
	}{
		{"altered state", []fs.Update{{Path: "to_state", Value: "paid"}}, false,
			func(r receipt.Receipt) bool { return r.ToState == "paid" && r.ComputeHash() != r.Hash }},
		{"altered seq", []fs.Update{{Path: "seq", Value: 7}}, false,
			func(r receipt.Receipt) bool { return r.Seq == 7 }},
		{"removed field", []fs.Update{{Path: "reason", Value: fs.Delete}}, false,
			func(r receipt.Receipt) bool { return r.Reason == "" }},
		{"extra field", []fs.Update{{Path: "note", Value: 1.5}}, false,
			func(r receipt.Receipt) bool { return r.ComputeHash() == r.Hash }},
		{"float seq", []fs.Update{{Path: "seq", Value: 1.5}}, true, nil},
		{"string seq", []fs.Update{{Path: "seq", Value: "1"}}, true, nil},
		{"integer state", []fs.Update{{Path: "to_state", Value: 3}}, true, nil},
		{"null hash", []fs.Update{{Path: "hash", Value: nil}}, true, nil},
		{"boolean outcome", []fs.Update{{Path: "outcome", Value: true}}, true, nil},
		{"actions not an array", []fs.Update{{Path: "actions", Value: "none"}}, true, nil},
		{"action not a map", []fs.Update{{Path: "actions", Value: []any{"x"}}}, true, nil},
		{"action field not a string", []fs.Update{{Path: "actions", Value: []any{map[string]any{"kind": 1}}}}, true, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tenant := testTenant()
			w := writeReceipt(t, s, tenant)
			k := w.Instance.Key
			ref := s.receiptsRef(k).Doc(seqID(1))
			if _, err := ref.Update(t.Context(), tc.update); err != nil {
				t.Fatalf("Update(%v) = %v", tc.update, err)
			}
			got, err := s.Chain(t.Context(), k, 0, 0)
			if tc.wantErr {
				if fault.ErrorCode(err) != fault.Internal {
					t.Errorf("Chain after %s = %v, %v; want an internal error", tc.name, got, err)
				}
				_, _, err := s.Receipts(t.Context(), store.ReceiptQuery{Tenant: tenant})
				if fault.ErrorCode(err) != fault.Internal {
					t.Errorf("Receipts after %s = %v; want an internal error", tc.name, err)
				}
				return
			}
			if err != nil || len(got) != 1 || !tc.check(got[0]) {
				t.Errorf("Chain after %s = %+v, %v; want the altered receipt, nil", tc.name, got, err)
			}
		})
	}
}

func TestMalformedInstance(t *testing.T) {
	c := emulatorClient(t)
	s := New(c, Options{})
	tests := []struct {
		name   string
		update []fs.Update
	}{
		{"version not an integer", []fs.Update{{Path: "version", Value: "1"}}},
		{"data not a string", []fs.Update{{Path: "data", Value: map[string]any{"a": 1}}}},
		{"timer not a map", []fs.Update{{Path: "timers", Value: map[string]any{"grace": "soon"}}}},
		{"timer due not a timestamp", []fs.Update{{Path: "timers", Value: map[string]any{"grace": map[string]any{"id": "x", "due": "soon"}}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := writeReceipt(t, s, testTenant())
			k := w.Instance.Key
			if _, err := s.instanceRef(k).Update(t.Context(), tc.update); err != nil {
				t.Fatalf("Update(%v) = %v", tc.update, err)
			}
			err := s.RunTx(t.Context(), func(ctx context.Context, tx store.Tx) error {
				_, err := tx.Instance(k)
				return err
			})
			if fault.ErrorCode(err) != fault.Internal {
				t.Errorf("Instance(%s) after %s = %v, want an internal error", k, tc.name, err)
			}
		})
	}
}

func TestWrapErr(t *testing.T) {
	typed := fault.Errorf(fault.Conflict, "x", "typed")
	tests := []struct {
		err  error
		want fault.Code
	}{
		{nil, ""},
		{status.Error(codes.Aborted, "Transaction lock timeout"), fault.Unavailable},
		{status.Error(codes.Unavailable, "down"), fault.Unavailable},
		{status.Error(codes.DeadlineExceeded, "slow"), fault.Unavailable},
		{status.Error(codes.ResourceExhausted, "quota"), fault.Unavailable},
		{status.Error(codes.Canceled, "cancelled"), fault.Unavailable},
		{context.Canceled, fault.Unavailable},
		{fmt.Errorf("get: %w", context.DeadlineExceeded), fault.Unavailable},
		{status.Error(codes.InvalidArgument, "bad"), fault.Invalid},
		{status.Error(codes.NotFound, "missing"), fault.NotFound},
		{status.Error(codes.AlreadyExists, "exists"), fault.Conflict},
		{status.Error(codes.FailedPrecondition, "needs an index"), fault.Internal},
		{status.Error(codes.PermissionDenied, "denied"), fault.Internal},
		{errors.New("plain"), fault.Internal},
		{fmt.Errorf("wrapped: %w", typed), fault.Conflict},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.err), func(t *testing.T) {
			err := wrapErr("op", tc.err)
			if got := fault.ErrorCode(err); got != tc.want {
				t.Errorf("ErrorCode(wrapErr(op, %v)) = %q, want %q", tc.err, got, tc.want)
			}
			if tc.err != nil && !errors.Is(err, tc.err) {
				t.Errorf("wrapErr(op, %v) = %v, does not wrap the error", tc.err, err)
			}
		})
	}
}

// BenchmarkDecision commits decisions on one instance of the emulator,
// each reading the dedup marker and the instance first, as the engine
// does.
func BenchmarkDecision(b *testing.B) {
	if os.Getenv("FIRESTORE_EMULATOR_HOST") == "" {
		b.Skip("FIRESTORE_EMULATOR_HOST is not set")
	}
	c, err := fs.NewClient(context.Background(), emulatorProject)
	if err != nil {
		b.Fatalf("firestore.NewClient(%q) = %v", emulatorProject, err)
	}
	defer c.Close()
	storetest.BenchmarkDecisions(b, New(c, Options{}), testTenant())
}

// emulatorToken authenticates to the emulator as the client library does.
type emulatorToken struct{}

func (emulatorToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer owner"}, nil
}

func (emulatorToken) RequireTransportSecurity() bool { return false }

// commitLog records the document writes of every commit a client sends,
// and the documents it reads.
type commitLog struct {
	mu      sync.Mutex
	commits [][]string
	reads   []string
}

// stream records the documents a BatchGetDocuments request reads.
func (l *commitLog) stream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	cs, err := streamer(ctx, desc, cc, method, opts...)
	if err != nil {
		return nil, err
	}
	return &loggedStream{ClientStream: cs, log: l}, nil
}

// loggedStream is a client stream whose requests a commitLog sees.
type loggedStream struct {
	grpc.ClientStream
	log *commitLog
}

func (s *loggedStream) SendMsg(m any) error {
	if r, ok := m.(*pb.BatchGetDocumentsRequest); ok {
		s.log.mu.Lock()
		s.log.reads = append(s.log.reads, r.Documents...)
		s.log.mu.Unlock()
	}
	return s.ClientStream.SendMsg(m)
}

// intercept records the names of the documents a Commit request writes.
func (l *commitLog) intercept(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if c, ok := req.(*pb.CommitRequest); ok && len(c.Writes) > 0 {
		var names []string
		for _, w := range c.Writes {
			switch op := w.Operation.(type) {
			case *pb.Write_Update:
				names = append(names, op.Update.Name)
			case *pb.Write_Delete:
				names = append(names, op.Delete)
			}
		}
		l.mu.Lock()
		l.commits = append(l.commits, names)
		l.mu.Unlock()
	}
	return invoker(ctx, method, req, reply, cc, opts...)
}

// last returns the writes of the last commit and the documents read
// since the previous call, and forgets them.
func (l *commitLog) last(t *testing.T) (writes, reads []string) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.commits) == 0 {
		t.Fatal("no commit recorded")
	}
	writes, reads = l.commits[len(l.commits)-1], l.reads
	l.commits, l.reads = nil, nil
	return writes, reads
}

// loggedClient returns a client of the emulator whose commits are
// recorded in the returned log.
func loggedClient(t *testing.T) (*fs.Client, *commitLog) {
	t.Helper()
	addr := os.Getenv("FIRESTORE_EMULATOR_HOST")
	if addr == "" {
		t.Skip("FIRESTORE_EMULATOR_HOST is not set")
	}
	log := &commitLog{}
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(emulatorToken{}),
		grpc.WithChainUnaryInterceptor(log.intercept),
		grpc.WithChainStreamInterceptor(log.stream))
	if err != nil {
		t.Fatalf("grpc.NewClient(%q) = %v", addr, err)
	}
	c, err := fs.NewClient(t.Context(), emulatorProject, option.WithGRPCConn(conn))
	if err != nil {
		t.Fatalf("firestore.NewClient(%q) = %v", emulatorProject, err)
	}
	t.Cleanup(func() { c.Close(); conn.Close() })
	return c, log
}

// TestOrdinaryDecisionWritesNoTenant counts the document writes of each
// decision's commit: the first receipt of a tenant's first instance adds
// the tenant document, and no other decision writes it (nor reads it: an
// ordinary decision commits exactly its instance, dedup marker and
// receipt).
func TestOrdinaryDecisionWritesNoTenant(t *testing.T) {
	c, log := loggedClient(t)
	s := New(c, Options{})
	tenant := testTenant()
	tenantDoc := relativePath(s.tenantRef(tenant))
	start := time.Date(2026, 11, 3, 8, 0, 0, 0, time.UTC)
	decide := func(k governor.Key, id string, at time.Time) {
		t.Helper()
		err := s.RunTx(t.Context(), func(ctx context.Context, tx store.Tx) error {
			if _, _, err := tx.Dedup(k, "//test", id); err != nil {
				return err
			}
			inst, err := tx.Instance(k)
			if err != nil {
				return err
			}
			ev := governor.Event{ID: id, Source: "//test", Type: "autonomics.billing.opened", Domain: k.Domain, Name: "opened", Tenant: k.Tenant, Subject: k.Subject}
			r := receipt.New(inst, ev, governor.Decision{Outcome: governor.Accepted, From: inst.State, To: "open"}, at)
			return tx.Write(store.Changes{
				Instance: governor.Instance{Key: k, State: "open", Version: r.Seq, LastHash: r.Hash, UpdatedAt: at},
				Dedup:    store.Dedup{Key: k, Source: ev.Source, EventID: id, ReceiptHash: r.Hash, ExpireAt: at.Add(time.Hour)},
				Receipt:  r,
			})
		})
		if err != nil {
			t.Fatalf("RunTx(decision %s on %s) = %v, want nil", id, k, err)
		}
	}
	ofTenant := func(names []string) int {
		n := 0
		for _, w := range names {
			if strings.HasSuffix(w, "/documents/"+tenantDoc) {
				n++
			}
		}
		return n
	}
	first := governor.Key{Tenant: tenant, Domain: governor.Billing, Subject: "2026-11"}
	second := governor.Key{Tenant: tenant, Domain: governor.Billing, Subject: "2026-12"}
	tests := []struct {
		name       string
		k          governor.Key
		wantWrites int
		// wantTenant is how many of the writes are the tenant document;
		// readTenant whether the transaction reads it.
		wantTenant int
		readTenant bool
	}{
		{"first receipt of the tenant", first, 4, 1, true},
		{"ordinary decision", first, 3, 0, false},
		{"another ordinary decision", first, 3, 0, false},
		{"first receipt of another instance", second, 3, 0, true},
		{"ordinary decision of that instance", second, 3, 0, false},
	}
	for i, tc := range tests {
		decide(tc.k, fmt.Sprint("evt-", i), start.Add(time.Duration(i)*time.Second))
		w, r := log.last(t)
		if len(w) != tc.wantWrites || ofTenant(w) != tc.wantTenant {
			t.Errorf("%s: commit writes %q (%d), %d of them the tenant; want %d writes, %d of the tenant", tc.name, w, len(w), ofTenant(w), tc.wantWrites, tc.wantTenant)
		}
		if got := ofTenant(r) > 0; got != tc.readTenant {
			t.Errorf("%s: reads %q: tenant document read = %v, want %v", tc.name, r, got, tc.readTenant)
		}
	}
	snap, err := s.tenantRef(tenant).Get(t.Context())
	if err != nil {
		t.Fatalf("Get(%s) = %v", tenantDoc, err)
	}
	d := newDecoder(snap)
	if id, created := d.str("tenant_id"), d.time("created_at"); d.err != nil || id != tenant || !created.Equal(start) {
		t.Errorf("%s = %v (%v); want tenant_id %q, created_at of the first receipt", tenantDoc, snap.Data(), d.err, tenant)
	}
	if got, err := s.Tenants(t.Context(), store.TenantQuery{Prefix: tenant}); err != nil || !slices.Equal(got, []string{tenant}) {
		t.Errorf("Tenants(prefix %q) = %q, %v; want [%q], nil", tenant, got, err, tenant)
	}
}

// TestIndexTenantsBackfillsOldData removes tenant documents behind the
// store's back, as data written before the index has none: IndexTenants
// creates them, once.
func TestIndexTenantsBackfillsOldData(t *testing.T) {
	emulatorClient(t)
	// A project of its own: IndexTenants reads every tenant.
	project := fmt.Sprintf("firestore-index-%08x", rand.Uint32())
	c, err := fs.NewClient(t.Context(), project)
	if err != nil {
		t.Fatalf("firestore.NewClient(%q) = %v", project, err)
	}
	t.Cleanup(func() { c.Close() })
	s := New(c, Options{})
	tenants := []string{"acme", "globex", "initech"}
	for _, tenant := range tenants {
		writeReceipt(t, s, tenant)
	}
	for _, tenant := range tenants[1:] {
		if _, err := s.tenantRef(tenant).Delete(t.Context()); err != nil {
			t.Fatalf("Delete(tenants/%s) = %v", tenant, err)
		}
	}
	if got, err := s.Tenants(t.Context(), store.TenantQuery{}); err != nil || !slices.Equal(got, tenants[:1]) {
		t.Fatalf("Tenants() before IndexTenants = %q, %v; want %q", got, err, tenants[:1])
	}
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for i, want := range []int{2, 0} {
		n, err := s.IndexTenants(t.Context(), now)
		if err != nil || n != want {
			t.Errorf("IndexTenants() run %d = %d, %v; want %d, nil", i+1, n, err, want)
		}
	}
	if got, err := s.Tenants(t.Context(), store.TenantQuery{}); err != nil || !slices.Equal(got, tenants) {
		t.Errorf("Tenants() after IndexTenants = %q, %v; want %q", got, err, tenants)
	}
	snap, err := s.tenantRef("acme").Get(t.Context())
	if err != nil || !newDecoder(snap).time("created_at").Equal(time.Date(2026, 11, 3, 8, 15, 0, 0, time.UTC)) {
		t.Errorf("tenants/acme = %v, %v; want the created_at of its first receipt kept", snap.Data(), err)
	}
}
