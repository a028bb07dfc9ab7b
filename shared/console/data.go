package console

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/httpjson"
	"github.com/autonomics/autonomics/shared/ledger"
	"github.com/autonomics/autonomics/shared/receipt"
	"github.com/autonomics/autonomics/shared/store"
)

// quote quotes s for a message, truncated.
func quote(s string) string { return httpjson.Quote(s) }

// urlPathEscape makes an operator's name a path segment of a source.
func urlPathEscape(s string) string { return url.PathEscape(httpjson.Truncate(s, 200)) }

// TenantPage is a page of tenant ids.
type TenantPage struct {
	Tenants []string `json:"tenants"`
	// Next is the After of the next page; "" on the last page.
	Next string `json:"next"`
}

// Tenants returns up to limit tenant ids (capped; the default page size
// when ≤ 0) starting with prefix, ascending, after the id after.
func (c *Console) Tenants(ctx context.Context, prefix, after string, limit int) (TenantPage, error) {
	const op = "console.Tenants"
	if prefix != "" && (len(prefix) > event.MaxIDLen || strings.Trim(prefix, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != "") {
		return TenantPage{}, fault.Errorf(fault.Invalid, op, "prefix %s: want up to %d of [A-Za-z0-9._-]", quote(prefix), event.MaxIDLen)
	}
	if after != "" {
		if err := event.ValidTenant(after); err != nil {
			return TenantPage{}, fault.Errorf(fault.Invalid, op, "after: %s", fault.ErrorMessage(err))
		}
	}
	n := c.pageSize(limit)
	ids, err := c.o.Store.Tenants(ctx, store.TenantQuery{Prefix: prefix, After: after, Limit: n + 1})
	if err != nil {
		return TenantPage{}, err
	}
	p := TenantPage{Tenants: ids}
	if len(ids) > n {
		p.Tenants, p.Next = ids[:n], ids[n-1]
	}
	if p.Tenants == nil {
		p.Tenants = []string{}
	}
	return p, nil
}

// Governor is one instance of a tenant as the console shows it; its JSON
// is that of the query API's governors listing, with the armed timers.
type Governor struct {
	Domain    governor.Domain `json:"domain"`
	Subject   string          `json:"subject"`
	State     governor.State  `json:"state"`
	Version   int64           `json:"version"`
	Data      json.RawMessage `json:"data"`
	UpdatedAt time.Time       `json:"updated_at"`
	LastHash  string          `json:"last_hash,omitempty"`
	// Timers are the armed timers, earliest due first.
	Timers []governor.Timer `json:"timers,omitempty"`
}

// Governors returns the instances of tenant, by domain and subject.
func (c *Console) Governors(ctx context.Context, tenant string) ([]Governor, error) {
	if err := event.ValidTenant(tenant); err != nil {
		return nil, err
	}
	insts, err := c.o.Store.Instances(ctx, tenant, "")
	if err != nil {
		return nil, err
	}
	out := make([]Governor, 0, len(insts))
	for _, in := range insts {
		data := in.Data
		if len(data) == 0 {
			data = json.RawMessage(`{}`)
		}
		g := Governor{Domain: in.Domain, Subject: in.Subject, State: in.State, Version: in.Version,
			Data: data, UpdatedAt: in.UpdatedAt.UTC(), LastHash: in.LastHash}
		for _, t := range in.Timers {
			g.Timers = append(g.Timers, t)
		}
		slices.SortFunc(g.Timers, func(a, b governor.Timer) int {
			if c := a.Due.Compare(b.Due); c != 0 {
				return c
			}
			return strings.Compare(a.Name, b.Name)
		})
		out = append(out, g)
	}
	return out, nil
}

// TimelineQuery selects a page of a tenant's receipts.
type TimelineQuery struct {
	Tenant  string
	Domain  governor.Domain
	Subject string
	// Since and Until bound decided_at (inclusive, exclusive); zero is
	// open.
	Since, Until time.Time
	// Limit is capped; the default page size when ≤ 0.
	Limit     int
	PageToken string
	// Newest orders newest first; otherwise oldest first (chain order).
	Newest bool
}

// ReceiptPage is a page of receipts.
type ReceiptPage struct {
	Receipts      []receipt.Receipt `json:"receipts"`
	NextPageToken string            `json:"next_page_token"`
}

// MaxPageToken bounds the page tokens the console passes to the store.
const MaxPageToken = 1024

// Timeline returns a page of a tenant's receipts.
func (c *Console) Timeline(ctx context.Context, q TimelineQuery) (ReceiptPage, error) {
	const op = "console.Timeline"
	if err := event.ValidTenant(q.Tenant); err != nil {
		return ReceiptPage{}, err
	}
	if q.Domain != "" && !slices.Contains(governor.Domains, q.Domain) {
		return ReceiptPage{}, fault.Errorf(fault.Invalid, op, "domain %s is not one of the eight governor domains", quote(string(q.Domain)))
	}
	if q.Subject != "" {
		if err := event.ValidSubject(q.Subject); err != nil || q.Subject == governor.BroadcastSubject {
			return ReceiptPage{}, fault.Errorf(fault.Invalid, op, "subject %s is not a valid subject", quote(q.Subject))
		}
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Since.Before(q.Until) {
		return ReceiptPage{}, fault.Errorf(fault.Invalid, op, "since must be before until")
	}
	if err := checkPageToken(op, q.PageToken); err != nil {
		return ReceiptPage{}, err
	}
	rs, next, err := c.o.Store.Receipts(ctx, store.ReceiptQuery{
		Tenant: q.Tenant, Domain: q.Domain, Subject: q.Subject, From: q.Since, To: q.Until,
		PageSize: c.pageSize(q.Limit), PageToken: q.PageToken, Newest: q.Newest,
	})
	if err != nil {
		return ReceiptPage{}, err
	}
	if rs == nil {
		rs = []receipt.Receipt{}
	}
	return ReceiptPage{Receipts: rs, NextPageToken: next}, nil
}

// checkPageToken refuses a token no store hands out: too long or not
// printable ASCII. The store checks the rest.
func checkPageToken(op, tok string) error {
	if len(tok) > MaxPageToken {
		return fault.Errorf(fault.Invalid, op, "page token is %d bytes, limit %d", len(tok), MaxPageToken)
	}
	for i := 0; i < len(tok); i++ {
		if tok[i] <= ' ' || tok[i] > '~' {
			return fault.Errorf(fault.Invalid, op, "page token %s is not one the console handed out", quote(tok))
		}
	}
	return nil
}

// Cascade is the receipts of one correlation id and their causation
// tree: a receipt's actions name the ids of the events it emitted, and an
// emitted event's receipt has that id as its execution id.
type Cascade struct {
	CorrelationID string            `json:"correlation_id"`
	Receipts      []receipt.Receipt `json:"receipts"`
	// Truncated is true when the cascade has more receipts than the
	// console reads.
	Truncated bool `json:"truncated,omitempty"`
}

// CascadeNode is a receipt in the causation tree.
type CascadeNode struct {
	Receipt receipt.Receipt
	// Depth is 0 for a root.
	Depth int
	// Parent is the hash of the receipt whose decision emitted the event
	// of this one; "" for a root.
	Parent string
}

// Tree returns the receipts in depth-first order of the causation tree,
// children in decided_at order; receipts whose cause is not in the
// cascade are roots.
func (cs Cascade) Tree() []CascadeNode {
	byEvent := map[string]int{}
	for i, r := range cs.Receipts {
		for _, a := range r.Actions {
			if _, ok := byEvent[a.ID]; !ok && a.ID != "" {
				byEvent[a.ID] = i
			}
		}
	}
	children := make([][]int, len(cs.Receipts))
	var roots []int
	parent := make([]int, len(cs.Receipts))
	for i, r := range cs.Receipts {
		p, ok := byEvent[r.ExecutionID]
		if !ok || p == i {
			parent[i] = -1
			roots = append(roots, i)
			continue
		}
		parent[i] = p
		children[p] = append(children[p], i)
	}
	out := make([]CascadeNode, 0, len(cs.Receipts))
	seen := make([]bool, len(cs.Receipts))
	var walk func(i, depth int)
	walk = func(i, depth int) {
		if seen[i] {
			return
		}
		seen[i] = true
		n := CascadeNode{Receipt: cs.Receipts[i], Depth: depth}
		if parent[i] >= 0 {
			n.Parent = cs.Receipts[parent[i]].Hash
		}
		out = append(out, n)
		for _, ch := range children[i] {
			walk(ch, depth+1)
		}
	}
	for _, r := range roots {
		walk(r, 0)
	}
	// A cycle (only in forged data) has no root: show it flat.
	for i := range cs.Receipts {
		walk(i, 0)
	}
	return out
}

// Cascade returns the receipts of tenant with that correlation id, in
// decided_at order; NotFound when there is none.
func (c *Console) Cascade(ctx context.Context, tenant, correlationID string) (Cascade, error) {
	const op = "console.Cascade"
	if err := event.ValidTenant(tenant); err != nil {
		return Cascade{}, err
	}
	if correlationID == "" || len(correlationID) > event.MaxTextBytes || checkPageToken(op, correlationID) != nil {
		return Cascade{}, fault.Errorf(fault.Invalid, op, "correlation id %s: want 1 to %d printable characters", quote(correlationID), event.MaxTextBytes)
	}
	rs, err := c.o.Store.ReceiptsByCorrelation(ctx, tenant, correlationID, c.lim.CascadeReceipts+1)
	if err != nil {
		return Cascade{}, err
	}
	if len(rs) == 0 {
		return Cascade{}, fault.Errorf(fault.NotFound, op, "tenant %s has no receipt of correlation id %s", quote(tenant), quote(correlationID))
	}
	cs := Cascade{CorrelationID: correlationID, Receipts: rs}
	if len(rs) > c.lim.CascadeReceipts {
		cs.Receipts, cs.Truncated = rs[:c.lim.CascadeReceipts], true
	}
	return cs, nil
}

// ledger returns the ledger or a NotFound error.
func (c *Console) ledger(op string) (Ledger, error) {
	if c.o.Ledger == nil {
		return nil, fault.Errorf(fault.NotFound, op, "this console serves no ledger")
	}
	return c.o.Ledger, nil
}

// Checkpoint returns the ledger's committed state (its signed checkpoint
// and verifier key) and records the checkpoint in the history.
func (c *Console) Checkpoint(ctx context.Context) (ledger.State, error) {
	l, err := c.ledger("console.Checkpoint")
	if err != nil {
		return ledger.State{}, err
	}
	st, err := l.State(ctx)
	if err != nil {
		return st, err
	}
	c.record(ctx, st)
	return st, nil
}

// record adds st to the checkpoint history unless this process recorded
// it last; a failure is logged, the checkpoint is served anyway.
func (c *Console) record(ctx context.Context, st ledger.State) {
	cp := CheckpointRecord{Size: st.Size, Root: base64.StdEncoding.EncodeToString(st.Root[:]), Time: st.UpdatedAt.UTC(), SeenAt: c.o.Now().UTC()}
	c.mu.Lock()
	same := c.lastCP.Size == cp.Size && c.lastCP.Root == cp.Root
	c.mu.Unlock()
	if same {
		return
	}
	if _, err := c.o.Records.PutCheckpoint(ctx, cp); err != nil {
		c.o.Logger.WarnContext(ctx, "checkpoint not recorded in the history", "size", cp.Size, "error", err.Error())
		return
	}
	c.mu.Lock()
	c.lastCP = cp
	c.mu.Unlock()
}

// RefreshCheckpoint reads the ledger's checkpoint into the history and
// prunes the records; call it periodically. Without a ledger it only
// prunes.
func (c *Console) RefreshCheckpoint(ctx context.Context) error {
	if c.o.Ledger != nil {
		if _, err := c.Checkpoint(ctx); err != nil && fault.ErrorCode(err) != fault.NotFound {
			return err
		}
	}
	return c.o.Records.Prune(ctx, c.o.Now())
}

// Checkpoints returns up to limit (capped) recorded checkpoints, largest
// tree first.
func (c *Console) Checkpoints(ctx context.Context, limit int) ([]CheckpointRecord, error) {
	cps, err := c.o.Records.Checkpoints(ctx, c.pageSize(limit))
	if cps == nil && err == nil {
		cps = []CheckpointRecord{}
	}
	return cps, err
}

// Proof returns the inclusion proof of the receipt hash in the tree of
// size (the current tree when 0).
func (c *Console) Proof(ctx context.Context, hash string, size int64) (ledger.InclusionProof, error) {
	const op = "console.Proof"
	l, err := c.ledger(op)
	if err != nil {
		return ledger.InclusionProof{}, err
	}
	if !ledger.IsReceiptHash(hash) {
		return ledger.InclusionProof{}, fault.Errorf(fault.Invalid, op, "receipt hash %s: want 64 lowercase hex digits", quote(hash))
	}
	return l.InclusionProof(ctx, hash, size)
}

// DeadLetterPage is a page of dead letters.
type DeadLetterPage struct {
	DeadLetters []DeadLetter `json:"deadletters"`
	// Next is the opaque cursor of the next page; "" on the last page.
	Next string `json:"next"`
}

// DeadLetters returns up to limit (capped) dead letters, newest first,
// after the opaque cursor after ("" for the first page).
func (c *Console) DeadLetters(ctx context.Context, after string, limit int) (DeadLetterPage, error) {
	cur, err := ParseCursor(after)
	if err != nil {
		return DeadLetterPage{}, err
	}
	n := c.pageSize(limit)
	dls, err := c.o.Records.DeadLetters(ctx, DeadLetterQuery{After: cur, Limit: n + 1})
	if err != nil {
		return DeadLetterPage{}, err
	}
	p := DeadLetterPage{DeadLetters: dls}
	if len(dls) > n {
		p.DeadLetters = dls[:n]
		p.Next = FormatCursor(dls[n-1].Cursor())
	}
	if p.DeadLetters == nil {
		p.DeadLetters = []DeadLetter{}
	}
	return p, nil
}

// DeadLetter returns one dead letter.
func (c *Console) DeadLetter(ctx context.Context, id string) (DeadLetter, error) {
	if err := ValidID("dead letter id", id); err != nil {
		return DeadLetter{}, err
	}
	return c.o.Records.DeadLetter(ctx, id)
}
