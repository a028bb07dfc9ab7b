package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/ledger"
	"github.com/autonomics/autonomics/shared/receipt"
)

// integrate commits rs as the governors' receipts, replacing what was
// stored at their places (a governors' store rewritten behind their back),
// integrates them and returns the checkpoint.
func (l *testLog) integrate(tb testing.TB, rs ...receipt.Receipt) ledger.Checkpoint {
	tb.Helper()
	l.commit(rs...)
	var es []ledger.Entry
	for _, r := range rs {
		e, err := ledger.NewEntry(r.JSON(), time.Now())
		if err != nil {
			tb.Fatal(err)
		}
		es = append(es, e)
	}
	if _, err := l.store.AddPending(context.Background(), es); err != nil {
		tb.Fatal(err)
	}
	p, err := l.in.Integrate(context.Background())
	if err != nil || p.Integrated != len(rs) {
		tb.Fatalf("Integrate = %d integrated, %v; want %d", p.Integrated, err, len(rs))
	}
	cp, err := ledger.OpenCheckpoint(p.Checkpoint, l.verifier)
	if err != nil {
		tb.Fatal(err)
	}
	return cp
}

// indexOf returns the log index of receipt hash.
func (l *testLog) indexOf(tb testing.TB, hash string) int64 {
	tb.Helper()
	found, err := l.store.Lookup(context.Background(), []string{hash})
	if err != nil || found[hash].Index < 0 {
		tb.Fatalf("Lookup(%s) = %+v, %v", hash, found, err)
	}
	return found[hash].Index
}

// after returns an intact receipt of k's instance at seq, chained to
// prev, as anyone with the receipt code can make one.
func after(k governor.Key, seq int64, prev, to string) receipt.Receipt {
	inst := governor.Instance{Key: k, State: "b", Version: seq - 1, LastHash: prev}
	ev := governor.Event{ID: fmt.Sprint("mallory-", seq, "-", to), Source: "//mallory", Type: governor.TypeOf(k.Domain, "step"),
		Domain: k.Domain, Name: "step", Tenant: k.Tenant, Subject: k.Subject}
	return receipt.New(inst, ev, governor.Decision{Outcome: governor.Accepted, From: "b", To: governor.State(to)}, time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC))
}

// checkFork fails the test unless err is a Fork failure whose Where
// names both indices and contains each of names.
func checkFork(t *testing.T, call string, err error, first, second int64, names ...string) {
	t.Helper()
	var ve *ledger.VerifyError
	if !errors.As(err, &ve) || ve.Problem != ledger.Fork {
		t.Fatalf("%s = %v, want a fork", call, err)
	}
	if want := fmt.Sprintf("entries %d and %d", first, second); !strings.Contains(ve.Where, want) {
		t.Errorf("%s at %q, want it to name %s", call, ve.Where, want)
	}
	for _, n := range names {
		if !strings.Contains(ve.Where, n) {
			t.Errorf("%s at %q, want it to name %s", call, ve.Where, n)
		}
	}
	if fault.ErrorCode(err) != fault.Conflict {
		t.Errorf("%s error code = %q, want conflict", call, fault.ErrorCode(err))
	}
}

// TestAuditNamesForkSameSeq puts in the log, beside a governor's receipt,
// another receipt for the same (tenant, domain, subject, seq), as a log
// written before the integrator asked the governors' store held them.
func TestAuditNamesForkSameSeq(t *testing.T) {
	l := newTestLog(t)
	cp := l.add(t, 600)
	if _, err := ledger.Audit(t.Context(), l.log, cp); err != nil {
		t.Fatalf("Audit(no fork) = %v", err)
	}
	k := l.insts[1].Key
	chain := l.chains[k]
	victim := chain[len(chain)-5]
	twin := after(k, victim.Seq, victim.PrevHash, "forged")
	l.add(t, 300)
	cp = l.integrate(t, twin)
	_, err := ledger.Audit(t.Context(), l.log, cp)
	checkFork(t, "Audit(two receipts for one seq)", err, l.indexOf(t, victim.Hash), l.indexOf(t, twin.Hash), ledger.RefOf(&victim).String())
	if !strings.Contains(err.Error(), twin.Hash) {
		t.Errorf("Audit(two receipts for one seq) = %v, want it to name receipt %s", err, twin.Hash)
	}
}

// TestAuditNamesForkSamePrevHash puts in the log two receipts of one
// instance that both follow the same receipt, at different seqs.
func TestAuditNamesForkSamePrevHash(t *testing.T) {
	l := newTestLog(t)
	l.add(t, 40)
	k := l.insts[2].Key
	chain := l.chains[k]
	victim := chain[3]
	sibling := after(k, victim.Seq+7, victim.PrevHash, "forged")
	cp := l.integrate(t, sibling)
	_, err := ledger.Audit(t.Context(), l.log, cp)
	checkFork(t, "Audit(two receipts after one prev_hash)", err, l.indexOf(t, victim.Hash), l.indexOf(t, sibling.Hash),
		ledger.RefOf(&victim).String(), fmt.Sprintf("seq %d", sibling.Seq))
	if !strings.Contains(err.Error(), victim.PrevHash) {
		t.Errorf("Audit(two receipts after one prev_hash) = %v, want it to name prev_hash %s", err, victim.PrevHash)
	}
}

// TestVerifyExportNamesFork lists, in a tenant's export, two receipts for
// one seq of an instance, or two after one prev_hash.
func TestVerifyExportNamesFork(t *testing.T) {
	l := newTestLog(t)
	l.add(t, 30)
	k := l.insts[0].Key
	chain := l.chains[k]
	twin := after(k, chain[2].Seq, chain[2].PrevHash, "forged")
	sibling := after(k, chain[2].Seq+9, chain[2].PrevHash, "forged")
	cp := l.integrate(t, twin, sibling)
	e, err := l.log.Export(t.Context(), l, "acme", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ledger.VerifyExport(e, cp); err != nil {
		t.Fatalf("VerifyExport(the governors' chains) = %v", err)
	}
	at := func(r receipt.Receipt) ledger.ExportReceipt {
		return ledger.ExportReceipt{Index: l.indexOf(t, r.Hash), Receipt: r}
	}
	var inst int
	for i, ei := range e.Instances {
		if ei.Domain == string(k.Domain) && ei.Subject == k.Subject {
			inst = i
		}
	}
	orig := e.Instances[inst].Receipts
	tests := []struct {
		name  string
		extra receipt.Receipt
		where string
	}{
		{"same seq", twin, fmt.Sprintf("seq %d (index %d and index %d)", twin.Seq, l.indexOf(t, chain[2].Hash), l.indexOf(t, twin.Hash))},
		{"same prev_hash", sibling, fmt.Sprintf("seq %d and seq %d (index %d and index %d)", chain[2].Seq, sibling.Seq, l.indexOf(t, chain[2].Hash), l.indexOf(t, sibling.Hash))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rs := append(append(append([]ledger.ExportReceipt{}, orig[:3]...), at(tc.extra)), orig[3:]...)
			e.Instances[inst].Receipts = rs
			_, err := ledger.VerifyExport(e, cp)
			var ve *ledger.VerifyError
			if !errors.As(err, &ve) || ve.Problem != ledger.Fork || !strings.Contains(ve.Where, tc.where) {
				t.Errorf("VerifyExport(%s) = %v, want a fork at %s", tc.name, err, tc.where)
			}
		})
	}
}
