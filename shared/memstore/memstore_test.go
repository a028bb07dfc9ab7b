package memstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/memstore"
	"github.com/autonomics/autonomics/shared/receipt"
	"github.com/autonomics/autonomics/shared/store"
	"github.com/autonomics/autonomics/shared/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.RunConformanceTests(t, func(t *testing.T) store.Store { return memstore.New() })
}

// TestConformanceShared runs the suite on one store shared by every test,
// as the Firestore emulator is.
func TestConformanceShared(t *testing.T) {
	s := memstore.New()
	storetest.RunConformanceTests(t, func(t *testing.T) store.Store { return s })
}

// BenchmarkDecision measures one decision's transaction on the in-memory
// store.
func BenchmarkDecision(b *testing.B) { storetest.BenchmarkDecisions(b, memstore.New(), "bench") }

// TestTenantsLimitIsCapped asks for more tenants than a page may hold.
func TestTenantsLimitIsCapped(t *testing.T) {
	s := memstore.New()
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for i := range store.MaxLimit + 5 {
		k := governor.Key{Tenant: fmt.Sprintf("t-%05d", i), Domain: governor.Billing, Subject: "2026-11"}
		inst := governor.Instance{Key: k, State: governor.StateNone}
		ev := governor.Event{ID: "e", Source: "//test", Tenant: k.Tenant, Domain: k.Domain, Subject: k.Subject}
		r := receipt.New(inst, ev, governor.Decision{Outcome: governor.Accepted, To: "open"}, at)
		err := s.RunTx(t.Context(), func(ctx context.Context, tx store.Tx) error {
			return tx.Write(store.Changes{Instance: governor.Instance{Key: k, State: "open", Version: 1, LastHash: r.Hash}, Receipt: r})
		})
		if err != nil {
			t.Fatalf("RunTx(first receipt of %s) = %v", k.Tenant, err)
		}
	}
	for _, limit := range []int{store.MaxLimit + 1, 1 << 30} {
		got, err := s.Tenants(t.Context(), store.TenantQuery{Limit: limit})
		if err != nil || len(got) != store.MaxLimit || got[0] != "t-00000" || got[len(got)-1] != fmt.Sprintf("t-%05d", store.MaxLimit-1) {
			t.Errorf("Tenants(limit %d) = %d ids, %v; want the first %d", limit, len(got), err, store.MaxLimit)
		}
	}
	got, err := s.Tenants(t.Context(), store.TenantQuery{})
	if err != nil || len(got) != store.DefaultLimit {
		t.Errorf("Tenants(no limit) = %d ids, %v; want %d", len(got), err, store.DefaultLimit)
	}
}
