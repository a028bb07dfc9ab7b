package platform

import (
	"fmt"
	"log/slog"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/autonomics/autonomics/shared/fault"
)

// Environment variables read by FromEnv.
const (
	EnvProject        = "AUTONOMICS_PROJECT"
	EnvTopicPrefix    = "AUTONOMICS_TOPIC_PREFIX"
	EnvProviderTenant = "AUTONOMICS_PROVIDER_TENANT"
	EnvTimers         = "AUTONOMICS_TIMERS"
	EnvDedupTTL       = "AUTONOMICS_DEDUP_TTL"
	EnvLogLevel       = "AUTONOMICS_LOG_LEVEL"
	EnvDatabase       = "AUTONOMICS_FIRESTORE_DATABASE"
	// EnvLedgerDatabase names the Firestore database of the verifiable
	// ledger, EnvMonitorDatabase that of the monitor's alert state; both
	// default to EnvDatabase. Production keeps them apart so that IAM can
	// grant the integrator and the monitor no write access to governor
	// state or receipts.
	EnvLedgerDatabase  = "AUTONOMICS_LEDGER_DATABASE"
	EnvMonitorDatabase = "AUTONOMICS_MONITOR_DATABASE"
	// EnvTelemetry selects the telemetry exporter: none (default), gcp
	// (OTLP to Google's Telemetry API), otlp (OTLP to the collector the
	// OTEL_EXPORTER_OTLP_* variables name) or stdout.
	EnvTelemetry = "AUTONOMICS_TELEMETRY"
	// EnvTraceSampleRatio is the share of root traces recorded, 0 to 1.
	EnvTraceSampleRatio = "AUTONOMICS_TRACE_SAMPLE_RATIO"
	// EnvMetricsAddr, when set (host:port), also serves the process's
	// metrics for a Prometheus to scrape at http://<addr>/metrics: the
	// local stack's. Production leaves it empty (metrics go by OTLP).
	EnvMetricsAddr = "AUTONOMICS_METRICS_ADDR"
	// EnvGoogleProject is the fallback for EnvProject, set by Cloud Run
	// and Cloud Functions.
	EnvGoogleProject = "GOOGLE_CLOUD_PROJECT"
	// EnvEnvironment names the deployment's environment: ProdEnvironment
	// in production, where test clocks are refused; a lower-case name
	// such as dev, test, staging or local is a non-production stack,
	// where they are on. Unset counts as production: test clocks must be
	// asked for.
	EnvEnvironment = "AUTONOMICS_ENV"
)

// ProdEnvironment is the EnvEnvironment value of production.
const ProdEnvironment = "prod"

// Environment variables that several components read, beyond FromEnv's.
const (
	// EnvLedgerName is the verifiable ledger's document id under
	// "ledgers": the integrator writes the ledger it names, the query API
	// serves it.
	EnvLedgerName = "AUTONOMICS_LEDGER_NAME"
	// EnvMarketplaceProvider is the Marketplace provider id (Producer
	// Portal), which the Marketplace and sign-up services both require:
	// the Procurement resources are providers/<id>/…, and their events'
	// source is marketplace/<id>.
	EnvMarketplaceProvider = "AUTONOMICS_MARKETPLACE_PROVIDER"
	// EnvMarketplaceNamespace separates deployments sharing the monitor
	// database (default "default"); the Marketplace and sign-up services
	// must use the same.
	EnvMarketplaceNamespace = "AUTONOMICS_MARKETPLACE_NAMESPACE"
)

// Config is the runtime configuration of functions and services.
type Config struct {
	ProjectID string
	// Database holds governor state and receipts; LedgerDatabase the
	// ledger; MonitorDatabase the monitor's alerts, silences and leases.
	Database        string
	LedgerDatabase  string
	MonitorDatabase string
	TopicPrefix     string
	ProviderTenant  string
	// Timers overrides timer durations, keyed "domain.timer".
	Timers   map[string]time.Duration
	DedupTTL time.Duration
	LogLevel slog.Level
	// Telemetry is the exporter name and TraceSampleRatio the sampling
	// ratio of root traces.
	Telemetry        string
	TraceSampleRatio float64
	// MetricsAddr is EnvMetricsAddr: where /metrics is served, "" for nowhere.
	MetricsAddr string
	// FirestoreEmulator and PubSubEmulator are the emulator hosts, if any;
	// the client libraries read them themselves, they are kept here to be
	// reported at start-up.
	FirestoreEmulator string
	PubSubEmulator    string
	// Env is the deployment's environment (EnvEnvironment).
	Env string
}

// TestClock reports whether test clocks are on: only in an environment
// that is named and is not production.
func (c Config) TestClock() bool { return c.Env != "" && c.Env != ProdEnvironment }

// FromEnv reads the configuration through getenv (os.Getenv in mains).
func FromEnv(getenv func(string) string) (Config, error) {
	const op = "platform.FromEnv"
	c := Config{
		ProjectID:       getenv(EnvProject),
		Database:        getenv(EnvDatabase),
		LedgerDatabase:  getenv(EnvLedgerDatabase),
		MonitorDatabase: getenv(EnvMonitorDatabase),
		TopicPrefix:     getenv(EnvTopicPrefix),
		ProviderTenant:  getenv(EnvProviderTenant),
		DedupTTL:        30 * 24 * time.Hour,

		FirestoreEmulator: getenv("FIRESTORE_EMULATOR_HOST"),
		PubSubEmulator:    getenv("PUBSUB_EMULATOR_HOST"),
	}
	if c.ProjectID == "" {
		c.ProjectID = getenv(EnvGoogleProject)
	}
	if c.ProjectID == "" {
		return c, fault.Errorf(fault.Invalid, op, "%s (or %s) is required", EnvProject, EnvGoogleProject)
	}
	if c.Database == "" {
		c.Database = "(default)"
	}
	if c.LedgerDatabase == "" {
		c.LedgerDatabase = c.Database
	}
	if c.MonitorDatabase == "" {
		c.MonitorDatabase = c.Database
	}
	timers, err := ParseTimers(getenv(EnvTimers))
	if err != nil {
		return c, fault.Wrap(fault.Invalid, op+" "+EnvTimers, err)
	}
	c.Timers = timers
	if v := getenv(EnvDedupTTL); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return c, fault.Errorf(fault.Invalid, op, "%s=%q: want a positive duration", EnvDedupTTL, v)
		}
		c.DedupTTL = d
	}
	c.Telemetry = getenv(EnvTelemetry)
	switch c.Telemetry {
	case "", "none", "gcp", "otlp", "stdout":
	default:
		return c, fault.Errorf(fault.Invalid, op, "%s=%q: want none, gcp, otlp or stdout", EnvTelemetry, c.Telemetry)
	}
	if c.MetricsAddr = getenv(EnvMetricsAddr); c.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			return c, fault.Errorf(fault.Invalid, op, "%s=%q: want host:port", EnvMetricsAddr, c.MetricsAddr)
		}
	}
	c.TraceSampleRatio = 1
	if v := getenv(EnvTraceSampleRatio); v != "" {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil || r <= 0 || r > 1 {
			return c, fault.Errorf(fault.Invalid, op, "%s=%q: want a number in (0, 1]", EnvTraceSampleRatio, v)
		}
		c.TraceSampleRatio = r
	}
	c.Env = getenv(EnvEnvironment)
	if err := checkEnvironment(c.Env); err != nil {
		return c, fault.Wrap(fault.Invalid, op+" "+EnvEnvironment, err)
	}
	if v := getenv(EnvLogLevel); v != "" {
		if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
			return c, fault.Errorf(fault.Invalid, op, "%s=%q: want debug, info, warn or error", EnvLogLevel, v)
		}
	}
	return c, nil
}

// checkEnvironment accepts "" and lower-case names of up to 32 letters,
// digits and dashes. Spellings that mean production without being
// ProdEnvironment ("production", "PROD", " prod") are refused rather than
// taken for a non-production stack, which would turn test clocks on.
func checkEnvironment(v string) error {
	if v == "" || v == ProdEnvironment {
		return nil
	}
	if t := strings.ToLower(strings.TrimSpace(v)); t == ProdEnvironment || t == "production" {
		return fmt.Errorf("%.40q: production is spelled %q", v, ProdEnvironment)
	}
	if len(v) > 32 {
		return fmt.Errorf("%.40q: longer than 32 bytes", v)
	}
	for i, r := range v {
		if !(r >= 'a' && r <= 'z' || i > 0 && (r >= '0' && r <= '9' || r == '-')) {
			return fmt.Errorf("%.40q: want a lower-case name of letters, digits and dashes", v)
		}
	}
	return nil
}

// ParseTimers parses "domain.timer=duration" pairs separated by commas,
// e.g. "customer_account.verification=30s,subscription.trial_end=20s".
func ParseTimers(s string) (map[string]time.Duration, error) {
	out := map[string]time.Duration{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok || !strings.Contains(k, ".") {
			return nil, fmt.Errorf("%q: want domain.timer=duration", part)
		}
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("%q: want a positive duration", part)
		}
		out[strings.TrimSpace(k)] = d
	}
	return out, nil
}

// FormatTimers is the inverse of ParseTimers, with keys sorted.
func FormatTimers(m map[string]time.Duration) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k].String()
	}
	return strings.Join(parts, ",")
}
