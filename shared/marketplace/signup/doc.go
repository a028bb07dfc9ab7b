// Package signup is the sign-up endpoint of Google Cloud Marketplace
// customers.
//
// When a customer buys the product, Marketplace sends the browser to the
// provider's sign-up URL with a form POST whose field
// x-gcp-marketplace-token holds a JWT signed by Google: RS256, header kid
// naming an X.509 certificate published at the token's iss URL, aud the
// provider's domain, sub the customer's Procurement account id, and a
// lifetime of five minutes.
//
// Verifier checks such a token with github.com/golang-jwt/jwt/v5 against
// keys fetched from the configured issuer URL and cached for as long as the
// issuer's Cache-Control max-age or Expires allows. The cache is bounded:
// at most MaxKeys keys from a response of at most MaxKeysBytes, fetched
// within FetchTimeout, and a token naming an unknown kid makes it refetch
// at most once per RefetchInterval, so that nobody can make the endpoint
// hammer the issuer. Every refusal is an *Error with a Reason.
//
// Server answers POST /signup. A token that does not verify is answered
// 401 with its reason (JSON, or a small HTML page for a browser) and
// writes nothing. A token that verifies links the account to a tenant
// (Accounts.Link, idempotent) and publishes
// autonomics.customer_account.requested then .verified to the
// customer_account domain topic, with ids that depend only on the account,
// so that a replayed token or a second sign-up of the same account is
// deduplicated by the engine. The governor's verified transition emits
// marketplace.approve_account, which the Procurement actuator performs:
// sign-up itself never calls the Procurement API.
package signup
