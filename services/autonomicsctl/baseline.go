package main

import (
	"context"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/autonomics/autonomics/shared/engine"
	"github.com/autonomics/autonomics/shared/firestore"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/receipt"
	"github.com/autonomics/autonomics/shared/store"
)

// measureBaseline runs the load's events as bare store transactions of the
// shape the engine commits — read the dedup marker and the instance, then
// write the instance, the dedup marker holding the receipt's outbox entry,
// and the receipt — through the same Firestore store and with the same
// concurrency, but without the engine: no machine, guard or publication.
// It uses a database of its own on the same emulator, and the Go runtime
// settings the functions host runs with (deployedGoRuntime, unless the
// caller's environment sets them), so that the load driver's CPU over the
// phase is what the host's Firestore client would spend on it.
func measureBaseline(ctx context.Context, cfg stackConfig, l loadConfig, run string) (phaseResult, error) {
	defer withGoRuntime(deployedGoRuntime, os.LookupEnv)()
	fc, err := firestoreClient(ctx, cfg.Project, cfg.Database+"-baseline")
	if err != nil {
		return phaseResult{}, err
	}
	defer fc.Close()
	st := firestore.New(fc, firestore.Options{})
	receipts := cfg.names().Receipts()
	ctx, cancel := context.WithTimeout(ctx, l.Timeout)
	defer cancel()

	var (
		next   atomic.Int64
		errs   atomic.Int64
		mu     sync.Mutex
		lat    = make([]time.Duration, 0, l.Events)
		wg     sync.WaitGroup
		begin  = time.Now()
		lastMu sync.Mutex
		last   time.Time
	)
	for range l.Concurrency {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= l.Events {
					return
				}
				start := time.Now()
				err := baselineTx(ctx, st, receipts, run+"-"+strconv.Itoa(i), loadPlan(i, l.Tenants), start)
				end := time.Now()
				if err != nil {
					errs.Add(1)
					continue
				}
				mu.Lock()
				lat = append(lat, end.Sub(start))
				mu.Unlock()
				lastMu.Lock()
				if end.After(last) {
					last = end
				}
				lastMu.Unlock()
			}
		})
	}
	wg.Wait()
	return newPhaseResult(l.Events, lat, last.Sub(begin), int(errs.Load())), nil
}

// baselineTx commits one event's worth of documents in one transaction,
// its receipt's message (to the receipts topic) in the outbox.
func baselineTx(ctx context.Context, st store.Store, receipts, id string, e loadEvent, now time.Time) error {
	key := governor.Key{Tenant: e.Tenant, Domain: e.Domain, Subject: e.Subject}
	return st.RunTx(ctx, func(ctx context.Context, tx store.Tx) error {
		if _, found, err := tx.Dedup(key, loadSource, id); err != nil || found {
			return err
		}
		inst, err := tx.Instance(key)
		if err != nil {
			return err
		}
		ev := governor.Event{
			ID: id, Source: loadSource, Type: governor.TypeOf(e.Domain, e.Name), Domain: e.Domain, Name: e.Name,
			Tenant: e.Tenant, Subject: e.Subject, Time: now, Data: []byte(e.Data),
		}
		r := receipt.New(inst, ev, governor.Decision{
			Outcome: governor.Accepted, From: inst.State, To: "active", Data: []byte(e.Data),
		}, now)
		inst.State, inst.Version, inst.LastHash, inst.Data, inst.UpdatedAt = governor.State(r.ToState), r.Seq, r.Hash, []byte(e.Data), now
		return tx.Write(store.Changes{
			Instance: inst,
			Dedup:    store.Dedup{Key: key, Source: loadSource, EventID: id, ReceiptHash: r.Hash, ExpireAt: now.Add(30 * 24 * time.Hour)},
			Receipt:  r,
			Outbox: []store.OutboxEntry{{
				ID: "r-" + r.Hash,
				Message: store.Message{
					Topic: receipts, Data: r.JSON(), OrderingKey: e.Tenant,
					Attributes: map[string]string{
						"content-type": "application/json", "ce-specversion": "1.0", "ce-id": r.Hash,
						"ce-source": engine.GovernorSourcePrefix + r.Domain, "ce-type": engine.ReceiptType,
						"ce-subject": r.Subject, "ce-tenantid": r.TenantID, "ce-time": r.DecidedAt,
						"domain": r.Domain, "outcome": r.Outcome, "event_type": r.EventType,
					},
				},
				ReceiptHash: r.Hash, CreatedAt: now,
			}},
		})
	})
}

// withGoRuntime applies settings ("GOMAXPROCS=1", "GOGC=400",
// "GOMEMLIMIT=384MiB") to this process, except those lookup finds set in
// the environment or cannot parse, and returns the function that restores
// the previous ones.
func withGoRuntime(settings []string, lookup func(string) (string, bool)) (restore func()) {
	var undo []func()
	for _, kv := range settings {
		name, value, _ := strings.Cut(kv, "=")
		if _, set := lookup(name); set {
			continue
		}
		switch name {
		case "GOMAXPROCS":
			if n, err := strconv.Atoi(value); err == nil && n > 0 {
				old := runtime.GOMAXPROCS(n)
				undo = append(undo, func() { runtime.GOMAXPROCS(old) })
			}
		case "GOGC":
			if n, err := strconv.Atoi(value); err == nil {
				old := debug.SetGCPercent(n)
				undo = append(undo, func() { debug.SetGCPercent(old) })
			}
		case "GOMEMLIMIT":
			if n, ok := parseMiB(value); ok {
				old := debug.SetMemoryLimit(n)
				undo = append(undo, func() { debug.SetMemoryLimit(old) })
			}
		}
	}
	return func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}
}

// parseMiB parses a memory limit written in MiB ("384MiB") into bytes.
func parseMiB(s string) (int64, bool) {
	n, err := strconv.ParseInt(strings.TrimSuffix(s, "MiB"), 10, 64)
	if err != nil || n <= 0 || !strings.HasSuffix(s, "MiB") {
		return 0, false
	}
	return n << 20, true
}
