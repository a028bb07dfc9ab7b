package main

import (
	"net/url"
	"strings"
	"time"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/listen"
	"github.com/autonomics/autonomics/shared/platform"
)

// Environment variables of the console, next to PORT,
// AUTONOMICS_LISTEN_HOST and the AUTONOMICS_* variables platform.FromEnv
// reads (AUTONOMICS_ENV among them: test clocks only outside production).
const (
	// EnvMonitorURL is the base URL of the monitor's API (alerts,
	// silences); empty turns those pages off. Off loopback the console
	// calls it with a Google ID token.
	EnvMonitorURL = "AUTONOMICS_CONSOLE_MONITOR_URL"
	// EnvNamespace separates consoles sharing the monitor database
	// (default "default").
	EnvNamespace = "AUTONOMICS_CONSOLE_NAMESPACE"
	// EnvPushCallers lists, comma-separated, the emails of the identities
	// that may push dead letters (the Pub/Sub push identity); empty admits
	// every caller Cloud Run lets through.
	EnvPushCallers = "AUTONOMICS_CONSOLE_PUSH_CALLERS"
	// EnvCheckpointInterval is how often the console records the ledger's
	// checkpoint in its history (default 1m).
	EnvCheckpointInterval = "AUTONOMICS_CONSOLE_CHECKPOINT_INTERVAL"
)

// config is the console's configuration.
type config struct {
	Platform           platform.Config
	MonitorURL         string
	Namespace          string
	PushCallers        []string
	CheckpointInterval time.Duration
}

// loadConfig reads the configuration through getenv and checks it.
func loadConfig(getenv func(string) string) (config, error) {
	const op = "console.config"
	fail := func(format string, args ...any) (config, error) {
		return config{}, fault.Errorf(fault.Invalid, op, format, args...)
	}
	pc, err := platform.FromEnv(getenv)
	if err != nil {
		return config{}, err
	}
	c := config{
		Platform: pc, MonitorURL: strings.TrimSpace(getenv(EnvMonitorURL)),
		Namespace: strings.TrimSpace(getenv(EnvNamespace)), CheckpointInterval: time.Minute,
	}
	if c.MonitorURL != "" {
		u, err := url.Parse(c.MonitorURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fail("%s %q: want the http(s) base URL of the monitor", EnvMonitorURL, c.MonitorURL)
		}
	}
	for _, e := range strings.Split(getenv(EnvPushCallers), ",") {
		if e = strings.TrimSpace(e); e != "" {
			c.PushCallers = append(c.PushCallers, e)
		}
	}
	if v := strings.TrimSpace(getenv(EnvCheckpointInterval)); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second {
			return fail("%s %q: want a duration of at least 1s", EnvCheckpointInterval, v)
		}
		c.CheckpointInterval = d
	}
	return c, nil
}

// isLoopback reports whether rawURL's host names this machine: the local
// stack, where no ID token is needed.
var isLoopback = listen.IsLoopbackURL
