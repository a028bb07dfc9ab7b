package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	fs "cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/receipt"
)

// baselineMaxAttempts is how often a baseline transaction is attempted
// when the emulator aborts it on contention, as the store does.
const baselineMaxAttempts = 50

// measureBaseline runs the load's events as bare Firestore transactions of
// the shape the engine commits — read the dedup marker and the instance,
// then write the instance, the dedup marker, the receipt and one outbox
// entry — with the same concurrency, in a database of its own on the same
// emulator.
func measureBaseline(ctx context.Context, cfg stackConfig, l loadConfig, run string) (phaseResult, error) {
	fc, err := firestoreClient(ctx, cfg.Project, cfg.Database+"-baseline")
	if err != nil {
		return phaseResult{}, err
	}
	defer fc.Close()
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
				err := baselineTx(ctx, fc, run+"-"+strconv.Itoa(i), loadPlan(i, l.Tenants), start)
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

// baselineTx commits one event's worth of documents in one transaction.
func baselineTx(ctx context.Context, fc *fs.Client, id string, e loadEvent, now time.Time) error {
	key := governor.Key{Tenant: e.Tenant, Domain: e.Domain, Subject: e.Subject}
	tenant := fc.Collection("tenants").Doc(e.Tenant)
	instRef := tenant.Collection("instances").Doc(string(e.Domain) + ":" + e.Subject)
	sum := sha256.Sum256([]byte(strings.Join([]string{string(e.Domain), e.Subject, loadSource, id}, "\x00")))
	dedupRef := tenant.Collection("dedup").Doc(hex.EncodeToString(sum[:]))
	return fc.RunTransaction(ctx, func(ctx context.Context, tx *fs.Transaction) error {
		if _, err := tx.Get(dedupRef); err != nil && status.Code(err) != codes.NotFound {
			return err
		} else if err == nil {
			return nil
		}
		inst := governor.Instance{Key: key, State: governor.StateNone}
		snap, err := tx.Get(instRef)
		switch {
		case err == nil:
			if v, ok := snap.Data()["version"].(int64); ok {
				inst.Version = v
			}
			if h, ok := snap.Data()["last_hash"].(string); ok {
				inst.LastHash = h
			}
			if s, ok := snap.Data()["state"].(string); ok {
				inst.State = governor.State(s)
			}
		case status.Code(err) != codes.NotFound:
			return err
		}
		ev := governor.Event{
			ID: id, Source: loadSource, Type: governor.TypeOf(e.Domain, e.Name), Domain: e.Domain, Name: e.Name,
			Tenant: e.Tenant, Subject: e.Subject, Time: now, Data: []byte(e.Data),
		}
		r := receipt.New(inst, ev, governor.Decision{
			Outcome: governor.Accepted, From: inst.State, To: "active", Data: []byte(e.Data),
		}, now)
		if err := tx.Set(instRef, map[string]any{
			"tenant_id": e.Tenant, "domain": string(e.Domain), "subject": e.Subject,
			"state": r.ToState, "version": r.Seq, "last_hash": r.Hash, "data": e.Data,
			"timers": map[string]any{}, "updated_at": now,
		}); err != nil {
			return err
		}
		if err := tx.Set(dedupRef, map[string]any{
			"receipt_hash": r.Hash, "domain": string(e.Domain), "subject": e.Subject,
			"source": loadSource, "event_id": id, "expire_at": now.Add(30 * 24 * time.Hour),
		}); err != nil {
			return err
		}
		actions := make([]map[string]any, 0, len(r.Actions))
		for _, a := range r.Actions {
			actions = append(actions, map[string]any{"kind": a.Kind, "type": a.Type, "domain": a.Domain, "subject": a.Subject, "id": a.ID})
		}
		if err := tx.Create(instRef.Collection("receipts").Doc(fmt.Sprintf("%012d", r.Seq)), map[string]any{
			"tenant_id": r.TenantID, "domain": r.Domain, "subject": r.Subject, "seq": r.Seq,
			"execution_id": r.ExecutionID, "event_source": r.EventSource, "event_type": r.EventType,
			"correlation_id": r.CorrelationID, "from_state": r.FromState, "to_state": r.ToState,
			"outcome": r.Outcome, "reason": r.Reason, "actions": actions, "data_digest": r.DataDigest,
			"decided_at": r.DecidedAt, "prev_hash": r.PrevHash, "hash": r.Hash, "decided_at_ts": now,
		}); err != nil {
			return err
		}
		return tx.Set(fc.Collection("outbox").Doc("r-"+r.Hash), map[string]any{
			"topic": "autonomics-receipts", "ordering_key": e.Tenant, "receipt_hash": r.Hash,
			"data": r.JSON(), "created_at": now, "delivered": false, "position": 0,
			"attributes": map[string]any{
				"content-type": "application/json", "ce-specversion": "1.0", "ce-id": r.Hash,
				"ce-source": "autonomics/governor/" + r.Domain, "ce-type": "autonomics.receipt",
				"ce-subject": r.Subject, "ce-tenantid": r.TenantID, "ce-time": r.DecidedAt,
				"domain": r.Domain, "outcome": r.Outcome, "event_type": r.EventType,
			},
		})
	}, fs.MaxAttempts(baselineMaxAttempts))
}
