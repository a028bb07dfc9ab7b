package receipt

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/autonomics/autonomics/shared/governor"
)

// benchInput is a typical decision: an entitlement activation with three
// emitted messages.
func benchInput() (governor.Instance, governor.Event, governor.Decision) {
	inst := governor.Instance{
		Key:      governor.Key{Tenant: "tenant-0042", Domain: governor.Entitlement, Subject: "ent-7f3a9c"},
		State:    "activation_requested",
		Version:  41,
		LastHash: strings.Repeat("9f", 32),
	}
	ev := governor.Event{
		ID: "6b1f0c8e-3a52-4d7e-9b3c-2f1e4a5d6c7b", Source: "//cloudcommerceprocurement.googleapis.com/providers/acme",
		Type: "autonomics.entitlement.activated", Domain: governor.Entitlement, Name: "activated",
		Tenant: "tenant-0042", Subject: "ent-7f3a9c", Data: json.RawMessage(`{"plan":"professional-monthly"}`),
		CorrelationID: "0d2c6e4a-8b1f-4c3d-a5e7-9f0b1c2d3e4f",
	}
	d := governor.Decision{
		Outcome: governor.Accepted, From: "activation_requested", To: "active",
		Emits: []governor.Emit{
			{Kind: governor.KindEvent, Type: "autonomics.subscription.created", Domain: governor.Subscription, Subject: "ent-7f3a9c"},
			{Kind: governor.KindEvent, Type: "autonomics.multi_tenant.provision_requested", Domain: governor.MultiTenant, Subject: "default"},
			{Kind: governor.KindEvent, Type: "autonomics.quota_sla.limit_set", Domain: governor.QuotaSLA, Subject: "api_calls"},
		},
	}
	return inst, ev, d
}

func BenchmarkNewReceipt(b *testing.B) {
	inst, ev, d := benchInput()
	b.ReportAllocs()
	var r Receipt
	for b.Loop() {
		r = New(inst, ev, d, t0)
	}
	b.SetBytes(int64(len(r.Canonical())))
}

func BenchmarkSHA256Canonical(b *testing.B) {
	inst, ev, d := benchInput()
	r := New(inst, ev, d, t0)
	c := r.Canonical()
	b.SetBytes(int64(len(c)))
	b.ReportAllocs()
	for b.Loop() {
		sha256.Sum256(c)
	}
}

func BenchmarkParse(b *testing.B) {
	inst, ev, d := benchInput()
	r := New(inst, ev, d, t0)
	js := r.JSON()
	b.SetBytes(int64(len(js)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(js); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyChain100k(b *testing.B) {
	const n = 100_000
	inst, ev, d := benchInput()
	inst.Version, inst.LastHash = 0, ""
	chain := make([]Receipt, n)
	for i := range chain {
		ev.ID = fmt.Sprintf("ev-%d", i)
		chain[i] = New(inst, ev, d, t0)
		inst.Version, inst.LastHash = chain[i].Seq, chain[i].Hash
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := Verify(chain); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "receipts/s")
}
