package memstore_test

import (
	"context"
	"fmt"
	"time"

	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/memstore"
	"github.com/autonomics/autonomics/shared/receipt"
	"github.com/autonomics/autonomics/shared/store"
)

// A decision is read, decided and written in one transaction; the receipt
// chain can then be read back.
func Example() {
	ctx := context.Background()
	s := memstore.New()
	k := governor.Key{Tenant: "acme", Domain: governor.Billing, Subject: "2026-11"}
	ev := governor.Event{ID: "evt-1", Source: "//billing", Type: "autonomics.billing.opened",
		Domain: k.Domain, Name: "opened", Tenant: k.Tenant, Subject: k.Subject}
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

	err := s.RunTx(ctx, func(ctx context.Context, tx store.Tx) error {
		if _, found, err := tx.Dedup(k, ev.Source, ev.ID); err != nil || found {
			return err
		}
		inst, err := tx.Instance(k)
		if err != nil {
			return err
		}
		d := governor.Decision{Outcome: governor.Accepted, From: inst.State, To: "open"}
		r := receipt.New(inst, ev, d, now)
		return tx.Write(store.Changes{
			Instance: governor.Instance{Key: k, State: d.To, Version: r.Seq, LastHash: r.Hash, UpdatedAt: now},
			Dedup:    store.Dedup{Key: k, Source: ev.Source, EventID: ev.ID, ReceiptHash: r.Hash},
			Receipt:  r,
		})
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	chain, _ := s.Chain(ctx, k, 0, 0)
	for _, r := range chain {
		fmt.Println(r.Seq, r.FromState, "→", r.ToState, receipt.Verify(chain) == nil)
	}
	// Output: 1 none → open true
}
