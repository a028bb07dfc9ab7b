package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/autonomics/autonomics/services/monitor/monitorenv"
	"github.com/autonomics/autonomics/shared/fault"
)

// The local stack's metrics engine: a real Prometheus server, as Managed
// Service for Prometheus is in production. It scrapes every service's
// /metrics (their OpenTelemetry metrics; in production they go to Google
// by OTLP); the monitor evaluates its policies with PromQL against it and
// forwards POST /v1/metrics to it by remote write.
const (
	// envPrometheus overrides the Prometheus binary (default: prometheus
	// on PATH, as Debian's package installs it).
	envPrometheus = "AUTONOMICS_PROMETHEUS_BIN"
)

// metricsOffset puts a service's /metrics port 1000 above its own.
const metricsOffset = 1000

// metricsPort is the /metrics port of the service on port.
func metricsPort(port int) int { return port + metricsOffset }

// metricsAddr is where the service on port serves /metrics. The
// functions host serves none: it holds one runtime per function, and one
// process can serve only one of them.
func (c stackConfig) metricsAddr(port int) string {
	if port == c.FunctionsPort {
		return ""
	}
	return "127.0.0.1:" + strconv.Itoa(metricsPort(port))
}

// prometheusConfig scrapes every service of the stack every 5 seconds;
// evaluation is the monitor's, so Prometheus has no rules.
func (c stackConfig) prometheusConfig() string {
	var b strings.Builder
	b.WriteString("global:\n  scrape_interval: 5s\n  evaluation_interval: 1m\nscrape_configs:\n  - job_name: autonomics\n    static_configs:\n      - targets:\n")
	for _, p := range []int{c.QueryPort, c.integratorPort(), c.monitorPort(), c.actuatorPort(), c.ingestPort(),
		c.marketplacePort(), c.signupPort(), c.consolePort()} {
		fmt.Fprintf(&b, "          - 127.0.0.1:%d\n", metricsPort(p))
	}
	return b.String()
}

// prometheusPort follows the stand-ins' port.
func (c stackConfig) prometheusPort() int { return c.QueryPort + 9 }

// prometheusURL is the base URL of the local Prometheus.
func (c stackConfig) prometheusURL() string { return serviceURL(c.prometheusPort()) }

// monitorEngineEnv points the monitor at the local Prometheus.
func (c stackConfig) monitorEngineEnv() []string {
	return []string{
		monitorenv.PrometheusURL + "=" + c.prometheusURL(),
		monitorenv.PrometheusAuth + "=none",
		monitorenv.RemoteWriteURL + "=" + c.prometheusURL() + "/api/v1/write",
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
		return fault.Errorf(fault.Unavailable, op,
			"%s is not installed: apt-get install prometheus (make test and make demo install it through .ci/emulators.sh)", bin)
	}
	dir := filepath.Join(runDir, "prometheus", s.cfg.Database)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fault.Wrap(fault.Internal, op, err)
	}
	cfgFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgFile, []byte(s.cfg.prometheusConfig()), 0o644); err != nil {
		return fault.Wrap(fault.Internal, op, err)
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
			return fault.Wrap(fault.Unavailable, op, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fault.Errorf(fault.Unavailable, op, "Prometheus not ready after %v; see %s", readyTimeout, s.prometheus.logPath)
		}
	}
}

// describePrometheus prints the metrics engine.
func (s *stack) describePrometheus(w interface{ Write([]byte) (int, error) }) {
	fmt.Fprintf(w, "  Prometheus          %s  pid %d  log %s  (the monitor's metrics engine)\n",
		s.cfg.prometheusURL(), s.prometheus.pid(), rel(s.cfg.Root, s.prometheus.logPath))
}
