package main

import (
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/autonomics/autonomics/services/monitor/monitorenv"
	"github.com/autonomics/autonomics/shared/alerting"
	"github.com/autonomics/autonomics/shared/alerting/prom"
	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/health"
	"github.com/autonomics/autonomics/shared/platform"
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
		Platform: pc, Port: getenv("PORT"), Namespace: getenv(monitorenv.Namespace), Holder: getenv(monitorenv.HolderID),
		EvalInterval: 30 * time.Second, LeaseTTL: 90 * time.Second,
		Eval: alerting.Options{
			RepeatInterval: alerting.DefaultRepeatInterval, Lookback: alerting.DefaultLookback,
			ResolvedRetention: alerting.DefaultResolvedRetention,
		},
		SeriesRetention: alerting.DefaultSeriesRetention,
		Engine: EngineConfig{
			URL: getenv(monitorenv.PrometheusURL), Auth: strings.ToLower(getenv(monitorenv.PrometheusAuth)), RemoteWriteURL: getenv(monitorenv.RemoteWriteURL),
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
	dur(monitorenv.EvalInterval, &c.EvalInterval, true)
	dur(monitorenv.LeaseTTL, &c.LeaseTTL, false)
	dur(monitorenv.RepeatInterval, &c.Eval.RepeatInterval, false)
	dur(monitorenv.Lookback, &c.Eval.Lookback, false)
	dur(monitorenv.ResolvedRetention, &c.Eval.ResolvedRetention, false)
	dur(monitorenv.SeriesRetention, &c.SeriesRetention, false)
	num(monitorenv.QueryParallelism, &c.Engine.Parallelism, 1, 64)
	dur(monitorenv.QueryTimeout, &c.Engine.QueryTimeout, false)
	dur(monitorenv.ReceiptFlush, &c.Engine.ReceiptFlush, false)
	dur(monitorenv.SampleMaxFuture, &c.Samples.MaxFuture, false)
	dur(monitorenv.SampleMaxAge, &c.Samples.MaxAge, false)
	dur(monitorenv.ReceiptWindow, &c.Receipts.Window, false)
	switch v := strings.ToLower(getenv(monitorenv.Fairness)); v {
	case "", "on", "true", "1":
	case "off", "false", "0":
		c.Fairness = nil
	default:
		errs = append(errs, monitorenv.Fairness+"="+strconv.Quote(v)+": want on or off")
	}
	if v := getenv(monitorenv.FairnessMetric); v != "" {
		fair.Metric = v
	}
	num(monitorenv.FairnessThreshold, &fair.ThresholdBP, 1, 9999)
	num(monitorenv.FairnessHyst, &fair.HysteresisBP, 0, 9998)
	dur(monitorenv.FairnessWindow, &fair.Window, false)
	pct(monitorenv.CPUThreshold, &c.Thresholds.CPU)
	pct(monitorenv.MemoryThreshold, &c.Thresholds.Memory)
	dur(monitorenv.OutboxDegraded, &c.Outbox.Degraded, true)
	dur(monitorenv.OutboxCritical, &c.Outbox.Critical, true)
	dur(monitorenv.TimersDegraded, &c.Timers.Degraded, true)
	dur(monitorenv.TimersCritical, &c.Timers.Critical, true)
	dur(monitorenv.CheckTimeout, &c.CheckTimeout, false)
	if c.Engine.URL == "" && pc.ProjectID != "" {
		c.Engine.URL = prom.ManagedURL(pc.ProjectID)
	}
	if u, err := url.Parse(c.Engine.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, monitorenv.PrometheusURL+"="+strconv.Quote(c.Engine.URL)+": want the http(s) base URL of a Prometheus HTTP API")
	} else if c.Engine.Auth == "" {
		c.Engine.Auth = "none"
		if strings.HasSuffix(u.Hostname(), ".googleapis.com") {
			c.Engine.Auth = "google"
		}
	}
	switch c.Engine.Auth {
	case "", "none", "google":
	default:
		errs = append(errs, monitorenv.PrometheusAuth+"="+strconv.Quote(c.Engine.Auth)+": want google or none")
	}
	if v := c.Engine.RemoteWriteURL; v != "" {
		if u, err := url.Parse(v); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, monitorenv.RemoteWriteURL+"="+strconv.Quote(v)+": want an http(s) URL")
		}
	}
	if len(errs) > 0 {
		return c, fault.Errorf(fault.Invalid, op, "%s", strings.Join(errs, "; "))
	}
	if c.EvalInterval > 0 && c.LeaseTTL <= c.EvalInterval {
		return c, fault.Errorf(fault.Invalid, op, "%s %v must exceed %s %v, or the holder loses its lease between cycles",
			monitorenv.LeaseTTL, c.LeaseTTL, monitorenv.EvalInterval, c.EvalInterval)
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
