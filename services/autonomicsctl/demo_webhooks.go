package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/autonomics/autonomics/shared/fault"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// webhookChecks are the stack's parts the demo's webhook checks use.
type webhookChecks struct {
	cfg      stackConfig
	actuator *apiClient
	receiver *apiClient
	setup    *webhookSetup
}

// settleTimeout bounds the wait for every delivery to finish.
const settleTimeout = 45 * time.Second

// redeliveredKind is the kind of the action the demo redelivers: the
// receiver must recognise the webhook-id and not provision again.
const redeliveredKind = actionProvision

// redeliveryTenant is the tenant whose action the demo redelivers.
const redeliveryTenant = "acme"

// expectedEndpoints returns the endpoints an action of kind goes to.
func expectedEndpoints(kind string) []string {
	var out []string
	for _, e := range stackEndpoints {
		if slices.Contains(e.Kinds, "*") || slices.Contains(e.Kinds, kind) {
			out = append(out, e.ID)
		}
	}
	return out
}

// settled reports whether every expected delivery of h is finished, and
// otherwise describes one that is not.
func settled(h actionHistory) (bool, string) {
	for _, ep := range expectedEndpoints(h.Action.Kind) {
		d, ok := h.delivery(ep)
		switch {
		case !ok:
			return false, fmt.Sprintf("%s %s has no delivery to %s", h.Action.Kind, h.Action.ID, ep)
		case d.State != "delivered" && d.State != "failed":
			return false, fmt.Sprintf("%s %s to %s is %s after %d attempts", h.Action.Kind, h.Action.ID, ep, d.State, d.Attempts)
		}
	}
	return true, ""
}

// settle waits until the actuator has finished every delivery of the
// actions seen, and returns their histories in the order seen.
func (w *webhookChecks) settle(ctx context.Context, actions []seenAction, limit time.Duration) ([]actionHistory, error) {
	deadline := time.Now().Add(limit)
	done := map[string]actionHistory{}
	for {
		is := ""
		for _, a := range actions {
			if _, ok := done[a.ID]; ok {
				continue
			}
			h, err := w.actuator.Attempts(ctx, a.ID)
			if fault.ErrorCode(err) == fault.NotFound {
				is = fmt.Sprintf("the actuator has not recorded %s %s of %s", a.Kind, a.ID, a.Tenant)
				continue
			}
			if err != nil {
				return nil, err
			}
			if ok, why := settled(h); !ok {
				is = why
				continue
			}
			done[a.ID] = h
		}
		if len(done) == len(actions) {
			out := make([]actionHistory, len(actions))
			for i, a := range actions {
				out[i] = done[a.ID]
			}
			return out, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("deliveries not finished after %v: %d of %d actions delivered; %s", limit, len(done), len(actions), is)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// received returns the receiver's record of an action on an endpoint.
func received(l receiverLog, endpoint, id string) (*receivedAction, bool) {
	for _, ra := range l.Received {
		if ra.Endpoint == endpoint && ra.WebhookID == id {
			return ra, true
		}
	}
	return nil, false
}

// formatStatuses prints HTTP statuses, "-" for an attempt without one.
func formatStatuses(st []int) string {
	parts := make([]string, len(st))
	for i, s := range st {
		parts[i] = "-"
		if s != 0 {
			parts[i] = strconv.Itoa(s)
		}
	}
	return strings.Join(parts, " ")
}

// requestStatuses returns the statuses the receiver answered.
func requestStatuses(reqs []hookRequest) []int {
	out := make([]int, len(reqs))
	for i, r := range reqs {
		out[i] = r.Status
	}
	return out
}

// reportWebhooks prints and checks what the actuator delivered: a table
// per endpoint from the actuator's attempts, each checked against the
// receiver's own record; the flaky endpoint failing and recovering; a
// redelivery recognised by its webhook-id; forged deliveries refused; and
// the provisioning loop closed through the ingest API.
func (r *demoRunner) reportWebhooks(ctx context.Context, w *webhookChecks, col *collector) []error {
	var problems []error
	fmt.Fprintf(r.out, "\n== webhooks (actuator GET /v1/actions/{id}/attempts, checked against the receiver's GET /v1/log) ==\n")
	actions := col.seenActions()
	hist, err := w.settle(ctx, actions, settleTimeout)
	if err != nil {
		return []error{err}
	}
	log, err := w.receiver.ReceiverLog(ctx)
	if err != nil {
		return []error{fmt.Errorf("receiver log: %w", err)}
	}
	// By tenant, each tenant's actions in the order they were emitted.
	slices.SortStableFunc(hist, func(a, b actionHistory) int { return strings.Compare(a.Action.Tenant, b.Action.Tenant) })
	tw := tabwriter.NewWriter(r.out, 2, 4, 2, ' ', 0)
	for _, e := range stackEndpoints {
		note := ""
		if e.FailFirst > 0 {
			note = fmt.Sprintf(", flaky: 503 to the first %d attempts of each action", e.FailFirst)
		}
		fmt.Fprintf(r.out, "\nendpoint %s  %s  (kinds %s%s)\n", e.ID, w.cfg.hookURL(e.ID), strings.Join(e.Kinds, ","), note)
		fmt.Fprintf(tw, "kind\ttenant\tsubject\tattempts\tstatuses\tfinal\treceiver\n")
		n := 0
		for _, h := range hist {
			d, ok := h.delivery(e.ID)
			if !ok {
				continue
			}
			n++
			a := h.Action
			// The first cycle: redeliveries come later.
			st := h.statuses(e.ID, 1)
			rcv := "not received"
			ra, ok := received(log, e.ID, a.ID)
			if ok {
				got := requestStatuses(ra.Requests)
				rcv = fmt.Sprintf("%d verified", len(got))
				if ra.Provisioned != nil {
					rcv += ", provisioned"
				}
				if !slices.Equal(got, st) {
					problems = append(problems, fmt.Errorf("%s %s of %s on %s: the actuator recorded statuses %s, the receiver answered %s",
						a.Kind, a.ID, a.Tenant, e.ID, formatStatuses(st), formatStatuses(got)))
				}
			} else {
				problems = append(problems, fmt.Errorf("%s %s of %s: delivered to %s, which has no record of it", a.Kind, a.ID, a.Tenant, e.ID))
			}
			final := d.State
			if len(st) > 0 {
				final += " " + strconv.Itoa(st[len(st)-1])
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", a.Kind, a.Tenant, a.Subject, len(st), formatStatuses(st), final, rcv)
			if d.State != "delivered" {
				problems = append(problems, fmt.Errorf("%s %s of %s to %s: %s (%s)", a.Kind, a.ID, a.Tenant, e.ID, d.State, d.Reason))
			}
			if e.FailFirst > 0 {
				want := slices.Repeat([]int{http.StatusServiceUnavailable}, e.FailFirst)
				want = append(want, http.StatusOK)
				if !slices.Equal(st, want) {
					problems = append(problems, fmt.Errorf("flaky endpoint %s, %s %s of %s: statuses %s, want %s",
						e.ID, a.Kind, a.ID, a.Tenant, formatStatuses(st), formatStatuses(want)))
				}
			}
		}
		tw.Flush()
		if n == 0 {
			problems = append(problems, fmt.Errorf("endpoint %s received no action", e.ID))
		}
	}
	problems = append(problems, r.checkRedelivery(ctx, w, col)...)
	problems = append(problems, r.checkForgedDeliveries(ctx, w)...)
	problems = append(problems, r.reportLoop(ctx, w)...)
	return problems
}

// checkRedelivery redelivers one tenant.provision to the provider's
// endpoint and checks that the receiver saw the same webhook-id twice,
// verified both times, and provisioned once.
func (r *demoRunner) checkRedelivery(ctx context.Context, w *webhookChecks, col *collector) []error {
	fmt.Fprintf(r.out, "\n== redelivery (POST /v1/actions/{id}/redeliver?endpoint=%s) ==\n", endpointProvider)
	ids := col.actionIDs(redeliveredKind, redeliveryTenant, def)
	if len(ids) == 0 {
		return []error{fmt.Errorf("redelivery: no %s action of %s seen", redeliveredKind, redeliveryTenant)}
	}
	id := ids[0]
	res, err := w.actuator.Redeliver(ctx, id, endpointProvider)
	if err != nil {
		return []error{fmt.Errorf("redeliver %s: %w", id, err)}
	}
	for _, x := range res {
		fmt.Fprintf(r.out, "%s %s %s: %s, cycle %d\n", redeliveryTenant, redeliveredKind, id, x.Status, x.Cycle)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		log, err := w.receiver.ReceiverLog(ctx)
		if err != nil {
			return []error{fmt.Errorf("receiver log: %w", err)}
		}
		ra, ok := received(log, endpointProvider, id)
		if ok && ra.Delivered >= 2 {
			verified := 0
			for _, q := range ra.Requests {
				if q.Verified {
					verified++
				}
			}
			last := ra.Requests[len(ra.Requests)-1]
			fmt.Fprintf(r.out, "receiver: webhook-id %s seen %d times, verified %d of %d, answered %s; last answer %d %q\n",
				id, len(ra.Requests), verified, len(ra.Requests), formatStatuses(requestStatuses(ra.Requests)), last.Status, last.Note)
			var problems []error
			if verified != len(ra.Requests) {
				problems = append(problems, fmt.Errorf("redelivery of %s: %d of %d requests verified", id, verified, len(ra.Requests)))
			}
			if ra.Provisioned == nil || last.Note != "duplicate" {
				problems = append(problems, fmt.Errorf("redelivery of %s: provisioned %v, last answer %q; want provisioned once and the redelivery acknowledged as a duplicate", id, ra.Provisioned != nil, last.Note))
			} else {
				fmt.Fprintf(r.out, "receiver: provisioned %s once (event %s), the redelivery acknowledged as a duplicate\n", ra.Tenant, ra.Provisioned.EventID)
			}
			h, err := w.actuator.Attempts(ctx, id)
			if err != nil {
				return append(problems, err)
			}
			d, _ := h.delivery(endpointProvider)
			fmt.Fprintf(r.out, "actuator: delivery to %s in cycle %d, %s; attempts by cycle: 1: %s, 2: %s\n",
				endpointProvider, d.Cycle, d.State, formatStatuses(h.statuses(endpointProvider, 1)), formatStatuses(h.statuses(endpointProvider, 2)))
			if d.Cycle != 2 || d.State != "delivered" {
				problems = append(problems, fmt.Errorf("redelivery of %s: the actuator's delivery is in cycle %d, %s; want cycle 2, delivered", id, d.Cycle, d.State))
			}
			return problems
		}
		if time.Now().After(deadline) {
			n := 0
			if ok {
				n = ra.Delivered
			}
			return []error{fmt.Errorf("redelivery of %s: the receiver acknowledged it %d times after 15s, want 2", id, n)}
		}
		select {
		case <-ctx.Done():
			return []error{ctx.Err()}
		case <-time.After(pollEvery):
		}
	}
}

// checkForgedDeliveries sends the receiver two deliveries that must be
// refused with 401: one signed with a wrong secret, one whose body was
// changed after it was signed with the right one.
func (r *demoRunner) checkForgedDeliveries(ctx context.Context, w *webhookChecks) []error {
	fmt.Fprintf(r.out, "\n== forged deliveries (to %s) ==\n", w.cfg.hookURL(endpointProvider))
	wrong, err := newWhsec()
	if err != nil {
		return []error{err}
	}
	body := []byte(`{"type":"tenant.provision","timestamp":"2026-11-02T09:00:00Z","data":{},"action_id":"forged-1","tenant_id":"acme","domain":"multi_tenant","subject":"default"}`)
	tampered := bytes.Replace(body, []byte(`"acme"`), []byte(`"globex"`), 1)
	tests := []struct {
		what   string
		secret string
		sent   []byte
	}{
		{"signed with a wrong secret", wrong, body},
		{"body changed after signing", w.setup.Secrets[endpointProvider], tampered},
	}
	var problems []error
	for i, tt := range tests {
		status, err := postSignedHook(ctx, w.cfg.hookURL(endpointProvider), tt.secret, fmt.Sprintf("forged-%d", i+1), body, tt.sent)
		if err != nil {
			problems = append(problems, fmt.Errorf("forged delivery (%s): %w", tt.what, err))
			continue
		}
		fmt.Fprintf(r.out, "%-28s → %d\n", tt.what, status)
		if status != http.StatusUnauthorized {
			problems = append(problems, fmt.Errorf("forged delivery (%s): answered %d, want 401", tt.what, status))
		}
	}
	return problems
}

// postSignedHook POSTs sent to a hook URL with Standard Webhooks headers
// that sign signed under secret, and returns the status.
func postSignedHook(ctx context.Context, url, secret, id string, signed, sent []byte) (int, error) {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return 0, err
	}
	now := time.Now()
	sig, err := wh.Sign(id, now, signed)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(sent))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(standardwebhooks.HeaderWebhookID, id)
	req.Header.Set(standardwebhooks.HeaderWebhookTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(standardwebhooks.HeaderWebhookSignature, sig)
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// reportLoop prints the events that closed the provisioning loop and
// checks each against the receiver's record: tenant.provision delivered,
// multi_tenant.provisioned sent to the ingest API, published with the
// provisioner's source, decided by the governor.
func (r *demoRunner) reportLoop(ctx context.Context, w *webhookChecks) []error {
	fmt.Fprintf(r.out, "\n== provisioning loop (tenant.provision → receiver → ingest API → multi_tenant) ==\n")
	log, err := w.receiver.ReceiverLog(ctx)
	if err != nil {
		return []error{fmt.Errorf("receiver log: %w", err)}
	}
	r.mu.Lock()
	arrivals := slices.Clone(r.arrivals)
	r.mu.Unlock()
	slices.SortFunc(arrivals, func(a, b arrival) int { return strings.Compare(a.Tenant, b.Tenant) })
	var problems []error
	tw := tabwriter.NewWriter(r.out, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "tenant\taction\tingest event id\treceipt\tevent_source\ttransition\n")
	for _, a := range arrivals {
		rc := a.Receipt
		eventID := "-"
		ra, ok := received(log, endpointProvider, a.ActionID)
		switch {
		case !ok || ra.Provisioned == nil:
			problems = append(problems, fmt.Errorf("%s: %s arrived, but the receiver has no provisioning of action %s", a.Tenant, rc.EventType, a.ActionID))
		case ra.Provisioned.Source != rc.EventSource:
			problems = append(problems, fmt.Errorf("%s: the ingest API published %s with source %s, the receipt says %s", a.Tenant, ra.Provisioned.EventID, ra.Provisioned.Source, rc.EventSource))
		default:
			eventID = ra.Provisioned.EventID
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\tseq %d\t%s\t%s → %s\n", a.Tenant, a.Action, eventID, rc.Seq, rc.EventSource, rc.FromState, rc.ToState)
	}
	tw.Flush()
	if len(arrivals) == 0 {
		problems = append(problems, fmt.Errorf("no event arrived through the ingest API"))
	}
	return problems
}
