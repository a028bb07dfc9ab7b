// Package pubsub is the Google Cloud Pub/Sub adapter of Autonomics.
//
// Publisher publishes store.Message values — outbox entries, receipts,
// cascaded events, actions, alerts — and waits for the server to
// acknowledge each one, so that a caller marks an outbox entry delivered
// only once Pub/Sub holds it. Message ordering is enabled: messages with
// the same ordering key (the tenant id) are delivered in publish order on
// ordered subscriptions.
//
// Ensure creates topics and subscriptions idempotently. The local stack
// and the tests use it; production topology is created by Terraform.
//
// Receive pulls from a subscription and is meant for tests, the demo and
// load tools; the governor functions receive push deliveries instead.
//
// Errors carry governor codes: fault.NotFound for a missing topic or
// subscription (a configuration error, not worth retrying),
// fault.Invalid for a request Pub/Sub refuses as malformed, and
// fault.Unavailable for everything else, which a retry may cure.
package pubsub
