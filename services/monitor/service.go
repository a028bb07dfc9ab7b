package main

import (
	"context"
	"io/fs"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/autonomics/autonomics/shared/alerting"
	"github.com/autonomics/autonomics/shared/engine"
	"github.com/autonomics/autonomics/shared/health"
	"github.com/autonomics/autonomics/shared/topic"
)

// metricsEngine is the metrics engine the policies query: Managed Service
// for Prometheus in production, a Prometheus server locally.
type metricsEngine interface {
	alerting.Querier
	// Check evaluates expr once: an expression the engine refuses is a
	// fault.Invalid error.
	Check(ctx context.Context, expr string) error
	// Ping is the engine's health check.
	Ping(ctx context.Context) error
}

// intake forwards samples to the metrics engine: remote write locally,
// the Telemetry API in production.
type intake interface {
	Write(ctx context.Context, samples []alerting.Sample) error
}

// InstanceLabel is the label of the receipt-derived metrics naming the
// monitor instance that derived them: each instance sees the receipts
// Pub/Sub delivers to it, so their series are per instance, and policies
// aggregate them (sum for the counters, max for the gauges).
const InstanceLabel = "monitor_instance"

// deps are what the service is built from; main wires the cloud adapters,
// tests the in-memory ones, a real Prometheus or the emulators.
type deps struct {
	cfg       config
	alerts    alerting.Store
	publisher engine.Publisher
	topics    topic.Names
	engine    metricsEngine
	intake    intake
	// checks are the dependency checks of /v1/health; the metrics engine's
	// is added by newService.
	checks []health.Checker
	// clock is the evaluation and validation clock.
	clock func() time.Time
	// fsys is the root file system the health sampler reads; nil for "/".
	fsys fs.FS
	log  *slog.Logger
}

// service is one monitor instance. It keeps no metric series: they are in
// the metrics engine; alerts, policies, silences and the lease are in the
// store. What it holds in memory is bounded and rebuilt by itself: the
// receipt-derived counters and windows of the receipts delivered to it.
type service struct {
	d        deps
	receipts *alerting.ReceiptMetrics
	runner   *alerting.Runner
	health   *health.Monitor
	// metricsGate and pushGate bound the requests decoded at once.
	metricsGate *gate
	pushGate    *gate
	// flushedAt is when the receipt-derived metrics were last forwarded
	// (Unix nanoseconds of the clock), flushing whether one is running.
	flushedAt atomic.Int64
	flushing  atomic.Bool
	// flushedMs is the sample time of the last forward, in milliseconds.
	flushedMs atomic.Int64
}

func newService(d deps) (*service, error) {
	if d.clock == nil {
		d.clock = time.Now
	}
	if d.log == nil {
		d.log = slog.Default()
	}
	s := &service{
		d:           d,
		receipts:    alerting.NewReceiptMetricsWith(d.cfg.Receipts),
		metricsGate: newGate(d.cfg.Limits.MetricsConcurrency, d.cfg.Limits.Wait),
		pushGate:    newGate(d.cfg.Limits.PushConcurrency, d.cfg.Limits.Wait),
	}
	r, err := alerting.NewRunner(alerting.RunnerOptions{
		Store: d.alerts, Publisher: notifier{pub: d.publisher, topics: d.topics}, Querier: d.engine,
		Holder: d.cfg.Holder, LeaseTTL: d.cfg.LeaseTTL, SeriesRetention: d.cfg.SeriesRetention,
		Parallelism: d.cfg.Engine.Parallelism, QueryTimeout: d.cfg.Engine.QueryTimeout,
		Clock: d.clock, Options: d.cfg.Eval, Fairness: d.cfg.Fairness, Logger: d.log,
	})
	if err != nil {
		return nil, err
	}
	s.runner = r
	checks := append(append([]health.Checker(nil), d.checks...), health.PingDegraded("metrics_engine", d.engine.Ping))
	s.health = &health.Monitor{
		Sampler: health.NewSampler(d.fsys, d.clock), Thresholds: d.cfg.Thresholds,
		Checks: checks, Timeout: d.cfg.CheckTimeout, Clock: d.clock,
	}
	return s, nil
}

// flushReceipts forwards this instance's receipt-derived metrics to the
// metrics engine. A failed forward loses nothing: the next one carries the
// same counters.
func (s *service) flushReceipts(ctx context.Context) error {
	now := s.d.clock().UTC()
	s.flushedAt.Store(now.UnixNano())
	// Each forward's samples are a millisecond at least after the last
	// one's: the engine refuses a second, different value at one time.
	at := now.Truncate(time.Millisecond)
	for {
		last := s.flushedMs.Load()
		if at.UnixMilli() <= last {
			at = time.UnixMilli(last + 1).UTC()
		}
		if s.flushedMs.CompareAndSwap(last, at.UnixMilli()) {
			break
		}
	}
	samples := s.receipts.Snapshot(at)
	if len(samples) == 0 {
		return nil
	}
	for i := range samples {
		l := samples[i].Labels.Clone()
		l[InstanceLabel] = s.d.cfg.Holder
		samples[i].Labels = l
	}
	return s.d.intake.Write(ctx, samples)
}

// flushIfDue forwards the receipt-derived metrics when the flush interval
// has passed since the last forward and no forward is running. Receipt
// pushes call it, so that an instance whose CPU is throttled between
// requests (Cloud Run) still forwards while it receives receipts.
func (s *service) flushIfDue(ctx context.Context) {
	if s.d.clock().UnixNano()-s.flushedAt.Load() < int64(max(s.d.cfg.Engine.ReceiptFlush, time.Second)) {
		return
	}
	if !s.flushing.CompareAndSwap(false, true) {
		return
	}
	defer s.flushing.Store(false)
	if err := s.flushReceipts(ctx); err != nil {
		s.d.log.WarnContext(ctx, "receipt metrics not forwarded, will retry", "error", err.Error())
	}
}

// evaluate forwards the receipt-derived metrics and runs one cycle.
func (s *service) evaluate(ctx context.Context) (alerting.Report, error) {
	if err := s.flushReceipts(ctx); err != nil {
		s.d.log.WarnContext(ctx, "receipt metrics not forwarded, will retry", "error", err.Error())
	}
	return s.runner.Evaluate(ctx)
}

// run evaluates every interval, forwards the receipt-derived metrics
// every flush interval and samples the resources every 10 seconds until
// ctx is done.
func (s *service) run(ctx context.Context) {
	sample := time.NewTicker(10 * time.Second)
	defer sample.Stop()
	flush := time.NewTicker(max(s.d.cfg.Engine.ReceiptFlush, time.Second))
	defer flush.Stop()
	var tick <-chan time.Time
	if s.d.cfg.EvalInterval > 0 {
		t := time.NewTicker(s.d.cfg.EvalInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-sample.C:
			s.health.Sampler.Sample()
		case <-flush.C:
			s.flushIfDue(ctx)
		case <-tick:
			if _, err := s.runner.Evaluate(ctx); err != nil && ctx.Err() == nil {
				s.d.log.ErrorContext(ctx, "evaluation failed", "error", err.Error())
			}
		}
	}
}

// close gives up the evaluation lease.
func (s *service) close(ctx context.Context) error {
	return s.runner.Release(ctx)
}
