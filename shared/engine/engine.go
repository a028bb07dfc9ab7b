package engine

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/autonomics/autonomics/shared/deadletter"
	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/receipt"
	"github.com/autonomics/autonomics/shared/store"
	"github.com/autonomics/autonomics/shared/topic"
)

// Publisher publishes one message and waits for the broker's ack. The
// engine calls it from several goroutines at once: a decision's topics are
// published concurrently.
type Publisher interface {
	Publish(ctx context.Context, m store.Message) error
}

// Sources of the events the engine itself produces.
const (
	// TimerSource is the CloudEvents source of timeout events.
	TimerSource = "autonomics/timer"
	// GovernorSourcePrefix starts the source of cascade events; the
	// emitting domain follows.
	GovernorSourcePrefix = "autonomics/governor/"
	// ActionTypePrefix starts the CloudEvents type of actuator actions.
	ActionTypePrefix = "autonomics.action."
	// ReceiptType is the CloudEvents type of receipt messages.
	ReceiptType = "autonomics.receipt"
	// MonitorSource is the CloudEvents source of the monitor's events.
	MonitorSource = "autonomics/monitor"
	// ActuatorSourcePrefix starts the source of an actuator's events; the
	// actuator's name follows, e.g. "autonomics/actuator/webhooks".
	ActuatorSourcePrefix = "autonomics/actuator/"
	// ReservedSourcePrefix starts every source Autonomics' own components
	// use; an event from outside may not claim it.
	ReservedSourcePrefix = "autonomics/"
	// MarketplaceSourcePrefix starts the source of the Marketplace
	// adapter's events.
	MarketplaceSourcePrefix = "marketplace/"
	// TestClockSource is the CloudEvents source of the timeout events a
	// test clock fires (package testclock). An engine accepts it, on the
	// internal topics only, when Options.TestClock is on; a receipt whose
	// event_source it is ran on a test clock.
	TestClockSource = "autonomics/testclock"
)

// Options configure an Engine.
type Options struct {
	Store     store.Store
	Publisher Publisher
	// Machines maps every domain the engine serves to its machine.
	Machines map[governor.Domain]*governor.Machine
	Topics   topic.Names
	// InternalSubscriptions are the full resource names of the push
	// subscriptions that deliver the internal topics. HandleMessage takes
	// a message delivered by one of them as sent by Autonomics itself and
	// any other message as sent from outside; Pub/Sub, not the publisher,
	// names the subscription.
	InternalSubscriptions []string
	// Clock returns the decision time; time.Now when nil.
	Clock func() time.Time
	// ProviderTenant is the tenant whose instances hold the provider's own
	// records (governor.Scope.Provider, e.g. the catalog a guard reads);
	// when empty, each event's own tenant.
	ProviderTenant string
	// DedupTTL is how long dedup markers are kept; 30 days when zero.
	DedupTTL time.Duration
	// Logger receives one line per decision; slog.Default() when nil.
	Logger *slog.Logger
	// TracerProvider and MeterProvider receive spans and metrics; no-op
	// providers when nil.
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
	// TestClock accepts timeouts from test clocks: events of source
	// TestClockSource on the internal topics are sent by the scheduler,
	// and such a timeout fires its armed timer even before the timer's
	// due time, the test clock having moved it. Off in production, where
	// that source is refused like any other unknown one.
	TestClock bool
	// Witness tells the sweep and a redelivered event's duplicate which
	// receipts the ledger holds: a decision whose receipt it holds was
	// delivered, its receipt being published after every other entry.
	// When nil, the engine records every decision's delivery in the
	// store after publishing it (Store.MarkDelivered: a write per
	// decision), and the sweep publishes again every decision it finds
	// undelivered.
	Witness Witness
}

// Witness is the ledger as the engine consults it about delivery.
type Witness interface {
	// Witnessed returns the receipt hashes among hashes that the ledger
	// holds, integrated or pending.
	Witnessed(ctx context.Context, hashes []string) (map[string]bool, error)
}

// Engine applies events to governors. It is safe for concurrent use.
type Engine struct {
	o        Options
	internal map[string]bool
	in       instruments
	// stripes serialise this process's transactions on one instance:
	// concurrent deliveries for the same instance would otherwise only
	// contend in storage, where the losers retry.
	stripes [64]sync.Mutex
}

// New returns an Engine after checking its options.
func New(o Options) (*Engine, error) {
	const op = "engine.New"
	if o.Store == nil || o.Publisher == nil {
		return nil, fault.Errorf(fault.Invalid, op, "store and publisher are required")
	}
	if len(o.Machines) == 0 {
		return nil, fault.Errorf(fault.Invalid, op, "no machines")
	}
	for d, m := range o.Machines {
		if m.Domain != d {
			return nil, fault.Errorf(fault.Invalid, op, "machine for %s has domain %s", d, m.Domain)
		}
	}
	// Every table valid, every cascade accepted by the machine it names.
	if err := governor.CheckGraph(o.Machines); err != nil {
		return nil, err
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.DedupTTL <= 0 {
		o.DedupTTL = 30 * 24 * time.Hour
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	internal := make(map[string]bool, len(o.InternalSubscriptions))
	for _, sub := range o.InternalSubscriptions {
		internal[sub] = true
	}
	return &Engine{o: o, internal: internal, in: newInstruments(o.TracerProvider, o.MeterProvider)}, nil
}

// Result reports what applying an event did to one instance.
type Result struct {
	Key governor.Key
	// Receipt is the new receipt; for a duplicate only its Hash is set.
	Receipt   receipt.Receipt
	Duplicate bool
	// Published counts the outbox entries published after commit.
	Published int
}

// HandleMessage processes one Pub/Sub message delivered to the function
// of domain. It returns nil when the message is done with, including when
// it was dead-lettered, and an error when Pub/Sub should redeliver it.
func (e *Engine) HandleMessage(ctx context.Context, domain governor.Domain, m event.Message) error {
	tp := m.Attributes["ce-traceparent"]
	if tp == "" {
		tp = m.Attributes[AttrTraceParent]
	}
	ctx, span := e.in.tracer.Start(extract(ctx, tp), "autonomics.handle "+string(domain),
		trace.WithSpanKind(trace.SpanKindConsumer))
	defer span.End()
	if span.IsRecording() {
		span.SetAttributes(attribute.String("messaging.system", "gcp_pubsub"), attribute.String("messaging.message.id", m.ID))
	}
	_, dspan := e.in.tracer.Start(ctx, "autonomics.decode")
	ev, err := event.Decode(m)
	if err != nil {
		dspan.SetStatus(codes.Error, err.Error())
	}
	dspan.End()
	if err == nil && ev.Domain != domain {
		err = fault.Errorf(fault.Invalid, "engine.HandleMessage", "event type %s delivered to the %s governor", ev.Type, domain)
	}
	if err == nil {
		err = e.Authorize(e.internal[m.Subscription], ev)
	}
	if err == nil {
		_, err = e.Apply(ctx, ev)
	}
	if err == nil {
		return nil
	}
	span.SetStatus(codes.Error, err.Error())
	if fault.IsRetryable(err) {
		e.o.Logger.ErrorContext(ctx, "event failed, will be retried", "domain", domain, "message_id", m.ID, "error", err.Error())
		return err
	}
	return e.DeadLetter(ctx, domain, m, err)
}

// Authorize checks that ev may come by the path it came: internal is true
// when an internal subscription delivered it. Internal topics carry only
// the sources of Autonomics' own components; events from outside may not
// claim those sources nor set the extensions only cascades carry
// (correlationid, causationid, cascadedepth). The sender class the path and
// source establish must be allowed to send the event by its machine's
// sender rules. Every refusal is an Invalid error.
func (e *Engine) Authorize(internal bool, ev governor.Event) error {
	const op = "engine.Authorize"
	m := e.o.Machines[ev.Domain]
	if m == nil {
		return fault.Errorf(fault.Invalid, op, "domain %q is not served here", ev.Domain)
	}
	sender, err := e.SenderOf(internal, ev)
	if err != nil {
		return err
	}
	if !m.May(sender, ev.Name) {
		return fault.Errorf(fault.Invalid, op, "%s may be sent by %s only, not by a sender of class %s",
			ev.Type, joinSenders(m.SendersOf(ev.Name)), sender)
	}
	return nil
}

// SenderOf classifies the sender of ev from the path it came by and its
// source, refusing what a sender on that path may not claim. It is the
// classification of a production engine: TestClockSource is refused.
func SenderOf(internal bool, ev governor.Event) (governor.Sender, error) {
	return senderOf(internal, false, ev)
}

// SenderOf classifies the sender of ev as the package function does,
// except that with Options.TestClock on, TestClockSource on the internal
// path is the scheduler.
func (e *Engine) SenderOf(internal bool, ev governor.Event) (governor.Sender, error) {
	return senderOf(internal, e.o.TestClock, ev)
}

func senderOf(internal, testClock bool, ev governor.Event) (governor.Sender, error) {
	const op = "engine.SenderOf"
	if internal {
		switch {
		case ev.Source == TimerSource:
			return governor.SenderScheduler, nil
		case testClock && ev.Source == TestClockSource:
			return governor.SenderScheduler, nil
		case ev.Source == MonitorSource:
			return governor.SenderMonitor, nil
		case strings.HasPrefix(ev.Source, GovernorSourcePrefix) && isDomain(strings.TrimPrefix(ev.Source, GovernorSourcePrefix)):
			return governor.SenderGovernor, nil
		case strings.HasPrefix(ev.Source, ActuatorSourcePrefix) && len(ev.Source) > len(ActuatorSourcePrefix):
			return governor.SenderActuator, nil
		}
		return "", fault.Errorf(fault.Invalid, op, "source %s may not use an internal topic", quote(ev.Source))
	}
	if len(ev.Source) >= len(ReservedSourcePrefix) && strings.EqualFold(ev.Source[:len(ReservedSourcePrefix)], ReservedSourcePrefix) {
		return "", fault.Errorf(fault.Invalid, op, "source %s is reserved for Autonomics' own components", quote(ev.Source))
	}
	switch {
	case ev.CausationID != "":
		return "", fault.Errorf(fault.Invalid, op, "causationid is set only by Autonomics, on cascades")
	case ev.CorrelationID != "":
		return "", fault.Errorf(fault.Invalid, op, "correlationid is set only by Autonomics, on cascades; an event from outside is the root of its own")
	case ev.CascadeDepth != 0:
		return "", fault.Errorf(fault.Invalid, op, "cascadedepth is set only by Autonomics, on cascades")
	}
	if strings.HasPrefix(ev.Source, MarketplaceSourcePrefix) {
		return governor.SenderMarketplace, nil
	}
	return governor.SenderExternal, nil
}

func isDomain(s string) bool {
	return slices.Contains(governor.Domains, governor.Domain(s))
}

func joinSenders(ss []governor.Sender) string {
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = string(s)
	}
	return strings.Join(parts, ", ")
}

// quote quotes s for an error message, truncated.
func quote(s string) string { return strconv.Quote(truncate(s, 64)) }

// DeadLetter copies m to the dead-letter topic with the reason
// (deadletter.New). It returns an error only when that publication fails.
func (e *Engine) DeadLetter(ctx context.Context, domain governor.Domain, m event.Message, cause error) error {
	code := fault.ErrorCode(cause)
	e.in.deadLettered.Add(ctx, 1, labels(attribute.String("domain", string(domain)), attribute.String("code", string(code))))
	e.o.Logger.ErrorContext(ctx, "event rejected as invalid and dead-lettered",
		"domain", domain, "message_id", m.ID, "code", code, "error", cause.Error())
	if err := e.o.Publisher.Publish(ctx, deadletter.New(e.o.Topics.DeadLetter(), m, string(domain), code, fault.ErrorMessage(cause))); err != nil {
		return fault.Wrap(fault.Unavailable, "engine.DeadLetter", err)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// Apply applies a decoded event: to its instance, or for subject "*" to
// every existing instance of the domain for the tenant, each in its own
// transaction. Invalid events return an Invalid error and change nothing.
func (e *Engine) Apply(ctx context.Context, ev governor.Event) ([]Result, error) {
	const op = "engine.Apply"
	m := e.o.Machines[ev.Domain]
	if m == nil {
		return nil, fault.Errorf(fault.Invalid, op, "domain %q is not served here", ev.Domain)
	}
	if err := m.CheckEvent(ev); err != nil {
		return nil, err
	}
	if ev.Subject == "" {
		ev.Subject = governor.DefaultSubject
	}
	ctx = extract(ctx, ev.TraceParent)
	if ev.Subject != governor.BroadcastSubject {
		r, err := e.applyOne(ctx, m, ev)
		if err != nil {
			return nil, err
		}
		return []Result{r}, nil
	}
	insts, err := e.o.Store.Instances(ctx, ev.Tenant, ev.Domain)
	if err != nil {
		return nil, fmt.Errorf("%s: list %s instances: %w", op, ev.Domain, err)
	}
	var out []Result
	var errs []error
	for _, inst := range insts {
		one := ev
		one.Subject = inst.Subject
		r, err := e.applyOne(ctx, m, one)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, r)
	}
	return out, errors.Join(errs...)
}

// testClockDue returns the instance the decision sees. For a timeout from
// a test clock (Options.TestClock on) whose armed timer is not due yet at
// now, that timer is due now in the copy returned, so that the governor
// does not refuse it as early; moved is then the timer as armed. Any other
// event sees inst itself.
func (e *Engine) testClockDue(inst governor.Instance, ev governor.Event, now time.Time) (governor.Instance, *governor.Timer) {
	if !e.o.TestClock || ev.Source != TestClockSource {
		return inst, nil
	}
	name, ok := strings.CutPrefix(string(ev.Name), governor.TimeoutPrefix)
	if !ok {
		return inst, nil
	}
	armed, ok := inst.Timers[name]
	if !ok || !armed.Due.After(now) {
		return inst, nil
	}
	var p struct {
		TimerID string `json:"timer_id"`
	}
	if json.Unmarshal(ev.Data, &p) != nil || p.TimerID != armed.ID {
		// The governor rejects it as no longer armed.
		return inst, nil
	}
	out := inst
	out.Timers = make(map[string]governor.Timer, len(inst.Timers))
	for n, t := range inst.Timers {
		out.Timers[n] = t
	}
	due := armed
	due.Due = now
	out.Timers[name] = due
	return out, &armed
}

// restoreTimer puts back the timer a test clock made due when the
// decision kept it armed (a rejected timeout keeps the instance's timers),
// so that the instance keeps the due time its timer document has.
func restoreTimer(timers map[string]governor.Timer, name string, armed governor.Timer) {
	if t, ok := timers[name]; ok && t.ID == armed.ID {
		timers[name] = armed
	}
}

// reads loads the instances the row's Needs names, inside the
// transaction.
func (e *Engine) reads(tx store.Tx, m *governor.Machine, inst governor.Instance, ev governor.Event) (map[governor.Key]governor.Instance, error) {
	keys := m.Reads(inst, ev, e.o.ProviderTenant)
	if len(keys) == 0 {
		return nil, nil
	}
	out := make(map[governor.Key]governor.Instance, len(keys))
	for _, k := range keys {
		if _, done := out[k]; done {
			continue
		}
		got, err := tx.Instance(k)
		if err != nil {
			return nil, err
		}
		got.Key = k
		out[k] = got
	}
	return out, nil
}

// timerChanges compares the armed timers before and after a decision.
func timerChanges(k governor.Key, before, after map[string]governor.Timer) (arm []store.TimerEntry, cancel []string) {
	for name, t := range after {
		if old, ok := before[name]; !ok || old.ID != t.ID {
			arm = append(arm, store.TimerEntry{Timer: t, Key: k})
		}
	}
	for name, t := range before {
		if nt, ok := after[name]; !ok || nt.ID != t.ID {
			cancel = append(cancel, t.ID)
		}
	}
	return arm, cancel
}

// outbox builds the messages of a decision: the receipt, then every
// emitted event and action with its deterministic id, all held by the
// event's dedup marker.
func (e *Engine) outbox(ev governor.Event, r receipt.Receipt, d governor.Decision, now time.Time) []store.OutboxEntry {
	key := ev.Tenant
	marker := store.MarkerID(ev.Key(), ev.Source, ev.ID)
	out := make([]store.OutboxEntry, 0, 1+len(d.Emits))
	out = append(out, store.OutboxEntry{
		ID: "r-" + r.Hash,
		Message: store.Message{
			Topic: e.o.Topics.Receipts(),
			Data:  r.JSON(),
			Attributes: map[string]string{
				"content-type":   "application/json",
				"ce-specversion": "1.0",
				"ce-id":          r.Hash,
				"ce-source":      GovernorSourcePrefix + r.Domain,
				"ce-type":        ReceiptType,
				"ce-subject":     r.Subject,
				"ce-tenantid":    r.TenantID,
				"ce-time":        r.DecidedAt,
				"domain":         r.Domain,
				"outcome":        r.Outcome,
				"event_type":     r.EventType,
			},
			OrderingKey: key,
		},
		ReceiptHash: r.Hash,
		CreatedAt:   now,
		Marker:      marker,
	})
	// The monitor derives cascade depth and decision latency from these.
	out[0].Attributes["cascadedepth"] = strconv.Itoa(ev.CascadeDepth)
	if !ev.Time.IsZero() {
		out[0].Attributes["event_time"] = ev.Time.UTC().Format(time.RFC3339Nano)
	}
	if ev.TraceParent != "" {
		out[0].Attributes["ce-traceparent"] = ev.TraceParent
		out[0].Attributes[AttrTraceParent] = ev.TraceParent
	}
	for i, em := range d.Emits {
		id := r.Actions[i].ID
		msgEv := governor.Event{
			ID:            id,
			Source:        GovernorSourcePrefix + string(ev.Domain),
			Type:          em.Type,
			Domain:        em.Domain,
			Tenant:        ev.Tenant,
			Subject:       em.Subject,
			Time:          now,
			Data:          em.Data,
			CorrelationID: r.CorrelationID,
			CausationID:   r.Hash,
			CascadeDepth:  ev.CascadeDepth + 1,
			TraceParent:   ev.TraceParent,
		}
		t := e.o.Topics.Internal(em.Domain)
		if em.Kind == governor.KindActuate {
			msgEv.Type = ActionTypePrefix + em.Type
			t = e.o.Topics.Actions()
		}
		data, attrs := event.Encode(msgEv)
		if em.Kind == governor.KindActuate {
			attrs["action"] = em.Type
		}
		if ev.TraceParent != "" {
			attrs[AttrTraceParent] = ev.TraceParent
		}
		out = append(out, store.OutboxEntry{
			ID:          id,
			Message:     store.Message{Topic: t, Data: data, Attributes: attrs, OrderingKey: key},
			ReceiptHash: r.Hash,
			CreatedAt:   now,
			Marker:      marker,
		})
	}
	return out
}

// publish publishes entries, each decision's receipt last: a receipt
// entry (on the receipts topic) goes out once every other entry of its
// decision was published, so that a receipt the ledger holds proves its
// whole decision delivered (Options.Witness). It records nothing: it
// returns how many entries it published and the markers of the decisions
// all of whose entries went out. A failure is retryable; a decision with
// an entry that failed is published again, all of it, by its redelivery
// or the sweep (consumers deduplicate by id).
func (e *Engine) publish(ctx context.Context, entries []store.OutboxEntry) (int, []string, error) {
	if len(entries) == 0 {
		return 0, nil, nil
	}
	ctx, span := e.in.tracer.Start(ctx, "autonomics.publish", trace.WithSpanKind(trace.SpanKindProducer))
	defer span.End()
	if span.IsRecording() {
		span.SetAttributes(attribute.Int("messaging.batch.message_count", len(entries)))
	}
	receipts := e.o.Topics.Receipts()
	var markers []string
	var first, final []store.OutboxEntry
	failed := map[string]bool{}
	for _, en := range entries {
		if en.Topic == receipts {
			final = append(final, en)
		} else {
			first = append(first, en)
		}
		if _, ok := failed[en.Marker]; !ok {
			failed[en.Marker] = false
			markers = append(markers, en.Marker)
		}
	}
	published, perr := e.publishWave(ctx, first, failed)
	// The receipts of decisions whose messages all went out.
	ready := final[:0]
	for _, en := range final {
		if !failed[en.Marker] {
			ready = append(ready, en)
		}
	}
	n, err := e.publishWave(ctx, ready, failed)
	published += n
	perr = cmp.Or(perr, err)
	if perr != nil {
		span.SetStatus(codes.Error, perr.Error())
	}
	done := markers[:0]
	for _, m := range markers {
		if m != "" && !failed[m] {
			done = append(done, m)
		}
	}
	return published, done, perr
}

// publishWave publishes entries, those of one topic in order and topics
// concurrently, so that a wave waits for one round trip rather than one
// per message. It sets failed[marker] for the decision of every entry it
// did not publish and returns how many it published and the first
// failure.
func (e *Engine) publishWave(ctx context.Context, entries []store.OutboxEntry, failed map[string]bool) (int, error) {
	var topics []string
	byTopic := map[string][]store.OutboxEntry{}
	for _, en := range entries {
		if _, ok := byTopic[en.Topic]; !ok {
			topics = append(topics, en.Topic)
		}
		byTopic[en.Topic] = append(byTopic[en.Topic], en)
	}
	var (
		mu        sync.Mutex
		published int
		perr      error
		wg        sync.WaitGroup
	)
	for _, t := range topics {
		wg.Go(func() {
			list := byTopic[t]
			for i, en := range list {
				if err := e.o.Publisher.Publish(ctx, en.Message); err != nil {
					mu.Lock()
					if perr == nil {
						perr = fault.Wrap(fault.Unavailable, "engine.publish "+en.Topic, err)
					}
					// This entry and the ones after it in the topic
					// were not published.
					for _, rest := range list[i:] {
						failed[rest.Marker] = true
					}
					mu.Unlock()
					return
				}
				mu.Lock()
				published++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return published, perr
}

// markDelivered records the delivery of decisions published again; a
// failure only leaves them to be published again once more.
func (e *Engine) markDelivered(ctx context.Context, markers []string) {
	if len(markers) == 0 {
		return
	}
	if err := e.o.Store.MarkDelivered(ctx, markers...); err != nil {
		e.o.Logger.WarnContext(ctx, "outbox not marked delivered", "error", err.Error())
	}
}

// witnessed returns the receipt hashes among hashes that the ledger holds
// (none without a Witness).
func (e *Engine) witnessed(ctx context.Context, hashes []string) (map[string]bool, error) {
	if e.o.Witness == nil || len(hashes) == 0 {
		return nil, nil
	}
	held, err := e.o.Witness.Witnessed(ctx, hashes)
	if err != nil {
		return nil, fault.Wrap(fault.Unavailable, "engine.witnessed", err)
	}
	return held, nil
}

// Sweep publishes again the decisions older than age that may not have
// been delivered, up to limit decisions (500 when <= 0), and returns how
// many entries it published. It takes the decisions the store has not
// seen swept (Store.Undelivered), asks the Witness which of their
// receipts the ledger holds (those decisions were delivered: a receipt is
// published last), publishes the others again, receipts last, and then
// moves the sweep past every shard's leading run of decisions now known
// delivered (Store.Swept: one write). A decision published again behind
// one that failed in its shard is marked delivered (Store.MarkDelivered),
// as the sweep cannot move past it yet. A decision committed more than
// age after its decision time could be passed over; its event's
// redelivery, unacknowledged until its publication succeeds, publishes
// it.
func (e *Engine) Sweep(ctx context.Context, age time.Duration, limit int) (int, error) {
	if limit <= 0 {
		limit = 500
	}
	entries, err := e.o.Store.Undelivered(ctx, e.o.Clock().Add(-age), limit)
	if err != nil {
		return 0, err
	}
	e.in.backlog.Record(ctx, int64(len(entries)))
	if len(entries) == 0 {
		return 0, nil
	}
	// The decisions in the store's order, each by its first entry.
	var decisions []store.OutboxEntry
	seen := map[string]bool{}
	var hashes []string
	for _, en := range entries {
		if !seen[en.Marker] {
			seen[en.Marker] = true
			decisions = append(decisions, en)
			hashes = append(hashes, en.ReceiptHash)
		}
	}
	held, err := e.witnessed(ctx, hashes)
	if err != nil {
		return 0, err
	}
	var again []store.OutboxEntry
	for _, en := range entries {
		if !held[en.ReceiptHash] {
			again = append(again, en)
		}
	}
	n, done, perr := e.publish(ctx, again)
	delivered := map[string]bool{}
	for _, m := range done {
		delivered[m] = true
	}
	var (
		last    [store.Shards]*store.OutboxEntry
		blocked [store.Shards]bool
		mark    []string
	)
	for i, d := range decisions {
		shard, ok := store.SweepShard(d.Marker)
		if !ok {
			continue
		}
		ok = held[d.ReceiptHash] || delivered[d.Marker]
		switch {
		case ok && !blocked[shard]:
			last[shard] = &decisions[i]
		case ok:
			if delivered[d.Marker] {
				mark = append(mark, d.Marker)
			}
		default:
			blocked[shard] = true
		}
	}
	var swept []store.OutboxEntry
	for _, l := range last {
		if l != nil {
			swept = append(swept, *l)
		}
	}
	e.markDelivered(ctx, mark)
	if err := e.o.Store.Swept(ctx, swept...); err != nil && perr == nil {
		// The next sweep consults the witness for them again.
		e.o.Logger.WarnContext(ctx, "sweep position not recorded", "error", err.Error())
	}
	return n, perr
}
