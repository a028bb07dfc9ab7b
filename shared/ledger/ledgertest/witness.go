package ledgertest

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/ledger"
	"github.com/autonomics/autonomics/shared/receipt"
	"github.com/autonomics/autonomics/shared/store"
)

// WitnessStore is a governors' store under test: it commits decisions
// (store.Store) and vouches for their receipts (ledger.ReceiptWitness).
type WitnessStore interface {
	store.Store
	ledger.ReceiptWitness
}

// RunWitnessTests runs the conformance suite of the governors' stores as
// ledger.ReceiptWitness, one subtest per behaviour, each on a store from
// newStore. Every subtest uses tenants of its own, so the store may be
// shared between subtests and test runs.
func RunWitnessTests(t *testing.T, newStore func(t *testing.T) WitnessStore) {
	t.Helper()
	tests := []struct {
		name string
		run  func(t *testing.T, s WitnessStore)
	}{
		{"StoredReceipts", testWitnessStored},
		{"UnstoredPlaces", testWitnessUnstored},
		{"ImpossiblePlaces", testWitnessImpossible},
		{"ManyRefs", testWitnessMany},
		{"NoRefs", testWitnessNoRefs},
		{"CancelledContext", testWitnessCancelled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, newStore(t)) })
	}
}

// witnessTenant returns a tenant id unique to this run.
func witnessTenant(name string) string { return fmt.Sprintf("w-%s-%08x", name, rand.Uint32()) }

// commitChains commits, as the engine does (one transaction per
// decision), n receipts spread over a few instances of tenant, and returns
// them.
func commitChains(t *testing.T, s store.Store, tenant string, n int) []receipt.Receipt {
	t.Helper()
	rs := receipts(rand.New(rand.NewPCG(uint64(n), 100)), tenant, n)
	for _, r := range rs {
		err := s.RunTx(t.Context(), func(ctx context.Context, tx store.Tx) error {
			inst, err := tx.Instance(r.Key())
			if err != nil {
				return err
			}
			inst.State, inst.Version, inst.LastHash = governor.State(r.ToState), r.Seq, r.Hash
			return tx.Write(store.Changes{Instance: inst, Receipt: r})
		})
		if err != nil {
			t.Fatalf("RunTx(commit %s) = %v", ledger.RefOf(&r), err)
		}
	}
	return rs
}

// stored returns what the witness should answer about rs.
func stored(rs []receipt.Receipt) map[ledger.ReceiptRef]string {
	out := make(map[ledger.ReceiptRef]string, len(rs))
	for i := range rs {
		out[ledger.RefOf(&rs[i])] = rs[i].Hash
	}
	return out
}

// checkAnswer compares the witness's answer with want.
func checkAnswer(t *testing.T, call string, got, want map[ledger.ReceiptRef]string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s = %v", call, err)
	}
	if !maps.Equal(got, want) {
		for r, h := range want {
			if got[r] != h {
				t.Errorf("%s[%s] = %q, want %q", call, r, got[r], h)
			}
		}
		for r := range got {
			if _, ok := want[r]; !ok {
				t.Errorf("%s has %s, which is not stored", call, r)
			}
		}
	}
}

func testWitnessStored(t *testing.T, s WitnessStore) {
	a, b := witnessTenant("a"), witnessTenant("b")
	rs := append(commitChains(t, s, a, 12), commitChains(t, s, b, 3)...)
	refs := make([]ledger.ReceiptRef, len(rs))
	for i := range rs {
		refs[i] = ledger.RefOf(&rs[i])
	}
	got, err := s.StoredHashes(t.Context(), refs)
	checkAnswer(t, "StoredHashes(committed receipts)", got, stored(rs), err)
}

func testWitnessUnstored(t *testing.T, s WitnessStore) {
	tenant := witnessTenant("u")
	rs := commitChains(t, s, tenant, 6)
	head := lastOf(rs, rs[0].Key())
	next := ledger.ReceiptRef{Key: head.Key(), Seq: head.Seq + 1}
	stranger := ledger.RefOf(&head)
	stranger.Key.Tenant = witnessTenant("nobody")
	otherSubject := ledger.RefOf(&head)
	otherSubject.Key.Subject += "-x"
	otherDomain := ledger.RefOf(&head)
	otherDomain.Key.Domain = governor.ComplianceAudit
	if head.Domain == string(governor.ComplianceAudit) {
		otherDomain.Key.Domain = governor.Billing
	}
	refs := []ledger.ReceiptRef{ledger.RefOf(&head), next, stranger, otherSubject, otherDomain}
	got, err := s.StoredHashes(t.Context(), refs)
	checkAnswer(t, "StoredHashes(the head and places next to it)", got, stored([]receipt.Receipt{head}), err)
}

func testWitnessImpossible(t *testing.T, s WitnessStore) {
	tenant := witnessTenant("i")
	rs := commitChains(t, s, tenant, 2)
	k := rs[0].Key()
	with := func(tenant string, domain governor.Domain, subject string, seq int64) ledger.ReceiptRef {
		return ledger.ReceiptRef{Key: governor.Key{Tenant: tenant, Domain: domain, Subject: subject}, Seq: seq}
	}
	refs := []ledger.ReceiptRef{
		ledger.RefOf(&rs[0]),
		with("", k.Domain, k.Subject, 1),
		with(".", k.Domain, k.Subject, 1),
		with("..", k.Domain, k.Subject, 1),
		with(tenant+"/instances/x", k.Domain, k.Subject, 1),
		with("__"+tenant+"__", k.Domain, k.Subject, 1),
		with(strings.Repeat("t", 1501), k.Domain, k.Subject, 1),
		with(tenant, "", k.Subject, 1),
		with(tenant, "billing:x", k.Subject, 1),
		with(tenant, k.Domain, "", 1),
		with(tenant, k.Domain, k.Subject+"/receipts/000000000001", 1),
		with(tenant, k.Domain, strings.Repeat("s", 1500), 1),
		with(tenant, k.Domain, k.Subject, 0),
		with(tenant, k.Domain, k.Subject, -1),
		with(tenant, k.Domain, k.Subject, store.MaxSeq+1),
	}
	got, err := s.StoredHashes(t.Context(), refs)
	checkAnswer(t, "StoredHashes(places no receipt can have)", got, stored(rs[:1]), err)
}

func testWitnessMany(t *testing.T, s WitnessStore) {
	tenant := witnessTenant("m")
	rs := commitChains(t, s, tenant, 8)
	// More refs than one read takes, the committed ones spread over them,
	// some asked twice.
	var refs []ledger.ReceiptRef
	for i := range 4500 {
		if i%600 == 0 {
			r := &rs[(i/600)%len(rs)]
			refs = append(refs, ledger.RefOf(r), ledger.RefOf(r))
		}
		refs = append(refs, ledger.ReceiptRef{Key: governor.Key{Tenant: tenant, Domain: governor.QuotaSLA, Subject: fmt.Sprint("none-", i%7)}, Seq: int64(i + 1)})
	}
	refs = append(refs, ledger.RefOf(&rs[len(rs)-1]))
	got, err := s.StoredHashes(t.Context(), refs)
	checkAnswer(t, fmt.Sprintf("StoredHashes(%d refs)", len(refs)), got, stored(rs), err)
}

func testWitnessNoRefs(t *testing.T, s WitnessStore) {
	got, err := s.StoredHashes(t.Context(), nil)
	checkAnswer(t, "StoredHashes(nil)", got, map[ledger.ReceiptRef]string{}, err)
}

func testWitnessCancelled(t *testing.T, s WitnessStore) {
	tenant := witnessTenant("c")
	rs := commitChains(t, s, tenant, 1)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := s.StoredHashes(ctx, []ledger.ReceiptRef{ledger.RefOf(&rs[0])})
	checkCode(t, "StoredHashes(cancelled)", err, fault.Unavailable)
}
