package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/autonomics/autonomics/shared/governor"
)

// The local stack's metrics engine: a real Prometheus server, as Managed
// Service for Prometheus is in production. The monitor evaluates its
// policies with PromQL against it and forwards POST /v1/metrics to it by
// remote write.
const (
	// envPrometheus overrides the Prometheus binary (default: prometheus
	// on PATH, as Debian's package installs it).
	envPrometheus = "AUTONOMICS_PROMETHEUS_BIN"
	// prometheusConfig keeps evaluation to the monitor: Prometheus only
	// stores what is written to it.
	prometheusConfig = "global:\n  scrape_interval: 1m\n  evaluation_interval: 1m\n"
)

// prometheusPort follows the stand-ins' port.
func (c stackConfig) prometheusPort() int { return c.QueryPort + 9 }

// prometheusURL is the base URL of the local Prometheus.
func (c stackConfig) prometheusURL() string { return serviceURL(c.prometheusPort()) }

// monitorEngineEnv points the monitor at the local Prometheus.
func (c stackConfig) monitorEngineEnv() []string {
	return []string{
		"AUTONOMICS_MONITOR_PROMETHEUS_URL=" + c.prometheusURL(),
		"AUTONOMICS_MONITOR_PROMETHEUS_AUTH=none",
		"AUTONOMICS_MONITOR_REMOTE_WRITE_URL=" + c.prometheusURL() + "/api/v1/write",
	}
}

// startPrometheus starts Prometheus with its data under runDir, one
// directory per database so that runs do not see each other's series,
// and waits until it is ready.
func (s *stack) startPrometheus(ctx context.Context, runDir string) error {
	const op = "autonomicsctl.startPrometheus"
	bin := firstNonEmpty(os.Getenv(envPrometheus), "prometheus")
	path, err := exec.LookPath(bin)
	if err != nil {
		return governor.Errorf(governor.Unavailable, op,
			"%s is not installed: apt-get install prometheus (make test and make demo install it through .ci/emulators.sh)", bin)
	}
	dir := filepath.Join(runDir, "prometheus", s.cfg.Database)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return governor.Wrap(governor.Internal, op, err)
	}
	cfgFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgFile, []byte(prometheusConfig), 0o644); err != nil {
		return governor.Wrap(governor.Internal, op, err)
	}
	s.prometheus, err = startChild("prometheus", path, []string{
		"--config.file=" + cfgFile,
		"--storage.tsdb.path=" + filepath.Join(dir, "data"),
		"--storage.tsdb.retention.time=2d",
		"--web.listen-address=127.0.0.1:" + strconv.Itoa(s.cfg.prometheusPort()),
		"--web.enable-remote-write-receiver",
		"--log.level=warn",
	}, s.cfg.Root, os.Environ(), filepath.Join(runDir, "prometheus.log"), s.failed)
	if err != nil {
		return err
	}
	hc := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(readyTimeout)
	for {
		resp, err := hc.Get(s.cfg.prometheusURL() + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-s.failed:
			return err
		case <-ctx.Done():
			return governor.Wrap(governor.Unavailable, op, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return governor.Errorf(governor.Unavailable, op, "Prometheus not ready after %v; see %s", readyTimeout, s.prometheus.logPath)
		}
	}
}

// describePrometheus prints the metrics engine.
func (s *stack) describePrometheus(w interface{ Write([]byte) (int, error) }) {
	fmt.Fprintf(w, "  Prometheus          %s  pid %d  log %s  (the monitor's metrics engine)\n",
		s.cfg.prometheusURL(), s.prometheus.pid(), rel(s.cfg.Root, s.prometheus.logPath))
}
