package memledger

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/ledger"
	"github.com/autonomics/autonomics/shared/receipt"
)

// rtt is the round trip every call of the benchmark's store and witness
// costs: a Firestore RPC within a region, where a pass's time is its
// sequential round trips rather than the database's CPU.
const rtt = 10 * time.Millisecond

// slowStore is a Store whose every call takes a round trip.
type slowStore struct{ s *Store }

func wait(ctx context.Context) error {
	select {
	case <-time.After(rtt):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s slowStore) AddPending(ctx context.Context, es []ledger.Entry) (int, error) {
	if err := wait(ctx); err != nil {
		return 0, err
	}
	return s.s.AddPending(ctx, es)
}

func (s slowStore) DropPending(ctx context.Context, f ledger.Fence, hashes []string) error {
	if err := wait(ctx); err != nil {
		return err
	}
	return s.s.DropPending(ctx, f, hashes)
}

func (s slowStore) Pending(ctx context.Context, limit int) ([]ledger.Entry, error) {
	if err := wait(ctx); err != nil {
		return nil, err
	}
	return s.s.Pending(ctx, limit)
}

func (s slowStore) Lookup(ctx context.Context, hashes []string) (map[string]ledger.Entry, error) {
	if err := wait(ctx); err != nil {
		return nil, err
	}
	return s.s.Lookup(ctx, hashes)
}

func (s slowStore) Written(ctx context.Context, hashes []string) (map[string]ledger.Entry, error) {
	if err := wait(ctx); err != nil {
		return nil, err
	}
	return s.s.Written(ctx, hashes)
}

func (s slowStore) Leaves(ctx context.Context, start, end int64) ([][]byte, error) {
	if err := wait(ctx); err != nil {
		return nil, err
	}
	return s.s.Leaves(ctx, start, end)
}

func (s slowStore) Tiles(ctx context.Context, tiles []tlog.Tile) ([][]byte, error) {
	if err := wait(ctx); err != nil {
		return nil, err
	}
	return s.s.Tiles(ctx, tiles)
}

func (s slowStore) State(ctx context.Context) (ledger.State, error) {
	if err := wait(ctx); err != nil {
		return ledger.State{}, err
	}
	return s.s.State(ctx)
}

func (s slowStore) Batch(ctx context.Context) (ledger.Batch, bool, error) {
	if err := wait(ctx); err != nil {
		return ledger.Batch{}, false, err
	}
	return s.s.Batch(ctx)
}

func (s slowStore) AcquireLease(ctx context.Context, holder string, now time.Time, ttl time.Duration) (ledger.Lease, error) {
	if err := wait(ctx); err != nil {
		return ledger.Lease{}, err
	}
	return s.s.AcquireLease(ctx, holder, now, ttl)
}

func (s slowStore) ReleaseLease(ctx context.Context, holder string) error {
	if err := wait(ctx); err != nil {
		return err
	}
	return s.s.ReleaseLease(ctx, holder)
}

func (s slowStore) BeginBatch(ctx context.Context, f ledger.Fence, b ledger.Batch) error {
	if err := wait(ctx); err != nil {
		return err
	}
	return s.s.BeginBatch(ctx, f, b)
}

func (s slowStore) WriteEntries(ctx context.Context, f ledger.Fence, start int64, es []ledger.Entry) error {
	if err := wait(ctx); err != nil {
		return err
	}
	return s.s.WriteEntries(ctx, f, start, es)
}

func (s slowStore) AbandonBatch(ctx context.Context, f ledger.Fence, b ledger.Batch) error {
	if err := wait(ctx); err != nil {
		return err
	}
	return s.s.AbandonBatch(ctx, f, b)
}

func (s slowStore) CommitBatch(ctx context.Context, f ledger.Fence, c ledger.Commit) error {
	if err := wait(ctx); err != nil {
		return err
	}
	return s.s.CommitBatch(ctx, f, c)
}

func (s slowStore) AppendBatch(ctx context.Context, f ledger.Fence, c ledger.Commit, es []ledger.Entry) error {
	if err := wait(ctx); err != nil {
		return err
	}
	return s.s.AppendBatch(ctx, f, c, es)
}

// slowWitness vouches for the receipts it was given, a round trip a call.
type slowWitness map[ledger.ReceiptRef]string

func (w slowWitness) StoredHashes(ctx context.Context, refs []ledger.ReceiptRef) (map[ledger.ReceiptRef]string, error) {
	if err := wait(ctx); err != nil {
		return nil, err
	}
	out := make(map[ledger.ReceiptRef]string, len(refs))
	for _, r := range refs {
		if h, ok := w[r]; ok {
			out[r] = h
		}
	}
	return out, nil
}

// BenchmarkPushLoadRoundTrips pushes 20,000 receipts to a running
// integrator from 1,000 pushers at once (a Cloud Run instance's most
// concurrent requests), each push waiting for the checkpoint that
// includes its receipt, over a store and a witness whose every call takes
// a 10 ms round trip and no CPU. It measures what the passes' sequential
// round trips allow, which the emulator's CPU hides: receipts/s, the p50
// and p99 time of a push, and the mean entries per pass.
func BenchmarkPushLoadRoundTrips(b *testing.B) {
	const (
		total   = 20000
		pushers = 1000
	)
	k := governor.Key{Tenant: "tenant-0042", Domain: governor.Billing, Subject: "load"}
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	w := slowWitness{}
	es := make([]ledger.Entry, total)
	for i := range es {
		ev := governor.Event{ID: fmt.Sprintf("load-%d", i), Source: "//bench", Type: "autonomics.billing.usage_recorded", Domain: k.Domain,
			Name: "usage_recorded", Tenant: k.Tenant, Subject: k.Subject, Data: []byte(`{"meter":"api_calls","quantity":1}`)}
		d := governor.Decision{Outcome: governor.Accepted, From: "open", To: "open"}
		r := receipt.New(governor.Instance{Key: k, State: "open", Version: int64(i), LastHash: receipt.ZeroHash}, ev, d, at)
		w[ledger.RefOf(&r)] = r.Hash
		e, err := ledger.NewEntry(r.JSON(), at)
		if err != nil {
			b.Fatal(err)
		}
		es[i] = e
	}
	skey, vkey, err := ledger.GenerateKey("autonomics.bench/ledger")
	if err != nil {
		b.Fatal(err)
	}
	signer, _, err := ledger.NewSigner(skey)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		var passes, integrated atomic.Int64
		in, err := ledger.NewIntegrator(ledger.IntegratorOptions{
			Store: slowStore{New()}, Witness: w, Signer: signer, VerifierKey: vkey, Holder: "bench",
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			Observe: func(p ledger.Pass, _ error) {
				if p.Integrated > 0 {
					passes.Add(1)
					integrated.Add(int64(p.Integrated))
				}
			},
		})
		if err != nil {
			b.Fatal(err)
		}
		ctx, stop := context.WithCancel(b.Context())
		done := make(chan struct{})
		go func() { _ = in.Run(ctx, 50*time.Millisecond, 50*time.Millisecond); close(done) }()
		for {
			if adm, err := in.Submit(ctx, es[0]); err != nil || adm != ledger.Deferred {
				break // the loop holds the lease
			}
			time.Sleep(time.Millisecond)
		}
		var (
			next atomic.Int64
			mu   sync.Mutex
			lat  []time.Duration
			wg   sync.WaitGroup
		)
		next.Store(1)
		start := time.Now()
		for range pushers {
			wg.Go(func() {
				for i := int(next.Add(1)) - 1; i < total; i = int(next.Add(1)) - 1 {
					t := time.Now()
					adm, err := in.Submit(ctx, es[i])
					if err != nil || adm != ledger.Integrated {
						b.Errorf("Submit(%d) = %v, %v", i, adm, err)
						return
					}
					mu.Lock()
					lat = append(lat, time.Since(t))
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		elapsed := time.Since(start)
		stop()
		<-done
		slices.Sort(lat)
		b.ReportMetric(float64(total-1)/elapsed.Seconds(), "receipts/s")
		b.ReportMetric(float64(lat[len(lat)/2].Milliseconds()), "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Milliseconds()), "p99-ms")
		b.ReportMetric(float64(integrated.Load())/float64(max(passes.Load(), 1)), "entries/pass")
	}
}
