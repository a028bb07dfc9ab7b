// Package signupenv names the environment variables of the sign-up
// service (services/signup), beyond PORT, AUTONOMICS_LISTEN_HOST, the
// AUTONOMICS_* variables platform.FromEnv reads, and
// platform.EnvMarketplaceProvider (required) and
// platform.EnvMarketplaceNamespace, which it shares with the Marketplace
// service.
//
// The names live here rather than in package main so that the local
// stack (services/autonomicsctl) sets them with the constants the
// sign-up service reads. The package only declares them.
package signupenv

// Environment variables of the sign-up service.
const (
	// Audience is the audience the tokens must carry: the provider's
	// domain as registered in Producer Portal. Required.
	Audience = "AUTONOMICS_MARKETPLACE_SIGNUP_AUDIENCE"
	// Issuer is the URL of the issuer's certificates; Google's when
	// empty. The local stack points it at the stand-in.
	Issuer = "AUTONOMICS_MARKETPLACE_SIGNUP_ISSUER"
	// Redirect, when set, is where a signed-up buyer is sent (303 with
	// ?tenant=); otherwise the answer is JSON.
	Redirect = "AUTONOMICS_MARKETPLACE_SIGNUP_REDIRECT"
)
