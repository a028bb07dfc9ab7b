// Package storetest is the conformance suite of the storage port: every
// store.Store adapter runs RunConformanceTests from its own tests, so that
// the in-memory store used in unit tests and the Firestore store used in
// production are held to the same behaviour.
//
// The suite pins what store.go leaves to adapters:
//
//   - Tx.Write validates the changes (complete instance key, receipt of
//     that instance with seq in 1…MaxSeq and an RFC 3339 decided_at, dedup
//     marker of that instance, outbox and timer ids usable as document ids)
//     and refuses invalid ones with a fault.Invalid error; it may be
//     called once, and no read may follow it.
//   - Receipts are append-only: writing a receipt at a seq that already
//     exists fails the transaction with a fault.Conflict error.
//   - Chain with limit <= 0 returns every receipt after the given seq.
//   - Receipts orders by decided_at, then by instance (domain:subject) and
//     seq; PageSize <= 0 means 100, and the last page's token is "". A
//     token that is malformed, unknown or of another tenant is Invalid.
//     With Newest the order is the reverse, and tokens still page.
//   - ReceiptsByExecution orders by tenant, domain, subject and seq.
//   - ReceiptsByCorrelation returns the tenant's receipts of one
//     correlation id in the order of Receipts, at most limit (<= 0: 100).
//   - Tenants lists the tenant index in ascending id order, after the
//     cursor and within the prefix, at most Limit ids (<= 0: 100; capped
//     at 1000). A tenant enters it with the first receipt of its first
//     instance, once, also when several first receipts commit at once;
//     a transaction that fails lists nothing. A prefix or cursor that no
//     id could match (a '/', not UTF-8, over 1500 bytes) is Invalid.
//   - Outbox returns a receipt's entries in the order they were written;
//     Undelivered orders by created_at, then id; DueTimers by due, then id.
//     A limit <= 0 means no limit. MarkDelivered ignores unknown ids.
//   - A cancelled context makes RunTx fail with a fault.Unavailable
//     error and write nothing.
//
// The outbox and timer collections are global, and an adapter under test
// may share them with other tests (the Firestore emulator does). Tests
// therefore use tenant ids unique to the test, times in a random window of
// the past, and check global listings for the properties that hold
// whatever else is stored: ordering, bounds, limits, and that the test's
// own entries form the expected prefix. Each test removes its outbox and
// timer entries when it ends.
package storetest
