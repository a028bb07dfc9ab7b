// Package standin is a local stand-in of the Cloud Commerce Partner
// Procurement API (REST v1) and of the certificate URL that signs
// Marketplace sign-up tokens. Google offers no emulator for either, so the
// tests and the local stack point Google's own client
// (google.golang.org/api/cloudcommerceprocurement/v1) at it with
// option.WithEndpoint.
//
// It serves the documented JSON shapes and error bodies
// ({"error":{"code","message","status"}}) under /v1/providers/{provider}/:
// accounts get, approve, reject and reset; entitlements get, list (with the
// documented filter syntax, in part), approve, reject, approvePlanChange,
// rejectPlanChange and patch (messageToUser). It keeps the rules the real
// API enforces: an entitlement is approved only after its account's
// "signup" approval is APPROVED and only while it awaits activation
// (FAILED_PRECONDITION otherwise); a plan change is approved or rejected
// only while it awaits approval and only under its pending plan's name.
//
// What a buyer does in the Marketplace UI is done with the scenario
// methods (CreateAccount, Purchase, RequestPlanChange, Cancel, …): each
// changes the state and hands the notification Marketplace would publish
// to Options.Notify. Every request is recorded (Calls) and faults can be
// injected (FailNext). State is in memory and bounded.
package standin

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	cp "google.golang.org/api/cloudcommerceprocurement/v1"

	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/fault"
)

// Default bounds of a Server's state.
const (
	DefaultMaxAccounts      = 10000
	DefaultMaxEntitlements  = 10000
	DefaultMaxCalls         = 1000
	DefaultMaxNotifications = 1000
	// MaxCallBody bounds the request body a Call keeps.
	MaxCallBody = 4 << 10
	// maxBody bounds the body of a request to the stand-in.
	maxBody = 64 << 10
)

// SignupApproval is the name of the account approval a provider grants
// once the buyer has signed up.
const SignupApproval = "signup"

// Account states.
const (
	AccountActive = "ACCOUNT_ACTIVE"
)

// Approval states.
const (
	ApprovalPending  = "PENDING"
	ApprovalApproved = "APPROVED"
	ApprovalRejected = "REJECTED"
)

// Entitlement states, as the Procurement API names them.
const (
	ActivationRequested       = "ENTITLEMENT_ACTIVATION_REQUESTED"
	Active                    = "ENTITLEMENT_ACTIVE"
	PendingCancellation       = "ENTITLEMENT_PENDING_CANCELLATION"
	Cancelled                 = "ENTITLEMENT_CANCELLED"
	PendingPlanChange         = "ENTITLEMENT_PENDING_PLAN_CHANGE"
	PendingPlanChangeApproval = "ENTITLEMENT_PENDING_PLAN_CHANGE_APPROVAL"
	Suspended                 = "ENTITLEMENT_SUSPENDED"
)

// Notification event types the stand-in publishes.
const (
	EventAccountActive                = "ACCOUNT_ACTIVE"
	EventAccountDeleted               = "ACCOUNT_DELETED"
	EventEntitlementCreationRequested = "ENTITLEMENT_CREATION_REQUESTED"
	EventEntitlementOfferAccepted     = "ENTITLEMENT_OFFER_ACCEPTED"
	EventEntitlementActive            = "ENTITLEMENT_ACTIVE"
	EventEntitlementPlanChangeReq     = "ENTITLEMENT_PLAN_CHANGE_REQUESTED"
	EventEntitlementPlanChanged       = "ENTITLEMENT_PLAN_CHANGED"
	EventEntitlementPlanChangeCancel  = "ENTITLEMENT_PLAN_CHANGE_CANCELLED"
	EventEntitlementPendingCancel     = "ENTITLEMENT_PENDING_CANCELLATION"
	EventEntitlementCancelReverted    = "ENTITLEMENT_CANCELLATION_REVERTED"
	EventEntitlementCancelled         = "ENTITLEMENT_CANCELLED"
	EventEntitlementDeleted           = "ENTITLEMENT_DELETED"
	EventEntitlementOfferEnded        = "ENTITLEMENT_OFFER_ENDED"
)

// Options configure a Server.
type Options struct {
	// Provider is the provider id the stand-in serves; requests naming
	// another provider are refused with PERMISSION_DENIED.
	Provider string
	// Notify publishes a notification's JSON as Marketplace would, to the
	// provider's topic; nil drops notifications (they are still kept,
	// see Notifications).
	Notify func(ctx context.Context, data []byte) error
	// Now is time.Now when nil.
	Now func() time.Time
	// Bounds of the state; the Default… values when 0.
	MaxAccounts, MaxEntitlements, MaxCalls, MaxNotifications int
	// Logger receives a line per notification that Notify failed to
	// publish; slog.Default() when nil.
	Logger *slog.Logger
}

// Call is one request the stand-in answered.
type Call struct {
	Method string `json:"method"`
	// Path is the request path, e.g.
	// /v1/providers/p/entitlements/e:approve.
	Path  string `json:"path"`
	Query string `json:"query,omitempty"`
	// Body is the request body, at most MaxCallBody bytes of it.
	Body   []byte    `json:"body,omitempty"`
	Status int       `json:"status"`
	Time   time.Time `json:"time"`
}

// String renders c as "POST /v1/…:approve 200".
func (c Call) String() string { return fmt.Sprintf("%s %s %d", c.Method, c.Path, c.Status) }

// Notification is a notification the stand-in sent (or tried to send).
type Notification struct {
	EventID   string `json:"eventId"`
	EventType string `json:"eventType"`
	// Data is the message's JSON, as handed to Notify.
	Data []byte `json:"-"`
	// Err is Notify's error, "" when it succeeded.
	Err string `json:"error,omitempty"`
}

// injected is an injected failure.
type injected struct {
	match  string
	status int
	left   int // < 0: forever
}

// Server is the stand-in. It is safe for concurrent use.
type Server struct {
	o   Options
	key *signingKey

	mu       sync.Mutex
	issuer   string
	accounts map[string]*cp.Account
	ents     map[string]*cp.Entitlement
	order    []string // entitlement ids, in creation order
	calls    []Call   // ring of o.MaxCalls
	next     int      // next slot of calls once full
	notes    []Notification
	faults   []injected
	seq      uint64
}

// New returns a Server for o.Provider, which must be a valid id.
func New(o Options) (*Server, error) {
	if err := validID(o.Provider); err != nil {
		return nil, fault.Errorf(fault.Invalid, "standin.New", "provider: %s", err)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.MaxAccounts, DefaultMaxAccounts)
	def(&o.MaxEntitlements, DefaultMaxEntitlements)
	def(&o.MaxCalls, DefaultMaxCalls)
	def(&o.MaxNotifications, DefaultMaxNotifications)
	key, err := testKey()
	if err != nil {
		return nil, fault.Wrap(fault.Internal, "standin.New", err)
	}
	return &Server{
		o: o, key: key, issuer: GoogleIssuer,
		accounts: map[string]*cp.Account{}, ents: map[string]*cp.Entitlement{},
	}, nil
}

// Provider returns the provider id the stand-in serves.
func (s *Server) Provider() string { return s.o.Provider }

// AccountName returns the resource name of an account.
func (s *Server) AccountName(id string) string {
	return "providers/" + s.o.Provider + "/accounts/" + id
}

// EntitlementName returns the resource name of an entitlement.
func (s *Server) EntitlementName(id string) string {
	return "providers/" + s.o.Provider + "/entitlements/" + id
}

func (s *Server) now() time.Time { return s.o.Now().UTC() }

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// --- Inspection and fault injection ----------------------------------------

// Calls returns the requests answered so far, oldest first (at most
// Options.MaxCalls of the latest).
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Call, 0, len(s.calls))
	out = append(out, s.calls[s.next:]...)
	out = append(out, s.calls[:s.next]...)
	return out
}

// CallsMatching returns the calls whose "METHOD path" contains sub.
func (s *Server) CallsMatching(sub string) []Call {
	var out []Call
	for _, c := range s.Calls() {
		if strings.Contains(c.Method+" "+c.Path, sub) {
			out = append(out, c)
		}
	}
	return out
}

func (s *Server) record(c Call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.calls) < s.o.MaxCalls {
		s.calls = append(s.calls, c)
		return
	}
	s.calls[s.next] = c
	s.next = (s.next + 1) % s.o.MaxCalls
}

// FailNext makes the next n requests whose "METHOD path" contains
// methodSubstring (e.g. ":approve", "GET /v1/providers/p/accounts/")
// fail with status and the error body Google sends for it; n <= 0 fails
// every such request until ClearFaults. Faults are checked in the order
// they were added.
func (s *Server) FailNext(methodSubstring string, status, n int) {
	if n <= 0 {
		n = -1
	}
	s.mu.Lock()
	s.faults = append(s.faults, injected{match: methodSubstring, status: status, left: n})
	s.mu.Unlock()
}

// ClearFaults removes every injected fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	s.faults = nil
	s.mu.Unlock()
}

// takeFault returns the status of the first fault matching key, consuming
// one of its occurrences, or 0.
func (s *Server) takeFault(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.faults {
		f := &s.faults[i]
		if !strings.Contains(key, f.match) {
			continue
		}
		st := f.status
		if f.left > 0 {
			f.left--
			if f.left == 0 {
				s.faults = slices.Delete(s.faults, i, i+1)
			}
		}
		return st
	}
	return 0
}

// Notifications returns the notifications sent so far, oldest first (at
// most Options.MaxNotifications of the latest).
func (s *Server) Notifications() []Notification {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.notes)
}

// Account returns a copy of an account, or false.
func (s *Server) Account(id string) (cp.Account, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.accounts[id]
	if !ok {
		return cp.Account{}, false
	}
	return copyAccount(a), true
}

// Entitlement returns a copy of an entitlement, or false.
func (s *Server) Entitlement(id string) (cp.Entitlement, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.ents[id]
	if !ok {
		return cp.Entitlement{}, false
	}
	return copyEntitlement(e), true
}

func copyAccount(a *cp.Account) cp.Account {
	c := *a
	c.Approvals = make([]*cp.Approval, len(a.Approvals))
	for i, ap := range a.Approvals {
		x := *ap
		c.Approvals[i] = &x
	}
	return c
}

func copyEntitlement(e *cp.Entitlement) cp.Entitlement {
	c := *e
	c.Consumers = slices.Clone(e.Consumers)
	return c
}

// --- Notifications -------------------------------------------------------------

// note is a notification to send once the lock is released.
type note struct {
	eventType string
	account   string // set for account notifications
	ent       string // set for entitlement notifications
	newPlan   string
	update    string
}

// newID returns a fresh deterministic id (a version 5 UUID of the
// provider and a counter); s.mu must be held.
func (s *Server) newID(kind string) string {
	s.seq++
	return uuid.NewSHA1(uuid.NameSpaceURL, fmt.Appendf(nil, "standin:%s:%s:%d", s.o.Provider, kind, s.seq)).String()
}

// send hands each notification to Notify, in order, and keeps it. It
// returns the first error of Notify. s.mu must not be held.
func (s *Server) send(ctx context.Context, notes []note) error {
	var first error
	for _, n := range notes {
		s.mu.Lock()
		id := s.newID("event")
		s.mu.Unlock()
		msg := map[string]any{"eventId": id, "eventType": n.eventType, "providerId": s.o.Provider}
		if n.account != "" {
			msg["account"] = map[string]string{"id": n.account, "updateTime": n.update}
		} else {
			e := map[string]string{"id": n.ent, "updateTime": n.update}
			if n.newPlan != "" {
				e["newPlan"] = n.newPlan
			}
			msg["entitlement"] = e
		}
		data, _ := json.Marshal(msg)
		rec := Notification{EventID: id, EventType: n.eventType, Data: data}
		if s.o.Notify != nil {
			if err := s.o.Notify(ctx, data); err != nil {
				rec.Err = err.Error()
				s.o.Logger.WarnContext(ctx, "stand-in notification not published", "event_id", id, "event_type", n.eventType, "error", err.Error())
				if first == nil {
					first = fault.Wrap(fault.Unavailable, "standin.Notify", err)
				}
			}
		}
		s.mu.Lock()
		if len(s.notes) >= s.o.MaxNotifications {
			s.notes = slices.Delete(s.notes, 0, len(s.notes)-s.o.MaxNotifications+1)
		}
		s.notes = append(s.notes, rec)
		s.mu.Unlock()
	}
	return first
}

// --- Scenario: what the buyer does ---------------------------------------------

// PurchaseOptions describe a purchase.
type PurchaseOptions struct {
	// Offer is the offer's resource name, e.g.
	// "projects/123/services/svc/privateOffers/abc"; "" for the public
	// price.
	Offer string
	// OfferEndTime is when the offer ends; zero for none.
	OfferEndTime time.Time
	// AutoApprove makes the entitlement active at once, as an offer that
	// needs no provider approval does: ENTITLEMENT_OFFER_ACCEPTED then
	// ENTITLEMENT_ACTIVE.
	AutoApprove bool
	// UsageReportingID is the consumer id of a usage-priced plan.
	UsageReportingID string
}

// CreateAccount creates an account, as Marketplace does on a buyer's
// first purchase: ACCOUNT_ACTIVE with a PENDING "signup" approval, and an
// ACCOUNT_ACTIVE notification. Creating an existing account is a
// Conflict.
func (s *Server) CreateAccount(ctx context.Context, id string) error {
	const op = "standin.CreateAccount"
	if err := validID(id); err != nil {
		return fault.Errorf(fault.Invalid, op, "account id: %s", err)
	}
	s.mu.Lock()
	n, err := s.createAccount(id)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	return s.send(ctx, []note{n})
}

// createAccount creates an account; s.mu must be held.
func (s *Server) createAccount(id string) (note, error) {
	const op = "standin.CreateAccount"
	if _, ok := s.accounts[id]; ok {
		return note{}, fault.Errorf(fault.Conflict, op, "account %s exists", id)
	}
	if len(s.accounts) >= s.o.MaxAccounts {
		return note{}, fault.Errorf(fault.Unavailable, op, "the stand-in holds %d accounts, its limit", len(s.accounts))
	}
	now := stamp(s.now())
	s.accounts[id] = &cp.Account{
		Name: s.AccountName(id), Provider: s.o.Provider, State: AccountActive, CreateTime: now, UpdateTime: now,
		Approvals: []*cp.Approval{{Name: SignupApproval, State: ApprovalPending, UpdateTime: now}},
	}
	return note{eventType: EventAccountActive, account: id, update: now}, nil
}

// Purchase creates an entitlement of account (created first if it does
// not exist) to product and plan and returns its id: in
// ENTITLEMENT_ACTIVATION_REQUESTED with an ENTITLEMENT_CREATION_REQUESTED
// notification, or, with AutoApprove, ENTITLEMENT_ACTIVE with
// ENTITLEMENT_OFFER_ACCEPTED and ENTITLEMENT_ACTIVE notifications.
func (s *Server) Purchase(ctx context.Context, account, product, plan string, po PurchaseOptions) (string, error) {
	const op = "standin.Purchase"
	for what, v := range map[string]string{"account id": account, "product": product, "plan": plan} {
		if err := validID(v); err != nil {
			return "", fault.Errorf(fault.Invalid, op, "%s: %s", what, err)
		}
	}
	s.mu.Lock()
	var notes []note
	if _, ok := s.accounts[account]; !ok {
		n, err := s.createAccount(account)
		if err != nil {
			s.mu.Unlock()
			return "", err
		}
		notes = append(notes, n)
	}
	if len(s.ents) >= s.o.MaxEntitlements {
		s.mu.Unlock()
		return "", fault.Errorf(fault.Unavailable, op, "the stand-in holds %d entitlements, its limit", len(s.ents))
	}
	id := s.newID("entitlement")
	now := stamp(s.now())
	e := &cp.Entitlement{
		Name: s.EntitlementName(id), Account: s.AccountName(account), Provider: s.o.Provider,
		Product: product, ProductExternalName: product, Plan: plan, Offer: po.Offer,
		State: ActivationRequested, CreateTime: now, UpdateTime: now, UsageReportingId: po.UsageReportingID,
		OrderId: id,
	}
	if !po.OfferEndTime.IsZero() {
		e.OfferEndTime = stamp(po.OfferEndTime)
	}
	if po.AutoApprove {
		e.State = Active
		notes = append(notes, note{eventType: EventEntitlementOfferAccepted, ent: id, update: now},
			note{eventType: EventEntitlementActive, ent: id, update: now})
	} else {
		notes = append(notes, note{eventType: EventEntitlementCreationRequested, ent: id, update: now})
	}
	s.ents[id] = e
	s.order = append(s.order, id)
	s.mu.Unlock()
	return id, s.send(ctx, notes)
}

// change applies f to entitlement id under the lock and sends the
// notifications it returns. f returns an error to refuse the change.
func (s *Server) change(ctx context.Context, op, id string, f func(e *cp.Entitlement, now string) ([]note, error)) error {
	s.mu.Lock()
	e, ok := s.ents[id]
	if !ok {
		s.mu.Unlock()
		return fault.Errorf(fault.NotFound, op, "no entitlement %s", id)
	}
	now := stamp(s.now())
	notes, err := f(e, now)
	if err == nil {
		e.UpdateTime = now
	}
	s.mu.Unlock()
	if err != nil {
		return err
	}
	return s.send(ctx, notes)
}

func stateErr(op string, e *cp.Entitlement, want ...string) error {
	return fault.Errorf(fault.Conflict, op, "entitlement %s is %s, not %s", lastSegment(e.Name), e.State, strings.Join(want, " or "))
}

// RequestPlanChange has the buyer ask for plan on an active entitlement:
// ENTITLEMENT_PENDING_PLAN_CHANGE_APPROVAL with newPendingPlan, and an
// ENTITLEMENT_PLAN_CHANGE_REQUESTED notification.
func (s *Server) RequestPlanChange(ctx context.Context, ent, plan string) error {
	const op = "standin.RequestPlanChange"
	if err := validID(plan); err != nil {
		return fault.Errorf(fault.Invalid, op, "plan: %s", err)
	}
	return s.change(ctx, op, ent, func(e *cp.Entitlement, now string) ([]note, error) {
		if e.State != Active {
			return nil, stateErr(op, e, Active)
		}
		if e.Plan == plan {
			return nil, fault.Errorf(fault.Conflict, op, "entitlement %s is on plan %s already", ent, plan)
		}
		e.State, e.NewPendingPlan = PendingPlanChangeApproval, plan
		return []note{{eventType: EventEntitlementPlanChangeReq, ent: ent, newPlan: plan, update: now}}, nil
	})
}

// EffectPlanChange ends the billing cycle of an entitlement whose plan
// change was approved: ENTITLEMENT_ACTIVE on the new plan, and an
// ENTITLEMENT_PLAN_CHANGED notification.
func (s *Server) EffectPlanChange(ctx context.Context, ent string) error {
	const op = "standin.EffectPlanChange"
	return s.change(ctx, op, ent, func(e *cp.Entitlement, now string) ([]note, error) {
		if e.State != PendingPlanChange {
			return nil, stateErr(op, e, PendingPlanChange)
		}
		e.State, e.Plan, e.NewPendingPlan = Active, e.NewPendingPlan, ""
		return []note{{eventType: EventEntitlementPlanChanged, ent: ent, newPlan: e.Plan, update: now}}, nil
	})
}

// CancelPlanChange has the buyer withdraw a plan change not yet in
// effect: ENTITLEMENT_ACTIVE on the old plan, and an
// ENTITLEMENT_PLAN_CHANGE_CANCELLED notification.
func (s *Server) CancelPlanChange(ctx context.Context, ent string) error {
	const op = "standin.CancelPlanChange"
	return s.change(ctx, op, ent, func(e *cp.Entitlement, now string) ([]note, error) {
		if e.State != PendingPlanChangeApproval && e.State != PendingPlanChange {
			return nil, stateErr(op, e, PendingPlanChangeApproval, PendingPlanChange)
		}
		e.State, e.NewPendingPlan = Active, ""
		return []note{{eventType: EventEntitlementPlanChangeCancel, ent: ent, update: now}}, nil
	})
}

// Cancel has the buyer cancel an entitlement: an active one goes to
// ENTITLEMENT_PENDING_CANCELLATION (notification of the same name) until
// Finish; one still awaiting activation is ENTITLEMENT_CANCELLED at once.
func (s *Server) Cancel(ctx context.Context, ent string) error {
	const op = "standin.Cancel"
	return s.change(ctx, op, ent, func(e *cp.Entitlement, now string) ([]note, error) {
		switch e.State {
		case ActivationRequested:
			e.State, e.CancellationReason = Cancelled, "user-aborted"
			return []note{{eventType: EventEntitlementCancelled, ent: ent, update: now}}, nil
		case Active, PendingPlanChange, PendingPlanChangeApproval:
			e.State, e.NewPendingPlan = PendingCancellation, ""
			return []note{{eventType: EventEntitlementPendingCancel, ent: ent, update: now}}, nil
		}
		return nil, stateErr(op, e, ActivationRequested, Active, PendingPlanChange, PendingPlanChangeApproval)
	})
}

// Finish ends the term of an entitlement pending cancellation:
// ENTITLEMENT_CANCELLED, and a notification of the same name.
func (s *Server) Finish(ctx context.Context, ent string) error {
	const op = "standin.Finish"
	return s.change(ctx, op, ent, func(e *cp.Entitlement, now string) ([]note, error) {
		if e.State != PendingCancellation {
			return nil, stateErr(op, e, PendingCancellation)
		}
		e.State, e.CancellationReason = Cancelled, "user-cancelled"
		return []note{{eventType: EventEntitlementCancelled, ent: ent, update: now}}, nil
	})
}

// RevertCancellation has the buyer take a cancellation back before the
// term ends: ENTITLEMENT_ACTIVE, and an ENTITLEMENT_CANCELLATION_REVERTED
// notification.
func (s *Server) RevertCancellation(ctx context.Context, ent string) error {
	const op = "standin.RevertCancellation"
	return s.change(ctx, op, ent, func(e *cp.Entitlement, now string) ([]note, error) {
		if e.State != PendingCancellation {
			return nil, stateErr(op, e, PendingCancellation)
		}
		e.State = Active
		return []note{{eventType: EventEntitlementCancelReverted, ent: ent, update: now}}, nil
	})
}

// EndOffer ends the offer of an entitlement that is not cancelled: its
// offerEndTime becomes now, and an ENTITLEMENT_OFFER_ENDED notification.
func (s *Server) EndOffer(ctx context.Context, ent string) error {
	const op = "standin.EndOffer"
	return s.change(ctx, op, ent, func(e *cp.Entitlement, now string) ([]note, error) {
		if e.State == Cancelled || e.State == ActivationRequested {
			return nil, stateErr(op, e, Active, PendingCancellation, PendingPlanChange, PendingPlanChangeApproval)
		}
		e.OfferEndTime = now
		return []note{{eventType: EventEntitlementOfferEnded, ent: ent, update: now}}, nil
	})
}

// Delete removes a cancelled entitlement, with an ENTITLEMENT_DELETED
// notification; it is then unknown (404) to the API.
func (s *Server) Delete(ctx context.Context, ent string) error {
	const op = "standin.Delete"
	s.mu.Lock()
	e, ok := s.ents[ent]
	switch {
	case !ok:
		s.mu.Unlock()
		return fault.Errorf(fault.NotFound, op, "no entitlement %s", ent)
	case e.State != Cancelled:
		s.mu.Unlock()
		return stateErr(op, e, Cancelled)
	}
	s.deleteEntitlement(ent)
	now := stamp(s.now())
	s.mu.Unlock()
	return s.send(ctx, []note{{eventType: EventEntitlementDeleted, ent: ent, update: now}})
}

// deleteEntitlement forgets an entitlement; s.mu must be held.
func (s *Server) deleteEntitlement(id string) {
	delete(s.ents, id)
	if i := slices.Index(s.order, id); i >= 0 {
		s.order = slices.Delete(s.order, i, i+1)
	}
}

// DeleteAccount closes an account: its entitlements not yet cancelled are
// cancelled ("account-closed", ENTITLEMENT_CANCELLED each), then the
// account is removed with an ACCOUNT_DELETED notification.
func (s *Server) DeleteAccount(ctx context.Context, id string) error {
	const op = "standin.DeleteAccount"
	s.mu.Lock()
	if _, ok := s.accounts[id]; !ok {
		s.mu.Unlock()
		return fault.Errorf(fault.NotFound, op, "no account %s", id)
	}
	now := stamp(s.now())
	notes := s.cancelAll(id, "account-closed", now)
	delete(s.accounts, id)
	s.mu.Unlock()
	notes = append(notes, note{eventType: EventAccountDeleted, account: id, update: now})
	return s.send(ctx, notes)
}

// cancelAll cancels the entitlements of an account that are not
// cancelled yet; s.mu must be held.
func (s *Server) cancelAll(account, reason, now string) []note {
	var notes []note
	name := s.AccountName(account)
	for _, eid := range s.order {
		e := s.ents[eid]
		if e.Account != name || e.State == Cancelled {
			continue
		}
		e.State, e.CancellationReason, e.NewPendingPlan, e.UpdateTime = Cancelled, reason, "", now
		notes = append(notes, note{eventType: EventEntitlementCancelled, ent: eid, update: now})
	}
	return notes
}

// --- Ids -------------------------------------------------------------------------

// validID checks an id the stand-in puts in a path: the rules of tenant
// ids (letters, digits, '.', '_', '-'), which also keep it one path
// segment.
func validID(id string) error {
	if err := event.ValidTenant(id); err != nil {
		return fmt.Errorf("%q is not an id (%s)", truncate(id, 64), fault.ErrorMessage(err))
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func lastSegment(name string) string { return name[strings.LastIndexByte(name, '/')+1:] }
