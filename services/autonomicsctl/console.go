package main

import (
	"fmt"
	"io"
	"path/filepath"

	"github.com/autonomics/autonomics/services/console/consoleenv"
	"github.com/autonomics/autonomics/shared/platform"
	"github.com/autonomics/autonomics/shared/pubsub"
)

// consolePort follows Prometheus's port.
func (c stackConfig) consolePort() int { return c.QueryPort + 10 }

// consoleURL is the base URL of the local console.
func (c stackConfig) consoleURL() string { return serviceURL(c.consolePort()) }

// consolePushSubscription delivers the dead letters to the console, which
// keeps them for the operator (list, replay).
func (c stackConfig) consolePushSubscription() pubsub.Subscription {
	t := c.names().DeadLetter()
	return pubsub.Subscription{
		Name: t + "-console-push", Topic: t, PushEndpoint: c.consoleURL() + "/v1/deadletters/push",
		AckDeadline: ackDeadline, MinBackoff: minBackoff, MaxBackoff: maxBackoff,
	}
}

// startConsole starts the console, its state in the stack's database.
func (s *stack) startConsole(runDir string) error {
	cfg := s.cfg
	env := append(cfg.childEnv(cfg.consolePort()),
		platform.EnvMonitorDatabase+"="+cfg.Database,
		consoleenv.MonitorURL+"="+serviceURL(cfg.monitorPort()),
		consoleenv.CheckpointInterval+"=5s")
	var err error
	s.console, err = startChild("console", filepath.Join(cfg.Root, "bin", "console"), nil, cfg.Root, env,
		filepath.Join(runDir, "console.log"), s.failed)
	return err
}

// describeConsole prints the console.
func (s *stack) describeConsole(w io.Writer) {
	fmt.Fprintf(w, "  console             %s  pid %d  log %s  (pages and /api/v1; autonomicsctl -url)\n",
		s.cfg.consoleURL(), s.console.pid(), rel(s.cfg.Root, s.console.logPath))
}
