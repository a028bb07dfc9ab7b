package main

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/autonomics/autonomics/services/actuator/actuatorenv"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/httpjson"
	"github.com/autonomics/autonomics/shared/platform"
	"github.com/autonomics/autonomics/shared/webhook"
)

// maxEndpointsEnv bounds actuatorenv.Endpoints.
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

// endpointEnv is one endpoint of actuatorenv.Endpoints.
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
		Platform: pc, Namespace: getenv(actuatorenv.Namespace), InlineSecrets: true, InlineWait: 2 * time.Second,
		Policy: webhook.DefaultPolicy, Retention: 30 * 24 * time.Hour,
	}
	if c.Namespace == "" {
		c.Namespace = "webhooks"
	}
	if err := webhook.ValidEndpointID(c.Namespace); err != nil {
		return c, fault.Errorf(fault.Invalid, op, "%s=%s: want 1 to 63 of [a-z0-9_-]", actuatorenv.Namespace, httpjson.Quote(c.Namespace))
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
	flag(actuatorenv.AllowLoopback, &c.Guard.AllowLoopback)
	flag(actuatorenv.AllowPrivate, &c.Guard.AllowPrivate)
	flag(actuatorenv.InlineSecrets, &c.InlineSecrets)
	dur(actuatorenv.InlineWait, &c.InlineWait, true)
	dur(actuatorenv.SweepInterval, &c.SweepInterval, true)
	dur(actuatorenv.RetryInitial, &c.Policy.Initial, false)
	dur(actuatorenv.RetryMaxAge, &c.Policy.MaxAge, false)
	dur(actuatorenv.Retention, &c.Retention, false)
	for _, e := range strings.Split(getenv(actuatorenv.PushCallers), ",") {
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
		return c, fault.Errorf(fault.Invalid, op, "%s %v must be at least the retry span %v", actuatorenv.Retention, c.Retention, c.Policy.MaxAge)
	}
	if v := getenv(actuatorenv.Endpoints); v != "" {
		if c.Endpoints, err = parseEndpoints(v); err != nil {
			return c, err
		}
	}
	return c, nil
}

// parseEndpoints parses actuatorenv.Endpoints strictly. The endpoints are checked
// against the guard and the kinds when they are seeded.
func parseEndpoints(v string) ([]webhook.Endpoint, error) {
	const op = "actuator.config"
	if len(v) > maxEndpointsEnv {
		return nil, fault.Errorf(fault.Invalid, op, "%s is %d bytes, limit %d", actuatorenv.Endpoints, len(v), maxEndpointsEnv)
	}
	var m map[string]endpointEnv
	if err := httpjson.Unmarshal([]byte(v), &m); err != nil {
		return nil, fault.Errorf(fault.Invalid, op, "%s: %v (want {\"<id>\": {\"url\", \"kinds\", \"secrets\", \"disabled\"}})", actuatorenv.Endpoints, err)
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
