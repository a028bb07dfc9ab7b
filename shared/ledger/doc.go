// Package ledger is the verifiable ledger of Autonomics: one append-only
// Merkle log (RFC 6962, as golang.org/x/mod/sumdb/tlog implements it)
// over every committed receipt, with checkpoints signed as C2SP
// tlog-checkpoint notes, inclusion and consistency proofs, the C2SP
// tlog-tiles read paths, and the offline verification of all of them.
//
// # Entries
//
// A log entry (leaf) is a receipt's canonical JSON including "hash"
// (receipt.Receipt.JSON); its leaf hash is tlog.RecordHash of those bytes.
// Entries are keyed by the receipt hash. Every committed receipt is
// published on the receipts topic at least once (the engine's outbox and
// sweeper); the integrator service's push endpoint turns each delivery
// into an Entry with NewEntry, which refuses anything that is not a
// receipt whose hash is the hash of its canonical JSON, and hands it to
// the lease holder's Integrator (Submit, the group commit): the push is
// answered once the checkpoint that includes it is committed, so the
// receipt costs one write (its entry) and its batch's tiles, state and
// checkpoint are shared, and a crash before the commit leaves the
// delivery unacknowledged for Pub/Sub to redeliver. An instance that does
// not integrate records the entry as pending instead (Store.AddPending,
// which ignores hashes it knows), for the holder's passes. So every
// receipt reaches the log, once. A leaf is at most MaxLeafBytes, the limit of an
// entry bundle's uint16 length prefix; receipts are far smaller.
//
// # Only stored receipts
//
// A correct hash proves nothing about where a receipt came from: anyone
// who can publish on the receipts topic, or reach the push endpoint, can
// build a receipt with the shared receipt code, chained to a tenant's real
// head or for a tenant without governors. So a pending entry is only a
// candidate. Before a batch is recorded, the integrator asks its
// ReceiptWitness, the governors' store (read only), for the receipts
// stored at the places (tenant, domain, subject, seq) of all the batch's
// candidates, in batched reads, and admits a candidate only when the
// receipt stored at its place has its hash. The others are never signed:
// they are removed from the pending entries (Store.DropPending, so that a
// flood of them cannot hold the log up), counted (Pass.Forged and the
// counter RefusedMetric, by reason) and logged with their ids quoted and
// truncated. The governor's own receipt for the same place is admitted
// when it arrives, so that, unless the governors' store itself is
// rewritten, the log holds at most one receipt per place.
//
// A candidate whose place holds no receipt is refused at once, not kept
// for later: the engine publishes a receipt only after the transaction
// that stored it committed, and Firestore reads are strongly consistent,
// so a genuine receipt is always found. Waiting would let made-up entries
// occupy the pending batch. The price is that an integrator pointed at
// the wrong governors' database drops what it is sent; the counter says
// so at once, and the receipts, still in the governors' store, can be
// published again. A witness that fails (unavailable) makes the pass
// fail: nothing is admitted or dropped, and the next pass asks again. A
// batch already recorded is completed as recorded, without asking again.
//
// # Integration
//
// One Integrator at a time holds the log's lease (Store.AcquireLease: a
// holder and an expiry, taken over by another instance once it expires).
// A pass takes up to BatchSize pending entries, oldest first, and:
//
//  1. drops those the witness does not vouch for (see above) and records
//     the others, in order, as the Batch starting at the committed size
//     (BeginBatch, fenced by the lease);
//  2. authenticates the stored right edge of the tree against the
//     committed root, computes the new hashes, tiles and root, and signs
//     the checkpoint;
//  3. writes the entries at their indices (WriteEntries, idempotent, in
//     chunks), which removes them from the pending ones;
//  4. commits the tiles, the new state (size, root, signed checkpoint) and
//     the end of the batch in one transaction (CommitBatch, fenced);
//  5. publishes the checkpoint.
//
// A batch that fits in one WriteChunk and in one transaction
// (MaxAppendWrites: an entry, its pending record's deletion, the tiles,
// the state and the lease) skips steps 1, 3 and 4 for one
// (Store.AppendBatch, fenced): its entries, tiles and state are written
// at once, and no batch is ever recorded or in progress for it. That is a
// third of the write round trips of a pass, and two writes fewer (the
// batch's record and its deletion).
//
// The state is the commit point. A batch, once recorded, is completed
// exactly as recorded by whoever holds the lease next, so an integrator
// that dies after any step leaves either nothing or a batch the next one
// completes: no index is assigned twice and no receipt is skipped. When
// some entries of the batch were submitted and never written (the
// integrator held them in memory only), the next holder abandons the
// batch (Store.AbandonBatch) and records one of the entries that were
// written or are pending; the others' deliveries were never acknowledged
// and come again. WriteEntries is fenced by the lease, so an integrator
// that lost it writes nothing the next holder could miss. An
// integrator that lost the lease while it worked is fenced off: its
// BeginBatch and CommitBatch fail, and its other writes repeat those of
// the recorded batch. Lookups treat an entry whose index is at or above
// the committed size as pending. The first pass on an empty log commits
// a checkpoint of size 0. An integrator refuses to extend a log whose
// checkpoint has another origin, or whose stored edge tiles do not hash
// to the committed root (tampering).
//
// A committed checkpoint is published at least once: a new lease holder
// publishes the current checkpoint on its first pass, so one committed by
// a holder that died before publishing is published too.
//
// Run loops over passes: back to back while batches fill up, or when an
// eighth of a batch or more of submitted entries arrived while the pass
// ran (the group commit's backlog), Linger after a submission otherwise,
// every interval while pending entries keep arriving (Notify, which the
// push endpoint calls for those it records as pending), and every idle
// interval once nothing is pending; a Notify ends an idle wait. The time
// from a submitted receipt's arrival to its signed checkpoint is thus
// about one to two pass durations plus Linger. Pending entries are taken
// in hash order, with a share of every batch kept for them. The log and
// the witness are asked about the submitted entries of a pass at once
// (Store.Written, is it there already, and ReceiptWitness, did a
// governor store it), and the pending entries are queried meanwhile,
// since no answer depends on another; a duplicate submission costs only a
// wasted read of the witness. The log's answer reads the entries alone,
// not the pending records: a receipt submitted while it is also pending
// (delivered twice, once to an instance that does not integrate) is
// written from its submission and its pending record left behind, which
// Store.Pending never returns once the entry is written, and deletes.
// Pass.Latencies measure from each receipt's decided_at, the governor's
// commit.
//
// # Checkpoints and keys
//
// A checkpoint is a C2SP signed note whose text is the origin line, the
// tree size and the base64 root hash. The signer is an Ed25519 note key
// (GenerateKey); its key name is the origin, and OpenCheckpoint requires
// that. The verifier key ("<origin>+<hash>+<base64 key>") is public: the
// integrator records it with each state and the query API serves it, but
// an auditor should obtain it out of band.
//
// # Tiles
//
// Hashes are stored as tiles of height 8 (TileHeight), one per (level,
// index), holding the widest data written so far: a partial tile grows
// until it is full, and its prefix never changes, so any partial width of
// a past checkpoint is served from it. Entry bundles are assembled from
// the entries by index. Log serves proofs from tiles it first
// authenticates against the latest checkpoint's root, so a store altered
// behind the integrator's back yields a fault.Conflict error, not a
// proof.
//
// # Verification
//
// VerifyInclusion, VerifyConsistency, VerifyExport and Audit need only
// the evidence and a checkpoint opened with the verifier key; they report
// the first failure as a *VerifyError naming the problem and where it is
// (a receipt and its index, a tile path, an entry bundle). An Export is a
// tenant's receipts, chain by chain, with their inclusion proofs: its
// verification checks every chain (receipt.Verifier) and every inclusion.
// Audit reads a whole log through a TileSource (a Log, or a TileClient
// over HTTP) as a monitor does.
//
// Both report a fork (problem Fork), naming both entries' indices and the
// receipt's place: two entries for one (tenant, domain, subject, seq), or
// two entries of one instance with one prev_hash. A governor commits
// neither, so a fork means a made-up or rewritten receipt reached the log
// (before the witness check, or through a rewritten governors' store).
// Audit remembers a 16-byte digest of each entry's place and of its link
// (instance and prev_hash), 70 to 140 bytes per entry whatever the
// receipts hold.
//
// # Storage
//
// Store is the port; memledger is the in-memory adapter and the Firestore
// adapter lives in package firestore. Both pass the conformance suite in
// ledgertest, which also runs the failure scenarios: racing integrators,
// an integrator killed after each step, tampered tiles and entries, a
// forked log, and receipts no governor stored. The governors' stores (the
// Firestore store, memstore) pass ledgertest's witness suite.
package ledger
