package engine

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	fs "cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/autonomics/autonomics/shared/firestore"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/machines"
)

// emulatorBench skips a benchmark without the Firestore emulator.
func emulatorBench(b *testing.B) *fs.Client {
	b.Helper()
	if os.Getenv("FIRESTORE_EMULATOR_HOST") == "" {
		b.Skip("FIRESTORE_EMULATOR_HOST is not set")
	}
	fc, err := fs.NewClient(context.Background(), emulatorProject)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { fc.Close() })
	return fc
}

// BenchmarkApplyOnFirestore is one decision through the engine on the
// Firestore emulator: dedup and instance reads, decision, receipt, and the
// writes of state, dedup marker, receipt, outbox, then marking the outbox
// delivered. Publication is excluded (a discarding publisher) so that the
// number compares with BenchmarkBareTransaction.
func BenchmarkApplyOnFirestore(b *testing.B) {
	fc := emulatorBench(b)
	eng, err := New(Options{Store: firestore.New(fc, firestore.Options{}), Publisher: &discard{},
		Machines: machines.New(nil), Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	tenant := fmt.Sprintf("bench-%x", rand.Uint64())
	i := 0
	b.ResetTimer()
	for b.Loop() {
		i++
		e := ev(tenant, governor.Billing, "usage_recorded", fmt.Sprintf("p%d", i%50), `{"meter":"api_calls","quantity":3}`)
		if _, err := eng.Apply(context.Background(), e); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBareTransaction is a Firestore transaction of the same shape
// written by hand: the floor the engine is compared with.
func BenchmarkBareTransaction(b *testing.B) {
	fc := emulatorBench(b)
	tenant := fmt.Sprintf("bare-%x", rand.Uint64())
	receiptBody := strings.Repeat("r", 600)
	i := 0
	b.ResetTimer()
	for b.Loop() {
		i++
		inst := fc.Collection("bare").Doc(tenant).Collection("instances").Doc(fmt.Sprintf("billing:p%d", i%50))
		dedup := fc.Collection("bare").Doc(tenant).Collection("dedup").Doc(fmt.Sprintf("d%d", i))
		err := fc.RunTransaction(context.Background(), func(ctx context.Context, tx *fs.Transaction) error {
			if _, err := tx.Get(dedup); err != nil && !isNotFound(err) {
				return err
			}
			snap, err := tx.Get(inst)
			var version int64
			if err == nil {
				v, _ := snap.DataAt("version")
				version, _ = v.(int64)
			} else if !isNotFound(err) {
				return err
			}
			now := time.Now()
			_ = tx.Set(inst, map[string]any{"state": "open", "version": version + 1, "data": `{"meters":{"api_calls":3}}`, "updated_at": now})
			_ = tx.Set(dedup, map[string]any{"receipt_hash": "h", "expire_at": now})
			_ = tx.Set(inst.Collection("receipts").Doc(fmt.Sprintf("%012d", version+1)), map[string]any{"body": receiptBody, "decided_at_ts": now})
			return tx.Set(fc.Collection("bare_outbox").Doc(fmt.Sprintf("%s-%d", tenant, i)), map[string]any{"data": receiptBody, "delivered": false, "created_at": now})
		})
		if err != nil {
			b.Fatal(err)
		}
		// The engine marks the outbox delivered after publishing.
		if _, err := fc.Collection("bare_outbox").Doc(fmt.Sprintf("%s-%d", tenant, i)).Update(context.Background(), []fs.Update{{Path: "delivered", Value: true}}); err != nil {
			b.Fatal(err)
		}
	}
}

func isNotFound(err error) bool { return status.Code(err) == codes.NotFound }
