// Package ledgertest is the conformance suite of the ledger's storage
// port. Every ledger.Store adapter runs RunConformanceTests from its own
// tests, so that the in-memory store used in unit tests and the Firestore
// store used in production are held to the same behaviour.
//
// The suite pins the port's contract (pending entries, lookups, leaves,
// tiles, the lease, and the batch protocol with its conflicts) and then
// runs the integrator and the read side on the store through the failures
// the ledger must survive:
//
//   - two integrators racing for the lease while receipts arrive, with
//     takeovers in the middle of batches: no index is assigned twice, no
//     receipt is skipped, and every published checkpoint is consistent
//     with the one before;
//   - an integrator stopped after each step of a batch: the next holder
//     completes the batch exactly as planned, and the stopped one can no
//     longer commit;
//   - a tampered tile or entry: the audit fails and names the tile or the
//     entry, proofs are refused, and the integrator refuses to build on it;
//   - a checkpoint of a forked log: the consistency check fails;
//   - receipts no governor committed (made up and chained to a real
//     head, of a tenant without governors, a rewritten stored receipt):
//     never integrated, dropped from the pending entries, and the
//     governor's own receipt for the same place integrated when it comes;
//     a flood of them cannot keep a committed receipt out; a witness that
//     cannot answer makes the pass fail without dropping anything.
//
// Each test uses a fresh log from the harness, so adapters that share a
// database between tests give each harness its own log. The suite's
// integrators ask a witness that knows the receipts each test commits.
//
// RunWitnessTests is the conformance suite of the other side of that
// check: the governors' stores as ledger.ReceiptWitness.
package ledgertest
