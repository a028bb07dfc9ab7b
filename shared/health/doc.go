// Package health computes the health of a service instance: its own CPU
// and memory utilisation, read from its cgroup (v2 or v1) in a container
// and from /proc otherwise, its goroutines, and dependency checks,
// combined into healthy, degraded or critical.
//
// The resource rule: degraded when CPU or memory is above its threshold
// (80% and 85% by default), critical when both are. A check reports its own
// status; the overall status is the worst of all.
//
// Checks are values of the Checker interface. Ping turns a reachability
// probe into a check, and Lag a "how far behind" probe: OutboxAge (oldest
// undelivered outbox entry) and OverdueTimers (oldest due timer) are Lag
// checks over the store's reads. The integrator lag of the ledger, once it
// exists, is one more Lag check added to Monitor.Checks.
//
// The package imports no cloud SDK; the service main wires the probes.
package health
