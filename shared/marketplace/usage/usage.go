// Package usage reports the usage of usage-priced Marketplace
// entitlements to Service Control, hourly, from the quota usage the
// governors hold.
//
// Per linked tenant (marketplace.Link), each entitlement instance with a
// usage_reporting_id in its data, and each of the tenant's quota_sla
// metrics, has a Cursor in a WindowStore. A run opens the window from the
// cursor's end to the last whole hour boundary, with the usage delta
// since the last window (after a quota period reset, the usage so far),
// records it as an intent, then checks the consumer with services.check
// and reports with services.report, and only then marks the window done.
// A recorded window is resent unchanged, under the same operationId (the
// UUIDv5 of entitlement, metric and window start), until it is marked
// done: a crash between the report and the record neither loses nor
// double-counts usage, since Service Control deduplicates by operationId.
//
// A check answering checkErrors means the customer must be stopped:
// usage_blocked is published to the entitlement governor (internal topic,
// source autonomics/actuator/usage) and nothing is reported until a check
// passes again, which publishes usage_restored. An entitlement is
// blocked while its Block record says so or while its governor's data
// says "blocked":"usage" (the record's write may have failed after
// usage_blocked went out).
package usage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	"google.golang.org/api/googleapi"
	servicecontrol "google.golang.org/api/servicecontrol/v1"

	"github.com/autonomics/autonomics/shared/engine"
	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/httpjson"
	"github.com/autonomics/autonomics/shared/marketplace"
	"github.com/autonomics/autonomics/shared/store"
)

// Name is the reporter's actuator name; Source is its events' source.
const (
	Name   = "usage"
	Source = engine.ActuatorSourcePrefix + Name
)

// Events the reporter publishes to the entitlement governor.
const (
	EventBlocked  governor.EventName = "usage_blocked"
	EventRestored governor.EventName = "usage_restored"
)

// MetricReports counts operations by outcome: reported, check_failed,
// failed.
const MetricReports = "autonomics.marketplace.usage_reports"

// Outcomes of MetricReports.
const (
	OutcomeReported    = "reported"
	OutcomeCheckFailed = "check_failed"
	OutcomeFailed      = "failed"
)

// OperationName is the operationName of every operation.
const OperationName = "autonomics/usage-report"

// Defaults and limits of Options.
const (
	DefaultWindow = time.Hour
	// MaxRequestBytes is Service Control's limit on a request.
	MaxRequestBytes = 1 << 20
	DefaultAttempts = 4
	DefaultBackoff  = 200 * time.Millisecond
	maxBackoff      = 5 * time.Second
	// listPage is how many links a run reads at a time.
	listPage = 100
	// MaxReason bounds the reason of usage_blocked.
	MaxReason = 512
	// maxHandlerBody bounds what POST /v1/usage/report reads.
	maxHandlerBody = 1 << 10
	// maxErrors bounds the errors a Report lists.
	maxErrors = 20
)

// billable are the entitlement states in which usage is metered: the
// customer is using the service.
var billable = map[governor.State]bool{
	"active": true, "pending_plan_change_approval": true, "pending_plan_change": true, "pending_cancellation": true,
}

// suspended is the state usage_blocked moves an entitlement to.
const suspended governor.State = "suspended"

// opNamespace is the UUIDv5 namespace of operation ids.
var opNamespace = uuid.NewSHA1(uuid.NameSpaceOID, []byte("autonomics.marketplace.usage.operation.v1"))

// OperationID is the operationId of the window of (entitlement, metric)
// that starts at start: a UUIDv5, the same on every resend.
func OperationID(entitlement, metric string, start time.Time) string {
	return uuid.NewSHA1(opNamespace, []byte(entitlement+"\x00"+metric+"\x00"+start.UTC().Format(time.RFC3339Nano))).String()
}

// Accounts lists the linked Procurement accounts (marketplace.Accounts).
type Accounts interface {
	List(ctx context.Context, after string, limit int) ([]marketplace.Link, error)
}

// Governors reads governor instances (store.Store).
type Governors interface {
	Instances(ctx context.Context, tenant string, domain governor.Domain) ([]governor.Instance, error)
}

// Topics names the internal topic of a domain (topic.Names).
type Topics interface {
	Internal(governor.Domain) string
}

// Options configure a Reporter.
type Options struct {
	// Service is the Service Control service name, e.g.
	// "example.gcpmarketplace.example.com".
	Service string
	// Client is the Service Control client.
	Client    *servicecontrol.Service
	Accounts  Accounts
	Governors Governors
	Windows   WindowStore
	Publisher engine.Publisher
	Topics    Topics
	// Metrics maps the quota metrics to report to their Service Control
	// metric names; quota metrics it does not name are not reported. When
	// empty, every quota metric is reported as
	// "<service's first label>/<metric>" (for the service
	// example.gcpmarketplace.example.com and the metric api_calls,
	// "example/api_calls", as Producer Portal names metrics).
	Metrics map[string]string
	// Now is time.Now when nil.
	Now    func() time.Time
	Logger *slog.Logger
	// MeterProvider receives the metrics; no-op when nil.
	MeterProvider metric.MeterProvider
	// Window is the reporting interval; DefaultWindow when 0.
	Window time.Duration
	// MaxRequestBytes bounds a report request; MaxRequestBytes when 0 or
	// larger.
	MaxRequestBytes int
	// Attempts and Backoff are the retries of a transient Service Control
	// failure within a run: Attempts calls in all (DefaultAttempts when
	// 0), waiting Backoff, doubled each time, with jitter, in between
	// (DefaultBackoff when 0).
	Attempts int
	Backoff  time.Duration
	// Callers, when set, are the only caller emails (the scheduler's
	// identity) Handler accepts; others are answered 403 and run nothing.
	Callers []string
}

// Reporter reports usage. It is safe for concurrent use; runs in one
// process do not overlap, and runs in several are kept apart by the
// cursors' versions.
type Reporter struct {
	o       Options
	run     sync.Mutex
	reports metric.Int64Counter
}

// New returns a Reporter after checking its options.
func New(o Options) (*Reporter, error) {
	const op = "usage.New"
	if o.Service == "" || o.Client == nil || o.Accounts == nil || o.Governors == nil || o.Windows == nil || o.Publisher == nil || o.Topics == nil {
		return nil, fault.Errorf(fault.Invalid, op, "service, client, accounts, governors, windows, publisher and topics are required")
	}
	for q, m := range o.Metrics {
		if !validID(q) || m == "" || len(m) > 256 {
			return nil, fault.Errorf(fault.Invalid, op, "metric mapping %q → %q: want a quota metric id and a metric name", q, m)
		}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MeterProvider == nil {
		o.MeterProvider = noop.NewMeterProvider()
	}
	if o.Window <= 0 {
		o.Window = DefaultWindow
	}
	if o.MaxRequestBytes <= 0 || o.MaxRequestBytes > MaxRequestBytes {
		o.MaxRequestBytes = MaxRequestBytes
	}
	if o.Attempts <= 0 {
		o.Attempts = DefaultAttempts
	}
	if o.Backoff <= 0 {
		o.Backoff = DefaultBackoff
	}
	m := o.MeterProvider.Meter("github.com/autonomics/autonomics/shared/marketplace/usage")
	c, err := m.Int64Counter(MetricReports, metric.WithDescription("Usage operations sent to Service Control, by outcome."))
	if err != nil {
		return nil, fault.Wrap(fault.Internal, op, err)
	}
	return &Reporter{o: o, reports: c}, nil
}

// MetricName returns the Service Control metric name of a quota metric,
// and whether the metric is reported at all: with Options.Metrics set,
// only the metrics it maps are; without, every quota metric is, under its
// default name.
func (r *Reporter) MetricName(quota string) (string, bool) {
	if len(r.o.Metrics) > 0 {
		m, ok := r.o.Metrics[quota]
		return m, ok
	}
	prefix, _, _ := strings.Cut(r.o.Service, ".")
	return prefix + "/" + quota, true
}

// Report is what a run did.
type Report struct {
	// Boundary is the hour boundary windows were closed at.
	Boundary time.Time `json:"boundary"`
	Tenants  int       `json:"tenants"`
	// Entitlements counts the usage-reporting entitlements seen.
	Entitlements int `json:"entitlements"`
	// Opened counts the windows recorded this run.
	Opened int `json:"opened"`
	// Reported counts the operations Service Control accepted, Resent
	// those of them recorded by an earlier run, Late those whose usage is
	// older than a window.
	Reported int `json:"reported"`
	Resent   int `json:"resent"`
	Late     int `json:"late"`
	// CheckFailed counts the operations held back by a check error.
	CheckFailed int `json:"check_failed"`
	// Failed counts the operations left for the next run.
	Failed int `json:"failed"`
	// Blocked and Restored count usage_blocked and usage_restored events.
	Blocked  int `json:"blocked"`
	Restored int `json:"restored"`
	// Requests counts report requests.
	Requests int `json:"requests"`
	// Errors are the first errors met.
	Errors []string `json:"errors,omitempty"`
}

func (rep *Report) fail(err error) {
	if len(rep.Errors) < maxErrors {
		rep.Errors = append(rep.Errors, httpjson.Truncate(err.Error(), 512))
	}
}

// job is one operation of a run: a cursor and the index of its pending
// window.
type job struct {
	cur    *state
	idx    int
	window Window
	resent bool
}

// state is a cursor being worked on: as last written, its pending windows
// when the run planned them, how many of those are written done and how
// many Service Control accepted in order.
type state struct {
	c         Cursor
	orig      []Window
	confirmed int
	ok        int
}

// entitlement is what a run knows of one usage-reporting entitlement.
type entitlement struct {
	tenant, id, consumer string
	state                governor.State
	// usageBlocked is the governor's own word that the entitlement is
	// suspended by a usage block (its data has "blocked":"usage"): it
	// stands for the Block record when writing that record failed.
	usageBlocked bool
}

// Run reports every window due. The error is nil when nothing was left
// undone, Unavailable when something was left for the next run because
// of a transient fault, or the first other error; the Report says what
// was done either way.
func (r *Reporter) Run(ctx context.Context) (Report, error) {
	r.run.Lock()
	defer r.run.Unlock()
	return r.runLocked(ctx)
}

// runLocked is Run, with r.run held.
func (r *Reporter) runLocked(ctx context.Context) (Report, error) {
	now := r.o.Now().UTC()
	rep := Report{Boundary: now.Truncate(r.o.Window)}
	b := &batcher{r: r, rep: &rep, now: now}
	var first error
	note := func(err error) {
		if err == nil {
			return
		}
		rep.fail(err)
		if first == nil || fault.ErrorCode(first) != fault.Unavailable && fault.ErrorCode(err) == fault.Unavailable {
			first = err
		}
	}
	after := ""
	for {
		links, err := r.o.Accounts.List(ctx, after, listPage)
		if err != nil {
			note(fault.Wrap(fault.ErrorCode(err), "usage.Run", fmt.Errorf("listing accounts: %w", err)))
			break
		}
		for _, l := range links {
			rep.Tenants++
			note(r.tenant(ctx, l.Tenant, now, rep.Boundary, b))
		}
		if len(links) < listPage {
			break
		}
		after = links[len(links)-1].Account
	}
	note(b.flush(ctx))
	if first == nil && rep.Failed > 0 {
		first = fault.Errorf(fault.Unavailable, "usage.Run", "%d operations left for the next run", rep.Failed)
	}
	r.o.Logger.InfoContext(ctx, "usage report run", "boundary", rep.Boundary, "tenants", rep.Tenants, "entitlements", rep.Entitlements,
		"opened", rep.Opened, "reported", rep.Reported, "resent", rep.Resent, "late", rep.Late, "check_failed", rep.CheckFailed,
		"failed", rep.Failed, "blocked", rep.Blocked, "restored", rep.Restored, "requests", rep.Requests)
	return rep, first
}

// usageOf reads the cumulative usage of each quota metric of a tenant.
func usageOf(quotas []governor.Instance) map[string]int64 {
	out := map[string]int64{}
	for _, q := range quotas {
		if q.Subject == "sla" || !validID(q.Subject) {
			continue
		}
		var d struct {
			Usage int64 `json:"usage"`
		}
		if len(q.Data) > 0 && json.Unmarshal(q.Data, &d) != nil {
			continue
		}
		out[q.Subject] = max(d.Usage, 0)
	}
	return out
}

// tenant plans and checks the windows of one tenant's entitlements; the
// batcher reports them.
func (r *Reporter) tenant(ctx context.Context, tenant string, now, boundary time.Time, b *batcher) error {
	const op = "usage.tenant"
	ents, err := r.o.Governors.Instances(ctx, tenant, governor.Entitlement)
	if err != nil {
		return fault.Wrap(fault.ErrorCode(err), op, fmt.Errorf("tenant %s: entitlements: %w", tenant, err))
	}
	var list []entitlement
	for _, in := range ents {
		var d struct {
			UsageReportingID string `json:"usage_reporting_id"`
			Blocked          string `json:"blocked"`
		}
		if len(in.Data) == 0 || json.Unmarshal(in.Data, &d) != nil || d.UsageReportingID == "" || !validID(in.Subject) {
			continue
		}
		list = append(list, entitlement{
			tenant: tenant, id: in.Subject, consumer: d.UsageReportingID, state: in.State,
			usageBlocked: in.State == suspended && d.Blocked == "usage",
		})
	}
	if len(list) == 0 {
		return nil
	}
	quotas, err := r.o.Governors.Instances(ctx, tenant, governor.QuotaSLA)
	if err != nil {
		return fault.Wrap(fault.ErrorCode(err), op, fmt.Errorf("tenant %s: quotas: %w", tenant, err))
	}
	usage := usageOf(quotas)
	var first error
	for _, e := range list {
		b.rep.Entitlements++
		if err := r.entitlement(ctx, e, usage, now, boundary, b); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// entitlement plans the windows of one entitlement, checks its consumer
// and hands the operations to the batcher.
func (r *Reporter) entitlement(ctx context.Context, e entitlement, usage map[string]int64, now, boundary time.Time, b *batcher) error {
	block, recorded, err := r.o.Windows.Block(ctx, e.id)
	if err != nil {
		return err
	}
	// A usage_blocked whose record was not written still blocks: the
	// governor's data says so.
	blocked := recorded || e.usageBlocked
	open := billable[e.state] || e.state == suspended && blocked
	cursors, err := r.o.Windows.Cursors(ctx, e.id)
	if err != nil {
		return err
	}
	byMetric := map[string]Cursor{}
	for _, c := range cursors {
		byMetric[c.Metric] = c
	}
	metrics := make([]string, 0, len(usage)+len(cursors))
	for m := range usage {
		if _, ok := r.MetricName(m); ok {
			metrics = append(metrics, m)
		}
	}
	for m := range byMetric {
		if _, ok := usage[m]; !ok {
			metrics = append(metrics, m)
		}
	}
	slices.Sort(metrics)
	var jobs []job
	var first error
	for _, m := range metrics {
		c, found := byMetric[m]
		u, metered := usage[m]
		name, reported := r.MetricName(m)
		metered = metered && reported
		if !found {
			if !open || !metered {
				continue
			}
			// First sight: the first window starts at this hour.
			c = Cursor{Entitlement: e.id, Metric: m, Tenant: e.tenant, End: now.Truncate(r.o.Window), Version: 1, FirstSeen: now, UpdatedAt: now}
			if err := r.o.Windows.PutCursor(ctx, c); err != nil {
				if first == nil && fault.ErrorCode(err) != fault.Conflict {
					first = err
				}
				continue
			}
		}
		st := &state{c: c, orig: c.Pending}
		resend := len(c.Pending)
		start, base := c.Next()
		// While blocked, a window is opened only to have one to check.
		if open && metered && start.Before(boundary) && len(c.Pending) < MaxPending && (!blocked || len(c.Pending) == 0) {
			value := u - base
			if u < base {
				value = u // the quota period was reset
			}
			w := Window{
				Start: start, End: boundary, Value: value, Usage: u, OperationID: OperationID(e.id, m, start),
				ConsumerID: e.consumer, MetricName: name, RecordedAt: now,
			}
			next := c
			next.Pending = append(slices.Clone(c.Pending), w)
			next.Version++
			next.UpdatedAt = now
			if err := r.o.Windows.PutCursor(ctx, next); err != nil {
				// Another run holds this cursor, or the store is down:
				// what was pending before is still sent.
				if fault.ErrorCode(err) == fault.Conflict {
					continue
				}
				if first == nil {
					first = err
				}
			} else {
				st.c, st.orig = next, next.Pending
				b.rep.Opened++
			}
		}
		for i, w := range st.orig {
			jobs = append(jobs, job{cur: st, idx: i, window: w, resent: i < resend})
		}
	}
	if len(jobs) == 0 {
		return first
	}
	if err := r.check(ctx, e, block, recorded, blocked, jobs, b); err != nil {
		if errors.Is(err, errHeld) {
			return first
		}
		return err
	}
	for _, j := range jobs {
		if err := b.add(ctx, j); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// check checks the entitlement's consumer with its first operation. A
// check error publishes usage_blocked (once per recorded block: until
// the Block is written, it is published again, under the same id for the
// same window) and holds the jobs back; a passing check of a blocked
// entitlement (by its Block record or by the governor's data) publishes
// usage_restored. It returns a non-nil error when the jobs must not be
// reported.
func (r *Reporter) check(ctx context.Context, e entitlement, block Block, recorded, blocked bool, jobs []job, b *batcher) error {
	w := jobs[0].window
	req := &servicecontrol.CheckRequest{Operation: &servicecontrol.Operation{
		OperationId: w.OperationID, OperationName: OperationName, ConsumerId: w.ConsumerID,
		StartTime: stamp(w.Start), EndTime: stamp(w.End),
		MetricValueSets: []*servicecontrol.MetricValueSet{metricSet(w)},
	}}
	var resp *servicecontrol.CheckResponse
	err := r.retry(ctx, func() error {
		var err error
		resp, err = r.o.Client.Services.Check(r.o.Service, req).Context(ctx).Do()
		return err
	})
	if err != nil {
		r.count(ctx, OutcomeFailed, len(jobs))
		b.rep.Failed += len(jobs)
		r.o.Logger.WarnContext(ctx, "usage check failed; the windows stay recorded for the next run",
			"tenant", e.tenant, "entitlement", e.id, "operation_id", w.OperationID, "error", err.Error())
		return apiErr("usage.check", err)
	}
	if len(resp.CheckErrors) > 0 {
		r.count(ctx, OutcomeCheckFailed, len(jobs))
		b.rep.CheckFailed += len(jobs)
		ce := resp.CheckErrors[0]
		reason := blockReason(ce.Code, ce.Detail)
		r.o.Logger.WarnContext(ctx, "usage check refused the consumer; usage is held back",
			"tenant", e.tenant, "entitlement", e.id, "consumer", w.ConsumerID, "operation_id", w.OperationID, "code", ce.Code, "detail", ce.Detail)
		if recorded {
			return errHeld
		}
		if e.state != "active" && e.state != suspended {
			// The entitlement governor takes usage_blocked from active
			// (and suspended) only: a pending change or cancellation is
			// held back, and blocked once it is active again; windows left
			// from before a cancellation have nothing to stop.
			return errHeld
		}
		if err := r.publish(ctx, e, EventBlocked, w.Start, map[string]string{"reason": reason}); err != nil {
			return err
		}
		b.rep.Blocked++
		nb := Block{Entitlement: e.id, Tenant: e.tenant, Code: ce.Code, Reason: reason, WindowStart: w.Start, Since: r.o.Now().UTC()}
		if err := r.o.Windows.PutBlock(ctx, nb); err != nil {
			// usage_blocked goes out again next run, with the same id.
			return err
		}
		return errHeld
	}
	if blocked {
		if err := r.publish(ctx, e, EventRestored, w.Start, nil); err != nil {
			r.count(ctx, OutcomeFailed, len(jobs))
			b.rep.Failed += len(jobs)
			return err
		}
		b.rep.Restored++
		r.o.Logger.InfoContext(ctx, "usage check passes again; usage restored", "tenant", e.tenant, "entitlement", e.id, "blocked_since", block.Since)
		if err := r.o.Windows.DeleteBlock(ctx, e.id); err != nil {
			// usage_restored goes out again next run, with the same id.
			r.o.Logger.WarnContext(ctx, "usage block not cleared", "entitlement", e.id, "error", err.Error())
		}
	}
	return nil
}

// blockReason is the reason of usage_blocked: the check error's code
// and detail, without control characters, at most MaxReason bytes.
func blockReason(code, detail string) string {
	s := strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(code+": "+detail, "?"))
	s = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), ":"))
	if s == "" {
		s = "the usage check was refused"
	}
	return httpjson.Truncate(s, MaxReason-len("…"))
}

// errHeld holds an entitlement's operations back; it is not a failure of
// the run.
var errHeld = errors.New("held back by a check error")

// EventID is the id of the usage_blocked or usage_restored event of an
// entitlement whose check of the window starting at start failed or
// passed: the same however often it is published.
func EventID(entitlement string, start time.Time, name governor.EventName) string {
	sum := sha256.Sum256([]byte(entitlement + "\x00" + start.UTC().Format(time.RFC3339Nano) + "\x00" + string(name)))
	return "usage-" + strings.TrimPrefix(string(name), "usage_") + "-" + hex.EncodeToString(sum[:12])
}

// publish sends usage_blocked or usage_restored to the entitlement
// governor's internal topic.
func (r *Reporter) publish(ctx context.Context, e entitlement, name governor.EventName, start time.Time, data any) error {
	ev := governor.Event{
		ID: EventID(e.id, start, name), Source: Source, Type: governor.TypeOf(governor.Entitlement, name),
		Domain: governor.Entitlement, Name: name, Tenant: e.tenant, Subject: e.id, Time: r.o.Now().UTC(),
	}
	if data != nil {
		ev.Data, _ = json.Marshal(data)
	}
	payload, attrs := event.Encode(ev)
	err := r.o.Publisher.Publish(ctx, store.Message{Topic: r.o.Topics.Internal(governor.Entitlement), Data: payload, Attributes: attrs, OrderingKey: e.tenant})
	if err != nil {
		r.o.Logger.WarnContext(ctx, "usage event not published; the next run retries", "event", string(name), "entitlement", e.id, "error", err.Error())
		return fault.Wrap(fault.Unavailable, "usage.publish", err)
	}
	r.o.Logger.InfoContext(ctx, "usage event published", "event", string(name), "id", ev.ID, "tenant", e.tenant, "entitlement", e.id)
	return nil
}

// retry calls f until it succeeds, fails for good or runs out of
// attempts.
func (r *Reporter) retry(ctx context.Context, f func() error) error {
	wait := r.o.Backoff
	for attempt := 1; ; attempt++ {
		err := f()
		if err == nil || attempt >= r.o.Attempts || !transient(ctx, err) {
			return err
		}
		d := wait/2 + rand.N(wait/2+1)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(d):
		}
		wait = min(2*wait, maxBackoff)
	}
}

// transient reports whether a Service Control error may pass on retry:
// 408, 429, 5xx, or no answer at all.
func transient(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	var g *googleapi.Error
	if errors.As(err, &g) {
		return g.Code == http.StatusRequestTimeout || g.Code == http.StatusTooManyRequests || g.Code >= 500
	}
	return true
}

// apiErr maps a Service Control error to a code.
func apiErr(op string, err error) error {
	code := fault.Unavailable
	var g *googleapi.Error
	if errors.As(err, &g) && !(g.Code == http.StatusRequestTimeout || g.Code == http.StatusTooManyRequests || g.Code >= 500) {
		code = fault.Invalid
	}
	return fault.Wrap(code, op, err)
}

func (r *Reporter) count(ctx context.Context, outcome string, n int) {
	if n > 0 {
		r.reports.Add(ctx, int64(n), metric.WithAttributes(attribute.String("outcome", outcome)))
	}
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func metricSet(w Window) *servicecontrol.MetricValueSet {
	v := w.Value
	return &servicecontrol.MetricValueSet{
		MetricName:   w.MetricName,
		MetricValues: []*servicecontrol.MetricValue{{Int64Value: &v}},
	}
}

// operation renders a window as a Service Control operation.
func operation(w Window) *servicecontrol.Operation {
	return &servicecontrol.Operation{
		OperationId: w.OperationID, OperationName: OperationName, ConsumerId: w.ConsumerID,
		StartTime: stamp(w.Start), EndTime: stamp(w.End),
		MetricValueSets: []*servicecontrol.MetricValueSet{metricSet(w)},
	}
}
