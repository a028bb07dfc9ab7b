// Package marketplace connects Autonomics to Google Cloud Marketplace:
// what Marketplace says about a customer's accounts and entitlements
// becomes governor events, and the governors' decisions go back to
// Marketplace through the Procurement API.
//
// # What Marketplace sends
//
// Marketplace publishes a notification to a Google-owned Pub/Sub topic
// whenever an account or an entitlement changes; the provider's push
// subscription delivers it to the Adapter (POST /v1/notifications/push).
// A notification carries ids only,
//
//	{"eventId": "…", "eventType": "ENTITLEMENT_ACTIVE", "providerId": "…",
//	 "entitlement": {"id": "…", "updateTime": "…"}}
//
// or "account": {"id": …} instead of "entitlement". Pub/Sub may deliver
// it twice, late, or before an earlier one. So the Adapter decodes it
// (Decode: bounded, one JSON object without repeated members, unknown
// members tolerated), checks that it is for this provider, reads the
// entitlement or account from the Procurement API, and lets the state it
// reads decide: the mapping table (Rules, rendered in
// docs/notifications.md) gives, for each notification type and
// Procurement state, the governor events that bring the governor to where
// Marketplace is now, or why the notification becomes nothing. An event
// the governor has already passed is rejected by its machine with a
// receipt and changes nothing; a redelivered notification publishes the
// same event ids, which the engine deduplicates. A notification of an
// unknown type, for another provider or malformed is copied to the
// dead-letter topic with the reason; a Procurement or Pub/Sub fault is
// answered 503 so that Pub/Sub delivers it again.
//
// Events go to the domain topics (autonomics-entitlement,
// autonomics-customer-account) with source marketplace/<provider>, the
// notification's eventId as id, the tenant as ordering key and the
// entitlement id as subject (the customer account's subject is
// "default").
//
// # Accounts and tenants
//
// A Procurement account is tied to one tenant and a tenant to at most one
// account (Link, Accounts). The sign-up page creates the link when the
// customer signs up; a notification for an account without one creates it
// with DefaultTenant. NewMemAccounts keeps links in memory; package
// fsmarketplace keeps them in the monitor's Firestore database. Both pass
// the conformance suite in accountstest.
//
// # Reconciliation
//
// A lost notification must not leave a governor behind for good. The
// Reconciler (POST /v1/reconcile, on a schedule) lists the provider's
// entitlements per state (filter state=<STATE>), compares each with its
// governor instance and publishes the corrective events of any drift
// (Corrective), with ids derived from the entitlement, its state and its
// updateTime so that a rerun finding the same drift is deduplicated.
// Entitlements changed in the last minutes are left to their
// notifications. A run is bounded; its Report says where the next one
// continues.
//
// # What goes back
//
// The governors emit marketplace.* actions (approve or reject an account,
// an entitlement or a plan change); the Procurement actuator
// (shared/marketplace/procurement) calls the API for them, and the
// sign-up flow (shared/marketplace/signup) verifies the JWT Marketplace
// posts to the sign-up page. Usage of usage-priced plans is reported to
// Service Control by shared/marketplace/usage.
//
// Counters: autonomics.marketplace.notifications {event_type, outcome}
// and autonomics.marketplace.drift {state}.
package marketplace
