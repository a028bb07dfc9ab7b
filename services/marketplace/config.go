package main

import (
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/autonomics/autonomics/services/marketplace/marketplaceenv"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/listen"
	"github.com/autonomics/autonomics/shared/platform"
)

// actionsPath is where the actions subscription pushes
// (procurement.Actuator.Handler).
const actionsPath = "/v1/actions/push"

// maxUsageMetricsEnv bounds marketplaceenv.UsageMetrics.
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
		Provider:               strings.TrimSpace(getenv(platform.EnvMarketplaceProvider)),
		ProcurementEndpoint:    strings.TrimSpace(getenv(marketplaceenv.ProcurementEndpoint)),
		ServiceControlEndpoint: strings.TrimSpace(getenv(marketplaceenv.ServiceControlEndpoint)),
		Service:                strings.TrimSpace(getenv(marketplaceenv.Service)),
		Namespace:              strings.TrimSpace(getenv(platform.EnvMarketplaceNamespace)),
	}
	if c.Provider == "" {
		return fail("%s is required", platform.EnvMarketplaceProvider)
	}
	for name, v := range map[string]string{marketplaceenv.ProcurementEndpoint: c.ProcurementEndpoint, marketplaceenv.ServiceControlEndpoint: c.ServiceControlEndpoint} {
		if v == "" {
			continue
		}
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(v))) || u.Host == "" {
			return fail("%s %q: want an https URL (http only to a loopback address)", name, v)
		}
	}
	if m := getenv(marketplaceenv.UsageMetrics); strings.TrimSpace(m) != "" {
		if len(m) > maxUsageMetricsEnv {
			return fail("%s is %d bytes, limit %d", marketplaceenv.UsageMetrics, len(m), maxUsageMetricsEnv)
		}
		if err := json.Unmarshal([]byte(m), &c.UsageMetrics); err != nil {
			return fail("%s: want a JSON object of metric names: %v", marketplaceenv.UsageMetrics, err)
		}
	}
	for name, dst := range map[string]*time.Duration{marketplaceenv.UsageWindow: &c.UsageWindow, marketplaceenv.GiveUpAfter: &c.GiveUpAfter} {
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
	c.PushCallers = splitList(getenv(marketplaceenv.PushCallers))
	c.SchedulerCallers = splitList(getenv(marketplaceenv.SchedulerCallers))
	if v := strings.TrimSpace(getenv(marketplaceenv.MaxDeliveries)); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 100 {
			return fail("%s %q: want 0 to 100 (Pub/Sub's limit is 100)", marketplaceenv.MaxDeliveries, v)
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
