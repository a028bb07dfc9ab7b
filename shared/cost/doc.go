// Package cost is the cost and round-trip account of Autonomics'
// decisions: instruments that count what a decision reads, writes,
// deletes, calls and publishes, and the account that prices it.
//
// Counting happens at two levels. Store and Publisher wrap a store.Store
// and an engine publisher and count, per method, the calls and the
// documents and messages they stand for at the interface. A Recorder's
// gRPC client interceptors (Recorder.DialOptions, Recorder.ClientOptions)
// count what really goes over the wire, per RPC method: BeginTransaction,
// BatchGetDocuments (a read per document asked for, found or missing),
// RunQuery (a read per document returned, at least one), Commit and
// BatchWrite (a write per set, create or update, a delete per delete),
// Rollback, and Pub/Sub Publish (messages and their billable volume).
// Both levels keep the interval of every call: the sequential round trips
// of a piece of work are its calls with those that overlapped counted
// once, and Counts.Path lists them in order.
//
// The Firestore client dials its emulator itself and then ignores dial
// options: against the emulator, dial the connection with
// Recorder.DialOptions and give it to the client with option.WithGRPCConn.
//
// The account, TestCostAccount, runs the engine with the eight machines on
// the emulators through each kind of decision and the ledger's integrator
// over the receipts, and prints a table of reads, writes, deletes, RPCs,
// sequential round trips and publishes per decision, with dollars per
// million decisions at ListPrices (dated in the variable's documentation).
// `make cost` prints it; with COST_FLAGS=-update it is also written to
// testdata/account.md.
package cost
