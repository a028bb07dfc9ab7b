package main

import (
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/autonomics/autonomics/shared/alerting"
	"github.com/autonomics/autonomics/shared/alerting/prom"
	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/health"
	"github.com/autonomics/autonomics/shared/platform"
)

// Environment variables of the monitor, next to PORT and the AUTONOMICS_*
// variables platform.FromEnv reads. Durations are Go durations ("30s",
// "5m"); percentages are numbers from 1 to 100.
const (
	EnvNamespace         = "AUTONOMICS_MONITOR_NAMESPACE"
	EnvHolderID          = "AUTONOMICS_MONITOR_HOLDER_ID"
	EnvEvalInterval      = "AUTONOMICS_MONITOR_EVAL_INTERVAL"
	EnvLeaseTTL          = "AUTONOMICS_MONITOR_LEASE_TTL"
	EnvRepeatInterval    = "AUTONOMICS_MONITOR_REPEAT_INTERVAL"
	EnvLookback          = "AUTONOMICS_MONITOR_LOOKBACK"
	EnvResolvedRetention = "AUTONOMICS_MONITOR_RESOLVED_RETENTION"
	EnvSeriesRetention   = "AUTONOMICS_MONITOR_SERIES_RETENTION"
	EnvPrometheusURL     = "AUTONOMICS_MONITOR_PROMETHEUS_URL"
	EnvPrometheusAuth    = "AUTONOMICS_MONITOR_PROMETHEUS_AUTH"
	EnvRemoteWriteURL    = "AUTONOMICS_MONITOR_REMOTE_WRITE_URL"
	EnvQueryParallelism  = "AUTONOMICS_MONITOR_QUERY_PARALLELISM"
	EnvQueryTimeout      = "AUTONOMICS_MONITOR_QUERY_TIMEOUT"
	EnvReceiptFlush      = "AUTONOMICS_MONITOR_RECEIPT_FLUSH_INTERVAL"
	EnvSampleMaxFuture   = "AUTONOMICS_MONITOR_SAMPLE_MAX_FUTURE"
	EnvSampleMaxAge      = "AUTONOMICS_MONITOR_SAMPLE_MAX_AGE"
	EnvReceiptWindow     = "AUTONOMICS_MONITOR_RECEIPT_WINDOW"
	EnvFairness          = "AUTONOMICS_MONITOR_FAIRNESS"
	EnvFairnessMetric    = "AUTONOMICS_MONITOR_FAIRNESS_METRIC"
	EnvFairnessThreshold = "AUTONOMICS_MONITOR_FAIRNESS_THRESHOLD_BP"
	EnvFairnessHyst      = "AUTONOMICS_MONITOR_FAIRNESS_HYSTERESIS_BP"
	EnvFairnessWindow    = "AUTONOMICS_MONITOR_FAIRNESS_WINDOW"
	EnvCPUThreshold      = "AUTONOMICS_MONITOR_CPU_THRESHOLD"
	EnvMemoryThreshold   = "AUTONOMICS_MONITOR_MEMORY_THRESHOLD"
	EnvOutboxDegraded    = "AUTONOMICS_MONITOR_OUTBOX_DEGRADED"
	EnvOutboxCritical    = "AUTONOMICS_MONITOR_OUTBOX_CRITICAL"
	EnvTimersDegraded    = "AUTONOMICS_MONITOR_TIMERS_DEGRADED"
	EnvTimersCritical    = "AUTONOMICS_MONITOR_TIMERS_CRITICAL"
	EnvCheckTimeout      = "AUTONOMICS_MONITOR_CHECK_TIMEOUT"
)

// config is the monitor's configuration.
type config struct {
	Platform platform.Config
	Port     string
	// Namespace separates monitors sharing a Firestore database.
	Namespace string
	// Holder identifies this instance in the evaluation lease.
	Holder string
	// EvalInterval is the internal ticker's period; 0 leaves evaluation to
	// POST /v1/evaluate alone.
	EvalInterval time.Duration
	LeaseTTL     time.Duration
	Eval         alerting.Options
	// SeriesRetention is how long a quiet series still has an absence of
	// its own (absent_for) rather than being gone.
	SeriesRetention time.Duration
	// Engine is the metrics engine the policies query and the intake
	// forwards to.
	Engine EngineConfig
	// Samples bound the times of metric samples and the size of one
	// POST /v1/metrics (body, points, label bytes per series and per
	// request).
	Samples alerting.SampleRules
	// Receipts configure the receipt-derived metrics: their window and
	// the tenants with series of their own.
	Receipts alerting.ReceiptOptions
	// Limits bound the other request bodies and the requests decoded at
	// once.
	Limits Limits
	// Fairness is nil when the detector is off.
	Fairness     *alerting.FairnessOptions
	Thresholds   health.Thresholds
	Outbox       health.LagLimits
	Timers       health.LagLimits
	CheckTimeout time.Duration
}

// EngineConfig says where the metrics engine is.
type EngineConfig struct {
	// URL is the base URL of its Prometheus HTTP API; by default Managed
	// Service for Prometheus of the project.
	URL string
	// Auth is "google" (Google credentials, the default for
	// *.googleapis.com) or "none".
	Auth string
	// RemoteWriteURL, when set, is where POST /v1/metrics and the
	// receipt-derived metrics are forwarded with Prometheus remote write
	// (a local Prometheus: http://127.0.0.1:9090/api/v1/write); when empty
	// they go to the Telemetry API as OTLP.
	RemoteWriteURL string
	// Parallelism and QueryTimeout bound the queries of a cycle.
	Parallelism  int
	QueryTimeout time.Duration
	// ReceiptFlush is how often each instance forwards its
	// receipt-derived metrics.
	ReceiptFlush time.Duration
}

// loadConfig reads the configuration through getenv and validates it.
func loadConfig(getenv func(string) string) (config, error) {
	const op = "monitor.config"
	pc, err := platform.FromEnv(getenv)
	if err != nil {
		return config{}, err
	}
	fair := alerting.DefaultFairness()
	c := config{
		Platform: pc, Port: getenv("PORT"), Namespace: getenv(EnvNamespace), Holder: getenv(EnvHolderID),
		EvalInterval: 30 * time.Second, LeaseTTL: 90 * time.Second,
		Eval: alerting.Options{
			RepeatInterval: alerting.DefaultRepeatInterval, Lookback: alerting.DefaultLookback,
			ResolvedRetention: alerting.DefaultResolvedRetention,
		},
		SeriesRetention: alerting.DefaultSeriesRetention,
		Engine: EngineConfig{
			URL: getenv(EnvPrometheusURL), Auth: strings.ToLower(getenv(EnvPrometheusAuth)), RemoteWriteURL: getenv(EnvRemoteWriteURL),
			Parallelism: alerting.DefaultParallelism, QueryTimeout: alerting.DefaultQueryTimeout, ReceiptFlush: 15 * time.Second,
		},
		Samples:  alerting.DefaultSampleRules,
		Receipts: alerting.ReceiptOptions{Window: alerting.DefaultLookback, MaxTenants: alerting.DefaultMaxReceiptTenants},
		Limits:   DefaultLimits,
		Fairness: &fair, Thresholds: health.DefaultThresholds,
		Outbox:       health.LagLimits{Degraded: 5 * time.Minute, Critical: 30 * time.Minute},
		Timers:       health.LagLimits{Degraded: 5 * time.Minute, Critical: 30 * time.Minute},
		CheckTimeout: 3 * time.Second,
	}
	if c.Port == "" {
		c.Port = "8080"
	}
	if c.Namespace == "" {
		c.Namespace = "default"
	}
	if c.Holder == "" {
		c.Holder = defaultHolder(getenv)
	}
	var errs []string
	dur := func(name string, dst *time.Duration, allowZero bool) {
		v := getenv(name)
		if v == "" {
			return
		}
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || d == 0 && !allowZero {
			want := "a positive duration"
			if allowZero {
				want = "a duration, 0 to disable"
			}
			errs = append(errs, name+"="+strconv.Quote(v)+": want "+want)
			return
		}
		*dst = d
	}
	num := func(name string, dst *int, lo, hi int) {
		v := getenv(name)
		if v == "" {
			return
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > hi {
			errs = append(errs, name+"="+strconv.Quote(v)+": want an integer from "+strconv.Itoa(lo)+" to "+strconv.Itoa(hi))
			return
		}
		*dst = n
	}
	pct := func(name string, dst *float64) {
		v := getenv(name)
		if v == "" {
			return
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f <= 0 || f > 100 {
			errs = append(errs, name+"="+strconv.Quote(v)+": want a percentage above 0, at most 100")
			return
		}
		*dst = f / 100
	}
	dur(EnvEvalInterval, &c.EvalInterval, true)
	dur(EnvLeaseTTL, &c.LeaseTTL, false)
	dur(EnvRepeatInterval, &c.Eval.RepeatInterval, false)
	dur(EnvLookback, &c.Eval.Lookback, false)
	dur(EnvResolvedRetention, &c.Eval.ResolvedRetention, false)
	dur(EnvSeriesRetention, &c.SeriesRetention, false)
	num(EnvQueryParallelism, &c.Engine.Parallelism, 1, 64)
	dur(EnvQueryTimeout, &c.Engine.QueryTimeout, false)
	dur(EnvReceiptFlush, &c.Engine.ReceiptFlush, false)
	dur(EnvSampleMaxFuture, &c.Samples.MaxFuture, false)
	dur(EnvSampleMaxAge, &c.Samples.MaxAge, false)
	dur(EnvReceiptWindow, &c.Receipts.Window, false)
	switch v := strings.ToLower(getenv(EnvFairness)); v {
	case "", "on", "true", "1":
	case "off", "false", "0":
		c.Fairness = nil
	default:
		errs = append(errs, EnvFairness+"="+strconv.Quote(v)+": want on or off")
	}
	if v := getenv(EnvFairnessMetric); v != "" {
		fair.Metric = v
	}
	num(EnvFairnessThreshold, &fair.ThresholdBP, 1, 9999)
	num(EnvFairnessHyst, &fair.HysteresisBP, 0, 9998)
	dur(EnvFairnessWindow, &fair.Window, false)
	pct(EnvCPUThreshold, &c.Thresholds.CPU)
	pct(EnvMemoryThreshold, &c.Thresholds.Memory)
	dur(EnvOutboxDegraded, &c.Outbox.Degraded, true)
	dur(EnvOutboxCritical, &c.Outbox.Critical, true)
	dur(EnvTimersDegraded, &c.Timers.Degraded, true)
	dur(EnvTimersCritical, &c.Timers.Critical, true)
	dur(EnvCheckTimeout, &c.CheckTimeout, false)
	if c.Engine.URL == "" && pc.ProjectID != "" {
		c.Engine.URL = prom.ManagedURL(pc.ProjectID)
	}
	if u, err := url.Parse(c.Engine.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, EnvPrometheusURL+"="+strconv.Quote(c.Engine.URL)+": want the http(s) base URL of a Prometheus HTTP API")
	} else if c.Engine.Auth == "" {
		c.Engine.Auth = "none"
		if strings.HasSuffix(u.Hostname(), ".googleapis.com") {
			c.Engine.Auth = "google"
		}
	}
	switch c.Engine.Auth {
	case "", "none", "google":
	default:
		errs = append(errs, EnvPrometheusAuth+"="+strconv.Quote(c.Engine.Auth)+": want google or none")
	}
	if v := c.Engine.RemoteWriteURL; v != "" {
		if u, err := url.Parse(v); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, EnvRemoteWriteURL+"="+strconv.Quote(v)+": want an http(s) URL")
		}
	}
	if len(errs) > 0 {
		return c, fault.Errorf(fault.Invalid, op, "%s", strings.Join(errs, "; "))
	}
	if c.EvalInterval > 0 && c.LeaseTTL <= c.EvalInterval {
		return c, fault.Errorf(fault.Invalid, op, "%s %v must exceed %s %v, or the holder loses its lease between cycles",
			EnvLeaseTTL, c.LeaseTTL, EnvEvalInterval, c.EvalInterval)
	}
	if c.Fairness != nil {
		if err := c.Fairness.Validate(); err != nil {
			return c, err
		}
	}
	for _, l := range []struct {
		name string
		l    health.LagLimits
	}{{"outbox", c.Outbox}, {"timers", c.Timers}} {
		if l.l.Degraded > 0 && l.l.Critical > 0 && l.l.Critical < l.l.Degraded {
			return c, fault.Errorf(fault.Invalid, op, "%s: the critical lag %v is below the degraded lag %v", l.name, l.l.Critical, l.l.Degraded)
		}
	}
	if err := alerting.ValidName("namespace", c.Namespace); err != nil {
		return c, err
	}
	return c, nil
}

// Limits bound what a request may cost the monitor before its content is
// looked at. The body of POST /v1/metrics is bounded by
// config.Samples.MaxBodyBytes.
type Limits struct {
	// PolicyBody and SilenceBody bound the bodies of PUT /v1/policies and
	// PUT /v1/silences.
	PolicyBody  int64
	SilenceBody int64
	// PushBody bounds a push of the receipts subscription.
	PushBody int64
	// MetricsConcurrency and PushConcurrency bound the metric pushes and
	// the receipt pushes read, decoded and forwarded at once, so that the
	// memory requests in flight take is bounded too; the two are apart so that
	// metric pushes never hold up receipts. A request waits at most Wait
	// for its turn and is then refused with 429.
	MetricsConcurrency int
	PushConcurrency    int
	Wait               time.Duration
}

// DefaultLimits are the monitor's request limits: 64 KiB policy and
// silence bodies, event.MaxPushBytes (512 KiB) pushes, 4 metric pushes and
// 16 receipt pushes decoded at once, 5 seconds of waiting. With the
// default 2 MiB metric bodies, requests in flight hold about 4 × 8 MiB +
// 16 × 2 MiB at most.
var DefaultLimits = Limits{
	PolicyBody: 64 << 10, SilenceBody: 64 << 10, PushBody: event.MaxPushBytes,
	MetricsConcurrency: 4, PushConcurrency: 16, Wait: 5 * time.Second,
}

// defaultHolder names this instance: Cloud Run's revision and the host
// name, and a random suffix so that two processes never share an id.
func defaultHolder(getenv func(string) string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	host, _ := os.Hostname()
	parts := []string{}
	for _, p := range []string{getenv("K_REVISION"), host, hex.EncodeToString(b[:])} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, "/")
}
