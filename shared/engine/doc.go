// Package engine runs governors against storage and messaging: it decodes
// an inbound message, applies the event to its instance (or to every
// instance of a broadcast) in one storage transaction that writes state,
// the dedup marker, the receipt, the outbox and the timers, and publishes
// the outbox after commit. It also fires due timers (Tick) and re-publishes
// outbox entries a crash left undelivered (Sweep).
//
// Failure handling follows one rule: input that can never succeed is
// dead-lettered and acknowledged (HandleMessage returns nil); a transient
// fault returns an error so that Pub/Sub redelivers. Redelivery is safe:
// the dedup marker makes a second application a no-op that re-publishes
// whatever the first left undelivered. A panic in a machine is not
// recovered: it reaches the caller (the Functions Framework recovers it per
// request), releasing the engine's lock on the instance on the way.
package engine
