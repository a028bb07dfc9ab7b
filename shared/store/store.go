// Package store is the storage port of Autonomics: the transaction the
// engine runs for every decision and the reads the scheduler, the sweeper
// and the query API need. Adapters (firestore, memstore) implement Store and
// prove it by passing the conformance suite in storetest.
package store

import (
	"context"
	"time"

	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/receipt"
)

// Message is a Pub/Sub message waiting in the outbox or being published.
type Message struct {
	// Topic is the full topic id, prefix included.
	Topic       string            `json:"topic"`
	Data        []byte            `json:"data"`
	Attributes  map[string]string `json:"attributes,omitempty"`
	OrderingKey string            `json:"ordering_key,omitempty"`
}

// OutboxEntry is a message written in a decision's transaction and
// published after commit.
type OutboxEntry struct {
	// ID is deterministic, so that a retried transaction writes the same
	// entries and downstream consumers can deduplicate.
	ID string
	Message
	// ReceiptHash is the hash of the receipt whose decision wrote the entry.
	ReceiptHash string
	CreatedAt   time.Time
	Delivered   bool
}

// TimerEntry is an armed timer as stored for the tick.
type TimerEntry struct {
	governor.Timer
	Key governor.Key
}

// Dedup marks an event (source, id) as applied to one instance.
type Dedup struct {
	Key         governor.Key
	Source      string
	EventID     string
	ReceiptHash string
	// ExpireAt is when a TTL policy may delete the marker.
	ExpireAt time.Time
}

// Changes are the writes of one decision, committed atomically.
type Changes struct {
	Instance     governor.Instance
	Dedup        Dedup
	Receipt      receipt.Receipt
	Outbox       []OutboxEntry
	ArmTimers    []TimerEntry
	CancelTimers []string
}

// Tx is one storage transaction. All reads happen before Write; the
// function passed to Store.RunTx may be called several times.
type Tx interface {
	// Instance returns the instance at k; a missing instance is returned
	// with State governor.StateNone and Version 0.
	Instance(k governor.Key) (governor.Instance, error)
	// Dedup returns the receipt hash recorded for (k, source, id), if any.
	Dedup(k governor.Key, source, id string) (hash string, found bool, err error)
	// Write stages the changes of a decision; it may be called once.
	Write(c Changes) error
}

// ReceiptQuery selects receipts of one tenant, ordered by decision time.
type ReceiptQuery struct {
	Tenant  string
	Domain  governor.Domain
	Subject string
	// From and To bound decided_at (inclusive, exclusive); zero means open.
	From, To  time.Time
	PageSize  int
	PageToken string
	// Newest orders the receipts newest first: by decided_at descending,
	// ties in the reverse of the ascending order. Page tokens work in
	// either order.
	Newest bool
}

// TenantQuery selects tenant ids from the tenant index, which lists every
// tenant that has at least one instance.
type TenantQuery struct {
	// Prefix keeps the tenant ids that start with it; "" keeps all.
	Prefix string
	// After keeps the tenant ids greater than it, the last id of the
	// previous page; "" starts at the first.
	After string
	// Limit is the most ids returned: <= 0 means DefaultLimit, and it is
	// capped at MaxLimit.
	Limit int
}

// Bounds of the listings Tenants and ReceiptsByCorrelation.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// Limit returns the number of items a listing asked for n returns at
// most: DefaultLimit for n <= 0, at most MaxLimit.
func Limit(n int) int {
	if n <= 0 {
		return DefaultLimit
	}
	return min(n, MaxLimit)
}

// Store is the storage port.
type Store interface {
	// RunTx runs fn in one transaction, retrying it on contention.
	RunTx(ctx context.Context, fn func(context.Context, Tx) error) error
	// Instances lists the instances of a tenant, of one domain unless
	// domain is "", ordered by domain and subject.
	Instances(ctx context.Context, tenant string, domain governor.Domain) ([]governor.Instance, error)
	// Chain returns up to limit receipts of one instance with seq > after,
	// in seq order.
	Chain(ctx context.Context, k governor.Key, after int64, limit int) ([]receipt.Receipt, error)
	// Receipts returns a page of receipts and the token of the next page
	// ("" at the end).
	Receipts(ctx context.Context, q ReceiptQuery) ([]receipt.Receipt, string, error)
	// ReceiptsByExecution returns the receipts of the event with that id.
	ReceiptsByExecution(ctx context.Context, executionID string) ([]receipt.Receipt, error)
	// ReceiptsByCorrelation returns up to limit receipts of tenant with
	// that correlation_id, in decided_at order (ties as Receipts orders
	// them). A limit <= 0 means DefaultLimit; it is capped at MaxLimit.
	ReceiptsByCorrelation(ctx context.Context, tenant, correlationID string, limit int) ([]receipt.Receipt, error)
	// Tenants returns up to q.Limit tenant ids (ascending) greater than
	// q.After that start with q.Prefix. A tenant is listed from the commit
	// of its first instance's first receipt on: the index entry is
	// written in that transaction, and in no other.
	Tenants(ctx context.Context, q TenantQuery) ([]string, error)
	// Outbox returns the outbox entries written with a receipt.
	Outbox(ctx context.Context, receiptHash string) ([]OutboxEntry, error)
	// Undelivered returns up to limit undelivered entries created before t,
	// oldest first.
	Undelivered(ctx context.Context, before time.Time, limit int) ([]OutboxEntry, error)
	// MarkDelivered flags entries as delivered.
	MarkDelivered(ctx context.Context, ids ...string) error
	// DueTimers returns up to limit timers due at or before t, earliest first.
	DueTimers(ctx context.Context, t time.Time, limit int) ([]TimerEntry, error)
	// DeleteTimer removes a fired timer; deleting a missing timer is not an error.
	DeleteTimer(ctx context.Context, id string) error
	// MoveTimer is the test clock of non-production stacks: it moves the
	// due time of the armed timer name of instance k to due, in the
	// instance and in the timer document together, and returns the timer
	// as it was. It writes no receipt; the timeout's receipt, when the
	// timer fires, records the decision. A timer that is not armed is a
	// NotFound error.
	MoveTimer(ctx context.Context, k governor.Key, name string, due time.Time) (governor.Timer, error)
}
