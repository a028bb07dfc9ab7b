package main

import (
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/listen"
	"github.com/autonomics/autonomics/shared/platform"
)

// actionsPath is where the actions subscription pushes
// (procurement.Actuator.Handler).
const actionsPath = "/v1/actions/push"

// Environment variables of the Marketplace service, next to PORT,
// AUTONOMICS_LISTEN_HOST and the AUTONOMICS_* variables platform.FromEnv
// reads.
const (
	// EnvProvider is the Marketplace provider id (Producer Portal): the
	// Procurement resources are providers/<id>/…, and the events' source
	// is marketplace/<id>. Required.
	EnvProvider = platform.EnvMarketplaceProvider
	// EnvProcurementEndpoint and EnvServiceControlEndpoint override the
	// Google endpoints (https://cloudcommerceprocurement.googleapis.com/,
	// https://servicecontrol.googleapis.com/); the local stack points them
	// at its stand-ins, which take no credentials.
	EnvProcurementEndpoint    = "AUTONOMICS_MARKETPLACE_PROCUREMENT_ENDPOINT"
	EnvServiceControlEndpoint = "AUTONOMICS_MARKETPLACE_SERVICE_CONTROL_ENDPOINT"
	// EnvService is the Service Control service name usage is reported to
	// (the product's service in Producer Portal); empty turns the usage
	// reporter off.
	EnvService = "AUTONOMICS_MARKETPLACE_SERVICE"
	// EnvUsageMetrics maps quota metrics to the Service Control metrics
	// they are reported as, a JSON object; empty reports every quota
	// metric under its own name.
	EnvUsageMetrics = "AUTONOMICS_MARKETPLACE_USAGE_METRICS"
	// EnvUsageWindow is the length of a usage window (default 1h, as
	// Marketplace asks); the local stack shortens it.
	EnvUsageWindow = "AUTONOMICS_MARKETPLACE_USAGE_WINDOW"
	// EnvNamespace separates deployments sharing the monitor database
	// (default "default"); the sign-up service must use the same.
	EnvNamespace = platform.EnvMarketplaceNamespace
	// EnvGiveUpAfter is how long the Procurement actuator retries an
	// action that keeps failing for now before it reports it failed
	// (default 1h).
	EnvGiveUpAfter = "AUTONOMICS_MARKETPLACE_GIVE_UP_AFTER"
	// EnvPushCallers lists, comma-separated, the emails of the identities
	// that may push actions (the Pub/Sub push identity); empty admits
	// every caller Cloud Run lets through.
	EnvPushCallers = "AUTONOMICS_MARKETPLACE_PUSH_CALLERS"
	// EnvSchedulerCallers lists, comma-separated, the emails of the
	// identities that may start a reconciliation or a usage report (the
	// scheduler's account); empty admits every caller Cloud Run lets
	// through.
	EnvSchedulerCallers = "AUTONOMICS_MARKETPLACE_SCHEDULER_CALLERS"
	// EnvMaxDeliveries is the delivery attempts of the actions
	// subscription's dead-letter policy: at the last one the actuator
	// reports a still-failing action as failed rather than let Pub/Sub
	// dead-letter it unheard (0, the default, for none).
	EnvMaxDeliveries = "AUTONOMICS_MARKETPLACE_MAX_DELIVERIES"
)

// maxUsageMetricsEnv bounds EnvUsageMetrics.
const maxUsageMetricsEnv = 16 << 10

// config is the Marketplace service's configuration.
type config struct {
	Platform                                    platform.Config
	Provider                                    string
	ProcurementEndpoint, ServiceControlEndpoint string
	Service                                     string
	UsageMetrics                                map[string]string
	UsageWindow                                 time.Duration
	Namespace                                   string
	GiveUpAfter                                 time.Duration
	PushCallers, SchedulerCallers               []string
	MaxDeliveries                               int
}

// loadConfig reads the configuration through getenv and checks it.
func loadConfig(getenv func(string) string) (config, error) {
	const op = "marketplace.config"
	fail := func(format string, args ...any) (config, error) {
		return config{}, fault.Errorf(fault.Invalid, op, format, args...)
	}
	pc, err := platform.FromEnv(getenv)
	if err != nil {
		return config{}, err
	}
	c := config{
		Platform:               pc,
		Provider:               strings.TrimSpace(getenv(EnvProvider)),
		ProcurementEndpoint:    strings.TrimSpace(getenv(EnvProcurementEndpoint)),
		ServiceControlEndpoint: strings.TrimSpace(getenv(EnvServiceControlEndpoint)),
		Service:                strings.TrimSpace(getenv(EnvService)),
		Namespace:              strings.TrimSpace(getenv(EnvNamespace)),
	}
	if c.Provider == "" {
		return fail("%s is required", EnvProvider)
	}
	for name, v := range map[string]string{EnvProcurementEndpoint: c.ProcurementEndpoint, EnvServiceControlEndpoint: c.ServiceControlEndpoint} {
		if v == "" {
			continue
		}
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(v))) || u.Host == "" {
			return fail("%s %q: want an https URL (http only to a loopback address)", name, v)
		}
	}
	if m := getenv(EnvUsageMetrics); strings.TrimSpace(m) != "" {
		if len(m) > maxUsageMetricsEnv {
			return fail("%s is %d bytes, limit %d", EnvUsageMetrics, len(m), maxUsageMetricsEnv)
		}
		if err := json.Unmarshal([]byte(m), &c.UsageMetrics); err != nil {
			return fail("%s: want a JSON object of metric names: %v", EnvUsageMetrics, err)
		}
	}
	for name, dst := range map[string]*time.Duration{EnvUsageWindow: &c.UsageWindow, EnvGiveUpAfter: &c.GiveUpAfter} {
		v := strings.TrimSpace(getenv(name))
		if v == "" {
			continue
		}
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fail("%s %q: want a positive duration such as 1h", name, v)
		}
		*dst = d
	}
	c.PushCallers = splitList(getenv(EnvPushCallers))
	c.SchedulerCallers = splitList(getenv(EnvSchedulerCallers))
	if v := strings.TrimSpace(getenv(EnvMaxDeliveries)); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 100 {
			return fail("%s %q: want 0 to 100 (Pub/Sub's limit is 100)", EnvMaxDeliveries, v)
		}
		c.MaxDeliveries = n
	}
	return c, nil
}

// splitList splits a comma-separated list, dropping blanks.
func splitList(v string) []string {
	var out []string
	for _, e := range strings.Split(v, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

// isLoopback reports whether rawURL's host names this machine.
var isLoopback = listen.IsLoopbackURL
