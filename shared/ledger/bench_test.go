package ledger_test

import (
	"context"
	"testing"

	"github.com/autonomics/autonomics/shared/ledger"
	"github.com/autonomics/autonomics/shared/receipt"
)

// benchLog is a log of 2^17 receipts, built once.
var benchLog *testLog

func benchSetup(b *testing.B) *testLog {
	b.Helper()
	if benchLog == nil {
		l := newTestLog(b)
		for range 1 << 17 / ledger.MaxBatch {
			l.add(b, ledger.MaxBatch)
		}
		l.add(b, 1<<17%ledger.MaxBatch)
		benchLog = l
	}
	return benchLog
}

// BenchmarkVerifyInclusion verifies receipts against their inclusion
// proofs in a tree of 131,072 entries, as an auditor does: the receipt's
// own hash, its leaf hash and the 17-hash audit path.
func BenchmarkVerifyInclusion(b *testing.B) {
	l := benchSetup(b)
	ctx := context.Background()
	st, err := l.log.State(ctx)
	if err != nil {
		b.Fatal(err)
	}
	cp, err := ledger.CheckpointOf(st.Checkpoint)
	if err != nil {
		b.Fatal(err)
	}
	const n = 1024
	rs := make([]receipt.Receipt, n)
	proofs := make([]ledger.InclusionProof, n)
	for i := range n {
		rs[i] = l.rs[i*127%len(l.rs)]
		if proofs[i], err = l.log.InclusionProof(ctx, rs[i].Hash, 0); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := ledger.VerifyInclusion(&rs[i%n], &proofs[i%n], cp); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "proofs/s")
}

// BenchmarkInclusionProof serves inclusion proofs from the in-memory store:
// a lookup, the authenticated tiles and the audit path.
func BenchmarkInclusionProof(b *testing.B) {
	l := benchSetup(b)
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := l.log.InclusionProof(ctx, l.rs[i*127%len(l.rs)].Hash, 0); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "proofs/s")
}

// BenchmarkIntegrate integrates batches of 2,000 receipts into the
// in-memory store: the integrator's own work (leaf checks, tree hashes,
// tiles, signature) without storage latency.
func BenchmarkIntegrate(b *testing.B) {
	l := newTestLog(b)
	b.ReportAllocs()
	for b.Loop() {
		l.add(b, 2000)
	}
	b.ReportMetric(float64(b.N*2000)/b.Elapsed().Seconds(), "receipts/s")
}
