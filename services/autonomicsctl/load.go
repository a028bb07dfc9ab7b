package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	fs "cloud.google.com/go/firestore"
	ps "cloud.google.com/go/pubsub/v2"

	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/pubsub"
	"github.com/autonomics/autonomics/shared/store"
)

// loadSource is the CloudEvents source of the events the load publishes.
const loadSource = "autonomicsctl/load"

// Bounds of the load flags.
const (
	maxLoadTenants     = 1_000_000
	maxLoadEvents      = 1_000_000
	maxLoadConcurrency = 1024
)

// loadConfig is the load test's part of the command line.
type loadConfig struct {
	Tenants     int
	Events      int
	Concurrency int
	Timeout     time.Duration
	JSON        bool
	Baseline    bool
}

// validate checks the bounds of the flags.
func (l loadConfig) validate() error {
	const op = "autonomicsctl load"
	switch {
	case l.Tenants < 1 || l.Tenants > maxLoadTenants:
		return governor.Errorf(governor.Invalid, op, "-tenants %d: want 1 to %d", l.Tenants, maxLoadTenants)
	case l.Events < 1 || l.Events > maxLoadEvents:
		return governor.Errorf(governor.Invalid, op, "-events %d: want 1 to %d", l.Events, maxLoadEvents)
	case l.Concurrency < 1 || l.Concurrency > maxLoadConcurrency:
		return governor.Errorf(governor.Invalid, op, "-concurrency %d: want 1 to %d", l.Concurrency, maxLoadConcurrency)
	case l.Timeout <= 0:
		return governor.Errorf(governor.Invalid, op, "-timeout %v: want a positive duration", l.Timeout)
	}
	return nil
}

// loadEvent is one event of the load.
type loadEvent struct {
	Tenant  string
	Domain  governor.Domain
	Name    governor.EventName
	Subject string
	Data    string
}

// loadTenant returns the id of tenant number t.
func loadTenant(t int) string { return fmt.Sprintf("load-%06d", t) }

// loadPlan returns event number i of a load over n tenants: events go
// round-robin over the tenants, and each tenant's k-th event follows a
// script in which every event is accepted: the account is requested and
// verified, a quota limit is set, then usage alternates between billing
// and quota_sla. The first n events thus create the n tenants.
func loadPlan(i, n int) loadEvent {
	e := loadEvent{Tenant: loadTenant(i % n)}
	k := i / n
	switch {
	case k == 0:
		e.Domain, e.Name, e.Subject = account, evRequested, def
	case k == 1:
		e.Domain, e.Name, e.Subject = account, evVerified, def
	case k == 2:
		e.Domain, e.Name, e.Subject, e.Data = quota, "limit_set", "api_calls", `{"limit":1000000000}`
	case k%2 == 1:
		e.Domain, e.Name, e.Subject = billing, evUsage, demoPeriod
		e.Data = `{"meter":"api_calls","quantity":` + strconv.Itoa(10+k) + `}`
	default:
		e.Domain, e.Name, e.Subject = quota, "usage_reported", "api_calls"
		e.Data = `{"usage":` + strconv.Itoa(100*k) + `}`
	}
	if e.Data == "" {
		e.Data = "{}"
	}
	return e
}

// phaseResult is the measurement of one phase.
type phaseResult struct {
	Planned   int     `json:"planned"`
	Completed int     `json:"completed"`
	Seconds   float64 `json:"seconds"`
	PerSecond float64 `json:"per_second"`
	P50Ms     float64 `json:"p50_ms"`
	P99Ms     float64 `json:"p99_ms"`
	MaxMs     float64 `json:"max_ms"`
	MeanMs    float64 `json:"mean_ms"`
	// Errors counts failures: publish errors, dead letters, or failed
	// transactions.
	Errors int `json:"errors"`
}

// newPhaseResult summarises latencies measured over elapsed.
func newPhaseResult(planned int, lat []time.Duration, elapsed time.Duration, errs int) phaseResult {
	s := summarize(lat)
	return phaseResult{
		Planned: planned, Completed: s.Count,
		Seconds: roundTo(elapsed.Seconds(), 2), PerSecond: roundTo(rate(s.Count, elapsed), 1),
		P50Ms: ms(s.P50), P99Ms: ms(s.P99), MaxMs: ms(s.Max), MeanMs: ms(s.Mean),
		Errors: errs,
	}
}

func roundTo(f float64, digits int) float64 {
	v, _ := strconv.ParseFloat(strconv.FormatFloat(f, 'f', digits, 64), 64)
	return v
}

// endToEnd is the end-to-end measurement with its outcome counts.
type endToEnd struct {
	phaseResult
	Accepted          int `json:"accepted"`
	Rejected          int `json:"rejected"`
	DeadLetters       int `json:"dead_letters"`
	PublishErrors     int `json:"publish_errors"`
	DuplicateReceipts int `json:"duplicate_receipts"`
}

// rssReport summarises the functions host's resident memory.
type rssReport struct {
	Samples int    `json:"samples"`
	FirstKB int64  `json:"first_kb"`
	MinKB   int64  `json:"min_kb"`
	MaxKB   int64  `json:"max_kb"`
	FinalKB int64  `json:"final_kb"`
	Note    string `json:"note,omitempty"`
}

// loadReport is the result of a load run.
type loadReport struct {
	Run         string       `json:"run"`
	Tenants     int          `json:"tenants"`
	Events      int          `json:"events"`
	Concurrency int          `json:"concurrency"`
	EndToEnd    endToEnd     `json:"end_to_end"`
	Baseline    *phaseResult `json:"baseline,omitempty"`
	// Ratio is end-to-end events/s divided by baseline transactions/s.
	Ratio float64   `json:"ratio,omitempty"`
	RSS   rssReport `json:"functions_rss"`
}

// runLoad starts the stack, measures and reports.
func runLoad(ctx context.Context, o options, stdout io.Writer) error {
	l := o.load
	run := runID("load", time.Now())
	if o.stack.Database == "" {
		o.stack.Database = run
	}
	progress := stdout
	if l.JSON {
		progress = os.Stderr
	}
	fmt.Fprintf(progress, "starting the local stack (database %s)\n", o.stack.Database)
	s, err := startStack(ctx, o.stack, progress)
	if err != nil {
		return err
	}
	defer s.Stop()
	fmt.Fprintf(progress, "functions host pid %d, query API %s\n", s.functions.pid(), o.stack.queryURL())

	rep := loadReport{Run: run, Tenants: l.Tenants, Events: l.Events, Concurrency: l.Concurrency}
	sampler := startRSSSampler(s.functions.pid(), time.Second)
	e2e, err := measureEndToEnd(ctx, s, l, run, progress)
	rep.RSS = sampler.stop()
	if err != nil {
		return err
	}
	rep.EndToEnd = e2e
	if l.Baseline && ctx.Err() == nil {
		fmt.Fprintf(progress, "baseline: %d bare Firestore transactions, %d in parallel\n", l.Events, l.Concurrency)
		b, err := measureBaseline(ctx, o.stack, l, run)
		if err != nil {
			return err
		}
		rep.Baseline = &b
		if b.PerSecond > 0 {
			rep.Ratio = roundTo(e2e.PerSecond/b.PerSecond, 3)
		}
	}
	if l.JSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		printLoadReport(stdout, rep)
	}
	if missing := e2e.Planned - e2e.Completed; missing > 0 {
		return fmt.Errorf("%d of %d events got no receipt within -timeout %v", missing, e2e.Planned, l.Timeout)
	}
	return nil
}

// printLoadReport prints rep compactly.
func printLoadReport(w io.Writer, rep loadReport) {
	e := rep.EndToEnd
	fmt.Fprintf(w, "\nload %s: %d events over %d tenants, %d in flight\n", rep.Run, rep.Events, rep.Tenants, rep.Concurrency)
	fmt.Fprintf(w, "end to end (publish → receipt on autonomics-receipts)\n")
	fmt.Fprintf(w, "  completed  %d/%d in %.2fs = %.1f events/s\n", e.Completed, e.Planned, e.Seconds, e.PerSecond)
	fmt.Fprintf(w, "  latency    p50 %.1fms  p99 %.1fms  max %.1fms  mean %.1fms\n", e.P50Ms, e.P99Ms, e.MaxMs, e.MeanMs)
	fmt.Fprintf(w, "  outcomes   accepted %d, rejected %d; dead letters %d, publish errors %d, duplicate receipts %d\n",
		e.Accepted, e.Rejected, e.DeadLetters, e.PublishErrors, e.DuplicateReceipts)
	if b := rep.Baseline; b != nil {
		fmt.Fprintf(w, "baseline (bare Firestore transactions: read dedup + instance, write instance, dedup, receipt, outbox)\n")
		fmt.Fprintf(w, "  completed  %d/%d in %.2fs = %.1f tx/s\n", b.Completed, b.Planned, b.Seconds, b.PerSecond)
		fmt.Fprintf(w, "  latency    p50 %.1fms  p99 %.1fms  max %.1fms  mean %.1fms\n", b.P50Ms, b.P99Ms, b.MaxMs, b.MeanMs)
		fmt.Fprintf(w, "  errors     %d\n", b.Errors)
		fmt.Fprintf(w, "ratio        end-to-end / baseline = %.3f\n", rep.Ratio)
	}
	r := rep.RSS
	if r.Samples == 0 {
		fmt.Fprintf(w, "functions host RSS  not sampled: %s\n", r.Note)
		return
	}
	fmt.Fprintf(w, "functions host RSS  first %s  min %s  max %s  final %s  (%d samples, 1/s)\n",
		mib(r.FirstKB), mib(r.MinKB), mib(r.MaxKB), mib(r.FinalKB), r.Samples)
}

func mib(kb int64) string { return fmt.Sprintf("%.1f MiB", float64(kb)/1024) }

// tracker matches receipts to published events and bounds the events in
// flight.
type tracker struct {
	slots chan struct{}

	mu        sync.Mutex
	published map[string]time.Time
	done      map[string]bool
	lat       []time.Duration
	first     time.Time
	last      time.Time
	accepted  int
	rejected  int
	dead      int
	pubErrors int
	dups      int
	finished  chan struct{}
	planned   int
}

func newTracker(planned, concurrency int) *tracker {
	return &tracker{
		slots:     make(chan struct{}, concurrency),
		published: make(map[string]time.Time, planned),
		done:      make(map[string]bool, planned),
		finished:  make(chan struct{}),
		planned:   planned,
	}
}

// start records that event id is about to be published.
func (t *tracker) start(id string, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.first.IsZero() {
		t.first = at
	}
	t.published[id] = at
}

// complete ends event id: outcome is "accepted", "rejected", "dead" or
// "publish_error". A second completion of an id counts as a duplicate.
func (t *tracker) complete(id, outcome string, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	startedAt, ok := t.published[id]
	if !ok {
		return
	}
	if t.done[id] {
		if outcome == "accepted" || outcome == "rejected" {
			t.dups++
		}
		return
	}
	t.done[id] = true
	switch outcome {
	case "accepted":
		t.accepted++
	case "rejected":
		t.rejected++
	case "dead":
		t.dead++
	case "publish_error":
		t.pubErrors++
	}
	if outcome == "accepted" || outcome == "rejected" {
		t.lat = append(t.lat, at.Sub(startedAt))
		if at.After(t.last) {
			t.last = at
		}
	}
	<-t.slots
	if len(t.done) == t.planned {
		close(t.finished)
	}
}

// measureEndToEnd publishes the load and waits for the receipts.
func measureEndToEnd(ctx context.Context, s *stack, l loadConfig, run string, progress io.Writer) (endToEnd, error) {
	pub := pubsub.NewPublisher(s.pubsub, pubsub.PublisherOptions{})
	defer pub.Close()
	names := s.cfg.names()
	publish := func(ctx context.Context, id string, e loadEvent) error {
		data, attrs := event.Encode(governor.Event{
			ID: id, Source: loadSource, Domain: e.Domain, Name: e.Name,
			Tenant: e.Tenant, Subject: e.Subject, Time: time.Now().UTC(), Data: []byte(e.Data),
		})
		return pub.Publish(ctx, store.Message{Topic: names.Domain(e.Domain), Data: data, Attributes: attrs, OrderingKey: e.Tenant})
	}

	// Warm up: one event per domain the load uses, so that the functions
	// host connects its governors before the clock starts.
	fmt.Fprintf(progress, "warming up the functions host\n")
	warm := []loadEvent{
		{Tenant: "load-warmup", Domain: account, Name: evRequested, Subject: def, Data: "{}"},
		{Tenant: "load-warmup", Domain: quota, Name: "limit_set", Subject: "api_calls", Data: `{"limit":10}`},
		{Tenant: "load-warmup", Domain: billing, Name: evUsage, Subject: demoPeriod, Data: `{"meter":"api_calls","quantity":1}`},
	}
	q := newQueryClient(s.cfg.queryURL())
	for i, e := range warm {
		id := fmt.Sprintf("%s-warmup-%d", run, i)
		if err := publish(ctx, id, e); err != nil {
			return endToEnd{}, err
		}
		if err := awaitReceipt(ctx, q, id, time.Minute); err != nil {
			return endToEnd{}, fmt.Errorf("warm-up: %w; see %s", err, s.functions.logPath)
		}
	}

	tr := newTracker(l.Events, l.Concurrency)
	rctx, stopReceiving := context.WithCancel(context.WithoutCancel(ctx))
	defer stopReceiving()
	recvErr := make(chan error, 2)
	go func() {
		recvErr <- pubsub.Receive(rctx, s.pubsub, s.cfg.pullName(pullReceipts), func(_ context.Context, m *ps.Message) {
			at := time.Now()
			m.Ack()
			var r struct {
				ExecutionID string `json:"execution_id"`
				Outcome     string `json:"outcome"`
			}
			if json.Unmarshal(m.Data, &r) == nil {
				tr.complete(r.ExecutionID, r.Outcome, at)
			}
		})
	}()
	go func() {
		recvErr <- pubsub.Receive(rctx, s.pubsub, s.cfg.pullName(pullDeadLetter), func(_ context.Context, m *ps.Message) {
			m.Ack()
			tr.complete(m.Attributes["ce-id"], "dead", time.Now())
		})
	}()

	fmt.Fprintf(progress, "publishing %d events over %d tenants, %d in flight (timeout %v)\n", l.Events, l.Tenants, l.Concurrency, l.Timeout)
	lctx, cancel := context.WithTimeout(ctx, l.Timeout)
	defer cancel()
	var wg sync.WaitGroup
	ticker := time.NewTicker(5 * time.Second)
	defer ticker.Stop()
publishing:
	for i := range l.Events {
		select {
		case tr.slots <- struct{}{}:
		case <-lctx.Done():
			break publishing
		}
		id := run + "-" + strconv.Itoa(i)
		e := loadPlan(i, l.Tenants)
		tr.start(id, time.Now())
		wg.Go(func() {
			if err := publish(lctx, id, e); err != nil {
				tr.complete(id, "publish_error", time.Now())
			}
		})
		select {
		case <-ticker.C:
			tr.mu.Lock()
			fmt.Fprintf(progress, "  %d published, %d done\n", i+1, len(tr.done))
			tr.mu.Unlock()
		default:
		}
	}
	select {
	case <-tr.finished:
	case <-lctx.Done():
	}
	wg.Wait()
	stopReceiving()
	var errs []error
	for range 2 {
		if err := <-recvErr; err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return endToEnd{}, err
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	elapsed := tr.last.Sub(tr.first)
	return endToEnd{
		phaseResult:       newPhaseResult(l.Events, tr.lat, elapsed, tr.dead+tr.pubErrors),
		Accepted:          tr.accepted,
		Rejected:          tr.rejected,
		DeadLetters:       tr.dead,
		PublishErrors:     tr.pubErrors,
		DuplicateReceipts: tr.dups,
	}, nil
}

// awaitReceipt polls the query API until event id has a receipt.
func awaitReceipt(ctx context.Context, q *apiClient, id string, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for {
		rs, err := q.ReceiptsOf(ctx, id)
		if err != nil && ctx.Err() == nil {
			return err
		}
		if len(rs) > 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return governor.Errorf(governor.Unavailable, "autonomicsctl.awaitReceipt", "no receipt for %s within %v", id, limit)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// rssSampler samples a process's resident set size.
type rssSampler struct {
	stopc chan struct{}
	done  chan rssReport
}

// startRSSSampler reads VmRSS of pid every interval until stop.
func startRSSSampler(pid int, every time.Duration) *rssSampler {
	s := &rssSampler{stopc: make(chan struct{}), done: make(chan rssReport, 1)}
	go func() {
		var r rssReport
		add := func() {
			kb, err := readRSS(pid)
			if err != nil {
				r.Note = err.Error()
				return
			}
			if r.Samples == 0 {
				r.FirstKB, r.MinKB = kb, kb
			}
			r.Samples++
			r.MinKB, r.MaxKB, r.FinalKB = min(r.MinKB, kb), max(r.MaxKB, kb), kb
		}
		add()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				add()
			case <-s.stopc:
				add()
				s.done <- r
				return
			}
		}
	}()
	return s
}

// stop ends the sampling and returns the summary.
func (s *rssSampler) stop() rssReport {
	close(s.stopc)
	return <-s.done
}

// readRSS returns VmRSS of pid in kB, from /proc (Linux).
func readRSS(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	return parseVmRSS(string(b))
}

// parseVmRSS extracts the VmRSS line of a /proc/<pid>/status file.
func parseVmRSS(status string) (int64, error) {
	for _, line := range strings.Split(status, "\n") {
		rest, ok := strings.CutPrefix(line, "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			break
		}
		return strconv.ParseInt(f[0], 10, 64)
	}
	return 0, governor.Errorf(governor.NotFound, "autonomicsctl.readRSS", "no VmRSS line in kB")
}

// firestoreClient connects to a database of the emulator.
func firestoreClient(ctx context.Context, project, database string) (*fs.Client, error) {
	c, err := fs.NewClientWithDatabase(ctx, project, database)
	if err != nil {
		return nil, governor.Wrap(governor.Unavailable, "autonomicsctl firestore", err)
	}
	return c, nil
}
