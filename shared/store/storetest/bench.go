package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/receipt"
	"github.com/autonomics/autonomics/shared/store"
)

// BenchmarkDecisions commits b.N decisions on one instance of tenant, each
// reading the dedup marker and the instance first, as the engine does.
// Adapters call it from their own benchmarks.
func BenchmarkDecisions(b *testing.B, s store.Store, tenant string) {
	ctx := context.Background()
	k := governor.Key{Tenant: tenant, Domain: governor.QuotaSLA, Subject: "api_calls"}
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; b.Loop(); i++ {
		ev := governor.Event{ID: fmt.Sprint("evt-", i), Source: "//bench", Tenant: k.Tenant, Domain: k.Domain, Subject: k.Subject}
		err := s.RunTx(ctx, func(ctx context.Context, tx store.Tx) error {
			if _, _, err := tx.Dedup(k, ev.Source, ev.ID); err != nil {
				return err
			}
			inst, err := tx.Instance(k)
			if err != nil {
				return err
			}
			r := receipt.New(inst, ev, governor.Decision{Outcome: governor.Accepted, From: inst.State, To: "within_limits"}, now)
			return tx.Write(store.Changes{
				Instance: governor.Instance{Key: k, State: "within_limits", Version: r.Seq, LastHash: r.Hash, UpdatedAt: now},
				Dedup:    store.Dedup{Key: k, Source: ev.Source, EventID: ev.ID, ReceiptHash: r.Hash},
				Receipt:  r,
			})
		})
		if err != nil {
			b.Fatalf("RunTx = %v", err)
		}
	}
}
