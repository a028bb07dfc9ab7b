package main

import (
	"net/url"
	"strings"
	"time"

	"github.com/autonomics/autonomics/services/console/consoleenv"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/listen"
	"github.com/autonomics/autonomics/shared/platform"
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
		Platform: pc, MonitorURL: strings.TrimSpace(getenv(consoleenv.MonitorURL)),
		Namespace: strings.TrimSpace(getenv(consoleenv.Namespace)), CheckpointInterval: time.Minute,
	}
	if c.MonitorURL != "" {
		u, err := url.Parse(c.MonitorURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fail("%s %q: want the http(s) base URL of the monitor", consoleenv.MonitorURL, c.MonitorURL)
		}
	}
	for _, e := range strings.Split(getenv(consoleenv.PushCallers), ",") {
		if e = strings.TrimSpace(e); e != "" {
			c.PushCallers = append(c.PushCallers, e)
		}
	}
	if v := strings.TrimSpace(getenv(consoleenv.CheckpointInterval)); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second {
			return fail("%s %q: want a duration of at least 1s", consoleenv.CheckpointInterval, v)
		}
		c.CheckpointInterval = d
	}
	return c, nil
}

// isLoopback reports whether rawURL's host names this machine: the local
// stack, where no ID token is needed.
var isLoopback = listen.IsLoopbackURL
