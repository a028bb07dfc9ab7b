// Package ingest is the authenticated HTTP ingest API of Autonomics: it
// takes CloudEvents from producers outside Autonomics, authenticates and
// authorises the caller, checks every event exactly as the governors will,
// and publishes the accepted ones to their domain topic
// (topic.Names.Domain), answering per event before the producer moves on,
// so that bad input is reported at once rather than found later on the
// dead-letter topic.
//
// # Requests
//
// POST /v1/events takes the three content modes of the CloudEvents HTTP
// protocol binding, read with the HTTP binding of the CloudEvents Go SDK:
//
//   - binary: the event's attributes in ce-* headers, its data in the
//     body (Content-Type application/json or none). Header values are taken
//     as they are, without percent-decoding, as the Go SDK sends them.
//   - structured: the whole event as JSON, Content-Type
//     application/cloudevents+json. ce-* headers, if any, must agree with
//     the event.
//   - batched: a JSON array of structured events, Content-Type
//     application/cloudevents-batch+json; at most Limits.MaxBatchEvents.
//
// Anything else is answered 415. Every event is checked by the decoder the
// governors run (event.Decode): strict JSON (duplicate member names, unknown
// payload fields and trailing bytes refused), the attribute rules and
// limits of the README's "Contracts", then by its machine
// (governor.Machine.CheckEvent: known event, valid payload).
//
// # Authentication
//
// Two schemes, one per request:
//
//   - Authorization: Bearer <Google-signed ID token> for Google identities
//     (service accounts). The token is verified by TokenVerifier; in
//     production GoogleTokens, with google.golang.org/api/idtoken, against
//     the service's own audience; the issuer must be Google and the email
//     claim verified. The email names the producer.
//   - an HMAC-signed request for systems outside Google, after Standard
//     Webhooks: headers webhook-id (a fresh nonce per request),
//     webhook-timestamp (Unix seconds, within Tolerance of the server's
//     clock), webhook-signature ("v1,<base64 HMAC-SHA256 of
//     id.timestamp.body>", several space-separated signatures allowed during
//     a rotation) and autonomics-key-id (which key signed). A webhook-id is
//     accepted once per producer: it is remembered for twice the tolerance,
//     in memory bounded per producer (MaxReplayEntries). HMAC requests must
//     use structured or batched mode, so that the signature covers every
//     attribute of every event; binary mode keeps attributes in headers,
//     outside the signed body, and is refused for them.
//
// A request with neither, or with a credential that does not verify, is
// answered 401; a verified identity that is no producer, 403.
//
// # Authorisation
//
// Producer rules (ParseRules) list each producer: its name, its sender
// class (external or marketplace), its identities (a Google email and/or
// HMAC key ids), the event types it may send (exact, or
// autonomics.<domain>.* for a whole domain) and the tenants it may send
// for (a list, or "*"), with its rate limit. On top of them, every event
// must pass what the engine requires of an event from outside
// (engine.SenderOf: no autonomics/ source, no correlationid, causationid
// or cascadedepth) and the machine's sender rules for the producer's class
// (governor.Machine.May: internal-only events such as
// multi_tenant.suspend and every timeout are refused).
//
// The source of a published event is the producer's, set here: ingest/<name>
// for external producers, marketplace/<name> for marketplace ones. The
// source a caller sends is checked (an autonomics/ source is refused as the
// engine refuses it) and then replaced, so a producer can neither speak for
// another producer nor choose its sender class, and the governors'
// deduplication by (source, id) is per producer: ids must be unique per
// producer. Extension attributes Autonomics does not read are dropped.
//
// # Answers
//
// A single event (binary or structured mode) is answered 202 with a Result
// when it was published, or with an error {"error": {"code", "message"}}:
// 400 invalid, 403 forbidden (the machine's sender rules for the
// producer's class, or the producer's rule, do not allow it), 503
// unavailable (Pub/Sub failed: retry). A batch is answered 200 with a JSON array of Results,
// one per event in order; it is not all-or-nothing: each valid event is
// published and each invalid one refused with its reason. Events of one
// tenant in a batch are published in batch order, one after the other;
// once one of them fails to publish, the tenant's later events in the
// batch are not published (answered unavailable), so that none overtakes
// it. Requests refused as a whole: 401 unauthenticated, 403 forbidden, 409
// for a reused webhook-id, 413 for a body over its cap, 415 for another
// content mode, 429 rate_limited with Retry-After, 503 when the instance is
// at its limit of requests in flight. Every message quotes at most
// httpjson.MaxEcho bytes of any input.
//
// Accepted means published to the domain topic, not decided: the governor
// decides asynchronously and may still reject the event with a receipt.
// A retry after a timeout or a 503 is safe: the governors deduplicate by
// (source, id), so the same event sent twice is applied once (with HMAC,
// the retry carries a new webhook-id).
//
// # Limits
//
// Bodies are capped before they are read (Limits.MaxEventBytes for one
// event, Limits.MaxBatchBytes for a batch), batches hold at most
// Limits.MaxBatchEvents events, at most Limits.MaxInFlight requests are
// served at once, each producer has a token bucket of events (Producer.Rate,
// Producer.Burst) and a bounded replay cache: memory is bounded whatever
// callers send. Rate limits and replay caches live in each instance's
// memory: behind several instances a producer's effective rate is its rate
// times the instances serving it (the service's max instances bound it),
// and a replay could only succeed on another instance than the first
// request's, within the tolerance. The governors' deduplication by
// (source, id) still applies a replayed event once.
package ingest
