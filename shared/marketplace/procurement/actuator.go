package procurement

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	cp "google.golang.org/api/cloudcommerceprocurement/v1"

	"github.com/autonomics/autonomics/shared/caller"
	"github.com/autonomics/autonomics/shared/deadletter"
	"github.com/autonomics/autonomics/shared/engine"
	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/httpjson"
	"github.com/autonomics/autonomics/shared/marketplace"
	"github.com/autonomics/autonomics/shared/store"
	"github.com/autonomics/autonomics/shared/webhook"
)

// Name is the actuator's name: its events' source is Source.
const Name = "procurement"

// Source is the CloudEvents source of the actuator's actuation_failed
// events.
const Source = engine.ActuatorSourcePrefix + Name

// KindPrefix starts the kinds of the actions the actuator carries out.
const KindPrefix = "marketplace."

// The action kinds the actuator carries out.
const (
	KindApproveAccount     = "marketplace.approve_account"
	KindRejectAccount      = "marketplace.reject_account"
	KindApproveEntitlement = "marketplace.approve_entitlement"
	KindRejectEntitlement  = "marketplace.reject_entitlement"
	KindApprovePlanChange  = "marketplace.approve_plan_change"
	KindRejectPlanChange   = "marketplace.reject_plan_change"
)

// Kinds lists the action kinds the actuator carries out.
var Kinds = []string{
	KindApproveAccount, KindRejectAccount, KindApproveEntitlement,
	KindRejectEntitlement, KindApprovePlanChange, KindRejectPlanChange,
}

// MetricActions counts the actions handled, by kind and outcome.
const MetricActions = "autonomics.marketplace.actions"

// Defaults of ActuatorOptions.
const (
	DefaultGiveUpAfter = time.Hour
	// DefaultAttemptTimeout bounds one attempt (its reads and its call),
	// well inside a push subscription's acknowledgement deadline.
	DefaultAttemptTimeout = 15 * time.Second
)

// DefaultBackoff is the in-process retry schedule of an action.
var DefaultBackoff = []time.Duration{100 * time.Millisecond, 400 * time.Millisecond, 1600 * time.Millisecond}

// MaxPushBody bounds a push body, as Pub/Sub sends them.
const MaxPushBody = event.MaxPushBytes

// Dead-letter attributes the actuator adds besides deadletter.New's.
const (
	// AttrAttempts holds the number of Procurement attempts made.
	AttrAttempts = "procurement_attempts"
	// DeadLetterDomain is the domain (deadletter.AttrDomain) of the
	// actuator's dead letters.
	DeadLetterDomain = webhook.DeadLetterDomain
)

// Outcome says what became of an action.
type Outcome string

// Outcomes of Handle. The metric counts every one but OutcomeIgnored.
const (
	// OutcomeDone: the Procurement call was made and succeeded.
	OutcomeDone Outcome = "done"
	// OutcomeAlready: the resource was already in the state the action
	// asks for; no call was made.
	OutcomeAlready Outcome = "already"
	// OutcomeSkipped: the tenant has no Marketplace account (it is sold
	// directly); the action is acknowledged and left alone.
	OutcomeSkipped Outcome = "skipped"
	// OutcomeFailed: the action failed for good; actuation_failed was
	// published and the action dead-lettered.
	OutcomeFailed Outcome = "failed"
	// OutcomeRetried: the action failed for now; Pub/Sub is to
	// redeliver it.
	OutcomeRetried Outcome = "retried"
	// OutcomeIgnored: the action is not a marketplace.* action.
	OutcomeIgnored Outcome = "ignored"
)

// API is the part of the Procurement API the actuator calls; *Client
// implements it. Errors are *fault.Error values as Client returns
// them.
type API interface {
	GetAccount(ctx context.Context, id string) (*cp.Account, error)
	GetEntitlement(ctx context.Context, id string) (*cp.Entitlement, error)
	ApproveAccount(ctx context.Context, id string) error
	RejectAccount(ctx context.Context, id, reason string) error
	ApproveEntitlement(ctx context.Context, id string) error
	RejectEntitlement(ctx context.Context, id, reason string) error
	ApprovePlanChange(ctx context.Context, id, plan string) error
	RejectPlanChange(ctx context.Context, id, plan, reason string) error
}

// Accounts finds the Procurement account of a tenant.
type Accounts interface {
	// ByTenant returns the tenant's link, or a NotFound error when the
	// tenant has none.
	ByTenant(ctx context.Context, tenant string) (marketplace.Link, error)
}

// Topics names the topics the actuator publishes to; topic.Names
// implements it.
type Topics interface {
	Internal(governor.Domain) string
	DeadLetter() string
}

// ActuatorOptions configure an Actuator.
type ActuatorOptions struct {
	// Client calls the Procurement API. Required.
	Client API
	// Accounts maps tenants to Procurement accounts. Required.
	Accounts Accounts
	// Publisher publishes actuation_failed events and dead letters.
	// Required.
	Publisher engine.Publisher
	// Topics names the internal and dead-letter topics. Required.
	Topics Topics
	// Kinds are the action kinds of each domain, to decode actions.
	// Required.
	Kinds webhook.Kinds
	// Logger is slog.Default() when nil.
	Logger *slog.Logger
	// MeterProvider receives the metrics; no-op when nil.
	MeterProvider metric.MeterProvider
	// Now is time.Now when nil.
	Now func() time.Time
	// GiveUpAfter is the age (from the action's decision time) past which
	// an action still failing transiently fails for good;
	// DefaultGiveUpAfter when 0.
	GiveUpAfter time.Duration
	// Backoff is the wait before each in-process retry of a transient
	// failure: DefaultBackoff when nil, no retries when empty.
	Backoff []time.Duration
	// AttemptTimeout bounds each attempt; DefaultAttemptTimeout when 0.
	// An attempt that runs out of it failed for now.
	AttemptTimeout time.Duration
	// Callers, when set, are the only caller emails (the push
	// subscription's identity) Handler accepts; others are answered 403.
	Callers []string
	// MaxDeliveries, when set, is the push subscription's
	// maxDeliveryAttempts: a delivery whose deliveryAttempt reaches it and
	// still fails for now fails for good (actuation_failed and a dead
	// letter, 204), so that Pub/Sub's own dead-lettering never swallows a
	// failure the governor should hear of. 0 is unlimited.
	MaxDeliveries int
}

// Actuator carries out marketplace.* actions through the Procurement
// API. It is safe for concurrent use.
type Actuator struct {
	o       ActuatorOptions
	log     *slog.Logger
	actions metric.Int64Counter
	locks   keyedLock
	// sleep waits between attempts; replaced in tests.
	sleep func(ctx context.Context, d time.Duration) error
}

// NewActuator returns an Actuator after checking its options.
func NewActuator(o ActuatorOptions) (*Actuator, error) {
	const op = "procurement.NewActuator"
	if o.Client == nil || o.Accounts == nil || o.Publisher == nil || o.Topics == nil {
		return nil, fault.Errorf(fault.Invalid, op, "client, accounts, publisher and topics are required")
	}
	if len(o.Kinds) == 0 {
		return nil, fault.Errorf(fault.Invalid, op, "no action kinds")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MeterProvider == nil {
		o.MeterProvider = noop.NewMeterProvider()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.GiveUpAfter <= 0 {
		o.GiveUpAfter = DefaultGiveUpAfter
	}
	if o.Backoff == nil {
		o.Backoff = DefaultBackoff
	}
	if o.AttemptTimeout <= 0 {
		o.AttemptTimeout = DefaultAttemptTimeout
	}
	if o.MaxDeliveries < 0 {
		return nil, fault.Errorf(fault.Invalid, op, "max deliveries %d: want 0 (unlimited) or more", o.MaxDeliveries)
	}
	m := o.MeterProvider.Meter("github.com/autonomics/autonomics/shared/marketplace/procurement")
	actions, err := m.Int64Counter(MetricActions, metric.WithDescription("Marketplace actions handled by the Procurement actuator, by kind and outcome."))
	if err != nil {
		return nil, fault.Wrap(fault.Internal, op, err)
	}
	return &Actuator{o: o, log: o.Logger, actions: actions, sleep: sleepCtx, locks: keyedLock{m: map[string]*lockEntry{}}}, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (a *Actuator) now() time.Time { return a.o.Now().UTC() }

func (a *Actuator) count(ctx context.Context, kind string, o Outcome) {
	if o == OutcomeIgnored {
		return
	}
	a.actions.Add(ctx, 1, metric.WithAttributes(attribute.String("kind", kind), attribute.String("outcome", string(o))))
}

// --- HTTP ------------------------------------------------------------------------

// Handler serves POST /v1/actions/push, the push endpoint of the
// subscription of autonomics-actions filtered to marketplace.* actions.
// The body is capped at MaxPushBody: a larger one is copied in part
// (its first marketplace.MaxDeadLetterBody bytes) to the dead-letter
// topic with the reason and acknowledged (204), and nothing else is done.
// A body that is no push, or no action of Autonomics, is copied to the
// dead-letter topic with the reason and acknowledged (204), since no
// retry can mend it; only a failure to dead-letter is answered 503. An action handled, skipped, or
// failed for good (and reported) is acknowledged (204); one that failed
// for now is answered 503 so that Pub/Sub redelivers it.
func (a *Actuator) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/actions/push", a.push)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		httpjson.Error(w, fault.Errorf(fault.NotFound, "procurement.Handler", "no route for %s %s", httpjson.Quote(r.Method), httpjson.Quote(r.URL.Path)))
	})
	return mux
}

func (a *Actuator) push(w http.ResponseWriter, r *http.Request) {
	const op = "procurement.push"
	ctx := r.Context()
	if len(a.o.Callers) > 0 && !slices.Contains(a.o.Callers, caller.Email(r)) {
		httpjson.Write(w, http.StatusForbidden, map[string]any{"error": map[string]string{
			"code": string(fault.Invalid), "message": "only the push identity of the actions subscription may push actions"}})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxPushBody))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		a.log.WarnContext(ctx, "push body over its cap refused", "limit", MaxPushBody)
		a.deadLetterInvalid(w, r, event.Message{Data: body}, &fault.Error{Code: fault.Invalid, Op: op, Message: "push body exceeds " + strconv.Itoa(MaxPushBody) + " bytes", Err: tooBig})
		return
	case err != nil:
		httpjson.Error(w, fault.Errorf(fault.Unavailable, op, "reading the push body: %s", truncate(err.Error(), 200)))
		return
	}
	m, err := event.ParsePush(body)
	if err != nil {
		a.deadLetterInvalid(w, r, event.Message{Data: body}, err)
		return
	}
	act, err := webhook.DecodeAction(m, a.o.Kinds)
	if err != nil {
		a.deadLetterInvalid(w, r, m, err)
		return
	}
	if _, err := a.HandleDelivery(ctx, act, m.DeliveryAttempt); err != nil {
		httpjson.Error(w, fault.Wrap(fault.Unavailable, op, err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// deadLetterInvalid copies a message that is no action to the dead-letter
// topic with the reason (at most marketplace.MaxDeadLetterBody bytes of
// its data), and acknowledges it; only a failure to publish is answered
// 503.
func (a *Actuator) deadLetterInvalid(w http.ResponseWriter, r *http.Request, m event.Message, cause error) {
	ctx := r.Context()
	reason := truncate(fault.ErrorMessage(cause), 1000)
	truncated := len(m.Data) > marketplace.MaxDeadLetterBody
	if truncated {
		m.Data = m.Data[:marketplace.MaxDeadLetterBody]
	}
	dl := deadletter.New(a.o.Topics.DeadLetter(), m, DeadLetterDomain, fault.Invalid, reason)
	if truncated {
		dl.Attributes[deadletter.AttrTruncated] = strconv.Itoa(marketplace.MaxDeadLetterBody)
	}
	a.log.ErrorContext(ctx, "message on the actions topic refused and dead-lettered", "message_id", truncate(m.ID, 64), "error", reason)
	if err := a.o.Publisher.Publish(ctx, dl); err != nil {
		httpjson.Error(w, fault.Wrap(fault.Unavailable, "procurement.deadLetter", err))
		return
	}
	a.count(ctx, "invalid", OutcomeFailed)
	w.WriteHeader(http.StatusNoContent)
}

// --- Handling ----------------------------------------------------------------------

// actionData is the data of a marketplace.* action.
type actionData struct {
	Plan   string `json:"plan"`
	Reason string `json:"reason"`
}

// Handle carries out one action and says what became of it. A nil error
// means the action is settled (done, already, skipped, ignored, or failed
// for good and reported); an error (Unavailable) means it is to be
// delivered again. It is HandleDelivery without a delivery count.
func (a *Actuator) Handle(ctx context.Context, act webhook.Action) (Outcome, error) {
	return a.HandleDelivery(ctx, act, 0)
}

// HandleDelivery is Handle for the delivery-th delivery of the action
// (the push's deliveryAttempt; 0 when unknown): a transient failure of a
// delivery at or past ActuatorOptions.MaxDeliveries, or of an action older
// than GiveUpAfter, fails for good instead of being delivered again.
func (a *Actuator) HandleDelivery(ctx context.Context, act webhook.Action, delivery int) (Outcome, error) {
	const op = "procurement.Handle"
	log := a.log.With("action_id", act.ID, "kind", act.Kind, "tenant", act.Tenant, "subject", act.Subject)
	if !strings.HasPrefix(act.Kind, KindPrefix) {
		log.InfoContext(ctx, "not a marketplace action; ignored")
		return OutcomeIgnored, nil
	}
	var data actionData
	if len(act.Data) > 0 {
		if err := json.Unmarshal(act.Data, &data); err != nil {
			return a.fail(ctx, log, act, "invalid action data: "+truncate(err.Error(), 200), 0)
		}
	}
	if !slices.Contains(Kinds, act.Kind) {
		return a.fail(ctx, log, act, "the Procurement actuator does not carry out "+act.Kind, 0)
	}
	if act.Kind == KindApprovePlanChange || act.Kind == KindRejectPlanChange {
		if err := validID(data.Plan); err != nil {
			return a.fail(ctx, log, act, "data.plan: "+fault.ErrorMessage(err), 0)
		}
	}
	link, err := a.o.Accounts.ByTenant(ctx, act.Tenant)
	switch fault.ErrorCode(err) {
	case "":
	case fault.NotFound:
		log.InfoContext(ctx, "tenant has no Marketplace account (sold directly); action skipped")
		a.count(ctx, act.Kind, OutcomeSkipped)
		return OutcomeSkipped, nil
	default:
		reason := "reading the tenant's Marketplace account: " + fault.ErrorMessage(err)
		if !fault.IsRetryable(err) {
			return a.fail(ctx, log, act, reason, 0)
		}
		if giveUp := a.giveUp(act, delivery); giveUp != "" {
			return a.fail(ctx, log, act, giveUp+": "+reason, 0)
		}
		log.WarnContext(ctx, "tenant's Marketplace account not read; Pub/Sub will redeliver", "error", err.Error())
		a.count(ctx, act.Kind, OutcomeRetried)
		return OutcomeRetried, fault.Wrap(fault.Unavailable, op, err)
	}
	log = log.With("account", link.Account)
	attempts := 0
	var last error
	for i := 0; ; i++ {
		attempts++
		actx, cancel := context.WithTimeout(ctx, a.o.AttemptTimeout)
		out, err := a.attempt(actx, log, act, link.Account, data)
		cancel()
		if err == nil {
			log.InfoContext(ctx, "marketplace action carried out", "outcome", string(out), "attempts", attempts)
			a.count(ctx, act.Kind, out)
			return out, nil
		}
		last = err
		if !fault.IsRetryable(err) {
			return a.fail(ctx, log, act, fault.ErrorMessage(err), attempts)
		}
		if i >= len(a.o.Backoff) || ctx.Err() != nil {
			break
		}
		log.InfoContext(ctx, "marketplace action failed for now; retrying", "attempt", attempts, "error", fault.ErrorMessage(err))
		if a.sleep(ctx, a.o.Backoff[i]) != nil {
			break
		}
	}
	if giveUp := a.giveUp(act, delivery); giveUp != "" {
		return a.fail(ctx, log, act, giveUp+": "+fault.ErrorMessage(last), attempts)
	}
	log.WarnContext(ctx, "marketplace action failed for now; Pub/Sub will redeliver", "attempts", attempts, "error", fault.ErrorMessage(last))
	a.count(ctx, act.Kind, OutcomeRetried)
	return OutcomeRetried, fault.Wrap(fault.Unavailable, op, last)
}

// giveUp says why an action still failing for now is to fail for good
// (it is older than GiveUpAfter, or this is its last delivery), or ""
// when it is to be delivered again.
func (a *Actuator) giveUp(act webhook.Action, delivery int) string {
	if age := a.now().Sub(act.Time); age >= a.o.GiveUpAfter {
		return "gave up after " + a.o.GiveUpAfter.String()
	}
	if a.o.MaxDeliveries > 0 && delivery >= a.o.MaxDeliveries {
		return "gave up at delivery " + strconv.Itoa(delivery) + " of at most " + strconv.Itoa(a.o.MaxDeliveries)
	}
	return ""
}

// attempt makes one attempt at an action, holding the lock of its
// resource so that duplicates handled at once make one call: read, and
// call only when the state reached is not the one asked for.
func (a *Actuator) attempt(ctx context.Context, log *slog.Logger, act webhook.Action, account string, data actionData) (Outcome, error) {
	resource := "entitlements/" + act.Subject
	if act.Kind == KindApproveAccount || act.Kind == KindRejectAccount {
		resource = "accounts/" + account
	}
	unlock, err := a.locks.lock(ctx, resource)
	if err != nil {
		return "", fault.Wrap(fault.Unavailable, "procurement.attempt", err)
	}
	defer unlock()
	c := &calls{a: a, ctx: ctx, log: log}
	switch act.Kind {
	case KindApproveAccount:
		return c.approveAccount(account)
	case KindRejectAccount:
		return c.rejectAccount(account, data.Reason)
	case KindApproveEntitlement:
		return c.approveEntitlement(account, act.Subject)
	case KindRejectEntitlement:
		return c.rejectEntitlement(account, act.Subject, data.Reason)
	case KindApprovePlanChange:
		return c.approvePlanChange(account, act.Subject, data.Plan)
	case KindRejectPlanChange:
		return c.rejectPlanChange(account, act.Subject, data.Plan, data.Reason)
	}
	return "", fault.Errorf(fault.Invalid, "procurement.attempt", "unknown kind %s", act.Kind)
}

// calls makes and logs the Procurement calls of one attempt.
type calls struct {
	a   *Actuator
	ctx context.Context
	log *slog.Logger
}

// logCall logs one Procurement call.
func (c *calls) logCall(method, resource string, start time.Time, err error) {
	attrs := []any{"method", method, "resource", resource, "status", HTTPStatus(err), "duration_ms", time.Since(start).Milliseconds()}
	if err != nil {
		attrs = append(attrs, "error", fault.ErrorMessage(err))
		c.log.WarnContext(c.ctx, "procurement call", attrs...)
		return
	}
	c.log.InfoContext(c.ctx, "procurement call", attrs...)
}

func (c *calls) account(id string) (*cp.Account, error) {
	start := time.Now()
	acc, err := c.a.o.Client.GetAccount(c.ctx, id)
	c.logCall("accounts.get", "accounts/"+id, start, err)
	return acc, err
}

func (c *calls) entitlement(account, id string) (*cp.Entitlement, error) {
	start := time.Now()
	e, err := c.a.o.Client.GetEntitlement(c.ctx, id)
	c.logCall("entitlements.get", "entitlements/"+id, start, err)
	if err != nil {
		return nil, err
	}
	if got := AccountID(e.Account); got != account {
		return nil, fault.Errorf(fault.Conflict, "procurement.entitlement", "entitlement %s belongs to account %s, not to the tenant's account %s", id, quote(e.Account), account)
	}
	return e, nil
}

func (c *calls) do(method, resource string, f func() error) error {
	start := time.Now()
	err := f()
	c.logCall(method, resource, start, err)
	return err
}

// signupState returns the state of an account's signup approval, "" when
// it has none.
func signupState(acc *cp.Account) string {
	for _, ap := range acc.Approvals {
		if ap != nil && ap.Name == SignupApproval {
			return ap.State
		}
	}
	return ""
}

func (c *calls) approveAccount(account string) (Outcome, error) {
	acc, err := c.account(account)
	if err != nil {
		return "", err
	}
	if signupState(acc) == "APPROVED" {
		return OutcomeAlready, nil
	}
	if err := c.do("accounts.approve", "accounts/"+account, func() error { return c.a.o.Client.ApproveAccount(c.ctx, account) }); err != nil {
		return "", err
	}
	return OutcomeDone, nil
}

func (c *calls) rejectAccount(account, reason string) (Outcome, error) {
	acc, err := c.account(account)
	if err != nil {
		return "", err
	}
	if signupState(acc) == "REJECTED" {
		return OutcomeAlready, nil
	}
	if err := c.do("accounts.reject", "accounts/"+account, func() error { return c.a.o.Client.RejectAccount(c.ctx, account, reason) }); err != nil {
		return "", err
	}
	return OutcomeDone, nil
}

// Entitlement states of the Procurement API.
const (
	StateActivationRequested       = "ENTITLEMENT_ACTIVATION_REQUESTED"
	StateActive                    = "ENTITLEMENT_ACTIVE"
	StatePendingCancellation       = "ENTITLEMENT_PENDING_CANCELLATION"
	StateCancelled                 = "ENTITLEMENT_CANCELLED"
	StatePendingPlanChange         = "ENTITLEMENT_PENDING_PLAN_CHANGE"
	StatePendingPlanChangeApproval = "ENTITLEMENT_PENDING_PLAN_CHANGE_APPROVAL"
	StateSuspended                 = "ENTITLEMENT_SUSPENDED"
)

func (c *calls) approveEntitlement(account, id string) (Outcome, error) {
	const op = "procurement.approveEntitlement"
	e, err := c.entitlement(account, id)
	if err != nil {
		return "", err
	}
	switch e.State {
	case StateActivationRequested:
	case StateActive, StatePendingPlanChange, StatePendingPlanChangeApproval, StatePendingCancellation, StateSuspended:
		return OutcomeAlready, nil
	default:
		return "", fault.Errorf(fault.Conflict, op, "entitlement %s is %s: it can no longer be approved", id, e.State)
	}
	err = c.do("entitlements.approve", "entitlements/"+id, func() error { return c.a.o.Client.ApproveEntitlement(c.ctx, id) })
	if err == nil {
		return OutcomeDone, nil
	}
	if IsPrecondition(err) {
		// Say why, when it is the account: it is approved at sign-up,
		// which may not have happened yet.
		if acc, aerr := c.account(account); aerr == nil && signupState(acc) != "APPROVED" {
			return "", &fault.Error{Code: fault.Unavailable, Op: op, Message: "account " + account + " is not approved yet (signup " + strings.ToLower(signupState(acc)) + ")", Err: err}
		}
	}
	return "", err
}

func (c *calls) rejectEntitlement(account, id, reason string) (Outcome, error) {
	const op = "procurement.rejectEntitlement"
	e, err := c.entitlement(account, id)
	if fault.ErrorCode(err) == fault.NotFound {
		return OutcomeAlready, nil
	}
	if err != nil {
		return "", err
	}
	switch e.State {
	case StateActivationRequested:
	case StateCancelled:
		return OutcomeAlready, nil
	default:
		return "", fault.Errorf(fault.Conflict, op, "entitlement %s is %s: only one awaiting activation can be rejected", id, e.State)
	}
	if err := c.do("entitlements.reject", "entitlements/"+id, func() error { return c.a.o.Client.RejectEntitlement(c.ctx, id, reason) }); err != nil {
		return "", err
	}
	return OutcomeDone, nil
}

func (c *calls) approvePlanChange(account, id, plan string) (Outcome, error) {
	const op = "procurement.approvePlanChange"
	e, err := c.entitlement(account, id)
	if err != nil {
		return "", err
	}
	switch {
	case e.State == StatePendingPlanChangeApproval && e.NewPendingPlan == plan:
	case e.State == StatePendingPlanChange && e.NewPendingPlan == plan,
		e.State != StatePendingPlanChangeApproval && e.Plan == plan:
		return OutcomeAlready, nil
	default:
		return "", fault.Errorf(fault.Conflict, op, "entitlement %s is %s on plan %s with pending plan %s: the change to %s is no longer pending",
			id, e.State, quote(e.Plan), quote(e.NewPendingPlan), plan)
	}
	if err := c.do("entitlements.approvePlanChange", "entitlements/"+id, func() error { return c.a.o.Client.ApprovePlanChange(c.ctx, id, plan) }); err != nil {
		return "", err
	}
	return OutcomeDone, nil
}

func (c *calls) rejectPlanChange(account, id, plan, reason string) (Outcome, error) {
	const op = "procurement.rejectPlanChange"
	e, err := c.entitlement(account, id)
	if err != nil {
		return "", err
	}
	switch {
	case e.State == StatePendingPlanChangeApproval && e.NewPendingPlan == plan:
	case e.State == StatePendingPlanChange && e.NewPendingPlan == plan,
		e.State != StatePendingPlanChangeApproval && e.Plan == plan:
		return "", fault.Errorf(fault.Conflict, op, "entitlement %s is %s on plan %s: the change to %s was approved already", id, e.State, quote(e.Plan), plan)
	default:
		// The change is no longer pending (withdrawn or rejected).
		return OutcomeAlready, nil
	}
	if err := c.do("entitlements.rejectPlanChange", "entitlements/"+id, func() error { return c.a.o.Client.RejectPlanChange(c.ctx, id, plan, reason) }); err != nil {
		return "", err
	}
	return OutcomeDone, nil
}

// --- Failure ------------------------------------------------------------------------

// failureIDTag separates the ids of actuation_failed events from every
// other SHA-256 use.
const failureIDTag = "autonomics.actuator.procurement.failure.v1"

// FailureID is the deterministic id of the actuation_failed event of an
// action, so that reporting the same failure twice is one event to the
// governor.
func FailureID(actionID string) string {
	h := sha256.New()
	for _, s := range []string{failureIDTag, actionID, Name} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return "af-" + hex.EncodeToString(h.Sum(nil))
}

// FailureEvent is the actuation_failed event telling the governor that
// emitted act that it failed for good: on the emitting instance, from
// Source, in the action's correlation, caused by the receipt that emitted
// it.
func FailureEvent(act webhook.Action, reason string, attempts int, now time.Time) governor.Event {
	data, _ := json.Marshal(governor.ActuationFailure{
		ActionID: act.ID, Kind: act.Kind, Attempts: attempts,
		Reason: Truncate("procurement: "+reason, governor.MaxFailureReason),
	})
	return governor.Event{
		ID: FailureID(act.ID), Source: Source,
		Type: governor.TypeOf(act.Domain, governor.ActuationFailed), Domain: act.Domain, Name: governor.ActuationFailed,
		Tenant: act.Tenant, Subject: act.Subject, Time: now, Data: data,
		CorrelationID: act.CorrelationID, CausationID: act.CausationID, TraceParent: act.TraceParent,
	}
}

// FailureMessage renders FailureEvent for the emitting domain's internal
// topic, ordered by tenant.
func FailureMessage(topics Topics, act webhook.Action, reason string, attempts int, now time.Time) store.Message {
	data, attrs := event.Encode(FailureEvent(act, reason, attempts, now))
	return store.Message{Topic: topics.Internal(act.Domain), Data: data, Attributes: attrs, OrderingKey: act.Tenant}
}

// DeadLetterMessage is the action's message as received, for the
// dead-letter topic, with the reason and the attempt count.
func DeadLetterMessage(deadLetterTopic string, act webhook.Action, reason string, attempts int) store.Message {
	m := deadletter.New(deadLetterTopic, event.Message{ID: act.MessageID, Data: bytes.Clone(act.Raw), Attributes: act.Attributes},
		DeadLetterDomain, fault.Invalid, "procurement: "+reason)
	m.Attributes[AttrAttempts] = strconv.Itoa(attempts)
	return m
}

// fail reports an action that failed for good: a copy on the dead-letter
// topic, then actuation_failed to its governor. A failure to publish
// leaves the action to be delivered again (the event id is the same).
func (a *Actuator) fail(ctx context.Context, log *slog.Logger, act webhook.Action, reason string, attempts int) (Outcome, error) {
	const op = "procurement.fail"
	log.ErrorContext(ctx, "marketplace action failed for good", "attempts", attempts, "reason", reason)
	now := a.now()
	if err := a.o.Publisher.Publish(ctx, DeadLetterMessage(a.o.Topics.DeadLetter(), act, reason, attempts)); err != nil {
		log.WarnContext(ctx, "failed action not dead-lettered; Pub/Sub will redeliver", "error", err.Error())
		a.count(ctx, act.Kind, OutcomeRetried)
		return OutcomeRetried, fault.Wrap(fault.Unavailable, op, err)
	}
	if err := a.o.Publisher.Publish(ctx, FailureMessage(a.o.Topics, act, reason, attempts, now)); err != nil {
		log.WarnContext(ctx, "actuation_failed not published; Pub/Sub will redeliver", "error", err.Error())
		a.count(ctx, act.Kind, OutcomeRetried)
		return OutcomeRetried, fault.Wrap(fault.Unavailable, op, err)
	}
	a.count(ctx, act.Kind, OutcomeFailed)
	return OutcomeFailed, nil
}

// --- Locks -----------------------------------------------------------------------------

// keyedLock is a set of mutexes by key; an entry lives while someone
// holds or waits for it, so the set is bounded by the requests in flight.
type keyedLock struct {
	mu sync.Mutex
	m  map[string]*lockEntry
}

type lockEntry struct {
	ch   chan struct{}
	refs int
}

// lock takes the lock of key, or fails when ctx is done first.
func (k *keyedLock) lock(ctx context.Context, key string) (func(), error) {
	k.mu.Lock()
	e, ok := k.m[key]
	if !ok {
		e = &lockEntry{ch: make(chan struct{}, 1)}
		k.m[key] = e
	}
	e.refs++
	k.mu.Unlock()
	release := func() {
		k.mu.Lock()
		e.refs--
		if e.refs == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
	select {
	case e.ch <- struct{}{}:
		return func() { <-e.ch; release() }, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
}
