package marketplace

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
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	"google.golang.org/api/cloudcommerceprocurement/v1"

	"github.com/autonomics/autonomics/shared/engine"
	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/httpjson"
	"github.com/autonomics/autonomics/shared/topic"
)

// ReconcilePath is the path the reconciler's Handler serves.
const ReconcilePath = "/v1/reconcile"

// Defaults of ReconcilerOptions.
const (
	DefaultMaxPerRun = 500
	DefaultSettle    = 10 * time.Minute
)

// maxCursorBytes bounds a continuation request's body and page token.
const maxCursorBytes = 4 << 10

// maxSkips bounds the skipped entitlements a Report lists.
const maxSkips = 100

// Governor states of the entitlement machine, as the reconciler compares
// them.
const (
	govNone                      = governor.StateNone
	govActivationRequested       = governor.State("activation_requested")
	govActive                    = governor.State("active")
	govPendingPlanChangeApproval = governor.State("pending_plan_change_approval")
	govPendingPlanChange         = governor.State("pending_plan_change")
	govPendingCancellation       = governor.State("pending_cancellation")
	govSuspended                 = governor.State("suspended")
	govCancelled                 = governor.State("cancelled")
	govDeleted                   = governor.State("deleted")
)

// ReconciledStates are the Procurement states the reconciler lists, in
// the order it lists them. ENTITLEMENT_SUSPENDED is left out: no event
// of the Marketplace side may suspend a governor.
var ReconciledStates = []string{
	EntitlementActivationRequested, EntitlementActive, EntitlementPendingPlanChangeApproval,
	EntitlementPendingPlanChange, EntitlementPendingCancellation, EntitlementCancelled,
}

// EntitlementLister lists the provider's entitlements matching a
// Procurement filter, one page at a time; next is "" after the last page.
// Errors are *fault.Error values, Unavailable when transient.
type EntitlementLister interface {
	ListEntitlements(ctx context.Context, filter, pageToken string) (entitlements []*cloudcommerceprocurement.Entitlement, next string, err error)
}

// Governors reads governor instances (store.Store has this method).
type Governors interface {
	Instances(ctx context.Context, tenant string, domain governor.Domain) ([]governor.Instance, error)
}

// ReconcilerOptions configure a Reconciler.
type ReconcilerOptions struct {
	// Provider is the Procurement provider id, the events' source.
	Provider    string
	Procurement EntitlementLister
	Accounts    Linker
	Governors   Governors
	Publisher   engine.Publisher
	Topics      topic.Names
	// Logger receives a line per drift and per run; slog.Default() when nil.
	Logger *slog.Logger
	// MeterProvider receives the drift counter; no-op when nil.
	MeterProvider metric.MeterProvider
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// MaxPerRun bounds the entitlements one run examines: no page is
	// started once it is reached (a page may take a run past it).
	// DefaultMaxPerRun when 0.
	MaxPerRun int
	// Settle skips entitlements whose updateTime is more recent, whose
	// notification is probably still on its way; DefaultSettle when 0,
	// none when negative.
	Settle time.Duration
	// Callers, when set, are the only caller emails (the scheduler's
	// identity) Handler accepts; others are answered 403 and change
	// nothing.
	Callers []string
}

// Reconciler compares Procurement's entitlements with their governors and
// publishes the events that correct any drift. It is safe for concurrent
// use, though runs are meant to be scheduled one at a time.
type Reconciler struct {
	o      ReconcilerOptions
	source string
	drift  metric.Int64Counter
}

// NewReconciler returns a Reconciler after checking its options.
func NewReconciler(o ReconcilerOptions) (*Reconciler, error) {
	const op = "marketplace.NewReconciler"
	if err := validProvider(o.Provider); err != nil {
		return nil, fault.Errorf(fault.Invalid, op, "%s", fault.ErrorMessage(err))
	}
	if o.Procurement == nil || o.Accounts == nil || o.Governors == nil || o.Publisher == nil {
		return nil, fault.Errorf(fault.Invalid, op, "procurement, accounts, governors and publisher are required")
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
	if o.MaxPerRun <= 0 {
		o.MaxPerRun = DefaultMaxPerRun
	}
	if o.Settle == 0 {
		o.Settle = DefaultSettle
	}
	c, err := o.MeterProvider.Meter(meterName).Int64Counter(MetricDrift,
		metric.WithDescription("Marketplace entitlements whose governor differed from Procurement, by Procurement state."))
	if err != nil {
		return nil, fault.Wrap(fault.Internal, op, err)
	}
	return &Reconciler{o: o, source: engine.MarketplaceSourcePrefix + o.Provider, drift: c}, nil
}

// Cursor is where a run starts: a state of ReconciledStates and a page
// token of its list. The zero Cursor starts at the beginning.
type Cursor struct {
	State     string `json:"state,omitempty"`
	PageToken string `json:"page_token,omitempty"`
}

// Skip is an entitlement a run could not compare.
type Skip struct {
	Entitlement string `json:"entitlement"`
	Reason      string `json:"reason"`
}

// Drift is one entitlement whose governor differs from Procurement.
type Drift struct {
	Entitlement string         `json:"entitlement"`
	Tenant      string         `json:"tenant"`
	State       string         `json:"state"`
	Governor    governor.State `json:"governor_state"`
	// Events are the types of the corrective events published; none when
	// the drift cannot be corrected by an event.
	Events []string `json:"events,omitempty"`
}

// Report says what a run did.
type Report struct {
	// Checked counts the entitlements compared.
	Checked int `json:"checked"`
	// Settling counts the entitlements left alone because they changed
	// within the Settle period.
	Settling int `json:"settling"`
	// Drifts lists every drift found, corrected or not.
	Drifts []Drift `json:"drifts,omitempty"`
	// Events counts the corrective events published.
	Events int `json:"events"`
	// Skipped lists (up to 100) entitlements that could not be compared.
	Skipped []Skip `json:"skipped,omitempty"`
	// Next is where the following run continues; nil when this run
	// reached the end of every list.
	Next *Cursor `json:"next,omitempty"`
}

// Run reconciles from the beginning.
func (r *Reconciler) Run(ctx context.Context) (Report, error) { return r.RunFrom(ctx, Cursor{}) }

// RunFrom reconciles from cursor until the lists end or MaxPerRun
// entitlements were examined. It stops at the first transient fault
// (listing, linking, reading governors, publishing) with an Unavailable
// error and the report so far; corrective event ids are deterministic, so
// running again publishes nothing twice that the engine would apply twice.
func (r *Reconciler) RunFrom(ctx context.Context, cursor Cursor) (Report, error) {
	const op = "marketplace.Reconcile"
	var rep Report
	start := 0
	if cursor.State != "" {
		start = slices.Index(ReconciledStates, cursor.State)
		if start < 0 {
			return rep, fault.Errorf(fault.Invalid, op, "cursor state %s: want one of %s", quote(cursor.State), strings.Join(ReconciledStates, ", "))
		}
	}
	if len(cursor.PageToken) > maxCursorBytes {
		return rep, fault.Errorf(fault.Invalid, op, "page token is %d bytes, limit %d", len(cursor.PageToken), maxCursorBytes)
	}
	cache := map[string]map[string]governor.Instance{}
	token := cursor.PageToken
	seen := 0
	for i := start; i < len(ReconciledStates); i++ {
		state := ReconciledStates[i]
		for {
			if seen >= r.o.MaxPerRun {
				rep.Next = &Cursor{State: state, PageToken: token}
				r.logRun(ctx, rep)
				return rep, nil
			}
			page, next, err := r.o.Procurement.ListEntitlements(ctx, "state="+state, token)
			if err != nil {
				return rep, r.fail(ctx, &rep, &Cursor{State: state, PageToken: token}, err)
			}
			for _, e := range page {
				seen++
				if err := r.one(ctx, &rep, state, e, cache); err != nil {
					return rep, r.fail(ctx, &rep, &Cursor{State: state, PageToken: token}, err)
				}
			}
			if next == "" {
				break
			}
			if next == token {
				return rep, fault.Errorf(fault.Unavailable, op, "procurement returned the same page token twice")
			}
			token = next
		}
		token = ""
	}
	r.logRun(ctx, rep)
	return rep, nil
}

// fail ends a run on err, leaving in the report where to continue.
func (r *Reconciler) fail(ctx context.Context, rep *Report, at *Cursor, err error) error {
	rep.Next = at
	r.o.Logger.ErrorContext(ctx, "marketplace reconciliation stopped", "error", err.Error(), "checked", rep.Checked,
		"drift", len(rep.Drifts), "events", rep.Events, "next_state", at.State)
	if fault.ErrorCode(err) == "" || !fault.IsRetryable(err) {
		return err
	}
	return fault.Wrap(fault.Unavailable, "marketplace.Reconcile", err)
}

func (r *Reconciler) logRun(ctx context.Context, rep Report) {
	next := ""
	if rep.Next != nil {
		next = rep.Next.State
	}
	r.o.Logger.InfoContext(ctx, "marketplace reconciliation", "checked", rep.Checked, "settling", rep.Settling,
		"drift", len(rep.Drifts), "events", rep.Events, "skipped", len(rep.Skipped), "next_state", next)
}

// one compares one listed entitlement with its governor. Only a transient
// fault is returned; anything else skips the entitlement.
func (r *Reconciler) one(ctx context.Context, rep *Report, listed string, e *cloudcommerceprocurement.Entitlement,
	cache map[string]map[string]governor.Instance) error {
	if e == nil {
		return nil
	}
	skip := func(id string, err error) error {
		if fault.IsRetryable(err) {
			return err
		}
		if len(rep.Skipped) < maxSkips {
			rep.Skipped = append(rep.Skipped, Skip{Entitlement: id, Reason: fault.ErrorMessage(err)})
		}
		return nil
	}
	id, err := EntitlementID(e.Name)
	if err != nil {
		return skip(e.Name, err)
	}
	state := e.State
	if state == "" {
		state = listed
	}
	if r.o.Settle > 0 && e.UpdateTime != "" {
		if t, err := time.Parse(time.RFC3339Nano, e.UpdateTime); err == nil && r.o.Now().Sub(t) < r.o.Settle {
			rep.Settling++
			return nil
		}
	}
	account, err := AccountOf(e.Account)
	if err != nil {
		return skip(id, err)
	}
	link, err := r.o.Accounts.Link(ctx, account, LinkedByNotification)
	if err != nil {
		return skip(id, err)
	}
	insts, ok := cache[link.Tenant]
	if !ok {
		list, err := r.o.Governors.Instances(ctx, link.Tenant, governor.Entitlement)
		if err != nil {
			return skip(id, err)
		}
		insts = make(map[string]governor.Instance, len(list))
		for _, in := range list {
			insts[in.Subject] = in
		}
		cache[link.Tenant] = insts
	}
	rep.Checked++
	inst, ok := insts[id]
	if !ok {
		inst = governor.Instance{State: governor.StateNone}
	}
	names, drift := Corrective(state, e.Plan, inst)
	if !drift {
		return nil
	}
	d := Drift{Entitlement: id, Tenant: link.Tenant, State: state, Governor: inst.State}
	r.drift.Add(ctx, 1, metric.WithAttributes(attribute.String("state", state)))
	evs := BuildEvents(governor.Entitlement, names, e, link.Tenant, id, r.source, ReconcileID(id, state, e.UpdateTime), r.o.Now())
	for _, ev := range evs {
		if err := publish(ctx, r.o.Publisher, r.o.Topics.Domain(governor.Entitlement), ev); err != nil {
			rep.Drifts = append(rep.Drifts, d)
			return err
		}
		d.Events = append(d.Events, ev.Type)
		rep.Events++
	}
	rep.Drifts = append(rep.Drifts, d)
	r.o.Logger.WarnContext(ctx, "marketplace drift", "entitlement", id, "tenant", link.Tenant, "state", state,
		"governor_state", string(inst.State), "events", strings.Join(d.Events, ","))
	return nil
}

// ReconcileID is the id base of the corrective events of one drift:
// "reconcile-" and 16 hex digits of the SHA-256 of the entitlement, its
// state and its updateTime, so that a rerun finding the same drift
// publishes the same ids and the engine applies them once.
func ReconcileID(entitlement, state, updateTime string) string {
	sum := sha256.Sum256([]byte(entitlement + "\x00" + state + "\x00" + updateTime))
	return "reconcile-" + hex.EncodeToString(sum[:8])
}

// EntitlementID returns the id of an entitlement resource name,
// providers/{p}/entitlements/{e}.
func EntitlementID(name string) (string, error) {
	const op = "marketplace.EntitlementID"
	i := strings.LastIndex(name, "/entitlements/")
	if i < 0 {
		return "", fault.Errorf(fault.Invalid, op, "entitlement name %s: want providers/{provider}/entitlements/{entitlement}", quote(name))
	}
	id := name[i+len("/entitlements/"):]
	if err := event.ValidSubject(id); err != nil || id == governor.BroadcastSubject {
		return "", fault.Errorf(fault.Invalid, op, "entitlement name %s: the id must be 1-128 characters of [A-Za-z0-9._-]", quote(name))
	}
	return id, nil
}

// instancePlan returns the plan an entitlement instance keeps.
func instancePlan(inst governor.Instance) string {
	var d struct {
		Plan string `json:"plan"`
	}
	_ = json.Unmarshal(inst.Data, &d)
	return d.Plan
}

// Corrective returns the events that bring an entitlement governor from
// inst to the Procurement state (and plan), and whether the two differ at
// all. A drift no event can correct (the governor is past Procurement, or
// ended) returns drift true and no events: it is counted and reported for
// an operator.
func Corrective(state, plan string, inst governor.Instance) (events []governor.EventName, drift bool) {
	g := inst.State
	if g == "" {
		g = govNone
	}
	fresh := g == govNone || g == govActivationRequested
	planDiffers := plan != "" && plan != instancePlan(inst)
	switch state {
	case EntitlementActivationRequested:
		switch g {
		case govNone:
			return []governor.EventName{EvCreationRequested}, true
		case govActivationRequested:
			return nil, false
		}
		return nil, true
	case EntitlementActive:
		switch {
		case fresh:
			return []governor.EventName{EvActivated}, true
		case g == govActive:
			if planDiffers {
				return []governor.EventName{EvPlanChanged}, true
			}
			return nil, false
		case g == govSuspended:
			// Autonomics' own suspension (account or usage): not drift.
			return nil, false
		case g == govPendingPlanChangeApproval || g == govPendingPlanChange:
			if planDiffers {
				return []governor.EventName{EvPlanChanged}, true
			}
			return []governor.EventName{EvPlanChangeCancelled}, true
		case g == govPendingCancellation:
			return []governor.EventName{EvCancellationReverted}, true
		}
		return nil, true
	case EntitlementPendingPlanChangeApproval:
		switch {
		case fresh:
			return []governor.EventName{EvActivated, EvPlanChangeRequested}, true
		case g == govActive:
			return []governor.EventName{EvPlanChangeRequested}, true
		case g == govPendingPlanChangeApproval:
			return nil, false
		}
		return nil, true
	case EntitlementPendingPlanChange:
		switch {
		case fresh:
			return []governor.EventName{EvActivated, EvPlanChangeRequested, EvPlanChangeApproved}, true
		case g == govActive:
			return []governor.EventName{EvPlanChangeRequested, EvPlanChangeApproved}, true
		case g == govPendingPlanChangeApproval:
			return []governor.EventName{EvPlanChangeApproved}, true
		case g == govPendingPlanChange:
			return nil, false
		}
		return nil, true
	case EntitlementPendingCancellation:
		switch {
		case fresh:
			return []governor.EventName{EvActivated, EvPendingCancellation}, true
		case g == govActive:
			return []governor.EventName{EvPendingCancellation}, true
		case g == govPendingPlanChangeApproval || g == govPendingPlanChange:
			return []governor.EventName{EvPlanChangeCancelled, EvPendingCancellation}, true
		case g == govPendingCancellation:
			return nil, false
		}
		return nil, true
	case EntitlementCancelled:
		switch g {
		case govNone, govCancelled, govDeleted:
			// No governor to stop, or stopped already.
			return nil, false
		}
		return []governor.EventName{EvCancelled}, true
	}
	return nil, false
}

// Handler serves POST /v1/reconcile: one run, from the cursor in the
// optional JSON body {"state", "page_token"} (at most 4 KiB), answered
// with the Report as JSON; 503 with the error when a transient fault
// stopped the run. With ReconcilerOptions.Callers set, a call from another
// identity is answered 403 and runs nothing.
func (r *Reconciler) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+ReconcilePath, func(w http.ResponseWriter, req *http.Request) {
		if !Allowed(r.o.Callers, req) {
			Forbidden(w, "only the scheduler's identity may start a reconciliation")
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, maxCursorBytes))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				httpjson.Error(w, &fault.Error{Code: fault.Invalid, Op: "marketplace.reconcile", Message: "request body exceeds 4096 bytes", Err: tooBig})
				return
			}
			httpjson.Error(w, fault.Wrap(fault.Invalid, "marketplace.reconcile", err))
			return
		}
		var c Cursor
		if len(bytes.TrimSpace(body)) > 0 {
			if err := httpjson.Unmarshal(body, &c); err != nil {
				httpjson.Error(w, fault.Wrap(fault.Invalid, "marketplace.reconcile", err))
				return
			}
		}
		rep, err := r.RunFrom(req.Context(), c)
		if err != nil {
			httpjson.Error(w, err)
			return
		}
		httpjson.Write(w, http.StatusOK, rep)
	})
	return mux
}
