// Package firestore is the Cloud Firestore store.Store of Autonomics.
//
// New takes a *firestore.Client (the library never reads the environment)
// and Options. RunTx first runs the function as an optimistic commit: its
// marker and instance are read in one batch outside any transaction, and
// Write's writes go in one atomic commit whose preconditions hold every
// document read to what was read (the marker and the receipt absent, the
// instance absent or at its update time). A function that reads another
// instance, or whose commit loses a race, runs again in a Firestore
// transaction: every read goes through the transaction (which locks what
// it reads) and Write stages the decision's writes in it, and it runs
// again when the transaction aborts on contention, up to
// Options.MaxAttempts times. The function must have no other side effect.
//
// # Layout
//
// The tenant index, one document per tenant with at least one instance:
//
//	tenants/{tenant}
//	  tenant_id                          string
//	  created_at                         timestamp (decided_at of its first receipt)
//
// It is created in the transaction of the first receipt of an instance
// (seq 1) when absent: that transaction alone reads it, and every other
// decision writes exactly what it would write without the index. Data
// written before the index existed is indexed by Store.IndexTenants.
//
// Instances, one document per governor instance:
//
//	tenants/{tenant}/instances/{domain}:{subject}
//	  tenant_id, domain, subject, state  string
//	  version                            integer (seq of the last receipt)
//	  last_hash                          string
//	  data                               string (the JSON object; "" for none)
//	  timers                             map name → {id string, due timestamp}
//	  updated_at                         timestamp
//
// Receipts, append-only, under their instance:
//
//	tenants/{tenant}/instances/{domain}:{subject}/receipts/{seq, 12 digits zero-padded}
//	  every receipt field under its JSON name (strings, seq an integer,
//	  actions an array of maps of strings), plus
//	  decided_at_ts                      timestamp of decided_at, for range queries
//
// A receipt is written with a "must not exist" precondition: a second
// receipt at the same seq fails the commit with a fault.Conflict error.
// Seqs above 999999999999 are refused. Stored receipts are read back as
// they are, so that an altered receipt still loads and the ledger's
// verification can report it; a field of the wrong type (a float seq, a
// null, a number where a string belongs) is a fault.Internal error.
//
// Dedup markers, one per (instance, event source, event id), each
// holding the outbox of the decision that applied the event:
//
//	tenants/{tenant}/dedup/{hex SHA-256 of domain \x00 subject \x00 source \x00 id}
//	  receipt_hash, domain, subject, source, event_id  string
//	  expire_at                                        timestamp (TTL policy)
//	  outbox                                           array of maps, in writing order:
//	    id, topic, ordering_key                        string
//	    data                                           bytes
//	    attributes                                     map of strings
//	    created_at                                     timestamp
//	    receipt_hash                                   string, only when not the marker's
//	  delivered                                        boolean (every entry published; true without entries)
//	  created_at                                       timestamp (the earliest entry's)
//	  shard                                            integer (store.Shard of the document id)
//
// A decision thus writes three documents however many messages it emits
// (the instance, the marker, the receipt), and nothing records its
// delivery after the commit: its receipt in the ledger does. The delivered
// field is set only for a decision published again (Store.MarkDelivered).
// The sweep's position in each shard, the last marker it dealt with, is
// one document:
//
//	sweeps/{Options.SweepName}
//	  s00 … s15                          map {created_at timestamp, path string}
//
// Store.Undelivered starts each shard's query after its position, and
// Store.Swept moves positions forward in one transaction. The marker's id is store.MarkerHash;
// store.MarkerID (tenant "/" id) names it for Store.MarkDelivered. Tx.Dedup
// reads the marker and the instance in one BatchGetDocuments, and a
// duplicate takes the outbox to publish again from the marker it read.
//
// Markers written before the outbox moved into them have no outbox and
// read as delivered. Entries of the former global outbox collection
// (outbox/{id}: topic, ordering_key, receipt_hash, data, attributes,
// created_at, delivered, position) are not swept any more: after
// deploying, Store.DrainLegacyOutbox (autonomicsctl backfill) publishes
// those not delivered and marks them delivered.
//
// Armed timers, global, by their deterministic id:
//
//	timers/{id}
//	  tenant_id, domain, subject, name   string
//	  due                                timestamp
//	  shard                              integer (store.Shard of the id)
//
// Timer documents written before the shard field existed are not listed
// by DueTimers: after deploying, Store.BackfillTimerShards (autonomicsctl
// backfill) gives each of them its shard, reading the collection in
// document id order.
//
// Timestamps keep microsecond precision.
//
// # Queries and indexes
//
//   - Instances: the tenant's instances collection, filtered by domain
//     (automatic single-field index), sorted by domain and subject.
//   - Chain: the instance's receipts subcollection in document id order.
//   - Receipts: a collection-group query on "receipts" with tenant_id ==,
//     optionally domain == and subject ==, decided_at_ts >= From and
//     < To, ordered by decided_at_ts then document path. The page token is
//     the base64url of the last receipt's document path, and the next page
//     starts after that document.
//     With Newest both orders are descending, and the next page starts
//     after the token's document in that order.
//   - ReceiptsByExecution: a collection-group query on execution_id ==.
//   - ReceiptsByCorrelation: a collection-group query on "receipts" with
//     tenant_id == and correlation_id ==, ordered by decided_at_ts then
//     document path.
//   - Tenants: the tenants collection in document id order (the
//     automatic index), from the prefix or after the cursor, ending before
//     the least id past the prefix.
//   - Outbox: a collection-group query on "dedup" with receipt_hash ==,
//     the marker's entries in writing order.
//   - Undelivered: a collection-group query on "dedup" per shard, in
//     parallel, with shard ==, delivered == false and created_at < before,
//     ordered by created_at then document path, each limited; the markers
//     merged in that order and the first limit kept, whole.
//   - DueTimers: timers where shard == s and due <= t, ordered by due
//     then id, once per shard in parallel, merged; with a limit each shard
//     is read in pages, the next page only when the merge needs it.
//   - BackfillTimerShards: timers in document id order, the shard field
//     alone (no index).
//   - DrainLegacyOutbox: outbox where delivered == false, in document id
//     order (the automatic single-field index on delivered: no composite
//     index).
//
// The composite indexes these need (ascending unless marked DESC;
// __name__ is implicit, in the direction of the last field):
//
//	receipts  COLLECTION_GROUP  tenant_id, decided_at_ts
//	receipts  COLLECTION_GROUP  tenant_id, domain, decided_at_ts
//	receipts  COLLECTION_GROUP  tenant_id, subject, decided_at_ts
//	receipts  COLLECTION_GROUP  tenant_id, domain, subject, decided_at_ts
//	receipts  COLLECTION_GROUP  tenant_id, decided_at_ts DESC
//	receipts  COLLECTION_GROUP  tenant_id, domain, decided_at_ts DESC
//	receipts  COLLECTION_GROUP  tenant_id, subject, decided_at_ts DESC
//	receipts  COLLECTION_GROUP  tenant_id, domain, subject, decided_at_ts DESC
//	receipts  COLLECTION_GROUP  tenant_id, correlation_id, decided_at_ts
//	dedup     COLLECTION_GROUP  shard, delivered, created_at
//	timers    COLLECTION        shard, due
//
// and single-field settings:
//
//	receipts.execution_id  ascending index with COLLECTION_GROUP scope
//	dedup.receipt_hash     ascending index with COLLECTION_GROUP scope
//	dedup.expire_at        TTL policy (collection group "dedup")
//	instances.data, dedup.outbox, receipts.actions, receipts.reason
//	                       exempt from indexing (never queried, possibly large)
//	dedup.created_at, dedup.expire_at, receipts.prev_hash, receipts.hash and receipts.data_digest
//	                       exempt from indexing (never queried alone: a
//	                       timestamp written per decision, random hashes)
//	timers.due             exempt from single-field indexing (queried only
//	                       through the shard, due index: no hotspot)
//
// # Errors
//
// Errors carry governor codes: Aborted, Unavailable, DeadlineExceeded,
// ResourceExhausted, Canceled and context errors are Unavailable
// (retryable); InvalidArgument is Invalid; NotFound is NotFound;
// AlreadyExists is Conflict; anything else is Internal. Errors returned by
// the function given to RunTx are returned unchanged.
package firestore
