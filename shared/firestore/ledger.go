package firestore

import (
	"context"
	"encoding/hex"
	"fmt"
	"slices"
	"sync"
	"time"

	fs "cloud.google.com/go/firestore"
	"golang.org/x/mod/sumdb/tlog"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/ledger"
)

// DefaultLedgerName names the ledger document when LedgerOptions.Name is
// empty.
const DefaultLedgerName = "default"

// maxTxWrites is Firestore's limit of writes per transaction.
const maxTxWrites = 500

// writeConcurrency bounds the concurrent transactions of WriteEntries.
const writeConcurrency = 4

// lookupChunk bounds the documents of one batched read.
const lookupChunk = 250

// readConcurrency bounds the concurrent batched reads of one lookup.
const readConcurrency = 8

// LedgerOptions configure a Ledger.
type LedgerOptions struct {
	// Name is the id of the ledger's document under "ledgers";
	// DefaultLedgerName when empty. Tests use one name per log.
	Name string
	// MaxAttempts is how many times a transaction that aborts on
	// contention is attempted; 0 means DefaultMaxAttempts.
	MaxAttempts int
}

// Ledger is the Firestore ledger.Store: the Merkle log over all receipts.
//
// Layout, under the ledger's document:
//
//	ledgers/{name}                      the committed state
//	  size integer, root bytes (32), checkpoint string (signed note),
//	  verifier_key string, updated_at timestamp
//	ledgers/{name}/control/lease        holder string, expires_at timestamp
//	ledgers/{name}/control/batch        the batch in progress:
//	  start integer, hashes bytes (32 per entry, in index order),
//	  holder string, created_at timestamp
//	ledgers/{name}/pending/{receipt hash}
//	  leaf bytes (canonical receipt JSON), arrived_at timestamp
//	ledgers/{name}/entries/{receipt hash}
//	  leaf bytes, index integer, arrived_at timestamp
//	ledgers/{name}/tiles/{level}-{n}    one per tile of height 8:
//	  level, n, width integer, data bytes (width × 32, the widest so far);
//	  level-0 tiles also hold hashes bytes: the receipt hashes of their
//	  entries (32 bytes each), so that entries are found by index
//
// Only the pending collection, which holds the backlog, is ever queried,
// in document id (receipt hash) order: entries are read by hash, and by
// index through their level-0 tile, so no read scans the log (the
// Firestore emulator answers queries by scanning the collection). A
// receipt the integrator takes from a push (ledger.Integrator.Submit, the
// group commit) costs one write, its entry, in fenced transactions of up
// to 500 writes; one recorded as pending (the push reached an instance
// that does not integrate) costs three: its pending record (created with
// a "must not exist" precondition after a read of its entry, so a
// redelivery writes nothing), its entry and the deletion of its pending
// record. A batch adds the batch document and, in the commit transaction,
// the changed tiles, the state and the lease: about 6 writes per batch.
// A pending record the integrator drops (DropPending: a receipt the
// governors did not store) costs its deletion, in fenced transactions of
// 499.
//
// Indexes: no query needs one, and no field of the per-receipt
// collections is indexed, so that none is a monotonic write hotspot (the
// entries' index and arrival time increase with every receipt; the
// pending query orders by document id, whose values are uniformly spread
// hashes). pending.leaf, pending.arrived_at, entries.leaf,
// entries.index, entries.arrived_at, tiles.data and tiles.hashes
// should be exempt from indexing.
type Ledger struct {
	c           *fs.Client
	root        *fs.DocumentRef
	maxAttempts int
}

var _ ledger.Store = (*Ledger)(nil)

// NewLedger returns the Ledger named opts.Name using client.
func NewLedger(client *fs.Client, opts LedgerOptions) *Ledger {
	if opts.Name == "" {
		opts.Name = DefaultLedgerName
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = DefaultMaxAttempts
	}
	return &Ledger{c: client, root: client.Collection(colLedgers).Doc(opts.Name), maxAttempts: opts.MaxAttempts}
}

// Collection and document names of the ledger layout.
const (
	colLedgers       = "ledgers"
	colLedgerControl = "control"
	colLedgerEntries = "entries"
	colLedgerPending = "pending"
	colLedgerTiles   = "tiles"
	docLedgerLease   = "lease"
	docLedgerBatch   = "batch"
)

func (l *Ledger) entries() *fs.CollectionRef { return l.root.Collection(colLedgerEntries) }

func (l *Ledger) entryRef(hash string) *fs.DocumentRef { return l.entries().Doc(hash) }

func (l *Ledger) pending() *fs.CollectionRef { return l.root.Collection(colLedgerPending) }

func (l *Ledger) pendingRef(hash string) *fs.DocumentRef { return l.pending().Doc(hash) }

func (l *Ledger) leaseRef() *fs.DocumentRef {
	return l.root.Collection(colLedgerControl).Doc(docLedgerLease)
}

func (l *Ledger) batchRef() *fs.DocumentRef {
	return l.root.Collection(colLedgerControl).Doc(docLedgerBatch)
}

// tileRef is the document of tile (level, n): "<level>-<n>".
func (l *Ledger) tileRef(level int, n int64) *fs.DocumentRef {
	return l.root.Collection(colLedgerTiles).Doc(fmt.Sprintf("%d-%d", level, n))
}

func (l *Ledger) runTx(ctx context.Context, op string, fn func(context.Context, *fs.Transaction) error) error {
	var fnErr error
	err := l.c.RunTransaction(ctx, func(ctx context.Context, t *fs.Transaction) error {
		fnErr = fn(ctx, t)
		return fnErr
	}, fs.MaxAttempts(l.maxAttempts))
	if err == nil || (fnErr != nil && err == fnErr && fault.ErrorCode(fnErr) != fault.Internal) {
		return err
	}
	if ctx.Err() != nil {
		return fault.Wrap(fault.Unavailable, op, err)
	}
	return wrapErr(op, err)
}

func pendingDoc(e ledger.Entry) map[string]any {
	return map[string]any{"leaf": e.Leaf, "arrived_at": e.ArrivedAt.UTC()}
}

func entryDoc(e ledger.Entry, index int64) map[string]any {
	return map[string]any{"leaf": e.Leaf, "index": index, "arrived_at": e.ArrivedAt.UTC()}
}

// decodeEntry decodes an entry or, when pending, a pending record.
func decodeEntry(snap *fs.DocumentSnapshot, pending bool) (ledger.Entry, error) {
	d := newDecoder(snap)
	e := ledger.Entry{Hash: snap.Ref.ID, Leaf: d.bytes("leaf"), Index: ledger.Unassigned, ArrivedAt: d.time("arrived_at"), Pending: pending}
	if !pending {
		e.Index = d.int("index")
	}
	if d.err != nil {
		return ledger.Entry{}, d.fail("firestore.Ledger")
	}
	return e, nil
}

func decodePending(snap *fs.DocumentSnapshot) (ledger.Entry, error) { return decodeEntry(snap, true) }

// getEntries reads the documents of hashes in the entries' collection, or
// the pending records' when pending is set, and returns the existing ones
// decoded.
func (l *Ledger) getEntries(ctx context.Context, op string, hashes []string, pending bool) (map[string]ledger.Entry, error) {
	refs := make([]*fs.DocumentRef, 0, len(hashes))
	for _, h := range hashes {
		if !ledger.IsReceiptHash(h) {
			continue // no such document can exist
		}
		if pending {
			refs = append(refs, l.pendingRef(h))
		} else {
			refs = append(refs, l.entryRef(h))
		}
	}
	out := make(map[string]ledger.Entry, len(refs))
	err := l.readEntries(ctx, op, refs, func(e ledger.Entry) { out[e.Hash] = e })
	return out, err
}

// readEntries reads refs, entry and pending documents alike, in batched
// reads of at most lookupChunk documents run concurrently, and hands each
// existing one, decoded, to found; found is called from one goroutine at a
// time.
func (l *Ledger) readEntries(ctx context.Context, op string, refs []*fs.DocumentRef, found func(ledger.Entry)) error {
	var mu sync.Mutex
	var g errgroup.Group
	g.SetLimit(readConcurrency)
	for start := 0; start < len(refs); start += lookupChunk {
		chunk := refs[start:min(start+lookupChunk, len(refs))]
		g.Go(func() error {
			snaps, err := l.c.GetAll(ctx, chunk)
			if err != nil {
				return wrapErr(op, err)
			}
			mu.Lock()
			defer mu.Unlock()
			for _, snap := range snaps {
				if !snap.Exists() {
					continue
				}
				e, err := decodeEntry(snap, snap.Ref.Parent.ID == colLedgerPending)
				if err != nil {
					return err
				}
				found(e)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return checkLive(ctx, op)
}

func checkLive(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return fault.Wrap(fault.Unavailable, op, err)
	}
	return nil
}

// AddPending implements ledger.Store: the entries are read first, and
// each new one is created with the precondition that its pending record
// does not exist, so a known hash writes nothing.
func (l *Ledger) AddPending(ctx context.Context, entries []ledger.Entry) (int, error) {
	const op = "firestore.Ledger.AddPending"
	if err := checkLive(ctx, op); err != nil {
		return 0, err
	}
	hashes := make([]string, 0, len(entries))
	for _, e := range entries {
		if !ledger.IsReceiptHash(e.Hash) || len(e.Leaf) == 0 || len(e.Leaf) > ledger.MaxLeafBytes {
			return 0, fault.Errorf(fault.Invalid, op, "entry %q: want a receipt hash and a leaf of 1…%d bytes", e.Hash, ledger.MaxLeafBytes)
		}
		hashes = append(hashes, e.Hash)
	}
	known, err := l.getEntries(ctx, op, hashes, false)
	if err != nil {
		return 0, err
	}
	var fresh []ledger.Entry
	seen := make(map[string]bool, len(entries))
	for _, e := range entries {
		if _, ok := known[e.Hash]; !ok && !seen[e.Hash] {
			seen[e.Hash] = true
			fresh = append(fresh, e)
		}
	}
	switch len(fresh) {
	case 0:
		return 0, nil
	case 1:
		_, err := l.pendingRef(fresh[0].Hash).Create(ctx, pendingDoc(fresh[0]))
		switch status.Code(err) {
		case codes.OK:
			return 1, nil
		case codes.AlreadyExists:
			return 0, nil
		}
		return 0, wrapErr(op, err)
	}
	bw := l.c.BulkWriter(ctx)
	jobs := make([]*fs.BulkWriterJob, 0, len(fresh))
	for _, e := range fresh {
		j, err := bw.Create(l.pendingRef(e.Hash), pendingDoc(e))
		if err != nil {
			bw.End()
			return 0, wrapErr(op, err)
		}
		jobs = append(jobs, j)
	}
	bw.End()
	added := 0
	var firstErr error
	for _, j := range jobs {
		_, err := j.Results()
		switch status.Code(err) {
		case codes.OK:
			added++
		case codes.AlreadyExists:
		default:
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	if firstErr != nil {
		return added, wrapErr(op, firstErr)
	}
	return added, nil
}

// DropPending implements ledger.Store: fenced transactions, each
// deleting the pending records of up to maxTxWrites-1 hashes (the last
// write renews the lease), that keep the records of the batch in
// progress. Deleting the record of an entry already written changes
// nothing: Pending skips such records anyway.
func (l *Ledger) DropPending(ctx context.Context, f ledger.Fence, hashes []string) error {
	const op = "firestore.Ledger.DropPending"
	if err := checkLive(ctx, op); err != nil {
		return err
	}
	valid := make([]string, 0, len(hashes))
	seen := make(map[string]bool, len(hashes))
	for _, h := range hashes {
		if ledger.IsReceiptHash(h) && !seen[h] { // no other document can exist
			seen[h] = true
			valid = append(valid, h)
		}
	}
	const per = maxTxWrites - 1
	// One transaction at least, so that a caller without the lease learns
	// it even with nothing to drop.
	for start := 0; start == 0 || start < len(valid); start += per {
		chunk := valid[start:min(start+per, len(valid))]
		err := l.runTx(ctx, op, func(ctx context.Context, t *fs.Transaction) error {
			r, err := l.fenced(t, op, f)
			if err != nil {
				return err
			}
			inBatch := make(map[string]bool, len(r.batch.Hashes))
			for _, h := range r.batch.Hashes {
				inBatch[h] = true
			}
			for _, h := range chunk {
				if inBatch[h] {
					continue
				}
				if err := t.Delete(l.pendingRef(h)); err != nil {
					return fault.Wrap(fault.Internal, op, err)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// Pending implements ledger.Store with a query on the pending records
// ordered by document id (the receipt hash: no index of a monotonic field
// is involved). Records of entries already in the log (a receipt
// delivered again after it was written) are deleted and left out.
func (l *Ledger) Pending(ctx context.Context, limit int) ([]ledger.Entry, error) {
	const op = "firestore.Ledger.Pending"
	q := l.pending().OrderBy(fs.DocumentID, fs.Asc)
	if limit > 0 {
		q = q.Limit(limit)
	}
	pending, err := getAll(ctx, op, q, decodePending)
	if err != nil {
		return nil, err
	}
	hashes := make([]string, len(pending))
	for i, e := range pending {
		hashes[i] = e.Hash
	}
	written, err := l.getEntries(ctx, op, hashes, false)
	if err != nil {
		return nil, err
	}
	if len(written) == 0 {
		return pending, nil
	}
	out := pending[:0]
	var stale []string
	for _, e := range pending {
		if _, ok := written[e.Hash]; ok {
			stale = append(stale, e.Hash)
		} else {
			out = append(out, e)
		}
	}
	for start := 0; start < len(stale); start += maxTxWrites {
		chunk := stale[start:min(start+maxTxWrites, len(stale))]
		err := l.runTx(ctx, op, func(ctx context.Context, t *fs.Transaction) error {
			for _, h := range chunk {
				if err := t.Delete(l.pendingRef(h)); err != nil {
					return fault.Wrap(fault.Internal, op, err)
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Lookup implements ledger.Store with one round of concurrent batched
// reads of both the entry and the pending record of every hash: a new
// receipt, the integrator's common case, is looked for in one round trip
// instead of two. An entry written to the log wins over a pending record
// of the same hash.
func (l *Ledger) Lookup(ctx context.Context, hashes []string) (map[string]ledger.Entry, error) {
	const op = "firestore.Ledger.Lookup"
	refs := make([]*fs.DocumentRef, 0, 2*len(hashes))
	for _, h := range hashes {
		if ledger.IsReceiptHash(h) {
			refs = append(refs, l.entryRef(h), l.pendingRef(h))
		}
	}
	out := make(map[string]ledger.Entry, len(hashes))
	err := l.readEntries(ctx, op, refs, func(e ledger.Entry) {
		if prev, ok := out[e.Hash]; ok && !prev.Pending {
			return
		}
		out[e.Hash] = e
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Written implements ledger.Store with concurrent batched reads of the
// entries alone.
func (l *Ledger) Written(ctx context.Context, hashes []string) (map[string]ledger.Entry, error) {
	return l.getEntries(ctx, "firestore.Ledger.Written", hashes, false)
}

// Leaves implements ledger.Store: the receipt hashes of the range come
// from the level-0 tiles, the leaves from the entries.
func (l *Ledger) Leaves(ctx context.Context, start, end int64) ([][]byte, error) {
	const op = "firestore.Ledger.Leaves"
	if start < 0 || end < start {
		return nil, fault.Errorf(fault.Invalid, op, "range %d…%d", start, end)
	}
	if start == end {
		return [][]byte{}, checkLive(ctx, op)
	}
	var refs []*fs.DocumentRef
	for n := start >> ledger.TileHeight; n <= (end-1)>>ledger.TileHeight; n++ {
		refs = append(refs, l.tileRef(0, n))
	}
	snaps, err := l.c.GetAll(ctx, refs)
	if err != nil {
		return nil, wrapErr(op, err)
	}
	hashes := make([]string, 0, end-start)
	for i, snap := range snaps {
		n := start>>ledger.TileHeight + int64(i)
		var raw []byte
		if snap.Exists() {
			d := newDecoder(snap)
			raw = d.bytes("hashes")
			if d.err != nil {
				return nil, d.fail(op)
			}
		}
		for p := max(start, n<<ledger.TileHeight); p < min(end, (n+1)<<ledger.TileHeight); p++ {
			j := int(p-n<<ledger.TileHeight) * 32
			if len(raw) < j+32 {
				return nil, fault.Errorf(fault.NotFound, op, "entry %d is not in the log", p)
			}
			hashes = append(hashes, hex.EncodeToString(raw[j:j+32]))
		}
	}
	found, err := l.getEntries(ctx, op, hashes, false)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, len(hashes))
	for i, h := range hashes {
		e, ok := found[h]
		if !ok || e.Index != start+int64(i) {
			return nil, fault.Errorf(fault.Internal, op, "entry %d is receipt %s, whose stored entry is missing or says otherwise", start+int64(i), h)
		}
		out[i] = e.Leaf
	}
	return out, nil
}

// Tiles implements ledger.Store with one batched read.
func (l *Ledger) Tiles(ctx context.Context, tiles []tlog.Tile) ([][]byte, error) {
	const op = "firestore.Ledger.Tiles"
	refs := make([]*fs.DocumentRef, len(tiles))
	for i, t := range tiles {
		if t.H != ledger.TileHeight || t.L < 0 || t.L > 63 || t.N < 0 || t.W < 1 || t.W > ledger.TileWidth {
			return nil, fault.Errorf(fault.Invalid, op, "%s is not a hash tile of height %d", ledger.TilePath(t), ledger.TileHeight)
		}
		refs[i] = l.tileRef(t.L, t.N)
	}
	snaps, err := l.c.GetAll(ctx, refs)
	if err != nil {
		return nil, wrapErr(op, err)
	}
	out := make([][]byte, len(tiles))
	for i, snap := range snaps {
		t := tiles[i]
		if !snap.Exists() {
			return nil, fault.Errorf(fault.NotFound, op, "%s is not stored", ledger.TilePath(t))
		}
		d := newDecoder(snap)
		data := d.bytes("data")
		if d.err != nil {
			return nil, d.fail(op)
		}
		if len(data) < t.W*tlog.HashSize {
			return nil, fault.Errorf(fault.NotFound, op, "%s is not stored (%d hashes stored)", ledger.TilePath(t), len(data)/tlog.HashSize)
		}
		out[i] = data[:t.W*tlog.HashSize]
	}
	return out, nil
}

// State implements ledger.Store.
func (l *Ledger) State(ctx context.Context) (ledger.State, error) {
	snap, err := l.root.Get(ctx)
	return decodeLedgerState(snap, err)
}

func decodeLedgerState(snap *fs.DocumentSnapshot, err error) (ledger.State, error) {
	const op = "firestore.Ledger.State"
	if status.Code(err) == codes.NotFound {
		return ledger.State{}, nil
	}
	if err != nil {
		return ledger.State{}, wrapErr(op, err)
	}
	d := newDecoder(snap)
	st := ledger.State{Size: d.int("size"), VerifierKey: d.str("verifier_key"), UpdatedAt: d.time("updated_at")}
	if cp := d.str("checkpoint"); cp != "" {
		st.Checkpoint = []byte(cp)
	}
	root := d.bytes("root")
	if d.err == nil && len(root) != tlog.HashSize && st.Checkpoint != nil {
		d.err = fmt.Errorf("root is %d bytes, want %d", len(root), tlog.HashSize)
	}
	if d.err != nil {
		return ledger.State{}, d.fail(op)
	}
	copy(st.Root[:], root)
	return st, nil
}

func ledgerStateDoc(st ledger.State) map[string]any {
	return map[string]any{
		"size": st.Size, "root": st.Root[:], "checkpoint": string(st.Checkpoint),
		"verifier_key": st.VerifierKey, "updated_at": st.UpdatedAt.UTC(),
	}
}

// Batch implements ledger.Store.
func (l *Ledger) Batch(ctx context.Context) (ledger.Batch, bool, error) {
	snap, err := l.batchRef().Get(ctx)
	return decodeBatch(snap, err)
}

func decodeBatch(snap *fs.DocumentSnapshot, err error) (ledger.Batch, bool, error) {
	const op = "firestore.Ledger.Batch"
	if status.Code(err) == codes.NotFound {
		return ledger.Batch{}, false, nil
	}
	if err != nil {
		return ledger.Batch{}, false, wrapErr(op, err)
	}
	d := newDecoder(snap)
	b := ledger.Batch{Start: d.int("start"), Holder: d.str("holder"), CreatedAt: d.time("created_at")}
	raw := d.bytes("hashes")
	if d.err == nil && len(raw)%32 != 0 {
		d.err = fmt.Errorf("hashes are %d bytes, not a multiple of 32", len(raw))
	}
	if d.err != nil {
		return ledger.Batch{}, false, d.fail(op)
	}
	b.Hashes = make([]string, len(raw)/32)
	for i := range b.Hashes {
		b.Hashes[i] = hex.EncodeToString(raw[32*i : 32*i+32])
	}
	return b, true, nil
}

func batchDoc(b ledger.Batch) map[string]any {
	raw := make([]byte, 0, 32*len(b.Hashes))
	for _, h := range b.Hashes {
		raw, _ = hex.AppendDecode(raw, []byte(h)) // CheckBatch validated the hashes
	}
	return map[string]any{"start": b.Start, "hashes": raw, "holder": b.Holder, "created_at": b.CreatedAt.UTC()}
}

func decodeLease(snap *fs.DocumentSnapshot, err error) (ledger.Lease, error) {
	const op = "firestore.Ledger.Lease"
	if status.Code(err) == codes.NotFound {
		return ledger.Lease{}, nil
	}
	if err != nil {
		return ledger.Lease{}, wrapErr(op, err)
	}
	d := newDecoder(snap)
	lease := ledger.Lease{Holder: d.str("holder"), ExpiresAt: d.time("expires_at")}
	if d.err != nil {
		return ledger.Lease{}, d.fail(op)
	}
	return lease, nil
}

func leaseDoc(lease ledger.Lease) map[string]any {
	return map[string]any{"holder": lease.Holder, "expires_at": lease.ExpiresAt.UTC()}
}

// AcquireLease implements ledger.Store in a transaction on the lease
// document.
func (l *Ledger) AcquireLease(ctx context.Context, holder string, now time.Time, ttl time.Duration) (ledger.Lease, error) {
	const op = "firestore.Ledger.AcquireLease"
	if holder == "" || ttl <= 0 {
		return ledger.Lease{}, fault.Errorf(fault.Invalid, op, "a holder and a positive ttl are required")
	}
	// Standby instances ask often; a plain read spares the holder's
	// transactions their lock while the lease is visibly taken.
	cur, err := decodeLease(l.leaseRef().Get(ctx))
	if err != nil {
		return ledger.Lease{}, err
	}
	if cur.Holder != "" && cur.Holder != holder && now.Before(cur.ExpiresAt) {
		return cur, nil
	}
	var out ledger.Lease
	err = l.runTx(ctx, op, func(ctx context.Context, t *fs.Transaction) error {
		cur, err := decodeLease(t.Get(l.leaseRef()))
		if err != nil {
			return err
		}
		out = cur
		if cur.Holder != "" && cur.Holder != holder && now.Before(cur.ExpiresAt) {
			return nil
		}
		out = ledger.Lease{Holder: holder, ExpiresAt: now.Add(ttl).UTC().Truncate(time.Microsecond)}
		return t.Set(l.leaseRef(), leaseDoc(out))
	})
	if err != nil {
		return ledger.Lease{}, err
	}
	return out, nil
}

// ReleaseLease implements ledger.Store.
func (l *Ledger) ReleaseLease(ctx context.Context, holder string) error {
	const op = "firestore.Ledger.ReleaseLease"
	return l.runTx(ctx, op, func(ctx context.Context, t *fs.Transaction) error {
		cur, err := decodeLease(t.Get(l.leaseRef()))
		if err != nil || cur.Holder != holder {
			return err
		}
		return t.Delete(l.leaseRef())
	})
}

// fencedRead is what a fenced transaction read.
type fencedRead struct {
	state      ledger.State
	batch      ledger.Batch
	inProgress bool
	// extra are the snapshots of the extra documents asked for.
	extra []*fs.DocumentSnapshot
}

// fenced reads the lease, the state, the batch and the extra documents in
// t, checks that f holds the lease and stages its renewal.
func (l *Ledger) fenced(t *fs.Transaction, op string, f ledger.Fence, extra ...*fs.DocumentRef) (fencedRead, error) {
	var r fencedRead
	snaps, err := t.GetAll(append([]*fs.DocumentRef{l.leaseRef(), l.root, l.batchRef()}, extra...))
	if err != nil {
		return r, wrapErr(op, err)
	}
	r.extra = snaps[3:]
	lease, err := decodeLease(snaps[0], missing(snaps[0]))
	if err != nil {
		return r, err
	}
	if f.Holder == "" || lease.Holder != f.Holder {
		return r, fault.Errorf(fault.Conflict, op, "%q does not hold the lease (held by %q)", f.Holder, lease.Holder)
	}
	if r.state, err = decodeLedgerState(snaps[1], missing(snaps[1])); err != nil {
		return r, err
	}
	if r.batch, r.inProgress, err = decodeBatch(snaps[2], missing(snaps[2])); err != nil {
		return r, err
	}
	if f.TTL > 0 {
		lease.ExpiresAt = f.Now.Add(f.TTL).UTC().Truncate(time.Microsecond)
		if err := t.Set(l.leaseRef(), leaseDoc(lease)); err != nil {
			return r, fault.Wrap(fault.Internal, op, err)
		}
	}
	return r, nil
}

// startsAt fails with a fault.Conflict error unless a new batch may
// start at start: none is in progress and the log's size is start.
func (r fencedRead) startsAt(op string, start int64) error {
	switch {
	case r.inProgress:
		return fault.Errorf(fault.Conflict, op, "a batch at %d is in progress", r.batch.Start)
	case start != r.state.Size:
		return fault.Errorf(fault.Conflict, op, "batch starts at %d, the log's size is %d", start, r.state.Size)
	}
	return nil
}

// missing returns a NotFound status for a snapshot of a missing document,
// the error Get would have returned.
func missing(snap *fs.DocumentSnapshot) error {
	if snap.Exists() {
		return nil
	}
	return status.Error(codes.NotFound, "missing")
}

// BeginBatch implements ledger.Store in one transaction over the lease,
// the state and the batch document.
func (l *Ledger) BeginBatch(ctx context.Context, f ledger.Fence, b ledger.Batch) error {
	const op = "firestore.Ledger.BeginBatch"
	if err := ledger.CheckBatch(b); err != nil {
		return err
	}
	return l.runTx(ctx, op, func(ctx context.Context, t *fs.Transaction) error {
		r, err := l.fenced(t, op, f)
		if err != nil {
			return err
		}
		if err := r.startsAt(op, b.Start); err != nil {
			return err
		}
		return t.Set(l.batchRef(), batchDoc(b))
	})
}

// WriteEntries implements ledger.Store: transactions of at most 500
// writes (the entry and, for an entry with Pending set, the deletion of
// its pending record), run concurrently, each of which reads the lease
// and fails unless f holds it.
func (l *Ledger) WriteEntries(ctx context.Context, f ledger.Fence, start int64, entries []ledger.Entry) error {
	const op = "firestore.Ledger.WriteEntries"
	for _, e := range entries {
		if !ledger.IsReceiptHash(e.Hash) || len(e.Leaf) == 0 {
			return fault.Errorf(fault.Invalid, op, "entry %q: want a receipt hash and a leaf", e.Hash)
		}
	}
	var g errgroup.Group
	g.SetLimit(writeConcurrency)
	// One transaction at least, so that a caller without the lease learns
	// it even with nothing to write.
	for i, n := 0, 0; i == 0 || i < len(entries); i += n {
		writes := 0
		for n = 0; i+n < len(entries); n++ {
			w := 1
			if entries[i+n].Pending {
				w = 2
			}
			if writes+w > maxTxWrites {
				break
			}
			writes += w
		}
		n = max(n, 1) // an empty call makes one transaction
		chunk := entries[i:min(i+n, len(entries))]
		first := start + int64(i)
		g.Go(func() error {
			return l.runTx(ctx, op, func(ctx context.Context, t *fs.Transaction) error {
				lease, err := decodeLease(t.Get(l.leaseRef()))
				if err != nil {
					return err
				}
				if f.Holder == "" || lease.Holder != f.Holder {
					return fault.Errorf(fault.Conflict, op, "%q does not hold the lease (held by %q)", f.Holder, lease.Holder)
				}
				for j, e := range chunk {
					if err := t.Set(l.entryRef(e.Hash), entryDoc(e, first+int64(j))); err != nil {
						return fault.Wrap(fault.Internal, op, err)
					}
					if !e.Pending {
						continue
					}
					if err := t.Delete(l.pendingRef(e.Hash)); err != nil {
						return fault.Wrap(fault.Internal, op, err)
					}
				}
				return nil
			})
		})
	}
	return g.Wait()
}

// AbandonBatch implements ledger.Store in one fenced transaction that
// deletes the batch document.
func (l *Ledger) AbandonBatch(ctx context.Context, f ledger.Fence, b ledger.Batch) error {
	const op = "firestore.Ledger.AbandonBatch"
	return l.runTx(ctx, op, func(ctx context.Context, t *fs.Transaction) error {
		r, err := l.fenced(t, op, f)
		switch {
		case err != nil:
			return err
		case !r.inProgress || r.batch.Start != b.Start || !slices.Equal(r.batch.Hashes, b.Hashes):
			return fault.Errorf(fault.Conflict, op, "the batch at %d of %d entries is not in progress", b.Start, len(b.Hashes))
		}
		return t.Delete(l.batchRef())
	})
}

// CommitBatch implements ledger.Store in one transaction: the lease,
// state and batch (and the level-0 tiles the batch extends) are read and
// checked, then the tiles, the state and the lease are written and the
// batch deleted. Level-0 tiles get the receipt hashes of their entries.
func (l *Ledger) CommitBatch(ctx context.Context, f ledger.Fence, c ledger.Commit) error {
	const op = "firestore.Ledger.CommitBatch"
	if err := ledger.CheckCommit(c); err != nil {
		return err
	}
	if len(c.Tiles)+3 > maxTxWrites {
		return fault.Errorf(fault.Invalid, op, "%d tiles do not fit in one transaction", len(c.Tiles))
	}
	return l.runTx(ctx, op, func(ctx context.Context, t *fs.Transaction) error {
		r, err := l.fenced(t, op, f, l.extendedTile(c)...)
		switch {
		case err != nil:
			return err
		case !r.inProgress:
			return fault.Errorf(fault.Conflict, op, "no batch is in progress")
		case r.batch.Start != c.Batch.Start || !slices.Equal(r.batch.Hashes, c.Batch.Hashes):
			return fault.Errorf(fault.Conflict, op, "the batch in progress (at %d, %d entries) is not the batch committed (at %d, %d entries)",
				r.batch.Start, len(r.batch.Hashes), c.Batch.Start, len(c.Batch.Hashes))
		case r.state.Size != c.Batch.Start:
			return fault.Errorf(fault.Conflict, op, "batch starts at %d, the log's size is %d", c.Batch.Start, r.state.Size)
		}
		if err := l.writeCommit(t, op, c, r.extra); err != nil {
			return err
		}
		return t.Delete(l.batchRef())
	})
}

// AppendBatch implements ledger.Store in one transaction: the lease,
// state and batch (and the level-0 tile the batch extends) are read and
// checked, then the entries (deleting their pending records), the tiles,
// the state and the lease are written. No batch document is written.
func (l *Ledger) AppendBatch(ctx context.Context, f ledger.Fence, c ledger.Commit, entries []ledger.Entry) error {
	const op = "firestore.Ledger.AppendBatch"
	if err := ledger.CheckAppend(c, entries); err != nil {
		return err
	}
	return l.runTx(ctx, op, func(ctx context.Context, t *fs.Transaction) error {
		r, err := l.fenced(t, op, f, l.extendedTile(c)...)
		if err != nil {
			return err
		}
		if err := r.startsAt(op, c.Batch.Start); err != nil {
			return err
		}
		for i, e := range entries {
			if err := t.Set(l.entryRef(e.Hash), entryDoc(e, c.Batch.Start+int64(i))); err != nil {
				return fault.Wrap(fault.Internal, op, err)
			}
			if !e.Pending {
				continue
			}
			if err := t.Delete(l.pendingRef(e.Hash)); err != nil {
				return fault.Wrap(fault.Internal, op, err)
			}
		}
		return l.writeCommit(t, op, c, r.extra)
	})
}

// extendedTile returns the level-0 tile that holds entries from before
// c's batch, when the batch extends one.
func (l *Ledger) extendedTile(c ledger.Commit) []*fs.DocumentRef {
	if first := c.Batch.Start >> ledger.TileHeight; c.Batch.Start&(ledger.TileWidth-1) != 0 && c.Batch.End() > c.Batch.Start {
		return []*fs.DocumentRef{l.tileRef(0, first)}
	}
	return nil
}

// writeCommit stages the writes of c's tiles and state in t. extended is
// the snapshot of the tile extendedTile names, if any: level-0 tiles get
// the receipt hashes of their entries, its earlier ones included.
func (l *Ledger) writeCommit(t *fs.Transaction, op string, c ledger.Commit, extended []*fs.DocumentSnapshot) error {
	batchHashes := make([]byte, 0, 32*len(c.Batch.Hashes))
	for _, h := range c.Batch.Hashes {
		batchHashes, _ = hex.AppendDecode(batchHashes, []byte(h)) // CheckCommit validated the hashes
	}
	var before []byte // receipt hashes of the extended tile's earlier entries
	if len(extended) > 0 {
		have := int(c.Batch.Start&(ledger.TileWidth-1)) * 32
		if extended[0].Exists() {
			d := newDecoder(extended[0])
			before = d.bytes("hashes")
			if d.err != nil {
				return d.fail(op)
			}
		}
		if len(before) < have {
			return fault.Errorf(fault.Internal, op, "tile %s holds %d receipt hashes, the log has %d in it", extended[0].Ref.ID, len(before)/32, have/32)
		}
		before = before[:have]
	}
	for _, td := range c.Tiles {
		doc := map[string]any{"level": td.Tile.L, "n": td.Tile.N, "width": td.Tile.W, "data": td.Data}
		if td.Tile.L == 0 {
			// Positions of the tile's entries relative to the batch.
			lo := td.Tile.N<<ledger.TileHeight - c.Batch.Start
			hi := lo + int64(td.Tile.W)
			var hs []byte
			if lo < 0 {
				hs = append(slices.Clone(before), batchHashes[:hi*32]...)
			} else {
				hs = batchHashes[lo*32 : hi*32]
			}
			doc["hashes"] = hs
		}
		if err := t.Set(l.tileRef(td.Tile.L, td.Tile.N), doc); err != nil {
			return fault.Wrap(fault.Internal, op, err)
		}
	}
	next := c.State
	next.UpdatedAt = next.UpdatedAt.Truncate(time.Microsecond)
	if err := t.Set(l.root, ledgerStateDoc(next)); err != nil {
		return fault.Wrap(fault.Internal, op, err)
	}
	return nil
}

// SetTile replaces the stored data of tile (level, n) behind the log's
// back. It exists to test that verification detects tampering.
func (l *Ledger) SetTile(ctx context.Context, level int, n int64, data []byte) error {
	_, err := l.tileRef(level, n).Update(ctx, []fs.Update{{Path: "data", Value: data}, {Path: "width", Value: len(data) / tlog.HashSize}})
	return wrapErr("firestore.Ledger.SetTile", err)
}

// SetLeaf replaces the stored leaf of entry hash (or of its pending
// record) behind the log's back.
// It exists to test that verification detects tampering.
func (l *Ledger) SetLeaf(ctx context.Context, hash string, leaf []byte) error {
	_, err := l.entryRef(hash).Update(ctx, []fs.Update{{Path: "leaf", Value: leaf}})
	if status.Code(err) == codes.NotFound {
		_, err = l.pendingRef(hash).Update(ctx, []fs.Update{{Path: "leaf", Value: leaf}})
	}
	return wrapErr("firestore.Ledger.SetLeaf", err)
}
