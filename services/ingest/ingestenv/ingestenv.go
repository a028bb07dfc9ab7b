// Package ingestenv names the environment variables of the ingest API
// (services/ingest), beyond PORT, AUTONOMICS_LISTEN_HOST and the
// AUTONOMICS_* variables platform.FromEnv reads.
//
// The names live here rather than in package main, as every service's do,
// so that other packages can name them without importing a main package.
// The package only declares them.
package ingestenv

// Environment variables of the ingest API.
const (
	// Producers holds the producer rules, a JSON array
	// (ingest.ParseRules); Terraform sets it from var.ingest_producers.
	// The -producers flag reads them from a file instead.
	Producers = "AUTONOMICS_INGEST_PRODUCERS"
	// HMACKeys holds the HMAC keys, a JSON object from key id to
	// "whsec_…" key (ingest.ParseKeys); in production Secret Manager
	// mounts it. The -hmac-keys flag reads them from a file instead.
	HMACKeys = "AUTONOMICS_INGEST_HMAC_KEYS"
	// Audience is the audience ID tokens must carry; required when a
	// producer authenticates with ID tokens.
	Audience = "AUTONOMICS_INGEST_AUDIENCE"
)
