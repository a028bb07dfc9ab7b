// Package marketplaceenv names the environment variables of the
// Marketplace service (services/marketplace), beyond PORT,
// AUTONOMICS_LISTEN_HOST, the AUTONOMICS_* variables platform.FromEnv
// reads, and platform.EnvMarketplaceProvider (required) and
// platform.EnvMarketplaceNamespace, which it shares with the sign-up
// service.
//
// The names live here rather than in package main so that the local
// stack (services/autonomicsctl) sets them with the constants the
// Marketplace service reads. The package only declares them.
package marketplaceenv

// Environment variables of the Marketplace service.
const (
	// ProcurementEndpoint and ServiceControlEndpoint override the
	// Google endpoints (https://cloudcommerceprocurement.googleapis.com/,
	// https://servicecontrol.googleapis.com/); the local stack points them
	// at its stand-ins, which take no credentials.
	ProcurementEndpoint    = "AUTONOMICS_MARKETPLACE_PROCUREMENT_ENDPOINT"
	ServiceControlEndpoint = "AUTONOMICS_MARKETPLACE_SERVICE_CONTROL_ENDPOINT"
	// Service is the Service Control service name usage is reported to
	// (the product's service in Producer Portal); empty turns the usage
	// reporter off.
	Service = "AUTONOMICS_MARKETPLACE_SERVICE"
	// UsageMetrics maps quota metrics to the Service Control metrics
	// they are reported as, a JSON object; empty reports every quota
	// metric under its own name.
	UsageMetrics = "AUTONOMICS_MARKETPLACE_USAGE_METRICS"
	// UsageWindow is the length of a usage window (default 1h, as
	// Marketplace asks); the local stack shortens it.
	UsageWindow = "AUTONOMICS_MARKETPLACE_USAGE_WINDOW"
	// GiveUpAfter is how long the Procurement actuator retries an
	// action that keeps failing for now before it reports it failed
	// (default 1h).
	GiveUpAfter = "AUTONOMICS_MARKETPLACE_GIVE_UP_AFTER"
	// PushCallers lists, comma-separated, the emails of the identities
	// that may push actions (the Pub/Sub push identity); empty admits
	// every caller Cloud Run lets through.
	PushCallers = "AUTONOMICS_MARKETPLACE_PUSH_CALLERS"
	// SchedulerCallers lists, comma-separated, the emails of the
	// identities that may start a reconciliation or a usage report (the
	// scheduler's account); empty admits every caller Cloud Run lets
	// through.
	SchedulerCallers = "AUTONOMICS_MARKETPLACE_SCHEDULER_CALLERS"
	// MaxDeliveries is the delivery attempts of the actions
	// subscription's dead-letter policy: at the last one the actuator
	// reports a still-failing action as failed rather than let Pub/Sub
	// dead-letter it unheard (0, the default, for none).
	MaxDeliveries = "AUTONOMICS_MARKETPLACE_MAX_DELIVERIES"
)
