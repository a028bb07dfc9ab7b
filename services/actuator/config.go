package main

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/httpjson"
	"github.com/autonomics/autonomics/shared/platform"
	"github.com/autonomics/autonomics/shared/webhook"
)

// Environment variables of the actuator, next to PORT,
// AUTONOMICS_LISTEN_HOST and the AUTONOMICS_* variables platform.FromEnv
// reads. Its state lives in AUTONOMICS_MONITOR_DATABASE.
const (
	// EnvNamespace separates actuators sharing a database (default
	// "webhooks").
	EnvNamespace = "AUTONOMICS_ACTUATOR_NAMESPACE"
	// EnvEndpoints holds the initial endpoints as a JSON object, id =>
	// {"url", "kinds", "secrets", "disabled"}; those that do not exist
	// yet are created at start.
	EnvEndpoints = "AUTONOMICS_ACTUATOR_ENDPOINTS"
	// EnvAllowLoopback admits loopback endpoints, and plain http to
	// them (the local stack): "true" or "false" (default).
	EnvAllowLoopback = "AUTONOMICS_ACTUATOR_ALLOW_LOOPBACK"
	// EnvAllowPrivate admits private and shared addresses (receivers in
	// the deployment's own network): "true" or "false" (default).
	EnvAllowPrivate = "AUTONOMICS_ACTUATOR_ALLOW_PRIVATE"
	// EnvInlineSecrets allows secrets stored inline with the endpoints:
	// "true" (default) or "false" (only Secret Manager references).
	EnvInlineSecrets = "AUTONOMICS_ACTUATOR_INLINE_SECRETS"
	// EnvPushCallers lists, comma-separated, the emails of the identities
	// that may call the push endpoint (the Pub/Sub push identity); empty
	// admits every caller that reaches the service.
	EnvPushCallers = "AUTONOMICS_ACTUATOR_PUSH_CALLERS"
	// EnvInlineWait is how long a push waits for the attempts it starts
	// before answering (default 2s); they go on in the background.
	EnvInlineWait = "AUTONOMICS_ACTUATOR_INLINE_WAIT"
	// EnvSweepInterval runs the sweep from an internal loop (the local
	// stack); "0" (default) leaves it to POST /v1/sweep.
	EnvSweepInterval = "AUTONOMICS_ACTUATOR_SWEEP_INTERVAL"
	// EnvRetryInitial and EnvRetryMaxAge override the retry schedule's
	// first delay (5s) and its span (72h).
	EnvRetryInitial = "AUTONOMICS_ACTUATOR_RETRY_INITIAL"
	EnvRetryMaxAge  = "AUTONOMICS_ACTUATOR_RETRY_MAX_AGE"
	// EnvRetention is how long actions and attempts are kept (720h).
	EnvRetention = "AUTONOMICS_ACTUATOR_RETENTION"
)

// maxEndpointsEnv bounds EnvEndpoints.
const maxEndpointsEnv = 64 << 10

// config is the actuator's configuration.
type config struct {
	Platform      platform.Config
	Namespace     string
	Endpoints     []webhook.Endpoint
	Guard         webhook.Guard
	InlineSecrets bool
	PushCallers   []string
	InlineWait    time.Duration
	SweepInterval time.Duration
	Policy        webhook.Policy
	Retention     time.Duration
}

// endpointEnv is one endpoint of EnvEndpoints.
type endpointEnv struct {
	URL      string   `json:"url"`
	Kinds    []string `json:"kinds"`
	Secrets  []string `json:"secrets"`
	Disabled bool     `json:"disabled"`
}

// loadConfig reads the configuration through getenv and validates it.
func loadConfig(getenv func(string) string) (config, error) {
	const op = "actuator.config"
	pc, err := platform.FromEnv(getenv)
	if err != nil {
		return config{}, err
	}
	c := config{
		Platform: pc, Namespace: getenv(EnvNamespace), InlineSecrets: true, InlineWait: 2 * time.Second,
		Policy: webhook.DefaultPolicy, Retention: 30 * 24 * time.Hour,
	}
	if c.Namespace == "" {
		c.Namespace = "webhooks"
	}
	if err := webhook.ValidEndpointID(c.Namespace); err != nil {
		return c, fault.Errorf(fault.Invalid, op, "%s=%s: want 1 to 63 of [a-z0-9_-]", EnvNamespace, httpjson.Quote(c.Namespace))
	}
	var errs []string
	flag := func(name string, dst *bool) {
		switch v := strings.ToLower(getenv(name)); v {
		case "":
		case "true", "1", "on":
			*dst = true
		case "false", "0", "off":
			*dst = false
		default:
			errs = append(errs, name+"="+httpjson.Quote(v)+": want true or false")
		}
	}
	dur := func(name string, dst *time.Duration, allowZero bool) {
		v := getenv(name)
		if v == "" {
			return
		}
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || d == 0 && !allowZero {
			errs = append(errs, name+"="+httpjson.Quote(v)+": want a positive duration")
			return
		}
		*dst = d
	}
	flag(EnvAllowLoopback, &c.Guard.AllowLoopback)
	flag(EnvAllowPrivate, &c.Guard.AllowPrivate)
	flag(EnvInlineSecrets, &c.InlineSecrets)
	dur(EnvInlineWait, &c.InlineWait, true)
	dur(EnvSweepInterval, &c.SweepInterval, true)
	dur(EnvRetryInitial, &c.Policy.Initial, false)
	dur(EnvRetryMaxAge, &c.Policy.MaxAge, false)
	dur(EnvRetention, &c.Retention, false)
	for _, e := range strings.Split(getenv(EnvPushCallers), ",") {
		if e = strings.TrimSpace(e); e != "" {
			c.PushCallers = append(c.PushCallers, e)
		}
	}
	if len(errs) > 0 {
		return c, fault.Errorf(fault.Invalid, op, "%s", strings.Join(errs, "; "))
	}
	if c.Policy.Initial > c.Policy.Cap {
		c.Policy.Cap = c.Policy.Initial
	}
	if c.Retention < c.Policy.MaxAge {
		return c, fault.Errorf(fault.Invalid, op, "%s %v must be at least the retry span %v", EnvRetention, c.Retention, c.Policy.MaxAge)
	}
	if v := getenv(EnvEndpoints); v != "" {
		if c.Endpoints, err = parseEndpoints(v); err != nil {
			return c, err
		}
	}
	return c, nil
}

// parseEndpoints parses EnvEndpoints strictly. The endpoints are checked
// against the guard and the kinds when they are seeded.
func parseEndpoints(v string) ([]webhook.Endpoint, error) {
	const op = "actuator.config"
	if len(v) > maxEndpointsEnv {
		return nil, fault.Errorf(fault.Invalid, op, "%s is %d bytes, limit %d", EnvEndpoints, len(v), maxEndpointsEnv)
	}
	var m map[string]endpointEnv
	if err := httpjson.Unmarshal([]byte(v), &m); err != nil {
		return nil, fault.Errorf(fault.Invalid, op, "%s: %v (want {\"<id>\": {\"url\", \"kinds\", \"secrets\", \"disabled\"}})", EnvEndpoints, err)
	}
	var out []webhook.Endpoint
	for id, e := range m {
		out = append(out, webhook.Endpoint{ID: id, URL: e.URL, Kinds: e.Kinds, Secrets: e.Secrets, Disabled: e.Disabled})
	}
	// Map order is random; seed in id order.
	slices.SortFunc(out, func(a, b webhook.Endpoint) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// atoi parses a non-negative integer query value.
func atoi(s string) (int, bool) {
	n, err := strconv.Atoi(s)
	return n, err == nil && n >= 0
}
