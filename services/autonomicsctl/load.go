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

	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/fault"
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
	// Mode selects the phases: loadModeDirect, loadModeEmulator or
	// loadModeBoth.
	Mode string
}

// Modes of the load.
const (
	// loadModeDirect posts push bodies straight to the functions host,
	// as production Pub/Sub push delivers them.
	loadModeDirect = "direct"
	// loadModeEmulator publishes to the emulator's topics and lets its
	// push subscriptions deliver.
	loadModeEmulator = "emulator"
	// loadModeBoth runs the direct phase, then the emulator-push phase.
	loadModeBoth = "both"
)

// direct and emulator report whether the mode includes each phase.
func (l loadConfig) direct() bool   { return l.Mode == loadModeDirect || l.Mode == loadModeBoth }
func (l loadConfig) emulator() bool { return l.Mode == loadModeEmulator || l.Mode == loadModeBoth }

// validate checks the bounds of the flags.
func (l loadConfig) validate() error {
	const op = "autonomicsctl load"
	switch {
	case l.Tenants < 1 || l.Tenants > maxLoadTenants:
		return fault.Errorf(fault.Invalid, op, "-tenants %d: want 1 to %d", l.Tenants, maxLoadTenants)
	case l.Events < 1 || l.Events > maxLoadEvents:
		return fault.Errorf(fault.Invalid, op, "-events %d: want 1 to %d", l.Events, maxLoadEvents)
	case l.Concurrency < 1 || l.Concurrency > maxLoadConcurrency:
		return fault.Errorf(fault.Invalid, op, "-concurrency %d: want 1 to %d", l.Concurrency, maxLoadConcurrency)
	case l.Timeout <= 0:
		return fault.Errorf(fault.Invalid, op, "-timeout %v: want a positive duration", l.Timeout)
	case l.Mode != loadModeDirect && l.Mode != loadModeEmulator && l.Mode != loadModeBoth:
		return fault.Errorf(fault.Invalid, op, "-mode %q: want %s, %s or %s", l.Mode, loadModeDirect, loadModeEmulator, loadModeBoth)
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
	// Retries counts redeliveries of the direct phase: answers other
	// than 2xx, and failed connections.
	Retries int `json:"retries,omitempty"`
	// MissingReceipts counts the direct phase's decisions whose receipt
	// did not arrive within the grace period after the last decision.
	MissingReceipts int        `json:"missing_receipts,omitempty"`
	CPU             *cpuReport `json:"cpu,omitempty"`
}

// baselineResult is the bare-transaction phase with the CPU it took: the
// load driver's share is what the Firestore client costs a transaction of
// the decision's shape, the emulator's what serving it costs.
type baselineResult struct {
	phaseResult
	CPU *cpuReport `json:"cpu,omitempty"`
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
	Run         string `json:"run"`
	Mode        string `json:"mode"`
	Tenants     int    `json:"tenants"`
	Events      int    `json:"events"`
	Concurrency int    `json:"concurrency"`
	// Direct is the direct-push phase: push bodies posted to the
	// functions host.
	Direct *endToEnd `json:"direct_push,omitempty"`
	// EndToEnd is the emulator-push phase: publish → receipt.
	EndToEnd *endToEnd       `json:"end_to_end,omitempty"`
	Baseline *baselineResult `json:"baseline,omitempty"`
	// DirectRatio and Ratio are the direct and the emulator-push
	// decisions/s divided by the baseline's transactions/s.
	DirectRatio float64   `json:"direct_ratio,omitempty"`
	Ratio       float64   `json:"ratio,omitempty"`
	RSS         rssReport `json:"functions_rss"`
}

// directTarget is the share of the baseline rate the direct phase aims at.
const directTarget = 0.5

// functionsCPUTarget is the functions host's CPU budget per decision.
const functionsCPUTarget = 0.5

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

	rep := loadReport{Run: run, Mode: l.Mode, Tenants: l.Tenants, Events: l.Events, Concurrency: l.Concurrency}
	procs := s.cpuProcesses()
	// The baseline runs first, on the emulator before the load fills it
	// and while the stack is idle, so that the ratios err against the
	// stack rather than for it.
	if l.Baseline {
		fmt.Fprintf(progress, "baseline: %d bare Firestore transactions, %d in parallel\n", l.Events, l.Concurrency)
		before := takeCPUSnapshot(procs)
		b, err := measureBaseline(ctx, o.stack, l, run)
		if err != nil {
			return err
		}
		cpu := cpuBetween(procs, before, takeCPUSnapshot(procs), b.Completed)
		rep.Baseline = &baselineResult{phaseResult: b, CPU: &cpu}
	}
	sampler := startRSSSampler(s.functions.pid(), time.Second)
	var missing []string
	if l.direct() {
		d, err := measureDirect(ctx, s, l, run, procs, progress)
		if err != nil {
			rep.RSS = sampler.stop()
			return err
		}
		rep.Direct = &d
		if n := d.Planned - d.Completed; n > 0 {
			missing = append(missing, fmt.Sprintf("%d of %d direct pushes were not acknowledged within -timeout %v", n, d.Planned, l.Timeout))
		}
	}
	if l.emulator() && ctx.Err() == nil {
		e2e, err := measureEndToEnd(ctx, s, l, run, procs, progress)
		if err != nil {
			rep.RSS = sampler.stop()
			return err
		}
		rep.EndToEnd = &e2e
		if n := e2e.Planned - e2e.Completed; n > 0 {
			missing = append(missing, fmt.Sprintf("%d of %d events got no receipt within -timeout %v", n, e2e.Planned, l.Timeout))
		}
	}
	rep.RSS = sampler.stop()
	if b := rep.Baseline; b != nil && b.PerSecond > 0 {
		if rep.Direct != nil {
			rep.DirectRatio = roundTo(rep.Direct.PerSecond/b.PerSecond, 3)
		}
		if rep.EndToEnd != nil {
			rep.Ratio = roundTo(rep.EndToEnd.PerSecond/b.PerSecond, 3)
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
	if len(missing) > 0 {
		return errors.New(strings.Join(missing, "; "))
	}
	return nil
}

// printLoadReport prints rep compactly.
func printLoadReport(w io.Writer, rep loadReport) {
	fmt.Fprintf(w, "\nload %s: %d events over %d tenants, %d in flight, mode %s\n", rep.Run, rep.Events, rep.Tenants, rep.Concurrency, rep.Mode)
	if d := rep.Direct; d != nil {
		fmt.Fprintf(w, "direct push (push bodies POSTed to the functions host → acknowledged)\n")
		printPhase(w, d.phaseResult, "decisions/s")
		fmt.Fprintf(w, "  outcomes   receipts: accepted %d, rejected %d, missing %d; dead letters %d, failed pushes %d, retries %d, duplicate receipts %d\n",
			d.Accepted, d.Rejected, d.MissingReceipts, d.DeadLetters, d.Errors, d.Retries, d.DuplicateReceipts)
		printCPUReport(w, d.CPU, "decision")
	}
	if e := rep.EndToEnd; e != nil {
		fmt.Fprintf(w, "emulator push (publish → receipt on autonomics-receipts)\n")
		printPhase(w, e.phaseResult, "events/s")
		fmt.Fprintf(w, "  outcomes   accepted %d, rejected %d; dead letters %d, publish errors %d, duplicate receipts %d\n",
			e.Accepted, e.Rejected, e.DeadLetters, e.PublishErrors, e.DuplicateReceipts)
		printCPUReport(w, e.CPU, "decision")
	}
	if b := rep.Baseline; b != nil {
		fmt.Fprintf(w, "baseline (bare Firestore transactions: read dedup + instance, write instance, dedup, receipt, outbox)\n")
		printPhase(w, b.phaseResult, "tx/s")
		fmt.Fprintf(w, "  errors     %d\n", b.Errors)
		printCPUReport(w, b.CPU, "transaction")
	}
	printSummary(w, rep)
	r := rep.RSS
	if r.Samples == 0 {
		fmt.Fprintf(w, "functions host RSS  not sampled: %s\n", r.Note)
		return
	}
	fmt.Fprintf(w, "functions host RSS  first %s  min %s  max %s  final %s  (%d samples, 1/s)\n",
		mib(r.FirstKB), mib(r.MinKB), mib(r.MaxKB), mib(r.FinalKB), r.Samples)
}

// printPhase prints a phase's rate and latencies.
func printPhase(w io.Writer, p phaseResult, unit string) {
	fmt.Fprintf(w, "  completed  %d/%d in %.2fs = %.1f %s\n", p.Completed, p.Planned, p.Seconds, p.PerSecond, unit)
	fmt.Fprintf(w, "  latency    p50 %.1fms  p99 %.1fms  max %.1fms  mean %.1fms\n", p.P50Ms, p.P99Ms, p.MaxMs, p.MeanMs)
}

// printSummary prints the phases side by side with their ratios to the
// baseline and the targets.
func printSummary(w io.Writer, rep loadReport) {
	type row struct {
		name  string
		p     phaseResult
		ratio string
	}
	var rows []row
	ratio := func(r float64, target string) string {
		if rep.Baseline == nil {
			return "-"
		}
		return fmt.Sprintf("%.3f%s", r, target)
	}
	if d := rep.Direct; d != nil {
		mark := "  (target ≥ 0.5: met)"
		if rep.DirectRatio < directTarget {
			mark = "  (target ≥ 0.5: NOT met)"
		}
		rows = append(rows, row{"direct push", d.phaseResult, ratio(rep.DirectRatio, mark)})
	}
	if e := rep.EndToEnd; e != nil {
		rows = append(rows, row{"emulator push", e.phaseResult, ratio(rep.Ratio, "")})
	}
	if b := rep.Baseline; b != nil {
		rows = append(rows, row{"bare transactions", b.phaseResult, "1"})
	}
	if len(rows) == 0 {
		return
	}
	fmt.Fprintf(w, "summary\n")
	fmt.Fprintf(w, "  %-18s %12s %9s %9s  %s\n", "phase", "decisions/s", "p50 ms", "p99 ms", "ratio to baseline")
	for _, r := range rows {
		fmt.Fprintf(w, "  %-18s %12.1f %9.1f %9.1f  %s\n", r.name, r.p.PerSecond, r.p.P50Ms, r.p.P99Ms, r.ratio)
	}
	if d := rep.Direct; d != nil && d.CPU != nil {
		for _, u := range d.CPU.Processes {
			if u.Process != functionsProcess || u.Note != "" {
				continue
			}
			verdict := "met"
			if u.MsPerDecision > functionsCPUTarget {
				verdict = "NOT met"
			}
			fmt.Fprintf(w, "  functions host CPU %.3f ms/decision in the direct phase (target ≤ %.1f: %s)\n", u.MsPerDecision, functionsCPUTarget, verdict)
		}
	}
	if d, b := rep.Direct, rep.Baseline; d != nil && b != nil {
		printCPUComparison(w, compareCPU(d.CPU, b.CPU), rep.DirectRatio)
	}
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

// measureEndToEnd publishes the load and waits for the receipts,
// measuring the CPU of procs over the phase.
func measureEndToEnd(ctx context.Context, s *stack, l loadConfig, run string, procs []cpuProcess, progress io.Writer) (endToEnd, error) {
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
	fmt.Fprintf(progress, "emulator push: warming up the functions host\n")
	q := newQueryClient(s.cfg.queryURL())
	for i, e := range warmupEvents("load-warmup") {
		id := fmt.Sprintf("%s-warmup-%d", run, i)
		if err := publish(ctx, id, e); err != nil {
			return endToEnd{}, err
		}
		if err := awaitReceipt(ctx, q, id, time.Minute); err != nil {
			return endToEnd{}, fmt.Errorf("warm-up: %w; see %s", err, s.functions.logPath)
		}
	}

	tr := newTracker(l.Events, l.Concurrency)
	stopReceiving, recvErr := receiveOutcomes(ctx, s, tr)
	defer stopReceiving()

	before := takeCPUSnapshot(procs)
	fmt.Fprintf(progress, "emulator push: publishing %d events over %d tenants, %d in flight (timeout %v)\n", l.Events, l.Tenants, l.Concurrency, l.Timeout)
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
	after := takeCPUSnapshot(procs)
	if err := recvErr(); err != nil {
		return endToEnd{}, err
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	elapsed := tr.last.Sub(tr.first)
	cpu := cpuBetween(procs, before, after, tr.accepted+tr.rejected)
	return endToEnd{
		CPU:               &cpu,
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
			return fault.Errorf(fault.Unavailable, "autonomicsctl.awaitReceipt", "no receipt for %s within %v", id, limit)
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
	return 0, fault.Errorf(fault.NotFound, "autonomicsctl.readRSS", "no VmRSS line in kB")
}

// firestoreClient connects to a database of the emulator.
func firestoreClient(ctx context.Context, project, database string) (*fs.Client, error) {
	c, err := fs.NewClientWithDatabase(ctx, project, database)
	if err != nil {
		return nil, fault.Wrap(fault.Unavailable, "autonomicsctl firestore", err)
	}
	return c, nil
}
