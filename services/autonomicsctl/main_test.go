package main

import (
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	fnaccount "github.com/autonomics/autonomics/functions/account"
	fnbilling "github.com/autonomics/autonomics/functions/billing"
	fncatalog "github.com/autonomics/autonomics/functions/catalog"
	fncompliance "github.com/autonomics/autonomics/functions/compliance"
	fnentitlement "github.com/autonomics/autonomics/functions/entitlement"
	fnquota "github.com/autonomics/autonomics/functions/quota"
	fnsubscription "github.com/autonomics/autonomics/functions/subscription"
	fntenancy "github.com/autonomics/autonomics/functions/tenancy"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/listen"
	"github.com/autonomics/autonomics/shared/machines"
)

func env(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func TestParseArgs(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		check func(o options) string
	}{
		{"dev defaults", []string{"dev"}, nil, func(o options) string {
			s := o.stack
			switch {
			case s.Database != "(default)":
				return "database " + s.Database
			case s.FreshPullSubscriptions:
				return "fresh pull subscriptions in dev"
			case s.FunctionsPort != 8790 || s.QueryPort != 8791:
				return "ports"
			case s.Project != "demo-autonomics" || s.FirestoreHost != "127.0.0.1:8780" || s.PubSubHost != "127.0.0.1:8781":
				return "project or hosts"
			case s.ProviderTenant != "provider" || s.Schedule != time.Second:
				return "provider or schedule"
			}
			return ""
		}},
		{"demo defaults", []string{"demo"}, nil, func(o options) string {
			switch {
			case o.stack.Database != "":
				return "database " + o.stack.Database
			case !o.stack.FreshPullSubscriptions:
				return "pull subscriptions kept"
			case o.stepTimeout != 30*time.Second:
				return "step timeout " + o.stepTimeout.String()
			case o.stack.Timers["subscription.grace"] != 3*time.Second:
				return "grace timer"
			}
			return ""
		}},
		{"load defaults", []string{"load"}, nil, func(o options) string {
			l := o.load
			if l.Tenants != 1000 || l.Events != 5000 || l.Concurrency != 32 || l.Timeout != 5*time.Minute || l.JSON || !l.Baseline {
				return "load defaults"
			}
			if o.stack.Schedule != time.Minute {
				return "schedule " + o.stack.Schedule.String() + " (Cloud Scheduler's minute)"
			}
			return ""
		}},
		{"load flags", []string{"load", "-tenants", "10000", "-events", "10000", "-json", "-baseline=false", "-timeout", "90s", "-schedule", "1s"}, nil, func(o options) string {
			l := o.load
			if l.Tenants != 10000 || l.Events != 10000 || !l.JSON || l.Baseline || l.Timeout != 90*time.Second {
				return "load flags"
			}
			if o.stack.Schedule != time.Second {
				return "schedule " + o.stack.Schedule.String()
			}
			return ""
		}},
		{"timer override", []string{"demo", "-timers", "subscription.grace=1s, billing.retry=500ms"}, nil, func(o options) string {
			tm := o.stack.Timers
			if tm["subscription.grace"] != time.Second || tm["billing.retry"] != 500*time.Millisecond || tm["billing.retry_2"] != 2*time.Second {
				return "timers"
			}
			return ""
		}},
		{"receiver", []string{"receiver", "-config", ".run/receiver.json"}, nil, func(o options) string {
			if o.receiver.Config != ".run/receiver.json" {
				return "config " + o.receiver.Config
			}
			return ""
		}},
		{"environment", []string{"dev", "-database", "mine"}, map[string]string{
			"AUTONOMICS_PROJECT": "p1", "FIRESTORE_EMULATOR_HOST": "localhost:9000",
			"PUBSUB_EMULATOR_HOST": "[::1]:9001", "AUTONOMICS_TOPIC_PREFIX": "dev-",
		}, func(o options) string {
			s := o.stack
			if s.Project != "p1" || s.FirestoreHost != "localhost:9000" || s.PubSubHost != "[::1]:9001" || s.TopicPrefix != "dev-" || s.Database != "mine" {
				return "environment"
			}
			return ""
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseArgs(tt.args, env(tt.env), io.Discard)
			if err != nil {
				t.Fatalf("parseArgs(%q) = %v, want no error", tt.args, err)
			}
			if o.command != tt.args[0] {
				t.Errorf("parseArgs(%q).command = %q, want %q", tt.args, o.command, tt.args[0])
			}
			if msg := tt.check(o); msg != "" {
				t.Errorf("parseArgs(%q) = %+v: wrong %s", tt.args, o, msg)
			}
		})
	}
}

func TestParseArgsErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"no command", nil, nil, "no command"},
		{"unknown command", []string{"deploy"}, nil, "unknown command"},
		{"unknown flag", []string{"dev", "-tenants", "3"}, nil, "not defined"},
		{"extra argument", []string{"demo", "now"}, nil, "unexpected arguments"},
		{"bad timers", []string{"demo", "-timers", "grace=1s"}, nil, "domain.timer"},
		{"zero tenants", []string{"load", "-tenants", "0"}, nil, "-tenants 0"},
		{"too many events", []string{"load", "-events", "2000000"}, nil, "-events 2000000"},
		{"zero concurrency", []string{"load", "-concurrency", "0"}, nil, "-concurrency 0"},
		{"zero timeout", []string{"load", "-timeout", "0s"}, nil, "-timeout 0s"},
		{"same ports", []string{"dev", "-query-port", "8790"}, nil, "both 8790"},
		{"remote firestore", []string{"demo"}, map[string]string{"FIRESTORE_EMULATOR_HOST": "10.1.2.3:8080"}, "loopback"},
		{"remote pubsub", []string{"load"}, map[string]string{"PUBSUB_EMULATOR_HOST": "pubsub.example.com:443"}, "loopback"},
		{"zero step timeout", []string{"demo", "-step-timeout", "0s"}, nil, "-step-timeout"},
		{"functions port among the services'", []string{"dev", "-functions-port", "8796"}, nil, "-functions-port 8796"},
		{"query port too high", []string{"dev", "-query-port", "65533"}, nil, "-query-port 65533"},
		{"receiver without config", []string{"receiver"}, nil, "-config is required"},
		{"receiver with stack flags", []string{"receiver", "-config", "x", "-database", "d"}, nil, "not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseArgs(tt.args, env(tt.env), io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("parseArgs(%q) = %v, want an error containing %q", tt.args, err, tt.want)
			}
		})
	}
}

func TestIsLoopback(t *testing.T) {
	tests := []struct {
		host string
		want bool
	}{
		{"127.0.0.1:8780", true},
		{"127.0.0.2:1", true},
		{"localhost:8781", true},
		{"[::1]:8080", true},
		{"0.0.0.0:8780", false},
		{"10.0.0.1:8780", false},
		{"firestore.googleapis.com:443", false},
		{"127.0.0.1", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := isLoopback(tt.host); got != tt.want {
			t.Errorf("isLoopback(%q) = %v, want %v", tt.host, got, tt.want)
		}
	}
}

// TestDemoTimers checks that every demo duration names a timer of its
// machine, so that a renamed timer does not silently fall back to days.
func TestDemoTimers(t *testing.T) {
	for key := range demoTimers {
		d, name, ok := strings.Cut(key, ".")
		m := machines.Machine(governor.Domain(d))
		if !ok || m == nil {
			t.Errorf("demo timer %q: no machine %q", key, d)
			continue
		}
		if _, ok := m.Timers[name]; !ok {
			t.Errorf("demo timer %q: machine %s has no timer %q", key, d, name)
		}
	}
}

func TestEntryPoints(t *testing.T) {
	want := map[governor.Domain]string{
		governor.CustomerAccount: fnaccount.EntryPoint,
		governor.Billing:         fnbilling.EntryPoint,
		governor.ProductCatalog:  fncatalog.EntryPoint,
		governor.ComplianceAudit: fncompliance.EntryPoint,
		governor.Entitlement:     fnentitlement.EntryPoint,
		governor.QuotaSLA:        fnquota.EntryPoint,
		governor.Subscription:    fnsubscription.EntryPoint,
		governor.MultiTenant:     fntenancy.EntryPoint,
	}
	for _, d := range governor.Domains {
		if got := entryPoints[d]; got != want[d] {
			t.Errorf("entryPoints[%s] = %q, want %q", d, got, want[d])
		}
	}
}

func TestSubscriptions(t *testing.T) {
	cfg := stackConfig{FunctionsPort: 8790, TopicPrefix: "x-"}
	push := cfg.pushSubscriptions()
	if len(push) != 2*len(governor.Domains) {
		t.Fatalf("pushSubscriptions() has %d entries, want %d (domain and internal topic per domain)", len(push), 2*len(governor.Domains))
	}
	// Each governor's function gets its domain topic and its internal
	// topic, told apart by subscription name.
	n := cfg.names()
	byTopic := map[string]string{}
	for _, s := range push {
		byTopic[s.Topic] = s.PushEndpoint
	}
	for _, d := range governor.Domains {
		ext, in := byTopic[n.Domain(d)], byTopic[n.Internal(d)]
		if ext == "" || ext != in {
			t.Errorf("%s: domain topic pushes to %q, internal topic to %q; want both to the function", d, ext, in)
		}
	}
	for _, s := range push {
		switch {
		case s.Name != s.Topic+"-push":
			t.Errorf("push subscription %q on topic %q: want name <topic>-push", s.Name, s.Topic)
		case !s.Ordered || s.DeadLetterTopic != "":
			t.Errorf("push subscription %s: ordered %v, dead letter %q; want ordered without dead-letter policy", s.Name, s.Ordered, s.DeadLetterTopic)
		case !strings.HasPrefix(s.PushEndpoint, "http://127.0.0.1:8790/") || !strings.HasPrefix(s.Topic, "x-"):
			t.Errorf("push subscription %s: endpoint %q, topic %q", s.Name, s.PushEndpoint, s.Topic)
		case s.MinBackoff != time.Second || s.MaxBackoff != 10*time.Second:
			t.Errorf("push subscription %s: backoff %v..%v, want 1s..10s", s.Name, s.MinBackoff, s.MaxBackoff)
		}
	}
	var pullTopics []string
	for _, s := range cfg.pullSubscriptions() {
		if s.PushEndpoint != "" || !strings.HasPrefix(s.Name, "x-autonomicsctl-") {
			t.Errorf("pull subscription %+v: want a prefixed pull subscription", s)
		}
		pullTopics = append(pullTopics, s.Topic)
	}
	if want := []string{n.Receipts(), n.Actions(), n.DeadLetter()}; !slices.Equal(pullTopics, want) {
		t.Errorf("pull subscription topics = %v, want %v", pullTopics, want)
	}
}

func TestChildEnv(t *testing.T) {
	t.Setenv("AUTONOMICS_PROVIDER_TENANT", "inherited")
	t.Setenv("FUNCTION_TARGET", "Billing")
	cfg := stackConfig{
		Project: "p", FirestoreHost: "127.0.0.1:1", PubSubHost: "127.0.0.1:2", Database: "db",
		ProviderTenant: "provider", Timers: map[string]time.Duration{"subscription.grace": 3 * time.Second},
	}
	got := cfg.childEnv(8791)
	for _, want := range []string{
		"FIRESTORE_EMULATOR_HOST=127.0.0.1:1", "PUBSUB_EMULATOR_HOST=127.0.0.1:2",
		"AUTONOMICS_PROJECT=p", "AUTONOMICS_FIRESTORE_DATABASE=db", "AUTONOMICS_PROVIDER_TENANT=provider",
		"AUTONOMICS_TIMERS=subscription.grace=3s", "PORT=8791",
	} {
		if !slices.Contains(got, want) {
			t.Errorf("childEnv(8791) lacks %q", want)
		}
	}
	for _, kv := range got {
		if kv == "AUTONOMICS_PROVIDER_TENANT=inherited" || strings.HasPrefix(kv, "FUNCTION_TARGET=") {
			t.Errorf("childEnv(8791) keeps %q", kv)
		}
	}
}

// The services run with the Go runtime settings of a default-sized
// deployment unless the caller sets them.
func TestChildEnvGoRuntime(t *testing.T) {
	values := func(env []string, name string) []string {
		var out []string
		for _, kv := range env {
			if v, ok := strings.CutPrefix(kv, name+"="); ok {
				out = append(out, v)
			}
		}
		return out
	}
	for _, name := range []string{"GOMAXPROCS", "GOGC", "GOMEMLIMIT"} {
		t.Setenv(name, "") // restored when the test ends
		os.Unsetenv(name)
	}
	env := stackConfig{}.childEnv(8791)
	for name, want := range map[string]string{"GOMAXPROCS": "1", "GOGC": "400", "GOMEMLIMIT": "384MiB"} {
		if got := values(env, name); !slices.Equal(got, []string{want}) {
			t.Errorf("childEnv without %s: %q, want [%q]", name, got, want)
		}
	}
	t.Setenv("GOMAXPROCS", "3")
	t.Setenv("GOGC", "off")
	env = stackConfig{}.childEnv(8791)
	for name, want := range map[string]string{"GOMAXPROCS": "3", "GOGC": "off", "GOMEMLIMIT": "384MiB"} {
		if got := values(env, name); !slices.Equal(got, []string{want}) {
			t.Errorf("childEnv with GOMAXPROCS=3 GOGC=off: %s = %q, want [%q]", name, got, want)
		}
	}
}

func TestServicesBindLoopback(t *testing.T) {
	env := stackConfig{}.childEnv(8791)
	if !slices.Contains(env, listen.EnvHost+"=127.0.0.1") || !slices.Contains(env, listen.EnvPort+"=8791") {
		t.Errorf("childEnv = %v, want %s=127.0.0.1 and %s=8791", env, listen.EnvHost, listen.EnvPort)
	}
}
