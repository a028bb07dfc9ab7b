// Package alerting is the pure core of the Autonomics monitor: alert
// policies and their PromQL, the alert state machine, silences,
// notification decisions and the fairness (noisy neighbour) detector. The
// series live in a metrics engine that answers PromQL (the Querier port;
// package prom is its adapter for the Prometheus HTTP API): the monitor
// keeps none. It imports no cloud SDK.
//
// # Alerts
//
// A policy is a PromQL expression, like a Prometheus alerting rule (every
// series it returns is a true condition), or a simple policy comparing the
// latest sample of every series of one metric whose labels match the
// policy's label matchers with a threshold, which Compile turns into
// PromQL. Each series whose condition holds has its own alert, keyed by a
// fingerprint: a stable hash of the policy name and the series' sorted
// labels (for a PromQL policy, with the policy's labels added). The
// states follow Prometheus:
//
//   - the condition turns true: pending (active_at is set); with for = 0
//     the alert fires at once;
//   - the condition stays true for `for`: firing (fired_at is set) and a
//     firing notification is sent;
//   - a pending alert whose condition turns false goes back to inactive
//     without any notification;
//   - a firing alert whose condition turns false resolves (resolved_at is
//     set, one resolved notification), unless keep_firing_for is set: it
//     then stays firing until the condition has been false for that long,
//     so that a flapping metric does not page twice;
//   - with absent_for set, a series (or, when no series matches at all,
//     the metric) that has received no sample for that long is a true
//     condition of its own; its alert carries reason "absent" and, as
//     value, the seconds since the last sample.
//
// A series whose latest sample is older than the lookback (5 minutes by
// default) has no value: its condition is false. The engine holds the
// history, so a new evaluator sees what the previous one saw; when the
// engine cannot answer a policy's queries, the policy's alerts keep their
// state for the cycle: an evaluator never resolves or fires an alert for
// lack of evidence. A resolved alert keeps the last value that held.
//
// The simple policies of one metric share their queries: one condition
// query returns the latest sample of every series that passes the
// loosest of their comparisons (within the matchers they all have), one
// query per absent_for the quiet series, and one the absent label sets;
// each policy's matchers, comparison and threshold are then applied to
// the shared answer, which gives the alerts its own queries would. A
// cycle of 1,000 simple policies over 100 metrics sends about 100
// queries, not 1,000. A shared answer over the runner's series bound
// (RunnerOptions.MaxSeriesPerQuery) or the engine's response limit is
// replaced by the policies' own queries; a PromQL policy always sends its
// own.
//
// Firing notifications repeat no more often than the repeat interval (5
// minutes by default) while the alert fires; a resolved notification is
// sent once, and only for an episode whose firing was notified. A silence
// (label matchers and an end time) mutes the notifications of the alerts
// it matches while it lasts; the alerts still change state. An alert whose
// firing notification was muted is notified once the silence ends, if it
// still fires. A resolution that happens while silenced is not notified.
//
// Every notification has a deterministic id, fingerprint-kind-time, where
// time is the evaluation time of the transition or repetition. It is
// recorded in the alert's outbox in the same transaction as the state
// change, published after commit and then moved to the alert's sent ids,
// so that an evaluator that takes over after a crash re-publishes what was
// recorded but not sent, with the same id, and nothing that was sent.
//
// # Fairness
//
// Fairness reads a usage metric (autonomics_tenant_usage{tenant,
// resource} by default) whose value is a tenant's current consumption
// rate of a resource. One PromQL query (FairnessQuery) averages each
// tenant's samples over a window and computes the tenants' shares of each
// resource in the engine, returning only the shares near or above the
// threshold, so that it works for any number of tenants. A tenant whose share of
// some resource passes the threshold (50% by default, in basis points)
// while another tenant uses that resource too is a noisy neighbour: the
// monitor publishes multi_tenant.noisy_neighbor_detected {share_bp} for
// it (to the multi_tenant internal topic), and multi_tenant.recovered once its share has fallen under the
// threshold minus a hysteresis (10 points by default) on every resource.
// Silences do not apply to these governor events.
//
// # Request limits
//
// ParseSamples bounds one POST /v1/metrics: its body, its points, the
// label bytes of a series and of the whole request. A batch that breaks a
// bound is refused whole, with an Invalid error wrapping the Limit it
// broke, so that a transport can answer 413 (the request is too large) or
// 429 (too many requests at once). The receipt-derived metrics
// (ReceiptMetrics) are bounded by ReceiptSeriesBound.
//
// # Evaluation
//
// Evaluate and EvaluateFairness are pure functions of their input. Runner
// wires them to a Querier (the metrics engine), a Store (the storage port,
// with memalerts and firestore adapters, held to one conformance suite in
// alertingtest) and a Publisher: only the holder of the evaluation lease
// evaluates, and its commits are fenced by the lease, so that an instance
// that lost the lease cannot record or send anything.
package alerting
