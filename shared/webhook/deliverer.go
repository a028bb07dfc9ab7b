package webhook

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/autonomics/autonomics/shared/engine"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/topic"
)

// Name is the actuator's name: its events' source is
// engine.ActuatorSourcePrefix + Name.
const Name = "webhooks"

// Source is the CloudEvents source of the actuator's actuation_failed
// events.
const Source = engine.ActuatorSourcePrefix + Name

// Metric names.
const (
	// MetricFailures counts deliveries that failed for good, by kind,
	// domain and reason (Delivery.Failure: gone, permanent, exhausted,
	// endpoint_deleted, action_missing). Attempts are logged, one line
	// each.
	MetricFailures = "autonomics.actuator.failures"
)

// Dead-letter attributes the actuator adds besides the engine's.
const (
	AttrEndpoint = "webhook_endpoint"
	AttrAttempts = "webhook_attempts"
	// DeadLetterDomain is the dead_letter_domain of the actuator's
	// dead letters.
	DeadLetterDomain = "actuator"
)

// leaseMargin is added to an endpoint's timeout to make an attempt's lease.
const leaseMargin = 30 * time.Second

// slotWait bounds how long an attempt waits for a place among its
// endpoint's attempts in flight; past it the delivery stays due and the
// next sweep takes it.
const slotWait = 5 * time.Second

// Options configure a Deliverer.
type Options struct {
	Store     Store
	Publisher engine.Publisher
	Topics    topic.Names
	// Kinds are the action kinds of each domain.
	Kinds Kinds
	// Guard checks endpoint URLs and every connection; the zero Guard
	// when nil.
	Guard *Guard
	// Secrets resolves Secret Manager references; references fail when
	// nil.
	Secrets SecretResolver
	// InlineSecrets allows endpoints to hold their secrets inline.
	InlineSecrets bool
	// Policy is the retry schedule; DefaultPolicy when zero, and its zero
	// fields take DefaultPolicy's (but a zero Jitter stays none).
	Policy Policy
	// Clock is time.Now when nil.
	Clock  func() time.Time
	Logger *slog.Logger
	// MeterProvider receives the metrics; no-op when nil.
	MeterProvider metric.MeterProvider
	// EndpointCacheTTL is how long Accept reuses the endpoint list; 0
	// reads it every time. Changes made through this Deliverer apply at
	// once.
	EndpointCacheTTL time.Duration
}

// Deliverer records and delivers actions. It is safe for concurrent use.
type Deliverer struct {
	o       Options
	clients Clients

	mu    sync.Mutex
	slots map[string]chan struct{}
	cache []Endpoint
	until time.Time

	failures metric.Int64Counter
	bg       sync.WaitGroup
}

// New returns a Deliverer after checking its options.
func New(o Options) (*Deliverer, error) {
	const op = "webhook.New"
	if o.Store == nil || o.Publisher == nil {
		return nil, fault.Errorf(fault.Invalid, op, "store and publisher are required")
	}
	if len(o.Kinds) == 0 {
		return nil, fault.Errorf(fault.Invalid, op, "no action kinds")
	}
	if o.Guard == nil {
		o.Guard = &Guard{}
	}
	if o.Secrets == nil {
		o.Secrets = noResolver{}
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MeterProvider == nil {
		o.MeterProvider = noop.NewMeterProvider()
	}
	if o.Policy == (Policy{}) {
		o.Policy = DefaultPolicy
	}
	o.Policy = o.Policy.withDefaults()
	m := o.MeterProvider.Meter("github.com/autonomics/autonomics/shared/webhook")
	failures, err := m.Int64Counter(MetricFailures, metric.WithDescription("Webhook deliveries that failed for good (dead-lettered, actuation_failed sent)."))
	if err != nil {
		return nil, fault.Wrap(fault.Internal, op, err)
	}
	return &Deliverer{o: o, clients: o.Guard.Clients(), slots: map[string]chan struct{}{}, failures: failures}, nil
}

// Guard returns the Deliverer's guard.
func (d *Deliverer) Guard() *Guard { return d.o.Guard }

// Kinds returns the action kinds the Deliverer knows.
func (d *Deliverer) Kinds() Kinds { return d.o.Kinds }

// Wait waits for the attempts running in the background to finish, or
// for ctx.
func (d *Deliverer) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { d.bg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (d *Deliverer) now() time.Time { return d.o.Clock().UTC() }

// --- Endpoints ---------------------------------------------------------------

// PutEndpoint creates or replaces an endpoint after checking it, keeping
// its creation time, and reports whether it was created. Enabling a
// disabled endpoint resumes its held deliveries.
func (d *Deliverer) PutEndpoint(ctx context.Context, e Endpoint) (Endpoint, bool, error) {
	if err := e.Check(d.o.Guard, d.o.Kinds, d.o.InlineSecrets); err != nil {
		return Endpoint{}, false, err
	}
	now := d.now()
	e.UpdatedAt = now
	if e.Disabled && e.DisabledReason == "" {
		e.DisabledReason = "disabled by an operator"
	}
	if !e.Disabled {
		e.DisabledReason = ""
	}
	var created, resume bool
	all, err := d.o.Store.Endpoints(ctx)
	if err != nil {
		return Endpoint{}, false, err
	}
	if len(all) >= MaxEndpoints && !slices.ContainsFunc(all, func(x Endpoint) bool { return x.ID == e.ID }) {
		return Endpoint{}, false, fault.Errorf(fault.Conflict, "webhook.PutEndpoint", "%d endpoints exist, the most there may be", MaxEndpoints)
	}
	err = d.o.Store.RunTx(ctx, func(ctx context.Context, tx Tx) error {
		old, ok, err := tx.Endpoint(e.ID)
		if err != nil {
			return err
		}
		e.CreatedAt = now
		created, resume = !ok, false
		if ok {
			e.CreatedAt = old.CreatedAt
			resume = old.Disabled && !e.Disabled
		}
		return tx.PutEndpoint(e)
	})
	if err != nil {
		return Endpoint{}, false, err
	}
	d.invalidate()
	if resume {
		if _, err := d.Resume(ctx, e.ID); err != nil {
			d.o.Logger.WarnContext(ctx, "held deliveries not resumed; the next sweep does", "endpoint", e.ID, "error", err.Error())
		}
	}
	return e, created, nil
}

// Endpoint returns an endpoint, or a NotFound error.
func (d *Deliverer) Endpoint(ctx context.Context, id string) (Endpoint, error) {
	var e Endpoint
	var ok bool
	err := d.o.Store.RunTx(ctx, func(ctx context.Context, tx Tx) error {
		var err error
		e, ok, err = tx.Endpoint(id)
		return err
	})
	if err != nil {
		return Endpoint{}, err
	}
	if !ok {
		return Endpoint{}, fault.Errorf(fault.NotFound, "webhook.Endpoint", "no endpoint %s", quote(id))
	}
	return e, nil
}

// Endpoints returns every endpoint, by id.
func (d *Deliverer) Endpoints(ctx context.Context) ([]Endpoint, error) {
	return d.o.Store.Endpoints(ctx)
}

// DeleteEndpoint deletes an endpoint, or returns a NotFound error. Its
// deliveries still queued fail for good (and are reported) as the sweep
// comes to them.
func (d *Deliverer) DeleteEndpoint(ctx context.Context, id string) error {
	err := d.o.Store.RunTx(ctx, func(ctx context.Context, tx Tx) error {
		_, ok, err := tx.Endpoint(id)
		if err != nil {
			return err
		}
		if !ok {
			return fault.Errorf(fault.NotFound, "webhook.DeleteEndpoint", "no endpoint %s", quote(id))
		}
		return tx.DeleteEndpoint(id)
	})
	if err != nil {
		return err
	}
	d.invalidate()
	_, err = d.Resume(ctx, id)
	return err
}

// Seed creates the endpoints that do not exist yet and leaves the others
// as they are (an operator or a 410 may have changed them). It returns the
// ids it created.
func (d *Deliverer) Seed(ctx context.Context, eps []Endpoint) ([]string, error) {
	var out []string
	for _, e := range eps {
		if err := e.Check(d.o.Guard, d.o.Kinds, d.o.InlineSecrets); err != nil {
			return out, err
		}
		created := false
		now := d.now()
		err := d.o.Store.RunTx(ctx, func(ctx context.Context, tx Tx) error {
			_, ok, err := tx.Endpoint(e.ID)
			if err != nil || ok {
				created = false
				return err
			}
			created = true
			e.CreatedAt, e.UpdatedAt = now, now
			if e.Disabled && e.DisabledReason == "" {
				e.DisabledReason = "disabled in the initial configuration"
			}
			return tx.PutEndpoint(e)
		})
		if err != nil {
			return out, err
		}
		if created {
			out = append(out, e.ID)
		}
	}
	d.invalidate()
	return out, nil
}

func (d *Deliverer) invalidate() {
	d.mu.Lock()
	d.cache, d.until = nil, time.Time{}
	d.mu.Unlock()
}

// endpoints returns the endpoint list, cached for EndpointCacheTTL.
func (d *Deliverer) endpoints(ctx context.Context) ([]Endpoint, error) {
	now := time.Now()
	d.mu.Lock()
	if d.cache != nil && now.Before(d.until) {
		c := d.cache
		d.mu.Unlock()
		return c, nil
	}
	d.mu.Unlock()
	eps, err := d.o.Store.Endpoints(ctx)
	if err != nil {
		return nil, err
	}
	if d.o.EndpointCacheTTL > 0 {
		d.mu.Lock()
		d.cache, d.until = eps, now.Add(d.o.EndpointCacheTTL)
		d.mu.Unlock()
	}
	return eps, nil
}

// --- Accepting actions ---------------------------------------------------------

// Accepted reports what Accept recorded.
type Accepted struct {
	// Duplicate is true when the action was recorded before.
	Duplicate bool `json:"duplicate"`
	// Queued lists the deliveries created, by endpoint id.
	Queued []string `json:"queued"`
	// Heads are the new deliveries that head their lane, to attempt now.
	Heads []string `json:"-"`
}

// Accept records an action and one delivery per enabled endpoint that
// receives its kind, each queued behind the deliveries of its endpoint and
// tenant still under way. It is idempotent: an action already recorded
// gets deliveries only for endpoints it has none for. Nothing is sent: the
// caller dispatches the Heads.
func (d *Deliverer) Accept(ctx context.Context, a Action) (Accepted, error) {
	eps, err := d.endpoints(ctx)
	if err != nil {
		return Accepted{}, err
	}
	var targets []Endpoint
	for i := range eps {
		if !eps[i].Disabled && eps[i].Wants(a.Kind) {
			targets = append(targets, eps[i])
		}
	}
	now := d.now()
	var res Accepted
	err = d.o.Store.RunTx(ctx, func(ctx context.Context, tx Tx) error {
		res = Accepted{Queued: []string{}}
		_, exists, err := tx.Action(a.ID)
		if err != nil {
			return err
		}
		res.Duplicate = exists
		type plan struct {
			ep   *Endpoint
			lane Lane
			tail *Delivery
		}
		var plans []plan
		for i := range targets {
			ep := &targets[i]
			_, ok, err := tx.Delivery(DeliveryID(ep.ID, a.ID))
			if err != nil {
				return err
			}
			if ok {
				continue
			}
			p := plan{ep: ep}
			if p.lane, p.tail, err = readLane(tx, LaneID(ep.ID, a.Tenant)); err != nil {
				return err
			}
			plans = append(plans, p)
		}
		if !exists {
			rec := a
			rec.ReceivedAt = now
			if err := tx.PutAction(rec); err != nil {
				return err
			}
		}
		for _, p := range plans {
			del := Delivery{
				ID: DeliveryID(p.ep.ID, a.ID), ActionID: a.ID, EndpointID: p.ep.ID, Tenant: a.Tenant, Kind: a.Kind,
				Domain: a.Domain, Lane: LaneID(p.ep.ID, a.Tenant), Cycle: 1, ActionTime: a.Time, CreatedAt: now,
			}
			head, err := enqueue(tx, p.lane, p.tail, &del, now)
			if err != nil {
				return err
			}
			res.Queued = append(res.Queued, p.ep.ID)
			if head {
				res.Heads = append(res.Heads, del.ID)
			}
		}
		return nil
	})
	return res, err
}

// readLane reads a lane and its tail delivery. A lane whose tail is
// missing is taken as empty.
func readLane(tx Tx, id string) (Lane, *Delivery, error) {
	l, ok, err := tx.Lane(id)
	if err != nil {
		return Lane{}, nil, err
	}
	if !ok || l.Tail == "" {
		return Lane{ID: id}, nil, nil
	}
	t, ok, err := tx.Delivery(l.Tail)
	if err != nil {
		return Lane{}, nil, err
	}
	if !ok {
		return Lane{ID: id}, nil, nil
	}
	return l, &t, nil
}

// enqueue writes del at the tail of its lane (read by readLane) and
// reports whether it heads the lane.
func enqueue(tx Tx, l Lane, tail *Delivery, del *Delivery, now time.Time) (bool, error) {
	l.ID, l.EndpointID, l.Tenant = del.Lane, del.EndpointID, del.Tenant
	del.Next = ""
	del.UpdatedAt = now
	head := tail == nil
	if head {
		l.Head, l.Tail = del.ID, del.ID
		del.State, del.Due = Pending, now
	} else {
		tail.Next = del.ID
		tail.UpdatedAt = now
		if err := tx.PutDelivery(*tail); err != nil {
			return false, err
		}
		l.Tail = del.ID
		del.State, del.Due = Queued, time.Time{}
	}
	if err := tx.PutLane(l); err != nil {
		return false, err
	}
	return head, tx.PutDelivery(*del)
}

// --- Dispatching -----------------------------------------------------------------

// Batch is a set of attempts running in the background.
type Batch struct {
	wg sync.WaitGroup
}

// Wait waits for the batch's attempts, or for ctx; it reports whether
// they all finished.
func (b *Batch) Wait(ctx context.Context) bool {
	done := make(chan struct{})
	go func() { b.wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}

// Dispatch attempts the given deliveries in the background, each once it
// holds a place among its endpoint's attempts in flight, and then the
// deliveries that each one's completion brings to the head of its lane.
// The attempts do not depend on the caller's context.
func (d *Deliverer) Dispatch(ids ...string) *Batch {
	b := &Batch{}
	for _, id := range ids {
		b.wg.Add(1)
		d.bg.Add(1)
		go func() {
			defer d.bg.Done()
			defer b.wg.Done()
			for id != "" {
				id = d.run(id)
			}
		}()
	}
	return b
}

// slot takes a place among an endpoint's attempts in flight.
func (d *Deliverer) slot(ep *Endpoint) (release func(), ok bool) {
	d.mu.Lock()
	ch := d.slots[ep.ID]
	if ch == nil || cap(ch) != ep.inFlight() {
		ch = make(chan struct{}, ep.inFlight())
		d.slots[ep.ID] = ch
	}
	d.mu.Unlock()
	t := time.NewTimer(slotWait)
	defer t.Stop()
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, true
	case <-t.C:
		return nil, false
	}
}

// endpointOf returns the endpoint id of a delivery id.
func endpointOf(deliveryID string) string {
	id, _, _ := strings.Cut(deliveryID, "~")
	return id
}

// run makes one attempt of a delivery if it can be claimed, and returns
// the delivery its completion brought to the head of its lane, if any.
func (d *Deliverer) run(id string) string {
	ctx := context.Background()
	ep, err := d.Endpoint(ctx, endpointOf(id))
	if err != nil && fault.ErrorCode(err) != fault.NotFound {
		d.o.Logger.Warn("delivery not attempted; the next sweep does", "delivery", id, "error", err.Error())
		return ""
	}
	if err == nil {
		release, ok := d.slot(&ep)
		if !ok {
			return ""
		}
		defer release()
	}
	c, err := d.claim(ctx, id)
	if err != nil {
		d.o.Logger.Warn("delivery not claimed; the next sweep does", "delivery", id, "error", err.Error())
		return ""
	}
	if c.failed != nil {
		d.report(ctx, *c.failed)
		return c.next
	}
	if c.del == nil {
		return ""
	}
	res := d.post(ctx, c)
	f, err := d.record(ctx, c, res)
	if err != nil {
		d.o.Logger.Warn("attempt not recorded; it is repeated once its lease expires", "delivery", id, "error", err.Error())
		return ""
	}
	if f.failed != nil {
		d.report(ctx, *f.failed)
	}
	return f.next
}

// claimed is a delivery claimed for an attempt, or one that failed at
// claim time.
type claimed struct {
	del    *Delivery
	ep     Endpoint
	action Action
	token  string
	// failed is a delivery that failed for good instead; next is the
	// delivery its failure brought to the head of its lane.
	failed *Delivery
	next   string
}

// claim takes the lease of a due, pending delivery whose endpoint is
// enabled. A delivery whose endpoint or action is gone fails instead, and
// one whose endpoint is disabled is held.
func (d *Deliverer) claim(ctx context.Context, id string) (claimed, error) {
	var c claimed
	err := d.o.Store.RunTx(ctx, func(ctx context.Context, tx Tx) error {
		c = claimed{}
		now := d.now()
		del, ok, err := tx.Delivery(id)
		if err != nil || !ok || del.State != Pending || del.Held || now.Before(del.Due) {
			return err
		}
		ep, eok, err := tx.Endpoint(del.EndpointID)
		if err != nil {
			return err
		}
		act, aok, err := tx.Action(del.ActionID)
		if err != nil {
			return err
		}
		why := ""
		switch {
		case !eok:
			why = FailureDeleted
		case !aok:
			why = FailureMissing
		case !del.FirstAttempt.IsZero() && now.After(del.FirstAttempt.Add(d.o.Policy.MaxAge)):
			why = FailureExhausted
		}
		if why != "" {
			fin, err := readFinish(tx, &del)
			if err != nil {
				return err
			}
			if del.Lease != "" {
				if err := tx.PutAttempt(lostAttempt(del, ep)); err != nil {
					return err
				}
				del.Lease = ""
			}
			reason := map[string]string{
				FailureDeleted:   "endpoint deleted",
				FailureMissing:   "action record missing",
				FailureExhausted: fmt.Sprintf("retries exhausted: %d attempts over %v", del.Attempts, now.Sub(del.FirstAttempt).Round(time.Second)),
			}[why]
			fail(&del, why, reason, now)
			c.next, err = fin.write(tx, &del, now)
			if err != nil {
				return err
			}
			c.failed = &del
			d.failures.Add(ctx, 1, metric.WithAttributes(attribute.String("kind", del.Kind), attribute.String("domain", string(del.Domain)), attribute.String("reason", why)))
			return nil
		}
		if ep.Disabled {
			del.Held, del.Due, del.UpdatedAt = true, time.Time{}, now
			return tx.PutDelivery(del)
		}
		if del.Lease != "" {
			if err := tx.PutAttempt(lostAttempt(del, ep)); err != nil {
				return err
			}
		}
		var tok [12]byte
		_, _ = rand.Read(tok[:])
		del.Lease, del.LeaseStarted = hex.EncodeToString(tok[:]), now
		del.Attempts++
		del.Total++
		if del.FirstAttempt.IsZero() {
			del.FirstAttempt = now
		}
		del.Due = now.Add(ep.timeout() + leaseMargin)
		del.UpdatedAt = now
		if err := tx.PutDelivery(del); err != nil {
			return err
		}
		if err := tx.PutAttempt(Attempt{
			DeliveryID: del.ID, ActionID: del.ActionID, EndpointID: del.EndpointID, N: del.Total, Cycle: del.Cycle,
			URL: ep.URL, StartedAt: now, Outcome: InFlight,
		}); err != nil {
			return err
		}
		c.del, c.ep, c.action, c.token = &del, ep, act, del.Lease
		return nil
	})
	return c, err
}

// lostAttempt is the record of an attempt whose outcome never was.
func lostAttempt(del Delivery, ep Endpoint) Attempt {
	return Attempt{
		DeliveryID: del.ID, ActionID: del.ActionID, EndpointID: del.EndpointID, N: del.Total, Cycle: del.Cycle,
		URL: ep.URL, StartedAt: del.LeaseStarted, Outcome: Unknown,
		Error: "no outcome was recorded: the process stopped, or the attempt outlived its lease",
	}
}

// result is what one POST brought back.
type result struct {
	outcome    Outcome
	status     int
	err        string
	response   string
	retryAfter time.Duration
	started    time.Time
	latency    time.Duration
}

// post sends one attempt of a claimed delivery.
func (d *Deliverer) post(ctx context.Context, c claimed) result {
	start := d.now()
	res := result{started: start}
	u, err := d.o.Guard.CheckURL(c.ep.URL)
	if err != nil {
		res.outcome, res.err = Refused, fault.ErrorMessage(err)
		return res
	}
	secs, err := secrets(ctx, d.o.Secrets, &c.ep)
	if err != nil {
		res.outcome, res.err = Refused, "signing secret unavailable: "+fault.ErrorMessage(err)
		return res
	}
	body := c.action.Body()
	ctx, cancel := context.WithTimeout(ctx, c.ep.timeout())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		res.outcome, res.err = Refused, err.Error()
		return res
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "autonomics-actuator/1")
	Headers(req.Header, c.action.ID, start, body, secs...)
	wall := time.Now()
	resp, err := d.clients.For(u).Do(req)
	res.latency = time.Since(wall)
	if err != nil {
		res.outcome = Retry
		if errors.Is(err, ErrRefusedAddress) {
			res.outcome = Refused
		}
		res.err = truncate(err.Error(), maxReasonBytes)
		return res
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, MaxResponse))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	res.status, res.response = resp.StatusCode, truncate(strings.ToValidUTF8(string(b), "\uFFFD"), MaxResponse)
	res.outcome = Classify(resp.StatusCode)
	res.retryAfter = retryAfter(resp.Header.Get("Retry-After"), start)
	return res
}

// finishing is what ending a delivery's place in its lane reads first.
type finishing struct {
	lane    Lane
	hasLane bool
	next    *Delivery
}

// readFinish reads what finishing del will write: its lane and the
// delivery queued behind it.
func readFinish(tx Tx, del *Delivery) (finishing, error) {
	var f finishing
	var err error
	f.lane, f.hasLane, err = tx.Lane(del.Lane)
	if err != nil || !f.hasLane || f.lane.Head != del.ID || del.Next == "" {
		return f, err
	}
	n, ok, err := tx.Delivery(del.Next)
	if err != nil {
		return f, err
	}
	if ok {
		f.next = &n
	}
	return f, nil
}

// write takes del out of its lane and makes the next delivery its head,
// due now; it returns that delivery's id.
func (f finishing) write(tx Tx, del *Delivery, now time.Time) (string, error) {
	del.Next = ""
	del.UpdatedAt = now
	if err := tx.PutDelivery(*del); err != nil {
		return "", err
	}
	if !f.hasLane || f.lane.Head != del.ID {
		return "", nil
	}
	if f.next == nil {
		return "", tx.DeleteLane(f.lane.ID)
	}
	f.lane.Head = f.next.ID
	if f.lane.Tail == del.ID {
		f.lane.Tail = f.next.ID
	}
	f.next.State, f.next.Due, f.next.UpdatedAt = Pending, now, now
	if err := tx.PutDelivery(*f.next); err != nil {
		return "", err
	}
	return f.next.ID, tx.PutLane(f.lane)
}

// fail marks a delivery failed for good.
func fail(del *Delivery, class, reason string, now time.Time) {
	del.State, del.Due, del.Held, del.Lease, del.Failure = Failed, time.Time{}, false, "", class
	del.Reason, del.Reported, del.UpdatedAt = truncate(reason, maxReasonBytes), false, now
}

// record writes an attempt's outcome and what follows from it.
func (d *Deliverer) record(ctx context.Context, c claimed, res result) (claimed, error) {
	var out claimed
	err := d.o.Store.RunTx(ctx, func(ctx context.Context, tx Tx) error {
		out = claimed{}
		now := d.now()
		del, ok, err := tx.Delivery(c.del.ID)
		if err != nil || !ok {
			return err
		}
		att := Attempt{
			DeliveryID: del.ID, ActionID: del.ActionID, EndpointID: del.EndpointID, N: c.del.Total, Cycle: c.del.Cycle,
			URL: c.ep.URL, StartedAt: res.started, Latency: res.latency, Outcome: res.outcome,
			Status: res.status, Error: res.err, Response: res.response,
		}
		if del.Lease != c.token {
			// Another attempt took over once the lease ran out; only the
			// record of this one is written.
			return tx.PutAttempt(att)
		}
		var ep Endpoint
		var eok bool
		if res.outcome == Gone {
			if ep, eok, err = tx.Endpoint(del.EndpointID); err != nil {
				return err
			}
		}
		finish := res.outcome != Retry && res.outcome != Refused
		var next time.Time
		if !finish {
			var more bool
			next, more = d.o.Policy.Next(del.Attempts, del.ID, del.FirstAttempt, now, res.retryAfter)
			finish = !more
		}
		var fin finishing
		if finish {
			if fin, err = readFinish(tx, &del); err != nil {
				return err
			}
		}
		if err := tx.PutAttempt(att); err != nil {
			return err
		}
		del.Lease, del.LastStatus, del.LastError, del.UpdatedAt = "", res.status, res.err, now
		if !finish {
			del.Due = next
			return tx.PutDelivery(del)
		}
		why := ""
		switch res.outcome {
		case Delivered:
			del.State, del.Due, del.DeliveredAt = Succeeded, time.Time{}, now
		case Gone:
			why = FailureGone
			fail(&del, why, fmt.Sprintf("HTTP 410 Gone from %s: endpoint disabled", truncate(c.ep.URL, 200)), now)
			if eok && !ep.Disabled {
				ep.Disabled, ep.DisabledReason, ep.UpdatedAt = true, "the receiver answered 410 Gone at "+now.Format(time.RFC3339), now
				if err := tx.PutEndpoint(ep); err != nil {
					return err
				}
			}
		case Permanent:
			why = FailurePermanent
			fail(&del, why, fmt.Sprintf("HTTP %d from %s: a permanent refusal", res.status, truncate(c.ep.URL, 200)), now)
		default:
			why = FailureExhausted
			fail(&del, why, fmt.Sprintf("retries exhausted: %d attempts over %v; last: %s", del.Attempts, now.Sub(del.FirstAttempt).Round(time.Second), describe(res)), now)
		}
		if out.next, err = fin.write(tx, &del, now); err != nil {
			return err
		}
		if del.State == Failed {
			out.failed = &del
			d.failures.Add(ctx, 1, metric.WithAttributes(attribute.String("kind", del.Kind), attribute.String("domain", string(del.Domain)), attribute.String("reason", why)))
		}
		return nil
	})
	if err == nil {
		if res.outcome == Gone {
			d.invalidate()
		}
		d.o.Logger.Info("webhook attempt", "delivery", c.del.ID, "attempt", c.del.Total, "outcome", res.outcome,
			"status", res.status, "latency_ms", float64(res.latency.Microseconds())/1000, "error", res.err)
	}
	return out, err
}

// describe says what an attempt got.
func describe(res result) string {
	if res.status != 0 {
		return "HTTP " + strconv.Itoa(res.status)
	}
	return res.err
}

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
