package procurement

import (
	"context"
	"testing"

	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/marketplace/standin"
	"github.com/autonomics/autonomics/shared/webhook"
)

// BenchmarkActuatorApproveEntitlement measures one approve_entitlement
// action carried out through the real Google client against the stand-in
// over HTTP: a read of the entitlement, then the approve call.
func BenchmarkActuatorApproveEntitlement(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	tenant, _ := e.customer(b, "acct-1", true)
	ents := make([]string, b.N)
	for i := range ents {
		id, err := e.s.Purchase(ctx, "acct-1", "prod", "basic", standin.PurchaseOptions{})
		if err != nil {
			b.Fatal(err)
		}
		ents[i] = id
	}
	acts := make([]webhook.Action, b.N)
	for i, id := range ents {
		acts[i] = action(b, governor.Entitlement, KindApproveEntitlement, tenant, id, "", e.clock.Now())
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if out, err := e.act.Handle(ctx, acts[i]); err != nil || out != OutcomeDone {
			b.Fatalf("outcome %s, %v", out, err)
		}
	}
}
