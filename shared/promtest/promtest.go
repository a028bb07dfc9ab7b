// Package promtest starts a real Prometheus server for tests: the binary
// at /usr/bin/prometheus (Debian's prometheus package), or the one named
// by PROMTEST_BINARY, with its own temporary storage, a free port on
// 127.0.0.1, no scrape targets and the remote write receiver on, so that a
// test feeds it known samples with Write and queries them back.
//
// Tests that need it skip when the binary is absent, unless CI=true: then
// they fail, so that a CI run without the binary does not pass quietly.
package promtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/alerting"
	"github.com/autonomics/autonomics/shared/alerting/prom"
)

// DefaultBinary is where Debian's prometheus package installs the server.
const DefaultBinary = "/usr/bin/prometheus"

// EnvBinary names another server binary.
const EnvBinary = "PROMTEST_BINARY"

// Server is a running Prometheus server.
type Server struct {
	// URL is the base URL of its HTTP API, such as http://127.0.0.1:40123.
	URL string
	// WriteURL is its remote write endpoint.
	WriteURL string
	cmd      *exec.Cmd
	dir      string
	log      *os.File
	done     chan struct{}
	stopped  atomic.Bool
	writer   *prom.Writer
	querier  *prom.Querier
}

// Binary returns the server binary to run, or "" when there is none.
func Binary() string {
	b := os.Getenv(EnvBinary)
	if b == "" {
		b = DefaultBinary
	}
	if _, err := os.Stat(b); err != nil {
		return ""
	}
	return b
}

// Require skips tb when there is no server binary, or fails it when the
// CI variable is true.
func Require(tb testing.TB) string {
	tb.Helper()
	b := Binary()
	if b != "" {
		return b
	}
	if os.Getenv("CI") == "true" {
		tb.Fatalf("promtest: no Prometheus binary at %s (%s): install the prometheus package", DefaultBinary, EnvBinary)
	}
	tb.Skipf("promtest: no Prometheus binary at %s; install the prometheus package or set %s", DefaultBinary, EnvBinary)
	return ""
}

// Start starts a server for tb and stops it when tb ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	bin := Require(tb)
	dir := tb.TempDir()
	s, err := start(bin, dir)
	if err != nil {
		tb.Fatalf("promtest: %v", err)
	}
	tb.Cleanup(s.Stop)
	return s
}

var (
	sharedMu  sync.Mutex
	sharedSrv *Server
)

// Shared returns one server for the whole test binary, starting it on
// first use; tests keep apart by using metric names of their own
// (UniqueName). Call StopShared from TestMain after m.Run to stop it.
func Shared(tb testing.TB) *Server {
	tb.Helper()
	bin := Require(tb)
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if sharedSrv != nil && !sharedSrv.stopped.Load() {
		return sharedSrv
	}
	dir, err := os.MkdirTemp("", "promtest-")
	if err != nil {
		tb.Fatalf("promtest: %v", err)
	}
	s, err := start(bin, dir)
	if err != nil {
		os.RemoveAll(dir)
		tb.Fatalf("promtest: %v", err)
	}
	sharedSrv = s
	return s
}

// StopShared stops the server of Shared, if one was started, and removes
// its storage.
func StopShared() {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if sharedSrv != nil {
		sharedSrv.Stop()
		os.RemoveAll(sharedSrv.dir)
		sharedSrv = nil
	}
}

var unique atomic.Int64

// UniqueName returns base with a suffix no other call in this process
// returns, as a metric name of a test's own.
func UniqueName(base string) string {
	return base + "_t" + strconv.FormatInt(unique.Add(1), 10) + "_" + strconv.Itoa(os.Getpid())
}

func start(bin, dir string) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte("global:\n  scrape_interval: 1m\n  evaluation_interval: 1m\n"), 0o600); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.Command(bin,
		"--config.file="+cfg,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--storage.tsdb.retention.time=2d",
		"--web.listen-address="+addr,
		"--web.enable-remote-write-receiver",
		"--query.lookback-delta=5m",
		"--log.level=warn",
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	s := &Server{URL: "http://" + addr, WriteURL: "http://" + addr + "/api/v1/write", cmd: cmd, dir: dir, log: logf, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(s.done) }()
	if err := s.waitReady(30 * time.Second); err != nil {
		s.Stop()
		tail, _ := os.ReadFile(logf.Name())
		if len(tail) > 2000 {
			tail = tail[len(tail)-2000:]
		}
		return nil, fmt.Errorf("%v; log: %s", err, tail)
	}
	if s.writer, err = prom.NewWriter(prom.WriterOptions{URL: s.WriteURL}); err != nil {
		s.Stop()
		return nil, err
	}
	if s.querier, err = prom.New(prom.Options{URL: s.URL}); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// waitReady polls /-/ready until the server answers 200.
func (s *Server) waitReady(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	client := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return errors.New("prometheus exited before it was ready")
		default:
		}
		resp, err := client.Get(s.URL + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("prometheus not ready at %s after %v", s.URL, limit)
}

// Stop stops the server (SIGTERM, then SIGKILL after 10 seconds); a
// stopped server refuses connections. It is idempotent.
func (s *Server) Stop() {
	if !s.stopped.CompareAndSwap(false, true) {
		return
	}
	if s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(os.Interrupt)
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	}
	s.log.Close()
}

// Write remote-writes samples to the server, failing tb on error.
func (s *Server) Write(tb testing.TB, samples ...alerting.Sample) {
	tb.Helper()
	if err := s.writer.Write(context.Background(), samples); err != nil {
		tb.Fatalf("promtest: remote write of %d samples: %v", len(samples), err)
	}
}

// Querier returns a querier of the server.
func (s *Server) Querier() *prom.Querier { return s.querier }

// freePort returns a TCP port free on 127.0.0.1 now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
