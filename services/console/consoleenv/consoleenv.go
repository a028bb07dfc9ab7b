// Package consoleenv names the environment variables of the console
// (services/console), beyond PORT, AUTONOMICS_LISTEN_HOST and the
// AUTONOMICS_* variables platform.FromEnv reads (AUTONOMICS_ENV among
// them: test clocks only outside production).
//
// The names live here rather than in package main so that the local stack
// (services/autonomicsctl) sets them with the constants the console reads.
// The package only declares them.
package consoleenv

// Environment variables of the console.
const (
	// MonitorURL is the base URL of the monitor's API (alerts,
	// silences); empty turns those pages off. Off loopback the console
	// calls it with a Google ID token.
	MonitorURL = "AUTONOMICS_CONSOLE_MONITOR_URL"
	// Namespace separates consoles sharing the monitor database
	// (default "default").
	Namespace = "AUTONOMICS_CONSOLE_NAMESPACE"
	// PushCallers lists, comma-separated, the emails of the identities
	// that may push dead letters (the Pub/Sub push identity); empty admits
	// every caller Cloud Run lets through.
	PushCallers = "AUTONOMICS_CONSOLE_PUSH_CALLERS"
	// CheckpointInterval is how often the console records the ledger's
	// checkpoint in its history (default 1m).
	CheckpointInterval = "AUTONOMICS_CONSOLE_CHECKPOINT_INTERVAL"
)
