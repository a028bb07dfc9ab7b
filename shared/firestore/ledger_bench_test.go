package firestore

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	fs "cloud.google.com/go/firestore"

	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/ledger"
	"github.com/autonomics/autonomics/shared/receipt"
)

// benchEntries returns the pending entries of n distinct receipts,
// arriving at now, and stores the receipts in gov as the governors do, so
// that the integrator admits them.
func benchEntries(b *testing.B, gov *Store, prefix string, n int) []ledger.Entry {
	b.Helper()
	now := time.Now()
	rs := benchReceipts(prefix, n, now)
	storeReceipts(b, gov, rs)
	out := make([]ledger.Entry, n)
	for i := range rs {
		e, err := ledger.NewEntry(rs[i].JSON(), now)
		if err != nil {
			b.Fatal(err)
		}
		out[i] = e
	}
	return out
}

// benchReceipts returns n typical receipts (accepted billing decisions
// with one emitted action) at seqs 1…n of an instance named by prefix.
func benchReceipts(prefix string, n int, now time.Time) []receipt.Receipt {
	k := governor.Key{Tenant: "tenant-0042", Domain: governor.Billing, Subject: prefix}
	out := make([]receipt.Receipt, n)
	for i := range out {
		out[i] = benchReceipt(k, int64(i+1), fmt.Sprintf("%s-%d", prefix, i), now)
	}
	return out
}

// benchReceipt is a typical receipt at seq of k: an accepted billing
// decision with one emitted action.
func benchReceipt(k governor.Key, seq int64, id string, now time.Time) receipt.Receipt {
	ev := governor.Event{ID: id, Source: "//bench", Type: "autonomics.billing.usage_recorded", Domain: k.Domain,
		Name: "usage_recorded", Tenant: k.Tenant, Subject: k.Subject, Data: []byte(`{"meter":"api_calls","quantity":1}`)}
	d := governor.Decision{Outcome: governor.Accepted, From: "open", To: "open",
		Emits: []governor.Emit{{Kind: governor.KindActuate, Type: "billing.issue_invoice", Domain: k.Domain, Subject: k.Subject}}}
	return receipt.New(governor.Instance{Key: k, State: "open", Version: seq - 1, LastHash: receipt.ZeroHash}, ev, d, now)
}

// storeReceipts writes the receipt documents of rs as a governor's
// commits leave them, in bulk: the setup of the integrator's witness.
func storeReceipts(b *testing.B, s *Store, rs []receipt.Receipt) {
	b.Helper()
	bw := s.c.BulkWriter(context.Background())
	for i := range rs {
		at, err := time.Parse(time.RFC3339Nano, rs[i].DecidedAt)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := bw.Set(s.receiptsRef(rs[i].Key()).Doc(seqID(rs[i].Seq)), receiptDoc(&rs[i], at)); err != nil {
			b.Fatal(err)
		}
	}
	bw.End()
}

func benchIntegrator(b *testing.B, l ledger.Store, gov *Store, batch int, observe func(ledger.Pass, error)) *ledger.Integrator {
	b.Helper()
	skey, vkey, err := ledger.GenerateKey("autonomics.bench/ledger")
	if err != nil {
		b.Fatal(err)
	}
	signer, _, err := ledger.NewSigner(skey)
	if err != nil {
		b.Fatal(err)
	}
	in, err := ledger.NewIntegrator(ledger.IntegratorOptions{
		Store: l, Witness: gov, Signer: signer, VerifierKey: vkey, Holder: "bench", BatchSize: batch, WriteChunk: batch, Observe: observe,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		b.Fatal(err)
	}
	return in
}

// governorsClient returns a client of the governors' database of the
// benchmarks, apart from the ledger's as in production: the emulator
// answers a query by scanning the whole database, so receipts stored next
// to the ledger would slow its pending query down as they pile up.
func governorsClient(b *testing.B) *fs.Client {
	b.Helper()
	ledgerClient(b) // skips without the emulator
	c, err := fs.NewClientWithDatabase(context.Background(), ledgerEmulatorProject, "governors")
	if err != nil {
		b.Fatalf("firestore.NewClientWithDatabase(%q, governors) = %v", ledgerEmulatorProject, err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

// BenchmarkLedgerIntegrate integrates batches of pending receipts on the
// emulator; receipts/s is the integration rate (one pass per batch:
// lease, pending query, the governors' store's word on every receipt,
// batch, index assignment, tiles, signed checkpoint, commit).
func BenchmarkLedgerIntegrate(b *testing.B) {
	c := ledgerClient(b)
	gov := New(governorsClient(b), Options{})
	for _, batch := range []int{1000, 2000, 5000} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			l := newTestLedger(c)
			in := benchIntegrator(b, l, gov, batch, nil)
			ctx := context.Background()
			if _, err := in.Integrate(ctx); err != nil {
				b.Fatal(err)
			}
			integrated := 0
			for i := 0; b.Loop(); i++ {
				b.StopTimer()
				if _, err := l.AddPending(ctx, benchEntries(b, gov, fmt.Sprintf("b%d-%d-%08x", batch, i, rand.Uint32()), batch)); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				p, err := in.Integrate(ctx)
				if err != nil {
					b.Fatal(err)
				}
				integrated += p.Integrated
			}
			b.ReportMetric(float64(integrated)/b.Elapsed().Seconds(), "receipts/s")
		})
	}
}

// BenchmarkLedgerAddPending records receipts one per call, concurrently,
// as the push endpoint does for every delivery.
func BenchmarkLedgerAddPending(b *testing.B) {
	l := newTestLedger(ledgerClient(b))
	var n atomic.Int64
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			r := benchReceipt(governor.Key{Tenant: "tenant-0042", Domain: governor.Billing, Subject: "2026-11"}, i, fmt.Sprint("p-", i), time.Now())
			e, err := ledger.NewEntry(r.JSON(), time.Now())
			if err != nil {
				b.Fatal(err)
			}
			if _, err := l.AddPending(context.Background(), []ledger.Entry{e}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "receipts/s")
}

// BenchmarkLedgerLatency measures, on the emulator, the time from a
// receipt's arrival (recorded as pending, as the push endpoint does) to
// the commit of the signed checkpoint that includes it, with the
// integrator's loop running every 200ms (woken by each push, as the
// service's push endpoint does) and receipts arriving one by one from
// concurrent pushers at about 1,000/s. It reports the p50, p99 and
// maximum over every receipt.
func BenchmarkLedgerLatency(b *testing.B) {
	const (
		rate     = 1000
		pushers  = 32
		interval = 200 * time.Millisecond
		duration = 5 * time.Second
	)
	c := ledgerClient(b)
	gov := New(governorsClient(b), Options{})
	for b.Loop() {
		l := newTestLedger(c)
		var mu sync.Mutex
		var lat []time.Duration
		total := int(rate * duration / time.Second)
		rs := benchReceipts(fmt.Sprintf("l-%08x", rand.Uint32()), total, time.Now())
		storeReceipts(b, gov, rs)
		in := benchIntegrator(b, l, gov, 5000, func(p ledger.Pass, err error) {
			if err != nil {
				b.Errorf("Integrate = %v", err)
			}
			mu.Lock()
			lat = append(lat, p.Latencies...)
			mu.Unlock()
		})
		ctx, stop := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { _ = in.Run(ctx, interval, 4*time.Second); close(done) }()
		var wg sync.WaitGroup
		start := time.Now()
		for w := range pushers {
			wg.Go(func() {
				for i := w; i < total; i += pushers {
					if d := time.Until(start.Add(time.Duration(i) * time.Second / rate)); d > 0 {
						time.Sleep(d)
					}
					e, err := ledger.NewEntry(rs[i].JSON(), time.Now())
					if err != nil {
						b.Error(err)
						return
					}
					if _, err := l.AddPending(ctx, []ledger.Entry{e}); err != nil {
						b.Error(err)
						return
					}
					in.Notify()
				}
			})
		}
		wg.Wait()
		for {
			mu.Lock()
			n := len(lat)
			mu.Unlock()
			if n >= total {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		stop()
		<-done
		slices.Sort(lat)
		q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Milliseconds()) }
		b.ReportMetric(q(0.50), "p50-ms")
		b.ReportMetric(q(0.99), "p99-ms")
		b.ReportMetric(q(1), "max-ms")
		b.ReportMetric(float64(total)/time.Since(start).Seconds(), "receipts/s")
	}
}

// BenchmarkLedgerProve serves inclusion proofs from the emulator: a
// lookup and the tiles of the proof, authenticated against the latest
// checkpoint.
func BenchmarkLedgerProve(b *testing.B) {
	const n = 5000
	c := ledgerClient(b)
	l, gov := newTestLedger(c), New(governorsClient(b), Options{})
	ctx := context.Background()
	es := benchEntries(b, gov, fmt.Sprintf("prove-%08x", rand.Uint32()), n)
	if _, err := l.AddPending(ctx, es); err != nil {
		b.Fatal(err)
	}
	in := benchIntegrator(b, l, gov, n, nil)
	if _, err := in.Integrate(ctx); err != nil {
		b.Fatal(err)
	}
	log := ledger.NewLog(l)
	var i atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := log.InclusionProof(ctx, es[int(i.Add(1))%n].Hash, 0); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "proofs/s")
}

// BenchmarkLedgerPushLoad pushes receipts from 1,000 concurrent pushers
// (Cloud Run's largest concurrency of one instance, which bounds the
// batches of the group commit: a push is answered after its commit)
// through the integrator's push path, with its loop running: 10,000 all
// at once (rate=burst), and paced at a steady rate for at least 3 s
// (10,000 or 5 s of the rate, whichever is more), each receipt decided
// (its decided_at, the governor's commit) when it is due to be pushed.
// The pending path (pushes to an instance that does not integrate) runs
// the burst and the slower rate. It reports the receipts/s integrated
// (from the first decision to the checkpoint that includes the last
// receipt) and the p50, p99 and maximum time from each receipt's
// decided_at to the commit of the checkpoint that includes it. A small
// burst first, not reported, warms the emulator up, so that the first
// load reported does not pay for its compilation.
func BenchmarkLedgerPushLoad(b *testing.B) {
	const (
		pushers  = 1000
		interval = 50 * time.Millisecond
	)
	c := ledgerClient(b)
	gov := New(governorsClient(b), Options{})
	pushLoad(b, c, gov, 2000, pushers, 0, interval, true)
	for _, group := range []bool{true, false} {
		rates := []int{0, 2000, 10000}
		if !group {
			rates = rates[:2]
		}
		for _, rate := range rates {
			total := max(10000, 5*rate)
			name := "path=group/rate=burst"
			if !group {
				name = "path=pending/rate=burst"
			}
			if rate > 0 {
				name = strings.Replace(name, "burst", fmt.Sprint(rate), 1)
			}
			b.Run(name, func(b *testing.B) {
				for b.Loop() {
					r := pushLoad(b, c, gov, total, pushers, rate, interval, group)
					b.ReportMetric(r.p50, "p50-ms")
					b.ReportMetric(r.p99, "p99-ms")
					b.ReportMetric(r.max, "max-ms")
					b.ReportMetric(r.rate, "receipts/s")
				}
			})
		}
	}
}

// loadResult is what one load measured: latency quantiles in
// milliseconds and the receipts integrated per second.
type loadResult struct{ p50, p99, max, rate float64 }

// pushLoad runs one load of BenchmarkLedgerPushLoad: through the group
// commit (Submit) when group is set, through pending records otherwise.
func pushLoad(b *testing.B, c *fs.Client, gov *Store, total, pushers, rate int, interval time.Duration, group bool) loadResult {
	l := newTestLedger(c)
	var mu sync.Mutex
	var lat []time.Duration
	ctx, stop := context.WithCancel(context.Background())
	in := benchIntegrator(b, l, gov, ledger.DefaultBatchSize, func(p ledger.Pass, err error) {
		if err != nil && ctx.Err() == nil {
			b.Errorf("Integrate = %v", err)
		}
		mu.Lock()
		lat = append(lat, p.Latencies...)
		mu.Unlock()
	})
	done := make(chan struct{})
	go func() { _ = in.Run(ctx, interval, interval); close(done) }()
	for group && in.Queued() == 0 {
		// Wait until the loop holds the lease and takes submissions.
		if adm, err := in.Submit(ctx, ledger.Entry{Hash: strings.Repeat("0", 64), Leaf: []byte("{}")}); err != nil || adm != ledger.Deferred {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The receipts are decided (their decided_at) at start, the first
	// push, and the latencies count from then, so storing them must end
	// before it: a setup that outruns the lead is done again with twice
	// the lead, or its time would count as the integrator's.
	var (
		start time.Time
		rs    []receipt.Receipt
	)
	due := func(i int) time.Time {
		if rate == 0 {
			return start
		}
		return start.Add(time.Duration(i) * time.Second / time.Duration(rate))
	}
	for lead := 3 * time.Second; ; lead *= 2 {
		prefix := fmt.Sprintf("load-%08x", rand.Uint32())
		k := governor.Key{Tenant: "tenant-0042", Domain: governor.Billing, Subject: prefix}
		start = time.Now().Add(lead)
		rs = make([]receipt.Receipt, total)
		for i := range rs {
			rs[i] = benchReceipt(k, int64(i+1), fmt.Sprintf("%s-%d", prefix, i), due(i))
		}
		storeReceipts(b, gov, rs)
		if time.Now().Before(start) {
			break
		}
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range pushers {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < total; i = int(next.Add(1)) - 1 {
				time.Sleep(time.Until(due(i)))
				if err := benchPush(ctx, l, in, rs[i].JSON(), due(i), group); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	for {
		mu.Lock()
		n := len(lat)
		mu.Unlock()
		if n >= total {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	elapsed := time.Since(start)
	stop()
	<-done
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Milliseconds()) }
	return loadResult{p50: q(0.50), p99: q(0.99), max: q(1), rate: float64(total) / elapsed.Seconds()}
}

// benchPush does what the push endpoint does with a delivery: hands it to
// the integrator when group is set, records it as pending otherwise or
// when the integrator defers it.
func benchPush(ctx context.Context, l *Ledger, in *ledger.Integrator, data []byte, decided time.Time, group bool) error {
	e, err := ledger.NewEntry(data, decided)
	if err != nil {
		return err
	}
	if group {
		adm, err := in.Submit(ctx, e)
		if err != nil || adm != ledger.Deferred {
			return err
		}
	}
	if _, err := l.AddPending(ctx, []ledger.Entry{e}); err != nil {
		return err
	}
	in.Notify()
	return nil
}
