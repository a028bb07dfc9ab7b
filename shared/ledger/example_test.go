package ledger_test

import (
	"context"
	"fmt"
	"time"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/ledger"
	"github.com/autonomics/autonomics/shared/ledger/memledger"
	"github.com/autonomics/autonomics/shared/receipt"
)

// exampleReceipt returns the n-th receipt of one billing instance.
func exampleReceipts(n int) []receipt.Receipt {
	inst := governor.Instance{Key: governor.Key{Tenant: "acme", Domain: governor.Billing, Subject: "2026-11"}}
	var out []receipt.Receipt
	for i := range n {
		ev := governor.Event{ID: fmt.Sprint("evt-", i), Source: "//example", Type: "autonomics.billing.usage_recorded",
			Domain: governor.Billing, Name: "usage_recorded", Tenant: "acme", Subject: "2026-11"}
		r := receipt.New(inst, ev, governor.Decision{Outcome: governor.Accepted, From: "open", To: "open"},
			time.Date(2026, 11, 20, 9, 0, i, 0, time.UTC))
		inst.Version, inst.LastHash = r.Seq, r.Hash
		out = append(out, r)
	}
	return out
}

// governors is a witness over the receipts the governors stored, place by
// place; in a deployment it is the governors' store (firestore.Store).
type governors map[ledger.ReceiptRef]string

func (g governors) StoredHashes(_ context.Context, refs []ledger.ReceiptRef) (map[ledger.ReceiptRef]string, error) {
	out := map[ledger.ReceiptRef]string{}
	for _, r := range refs {
		if h, ok := g[r]; ok {
			out[r] = h
		}
	}
	return out, nil
}

// committed returns the witness of the governors that stored rs.
func committed(rs []receipt.Receipt) governors {
	g := governors{}
	for i := range rs {
		g[ledger.RefOf(&rs[i])] = rs[i].Hash
	}
	return g
}

// An integrator appends published receipts, those the governors stored,
// to the log and signs a checkpoint; anyone holding the verifier key
// checks a receipt's inclusion proof against it.
func Example() {
	ctx := context.Background()
	signerKey, verifierKey, _ := ledger.GenerateKey("example.com/ledger")
	signer, _, _ := ledger.NewSigner(signerKey)
	store := memledger.New()
	rs := exampleReceipts(10)
	in, _ := ledger.NewIntegrator(ledger.IntegratorOptions{Store: store, Witness: committed(rs), Signer: signer, VerifierKey: verifierKey, Holder: "integrator-1"})

	// The push endpoint turns each published receipt into a pending entry.
	for _, r := range rs {
		e, err := ledger.NewEntry(r.JSON(), time.Now())
		if err != nil {
			panic(err)
		}
		store.AddPending(ctx, []ledger.Entry{e})
	}
	pass, err := in.Integrate(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Println("integrated:", pass.Integrated)

	// An auditor verifies the checkpoint and a proof, offline.
	v, _ := ledger.NewVerifier(verifierKey)
	cp, err := ledger.OpenCheckpoint(pass.Checkpoint, v)
	if err != nil {
		panic(err)
	}
	proof, _ := ledger.NewLog(store).InclusionProof(ctx, rs[3].Hash, 0)
	fmt.Println("checkpoint size:", cp.Size)
	fmt.Println("receipt 4 included:", ledger.VerifyInclusion(&rs[3], &proof, cp) == nil)

	rs[3].ToState = "paid" // an altered receipt is not
	fmt.Println("altered receipt included:", ledger.VerifyInclusion(&rs[3], &proof, cp) == nil)
	// Output:
	// integrated: 10
	// checkpoint size: 10
	// receipt 4 included: true
	// altered receipt included: false
}

// A receipt anyone can make up with the receipt code, intact and chained
// to the instance's head, is not one the governors stored: the integrator
// drops it instead of signing it.
func ExampleReceiptWitness() {
	ctx := context.Background()
	signerKey, _, _ := ledger.GenerateKey("example.com/ledger")
	signer, _, _ := ledger.NewSigner(signerKey)
	store := memledger.New()
	rs := exampleReceipts(4)
	stored, forged := rs[:3], rs[3] // the governors committed three
	in, _ := ledger.NewIntegrator(ledger.IntegratorOptions{Store: store, Witness: committed(stored), Signer: signer, Holder: "integrator-1"})
	for _, r := range rs {
		e, _ := ledger.NewEntry(r.JSON(), time.Now())
		store.AddPending(ctx, []ledger.Entry{e})
	}
	pass, _ := in.Integrate(ctx)
	fmt.Println("integrated:", pass.Integrated, "dropped:", pass.Forged)
	_, err := ledger.NewLog(store).InclusionProof(ctx, forged.Hash, 0)
	fmt.Println("forged receipt:", fault.ErrorCode(err))
	// Output:
	// integrated: 3 dropped: 1
	// forged receipt: not_found
}

func ExampleCheckpoint_Text() {
	cp := ledger.Checkpoint{Origin: "example.com/ledger", Size: 0, Root: ledger.EmptyRoot}
	fmt.Print(string(cp.Text()))
	// Output:
	// example.com/ledger
	// 0
	// 47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=
}

func ExampleVerifyConsistency() {
	ctx := context.Background()
	signerKey, verifierKey, _ := ledger.GenerateKey("example.com/ledger")
	signer, _, _ := ledger.NewSigner(signerKey)
	store := memledger.New()
	rs := exampleReceipts(12)
	in, _ := ledger.NewIntegrator(ledger.IntegratorOptions{Store: store, Witness: committed(rs), Signer: signer, Holder: "integrator-1"})
	v, _ := ledger.NewVerifier(verifierKey)
	var cps []ledger.Checkpoint
	for _, part := range [][]receipt.Receipt{rs[:5], rs[5:]} {
		for _, r := range part {
			e, _ := ledger.NewEntry(r.JSON(), time.Now())
			store.AddPending(ctx, []ledger.Entry{e})
		}
		pass, _ := in.Integrate(ctx)
		cp, _ := ledger.OpenCheckpoint(pass.Checkpoint, v)
		cps = append(cps, cp)
	}
	proof, _ := ledger.NewLog(store).ConsistencyProof(ctx, cps[0].Size, cps[1].Size)
	fmt.Println(cps[0].Size, "→", cps[1].Size, "consistent:", ledger.VerifyConsistency(cps[0], cps[1], &proof) == nil)
	// Output:
	// 5 → 12 consistent: true
}
