// Package store is the storage port of Autonomics: the transaction the
// engine runs for every decision and the reads the scheduler, the sweeper
// and the query API need. Adapters (firestore, memstore) implement Store and
// prove it by passing the conformance suite in storetest.
package store

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"hash/fnv"
	"slices"
	"strings"
	"time"

	"github.com/autonomics/autonomics/shared/fault"
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
// published after commit. The entries of a decision are kept in its dedup
// marker and delivered together. A decision published after its commit
// records nothing more: its receipt, published last, is witnessed by the
// ledger, and the sweep moves past it (Swept). A decision published again
// by a redelivery or the sweep is marked delivered (MarkDelivered).
type OutboxEntry struct {
	// ID is deterministic, so that a retried transaction writes the same
	// entries and downstream consumers can deduplicate.
	ID string
	Message
	// ReceiptHash is the hash of the receipt whose decision wrote the entry.
	ReceiptHash string
	CreatedAt   time.Time
	// Delivered is the delivery of the entry's decision as the store
	// knows it: true once the decision was marked delivered or the sweep
	// moved past it.
	Delivered bool
	// Marker is the MarkerID of the dedup marker holding the entry, the
	// id MarkDelivered takes. The stores set it on every entry they
	// return; Write ignores it.
	Marker string
}

// Marker is a dedup marker as a transaction reads it: the receipt of the
// decision that applied the event, and that decision's outbox.
type Marker struct {
	ReceiptHash string
	// Outbox is the decision's entries in writing order.
	Outbox []OutboxEntry
	// Delivered is true once every entry of Outbox was published (and for
	// a decision without entries).
	Delivered bool
}

// MarkerID returns the id of the dedup marker of the event (source, id)
// applied to instance k: the tenant, "/" and the hex SHA-256 of domain,
// subject, source and id separated by NUL bytes. It names the decision
// the marker recorded, for MarkDelivered.
func MarkerID(k governor.Key, source, id string) string {
	return k.Tenant + "/" + MarkerHash(k, source, id)
}

// MarkerHash is the hex SHA-256 part of MarkerID, unique within a tenant.
func MarkerHash(k governor.Key, source, id string) string {
	h := sha256.New()
	for i, p := range []string{string(k.Domain), k.Subject, source, id} {
		if i > 0 {
			h.Write([]byte{0})
		}
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// ParseMarkerID splits a MarkerID into its tenant and hash, refusing
// anything MarkerID does not return with an Invalid error of operation op.
func ParseMarkerID(op, id string) (tenant, hash string, err error) {
	tenant, hash, ok := strings.Cut(id, "/")
	if !ok || len(hash) != sha256.Size*2 || strings.Trim(hash, "0123456789abcdef") != "" {
		return "", "", fault.Errorf(fault.Invalid, op, "marker id %q is not a tenant and a hex SHA-256", truncateID(id))
	}
	if err := CheckID(op, "tenant id", tenant); err != nil {
		return "", "", err
	}
	return tenant, hash, nil
}

// truncateID shortens an id for an error message.
func truncateID(id string) string {
	if len(id) > 80 {
		return id[:80]
	}
	return id
}

// CompareMarkers orders two marker ids (MarkerID) as the sweep orders
// decisions created at the same time: by tenant, then by hash, each
// compared bytewise. It is the order of the markers' document names in a
// store that keeps them under their tenant (names compare segment by
// segment), which a plain comparison of the ids is not: "a-b/…" sorts
// before "a/…" as a string but after it by tenant. It returns -1, 0 or +1.
func CompareMarkers(a, b string) int {
	ta, ha, _ := strings.Cut(a, "/")
	tb, hb, _ := strings.Cut(b, "/")
	return cmp.Or(strings.Compare(ta, tb), strings.Compare(ha, hb))
}

// SortEntries sorts one decision's entries as Undelivered returns them,
// by created_at then id, in place, and returns them.
func SortEntries(entries []OutboxEntry) []OutboxEntry {
	slices.SortStableFunc(entries, func(a, b OutboxEntry) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), strings.Compare(a.ID, b.ID))
	})
	return entries
}

// SweepShard returns the shard of the decision whose marker id (MarkerID)
// is marker, and false for an id that is not a marker id.
func SweepShard(marker string) (int, bool) {
	_, hash, err := ParseMarkerID("store.SweepShard", marker)
	if err != nil {
		return 0, false
	}
	return Shard(hash), true
}

// Shards is the number of shards of the globally queried collections:
// a document's shard spreads an indexed timestamp over Shards ranges.
const Shards = 16

// Shard returns the shard of a document id: FNV-1a of id modulo Shards.
func Shard(id string) int {
	h := fnv.New32a()
	h.Write([]byte(id))
	return int(h.Sum32() % Shards)
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
	// Dedup returns the marker recorded for (k, source, id), if any: the
	// receipt hash and the outbox of the decision that applied the event.
	// A store may read the instance k in the same round trip, for the
	// Instance call that follows.
	Dedup(k governor.Key, source, id string) (m Marker, found bool, err error)
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

// MaxTimerDeletes is the most timers one commit of DeleteTimers deletes:
// Firestore's bound on the writes of one commit.
const MaxTimerDeletes = 500

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
	// Undelivered returns the entries of up to limit undelivered
	// decisions whose first entry was created before t, leaving out
	// those the sweep moved past (Swept). The decisions come in the
	// sweep's order: oldest first by their first entry's created_at, then
	// by marker (CompareMarkers), so that within a shard every decision
	// before a swept one is swept too. A decision's entries are returned
	// together, by created_at then id, so that a caller publishing them
	// all may mark the decision delivered; a limit <= 0 means no limit.
	Undelivered(ctx context.Context, before time.Time, limit int) ([]OutboxEntry, error)
	// MarkDelivered records that every entry of the decisions with these
	// markers (OutboxEntry.Marker, MarkerID) was published: one write per
	// marker. Unknown markers are ignored.
	MarkDelivered(ctx context.Context, markers ...string) error
	// Swept records that the sweep dealt with every decision of each
	// entry's shard (SweepShard) up to and including the entry's own
	// decision, in Undelivered's order: Undelivered no longer returns
	// them. Each entry must be the first, by that order, of its decision's
	// entries, as Undelivered returns them. A position behind the one
	// recorded for its shard is ignored, as are entries without a valid
	// marker. It costs one write, whatever the number of entries.
	Swept(ctx context.Context, last ...OutboxEntry) error
	// DueTimers returns up to limit timers due at or before t, earliest first.
	DueTimers(ctx context.Context, t time.Time, limit int) ([]TimerEntry, error)
	// DeleteTimer removes a fired timer; deleting a missing timer is not an error.
	DeleteTimer(ctx context.Context, id string) error
	// DeleteTimers removes fired timers in as few commits as the adapter
	// allows (MaxTimerDeletes per commit at most); deleting a missing
	// timer is not an error. Ids are checked before anything is deleted;
	// when a commit fails, the timers of other commits may be gone.
	DeleteTimers(ctx context.Context, ids ...string) error
	// MoveTimer is the test clock of non-production stacks: it moves the
	// due time of the armed timer name of instance k to due, in the
	// instance and in the timer document together, and returns the timer
	// as it was. It writes no receipt; the timeout's receipt, when the
	// timer fires, records the decision. A timer that is not armed is a
	// NotFound error.
	MoveTimer(ctx context.Context, k governor.Key, name string, due time.Time) (governor.Timer, error)
}
