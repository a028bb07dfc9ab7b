// Package memstore is an in-memory store.Store for tests and local runs.
//
// It passes the same conformance suite (storetest) as the Firestore store
// and mirrors its behaviour where the port leaves room: transactions are
// optimistic and may run their function several times; times are kept in
// UTC with microsecond precision; ids are refused where Firestore would
// refuse them as document ids; receipts are append-only; page tokens have
// the same shape; a tenant enters the tenant index with the first receipt
// of its first instance only. Every value is copied in and out, so
// callers never share memory with the store.
//
// Transactions record the revision of every document they read (instances
// and dedup markers) and commit only if none changed since; a conflicting
// transaction runs again, up to MaxAttempts times. Store methods may be
// called from a transaction's function without deadlock, but, as with
// Firestore, their reads are not part of the transaction.
package memstore
