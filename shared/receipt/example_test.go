package receipt_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/receipt"
)

func ExampleNew() {
	inst := governor.Instance{
		Key:   governor.Key{Tenant: "acme", Domain: governor.MultiTenant, Subject: "default"},
		State: governor.StateNone,
	}
	ev := governor.Event{
		ID: "ev-1", Source: "autonomics/entitlement", Type: "autonomics.multi_tenant.provision_requested",
		Domain: governor.MultiTenant, Name: "provision_requested", Tenant: "acme", Subject: "default",
		Data: json.RawMessage(`{}`), CorrelationID: "root-1",
	}
	d := governor.Decision{
		Outcome: governor.Accepted, From: governor.StateNone, To: "provisioning",
		Emits: []governor.Emit{{Kind: governor.KindActuate, Type: "tenant.provision", Domain: governor.MultiTenant, Subject: "default"}},
	}
	r := receipt.New(inst, ev, d, time.Date(2026, 11, 3, 8, 15, 0, 0, time.UTC))
	fmt.Println(r.Seq, r.PrevHash == receipt.ZeroHash, r.Hash == r.ComputeHash())
	fmt.Println(string(r.JSON()))
	// Output:
	// 1 true true
	// {"actions":[{"domain":"multi_tenant","id":"c7b753658533fe7f170add7e0c7fb83a","kind":"actuate","subject":"default","type":"tenant.provision"}],"correlation_id":"root-1","data_digest":"44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","decided_at":"2026-11-03T08:15:00.000000000Z","domain":"multi_tenant","event_source":"autonomics/entitlement","event_type":"autonomics.multi_tenant.provision_requested","execution_id":"ev-1","from_state":"none","hash":"008d850771780a8ddcbca660182f9af5c8097a1a785f09e7121f3ed01088edbe","outcome":"accepted","prev_hash":"0000000000000000000000000000000000000000000000000000000000000000","reason":"","seq":1,"subject":"default","tenant_id":"acme","to_state":"provisioning"}
}

func ExampleVerify() {
	inst := governor.Instance{Key: governor.Key{Tenant: "acme", Domain: governor.MultiTenant, Subject: "default"}}
	var chain []receipt.Receipt
	for i, to := range []governor.State{"provisioning", "active", "degraded"} {
		ev := governor.Event{ID: fmt.Sprintf("ev-%d", i+1), Source: "example", Type: "autonomics.multi_tenant.step",
			Domain: governor.MultiTenant, Tenant: "acme", Subject: "default"}
		d := governor.Decision{Outcome: governor.Accepted, From: inst.State, To: to}
		r := receipt.New(inst, ev, d, time.Date(2026, 11, 3, 8, 15, i, 0, time.UTC))
		chain = append(chain, r)
		inst.State, inst.Version, inst.LastHash = to, r.Seq, r.Hash
	}
	fmt.Println(receipt.Verify(chain))

	chain[1].ToState = "deprovisioned"
	err := receipt.Verify(chain)
	var ce *receipt.ChainError
	if errors.As(err, &ce) {
		fmt.Println(ce.Index, ce.Seq, ce.Problem)
	}

	chain[1].Hash = chain[1].ComputeHash()
	errors.As(receipt.Verify(chain), &ce)
	fmt.Println(ce.Index, ce.Seq, ce.Problem)
	// Output:
	// <nil>
	// 1 2 hash_mismatch
	// 2 3 broken_link
}

func ExampleVerifier() {
	inst := governor.Instance{Key: governor.Key{Tenant: "acme", Domain: governor.QuotaSLA, Subject: "api_calls"}}
	var stored []receipt.Receipt
	for i := range 5 {
		ev := governor.Event{ID: fmt.Sprintf("ev-%d", i), Source: "example", Type: "autonomics.quota_sla.usage_reported",
			Domain: governor.QuotaSLA, Tenant: "acme", Subject: "api_calls"}
		r := receipt.New(inst, ev, governor.Decision{Outcome: governor.Accepted, From: "within_limits", To: "within_limits"}, time.Unix(0, 0))
		stored = append(stored, r)
		inst.Version, inst.LastHash = r.Seq, r.Hash
	}

	// Verify page by page, holding one page at a time.
	v := receipt.NewVerifier()
	for start := 0; start < len(stored); start += 2 {
		page := stored[start:min(start+2, len(stored))]
		for i := range page {
			if err := v.Add(&page[i]); err != nil {
				fmt.Println(err)
				return
			}
		}
	}
	seq, hash := v.Head()
	fmt.Println(v.Count(), seq == inst.Version && hash == inst.LastHash)
	// Output:
	// 5 true
}
