// Package console is the data layer and JSON API of the operator console:
// tenants and their governors, a tenant's timeline and cascades, the
// ledger's checkpoint (with its history) and inclusion proofs, alerts and
// silences (through the monitor's API), dead letters with replay, events
// sent by an operator, per-tenant test clocks and a live stream of
// receipts.
//
// A Console reads through consumer interfaces (Store, Ledger, Monitor,
// Records, Clock) and publishes through an engine.Publisher. Its exported
// data methods serve the HTML pages in-process; APIHandler serves the same
// data as JSON under /api/v1 for the command line, and the dead-letter
// topic's push endpoint POST /v1/deadletters/push.
//
// Everything the console reads from a request is hostile: bodies are
// bounded and strictly decoded, ids are validated, page sizes are capped
// and page tokens are checked before they reach a store, and every echo
// of input is quoted and truncated.
package console

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/autonomics/autonomics/shared/engine"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/ledger"
	"github.com/autonomics/autonomics/shared/machines"
	"github.com/autonomics/autonomics/shared/receipt"
	"github.com/autonomics/autonomics/shared/store"
	"github.com/autonomics/autonomics/shared/topic"
)

// Store is what the console reads from the governors' store; store.Store
// satisfies it.
type Store interface {
	// Tenants returns up to q.Limit tenant ids (ascending) greater than
	// q.After that start with q.Prefix.
	Tenants(ctx context.Context, q store.TenantQuery) ([]string, error)
	// Instances lists the instances of a tenant, of one domain unless
	// domain is "".
	Instances(ctx context.Context, tenant string, domain governor.Domain) ([]governor.Instance, error)
	// Receipts returns a page of receipts and the next page's token.
	Receipts(ctx context.Context, q store.ReceiptQuery) ([]receipt.Receipt, string, error)
	// ReceiptsByCorrelation returns up to limit receipts of tenant with
	// that correlation id, in decided_at order.
	ReceiptsByCorrelation(ctx context.Context, tenant, correlationID string, limit int) ([]receipt.Receipt, error)
}

// Ledger is the read side of the receipt ledger; *ledger.Log satisfies
// it.
type Ledger interface {
	// State returns the committed state; NotFound before the first
	// checkpoint.
	State(ctx context.Context) (ledger.State, error)
	// InclusionProof proves the receipt with that hash in the tree of
	// size (the current tree when 0).
	InclusionProof(ctx context.Context, hash string, size int64) (ledger.InclusionProof, error)
}

// Clock is a per-tenant test clock: Advance fires, in due order, every
// armed timer of tenant due at or before to. Only non-production stacks
// have one.
type Clock interface {
	Advance(ctx context.Context, tenant string, to time.Time) ([]Fired, error)
}

// Fired is one timer a test clock fired.
type Fired struct {
	Timer   string          `json:"timer"`
	Domain  governor.Domain `json:"domain"`
	Subject string          `json:"subject"`
	Due     time.Time       `json:"due"`
	// Receipt is the hash of the timeout's receipt.
	Receipt string `json:"receipt"`
	Outcome string `json:"outcome,omitempty"`
}

// IDPublisher is a Publisher that also returns the id the broker gave the
// message. When the Options' Publisher implements it, a replay answers
// that id; otherwise the replayed event's CloudEvents id.
type IDPublisher interface {
	PublishID(ctx context.Context, m store.Message) (string, error)
}

// Limits bound what the console reads, keeps and serves. Zero fields take
// the defaults of DefaultLimits.
type Limits struct {
	// PageSize is the default number of items of a listing; MaxPageSize
	// caps what a request may ask.
	PageSize, MaxPageSize int
	// CascadeReceipts bounds the receipts of one cascade.
	CascadeReceipts int
	// BodyBytes bounds a JSON request body.
	BodyBytes int64
	// Streams bounds the concurrent streams; StreamLifetime how long one
	// lasts; StreamInterval how often it polls the store.
	Streams        int
	StreamLifetime time.Duration
	StreamInterval time.Duration
	// PruneEvery is how many new dead letters pass between two prunings
	// of the records.
	PruneEvery int
}

// DefaultLimits are the limits of zero fields.
var DefaultLimits = Limits{
	PageSize: 50, MaxPageSize: 100, CascadeReceipts: 500, BodyBytes: 128 << 10,
	Streams: 32, StreamLifetime: 15 * time.Minute, StreamInterval: time.Second, PruneEvery: 64,
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	pick := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	pick(&l.PageSize, d.PageSize)
	pick(&l.MaxPageSize, d.MaxPageSize)
	pick(&l.CascadeReceipts, d.CascadeReceipts)
	pick(&l.Streams, d.Streams)
	pick(&l.PruneEvery, d.PruneEvery)
	if l.PageSize > l.MaxPageSize {
		l.PageSize = l.MaxPageSize
	}
	if l.BodyBytes <= 0 {
		l.BodyBytes = d.BodyBytes
	}
	if l.StreamLifetime <= 0 {
		l.StreamLifetime = d.StreamLifetime
	}
	if l.StreamInterval <= 0 {
		l.StreamInterval = d.StreamInterval
	}
	return l
}

// Options configure a Console. Store, Records and Publisher are
// required; a nil Ledger, Monitor or Clock leaves its routes answering 404.
type Options struct {
	Store Store
	// Ledger serves the checkpoint, its key and inclusion proofs.
	Ledger Ledger
	// Monitor serves alerts and silences.
	Monitor Monitor
	// Records keeps dead letters and the checkpoint history.
	Records Records
	// Publisher publishes replays and operators' events to domain topics.
	Publisher engine.Publisher
	Topics    topic.Names
	// Clock is the test clock; nil in production.
	Clock Clock
	// Machines validates operators' events; machines.New(nil) when nil.
	Machines map[governor.Domain]*governor.Machine
	Logger   *slog.Logger
	// Now is the clock of the console; time.Now when nil.
	Now    func() time.Time
	Limits Limits
}

// Console serves the console's data. It is safe for concurrent use.
type Console struct {
	o       Options
	lim     Limits
	streams atomic.Int64
	newDL   atomic.Int64
	// lastCP is the last checkpoint recorded by this process, so that
	// every GET of the checkpoint does not write.
	mu     sync.Mutex
	lastCP CheckpointRecord
}

// New returns a Console after checking its options.
func New(o Options) (*Console, error) {
	const op = "console.New"
	if o.Store == nil || o.Records == nil || o.Publisher == nil {
		return nil, fault.Errorf(fault.Invalid, op, "store, records and publisher are required")
	}
	if o.Machines == nil {
		o.Machines = machines.New(nil)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Console{o: o, lim: o.Limits.withDefaults()}, nil
}

// Limits returns the limits in force.
func (c *Console) Limits() Limits { return c.lim }

// pageSize returns n capped, or the default when n ≤ 0.
func (c *Console) pageSize(n int) int {
	if n <= 0 {
		return c.lim.PageSize
	}
	return min(n, c.lim.MaxPageSize)
}
