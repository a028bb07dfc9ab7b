package main

import (
	"context"
	"io/fs"
	"log/slog"
	"time"

	"github.com/autonomics/autonomics/shared/alerting"
	"github.com/autonomics/autonomics/shared/engine"
	"github.com/autonomics/autonomics/shared/health"
	"github.com/autonomics/autonomics/shared/topic"
)

// deps are what the service is built from; main wires the cloud adapters,
// tests the in-memory ones or the emulators.
type deps struct {
	cfg       config
	alerts    alerting.Store
	publisher engine.Publisher
	topics    topic.Names
	// checks are the dependency checks of /v1/health.
	checks []health.Checker
	// clock is the evaluation and validation clock.
	clock func() time.Time
	// fsys is the root file system the health sampler reads; nil for "/".
	fsys fs.FS
	log  *slog.Logger
}

// service is one monitor instance.
type service struct {
	d        deps
	series   *alerting.SeriesSet
	receipts *alerting.ReceiptMetrics
	runner   *alerting.Runner
	health   *health.Monitor
	// metricsGate and pushGate bound the requests decoded at once.
	metricsGate *gate
	pushGate    *gate
}

func newService(d deps) (*service, error) {
	if d.clock == nil {
		d.clock = time.Now
	}
	if d.log == nil {
		d.log = slog.Default()
	}
	receipts := alerting.NewReceiptMetricsWith(d.cfg.Receipts)
	so := d.cfg.Series
	// The receipt-derived series have a budget of their own, exactly as
	// large as they can grow, so that pushed metrics never crowd them out.
	so.Reserved, so.ReservedSeries = alerting.ReceiptMetricNames, receipts.MaxSeries()
	so.History = map[string]time.Duration{}
	if f := d.cfg.Fairness; f != nil {
		so.History[f.Metric] = f.Window
	}
	s := &service{
		d:           d,
		series:      alerting.NewSeriesSet(d.clock(), so),
		receipts:    receipts,
		metricsGate: newGate(d.cfg.Limits.MetricsConcurrency, d.cfg.Limits.Wait),
		pushGate:    newGate(d.cfg.Limits.PushConcurrency, d.cfg.Limits.Wait),
	}
	r, err := alerting.NewRunner(alerting.RunnerOptions{
		Store: d.alerts, Publisher: notifier{pub: d.publisher, topics: d.topics}, Series: s.series,
		Holder: d.cfg.Holder, LeaseTTL: d.cfg.LeaseTTL, SeriesRetention: d.cfg.SeriesRetention,
		Clock: d.clock, Options: d.cfg.Eval, Fairness: d.cfg.Fairness, Logger: d.log,
	})
	if err != nil {
		return nil, err
	}
	s.runner = r
	s.health = &health.Monitor{
		Sampler: health.NewSampler(d.fsys, d.clock), Thresholds: d.cfg.Thresholds,
		Checks: d.checks, Timeout: d.cfg.CheckTimeout, Clock: d.clock,
	}
	return s, nil
}

// evaluate refreshes the receipt-derived gauges and runs one cycle.
func (s *service) evaluate(ctx context.Context) (alerting.Report, error) {
	if samples := s.receipts.Samples(s.d.clock().UTC()); len(samples) > 0 {
		if err := s.series.AddReserved(samples...); err != nil {
			// The reserved budget is sized to the deriver's bound.
			s.d.log.ErrorContext(ctx, "receipt metrics dropped", "error", err.Error())
		}
	}
	return s.runner.Evaluate(ctx)
}

// run evaluates every interval and samples the resources every 10 seconds
// until ctx is done.
func (s *service) run(ctx context.Context) {
	sample := time.NewTicker(10 * time.Second)
	defer sample.Stop()
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
		case <-tick:
			if _, err := s.evaluate(ctx); err != nil && ctx.Err() == nil {
				s.d.log.ErrorContext(ctx, "evaluation failed", "error", err.Error())
			}
		}
	}
}

// close gives up the evaluation lease.
func (s *service) close(ctx context.Context) error {
	return s.runner.Release(ctx)
}
