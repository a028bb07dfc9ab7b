// Package integratorenv names the environment variables of the ledger
// integrator (services/integrator), beyond PORT, AUTONOMICS_LISTEN_HOST,
// the AUTONOMICS_* variables platform.FromEnv reads and
// platform.EnvLedgerName.
//
// The names live here rather than in package main so that the local
// stack (services/autonomicsctl) sets them with the constants the
// integrator reads. The package only declares them.
package integratorenv

// Environment variables of the integrator.
const (
	// SigningKey holds the note signer key (Secret Manager mounts it in
	// production); SigningKeyFile names a file holding it (the local
	// stack). Exactly one is required.
	SigningKey     = "AUTONOMICS_SIGNING_KEY"
	SigningKeyFile = "AUTONOMICS_SIGNING_KEY_FILE"
	// Origin is the checkpoints' origin line; it must be the key's name.
	Origin = "AUTONOMICS_LEDGER_ORIGIN"
	// Interval is the period of the integration loop; "0" turns the
	// loop off and leaves integration to POST /v1/integrate.
	Interval = "AUTONOMICS_LEDGER_INTERVAL"
	// IdleInterval is how long the loop waits, once nothing is
	// pending, for a pass without a push to this instance; the default is
	// the interval (plain polling). The local stack, whose pushes all reach
	// its one integrator, sets it long to spare the emulator a query per
	// interval.
	IdleInterval = "AUTONOMICS_LEDGER_IDLE_INTERVAL"
	// Batch is the most receipts one pass integrates.
	Batch = "AUTONOMICS_LEDGER_BATCH"
	// LeaseTTL is the integrator lease's duration.
	LeaseTTL = "AUTONOMICS_LEDGER_LEASE_TTL"
	// HolderID names this instance in the lease; a random id when empty.
	HolderID = "AUTONOMICS_LEDGER_HOLDER_ID"
)
