// Package webhook delivers the actions of Autonomics' governors to the
// provider's HTTP endpoints as Standard Webhooks: a signed POST per action
// and endpoint, retried with exponential backoff for up to three days, in
// order per tenant and endpoint.
//
// # Wire format
//
// Each delivery is an HTTP POST of a JSON body (Payload) with the headers
//
//	webhook-id:        the action's deterministic id (the same on every retry)
//	webhook-timestamp: the attempt's time, integer Unix seconds
//	webhook-signature: "v1,<base64 HMAC-SHA256>" of "<id>.<timestamp>.<body>",
//	                   one per valid secret, space-separated
//
// Secrets are written "whsec_<base64>" (24 to 64 random bytes). An
// endpoint holds one secret, or two while one replaces the other, and each
// delivery is then signed with both. A secret is given inline or as a
// reference to a Secret Manager secret version
// ("projects/P/secrets/S/versions/V"), resolved when it is used.
//
// # Delivery
//
// A Deliverer records each action it accepts (Accept) with one delivery
// per enabled endpoint subscribed to the action's kind, before anything is
// sent, so that a crash at any point loses nothing: a delivery is claimed
// under a lease before each attempt, and a delivery whose attempt was never
// recorded is attempted again, with the same webhook-id, once its lease
// expires (Sweep). A 2xx answer delivers; 410 Gone disables the endpoint;
// any other 4xx but 408 and 429 fails the delivery for good; everything
// else (3xx, 408, 429, 5xx, timeouts, connection errors) is retried on the
// Policy's schedule, honouring Retry-After. A delivery that fails for good,
// or whose retries run out, is reported once: its action is copied to the
// dead-letter topic with the reason, and an actuation_failed event goes to
// the emitting governor's internal topic, so that the governor's receipt
// chain records the failure.
//
// Deliveries of one endpoint and tenant form a lane: only the lane's head
// is attempted, and the next one waits until the head is delivered or has
// failed for good. Lanes of different endpoints are independent, each
// endpoint has its own timeout and its own bound on attempts in flight, so
// a slow endpoint holds up nobody else.
//
// # Outbound requests
//
// Endpoint URLs must be https; plain http is accepted only for loopback
// addresses, and only when the Guard allows loopback (the local stack).
// Every connection is checked where it is made, by the net.Dialer's Control
// function, against the address actually dialled: loopback, private,
// shared (CGNAT), link-local (the metadata server among them), unspecified
// and multicast addresses are refused unless the Guard allows them, so a
// name that resolves to an internal address is refused even if it resolved
// elsewhere when the endpoint was registered. Redirects are not followed,
// and no proxy is used.
//
// # Storage
//
// Store is the storage port: endpoints, actions, deliveries, lanes and
// attempts, read and written in serialisable transactions that do all
// their reads before their writes. memwebhook keeps them in memory and
// fswebhook in Firestore; both pass the conformance suite of webhooktest.
package webhook
