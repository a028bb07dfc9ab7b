package firestore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	fs "cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

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
				if governor.ErrorCode(err) != governor.Internal {
					t.Errorf("Chain after %s = %v, %v; want an internal error", tc.name, got, err)
				}
				_, _, err := s.Receipts(t.Context(), store.ReceiptQuery{Tenant: tenant})
				if governor.ErrorCode(err) != governor.Internal {
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
			if governor.ErrorCode(err) != governor.Internal {
				t.Errorf("Instance(%s) after %s = %v, want an internal error", k, tc.name, err)
			}
		})
	}
}

func TestWrapErr(t *testing.T) {
	typed := governor.Errorf(governor.Conflict, "x", "typed")
	tests := []struct {
		err  error
		want governor.Code
	}{
		{nil, ""},
		{status.Error(codes.Aborted, "Transaction lock timeout"), governor.Unavailable},
		{status.Error(codes.Unavailable, "down"), governor.Unavailable},
		{status.Error(codes.DeadlineExceeded, "slow"), governor.Unavailable},
		{status.Error(codes.ResourceExhausted, "quota"), governor.Unavailable},
		{status.Error(codes.Canceled, "cancelled"), governor.Unavailable},
		{context.Canceled, governor.Unavailable},
		{fmt.Errorf("get: %w", context.DeadlineExceeded), governor.Unavailable},
		{status.Error(codes.InvalidArgument, "bad"), governor.Invalid},
		{status.Error(codes.NotFound, "missing"), governor.NotFound},
		{status.Error(codes.AlreadyExists, "exists"), governor.Conflict},
		{status.Error(codes.FailedPrecondition, "needs an index"), governor.Internal},
		{status.Error(codes.PermissionDenied, "denied"), governor.Internal},
		{errors.New("plain"), governor.Internal},
		{fmt.Errorf("wrapped: %w", typed), governor.Conflict},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.err), func(t *testing.T) {
			err := wrapErr("op", tc.err)
			if got := governor.ErrorCode(err); got != tc.want {
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
