// Package actuatorenv names the environment variables of the actuator
// (services/actuator), beyond PORT, AUTONOMICS_LISTEN_HOST and the
// AUTONOMICS_* variables platform.FromEnv reads; its state lives in
// AUTONOMICS_MONITOR_DATABASE.
//
// The names live here rather than in package main so that the local stack
// (services/autonomicsctl) sets them with the constants the actuator reads.
// The package only declares them.
package actuatorenv

// Environment variables of the actuator.
const (
	// Namespace separates actuators sharing a database (default
	// "webhooks").
	Namespace = "AUTONOMICS_ACTUATOR_NAMESPACE"
	// Endpoints holds the initial endpoints as a JSON object, id =>
	// {"url", "kinds", "secrets", "disabled"}; those that do not exist
	// yet are created at start.
	Endpoints = "AUTONOMICS_ACTUATOR_ENDPOINTS"
	// AllowLoopback admits loopback endpoints, and plain http to
	// them (the local stack): "true" or "false" (default).
	AllowLoopback = "AUTONOMICS_ACTUATOR_ALLOW_LOOPBACK"
	// AllowPrivate admits private and shared addresses (receivers in
	// the deployment's own network): "true" or "false" (default).
	AllowPrivate = "AUTONOMICS_ACTUATOR_ALLOW_PRIVATE"
	// InlineSecrets allows secrets stored inline with the endpoints:
	// "true" (default) or "false" (only Secret Manager references).
	InlineSecrets = "AUTONOMICS_ACTUATOR_INLINE_SECRETS"
	// PushCallers lists, comma-separated, the emails of the identities
	// that may call the push endpoint (the Pub/Sub push identity); empty
	// admits every caller that reaches the service.
	PushCallers = "AUTONOMICS_ACTUATOR_PUSH_CALLERS"
	// InlineWait is how long a push waits for the attempts it starts
	// before answering (default 2s); they go on in the background.
	InlineWait = "AUTONOMICS_ACTUATOR_INLINE_WAIT"
	// SweepInterval runs the sweep from an internal loop (the local
	// stack); "0" (default) leaves it to POST /v1/sweep.
	SweepInterval = "AUTONOMICS_ACTUATOR_SWEEP_INTERVAL"
	// RetryInitial and RetryMaxAge override the retry schedule's
	// first delay (5s) and its span (72h).
	RetryInitial = "AUTONOMICS_ACTUATOR_RETRY_INITIAL"
	RetryMaxAge  = "AUTONOMICS_ACTUATOR_RETRY_MAX_AGE"
	// Retention is how long actions and attempts are kept (720h).
	Retention = "AUTONOMICS_ACTUATOR_RETENTION"
)
