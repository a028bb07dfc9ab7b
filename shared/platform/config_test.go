package platform

import (
	"strings"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/fault"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestFromEnv(t *testing.T) {
	c, err := FromEnv(env(map[string]string{
		EnvGoogleProject: "p1", EnvTimers: "customer_account.verification=30s, subscription.trial_end=1m",
		EnvTelemetry: "gcp", EnvTraceSampleRatio: "0.25", EnvLogLevel: "debug", EnvDedupTTL: "72h",
	}))
	if err != nil {
		t.Fatalf("FromEnv = %v", err)
	}
	if c.ProjectID != "p1" || c.Database != "(default)" || c.Telemetry != "gcp" || c.TraceSampleRatio != 0.25 || c.DedupTTL != 72*time.Hour {
		t.Errorf("FromEnv = %+v", c)
	}
	if c.Timers["customer_account.verification"] != 30*time.Second || c.Timers["subscription.trial_end"] != time.Minute {
		t.Errorf("Timers = %v", c.Timers)
	}
	if got := FormatTimers(c.Timers); got != "customer_account.verification=30s,subscription.trial_end=1m0s" {
		t.Errorf("FormatTimers = %q", got)
	}
}

func TestFromEnvErrors(t *testing.T) {
	tests := []map[string]string{
		{},
		{EnvProject: "p", EnvTimers: "verification=30s"},
		{EnvProject: "p", EnvTimers: "a.b=-1s"},
		{EnvProject: "p", EnvTimers: "a.b"},
		{EnvProject: "p", EnvDedupTTL: "soon"},
		{EnvProject: "p", EnvLogLevel: "loud"},
		{EnvProject: "p", EnvTelemetry: "jaeger"},
		{EnvProject: "p", EnvTraceSampleRatio: "2"},
	}
	for _, v := range []string{"production", "PROD", " prod", "Prod", "staging!", "-dev", strings.Repeat("a", 33)} {
		tests = append(tests, map[string]string{EnvProject: "p", EnvEnvironment: v})
	}
	for _, m := range tests {
		if _, err := FromEnv(env(m)); fault.ErrorCode(err) != fault.Invalid {
			t.Errorf("FromEnv(%v) = %v, want an invalid error", m, err)
		}
	}
}

func TestTestClocksAreOnInNamedNonProductionOnly(t *testing.T) {
	tests := []struct {
		env  string
		want bool
	}{
		{"", false},
		{"dev", true},
		{"staging-2", true},
		{ProdEnvironment, false},
	}
	for _, tt := range tests {
		c, err := FromEnv(env(map[string]string{EnvProject: "p", EnvEnvironment: tt.env}))
		if err != nil {
			t.Fatalf("FromEnv(%s=%q) = %v", EnvEnvironment, tt.env, err)
		}
		if c.Env != tt.env || c.TestClock() != tt.want {
			t.Errorf("%s=%q: Env %q, TestClock() = %v; want %v", EnvEnvironment, tt.env, c.Env, c.TestClock(), tt.want)
		}
	}
}

func TestProductionMisspelledIsRefused(t *testing.T) {
	for _, v := range []string{"production", "PROD", "Prod", "prod "} {
		_, err := FromEnv(env(map[string]string{EnvProject: "p", EnvEnvironment: v}))
		if fault.ErrorCode(err) != fault.Invalid || !strings.Contains(err.Error(), `spelled "prod"`) {
			t.Errorf("FromEnv(%s=%q) = %v, want an invalid error naming the spelling", EnvEnvironment, v, err)
		}
	}
}

func TestMetricsAddr(t *testing.T) {
	for _, tt := range []struct {
		addr string
		ok   bool
	}{{"", true}, {"127.0.0.1:9464", true}, {":0", true}, {"9464", false}, {"localhost", false}} {
		c, err := FromEnv(env(map[string]string{EnvProject: "p", EnvMetricsAddr: tt.addr}))
		if (err == nil) != tt.ok {
			t.Errorf("%s=%q: err %v, want ok %v", EnvMetricsAddr, tt.addr, err, tt.ok)
			continue
		}
		if err == nil && c.MetricsAddr != tt.addr {
			t.Errorf("%s=%q: MetricsAddr %q", EnvMetricsAddr, tt.addr, c.MetricsAddr)
		}
	}
}
