// Package procurement speaks to the Cloud Commerce Partner Procurement
// API for Autonomics: Client wraps Google's own client
// (google.golang.org/api/cloudcommerceprocurement/v1) with ids instead of
// resource names and typed errors, and Actuator carries out the
// marketplace.* actions the governors publish on autonomics-actions.
//
// The API has no request ids, so idempotency is the actuator's: before
// each call it reads the resource and takes a state already reached as
// success. Transient faults and FAILED_PRECONDITION (an entitlement
// approved before its account) are retried in process and then answered
// 503 so that Pub/Sub redelivers; a permanent refusal, or an action older
// than its give-up age, is answered with an actuation_failed event to the
// governor that emitted it and a copy of the action on the dead-letter
// topic.
package procurement

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	cp "google.golang.org/api/cloudcommerceprocurement/v1"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"

	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/fault"
)

// MaxReason bounds a rejection reason: the API truncates longer ones.
const MaxReason = 256

// MaxMessage bounds an entitlement's messageToUser.
const MaxMessage = 1024

// StatusFailedPrecondition is the google.rpc status of a call made in a
// state that does not allow it.
const StatusFailedPrecondition = "FAILED_PRECONDITION"

// Client calls the Procurement API for one provider. It is safe for
// concurrent use.
type Client struct {
	provider string
	svc      *cp.Service
}

// NewClient returns a Client for provider. opts go to Google's client:
// none in production (Application Default Credentials, the real
// endpoint); option.WithEndpoint and option.WithoutAuthentication for a
// stand-in.
func NewClient(ctx context.Context, provider string, opts ...option.ClientOption) (*Client, error) {
	const op = "procurement.NewClient"
	if err := validID(provider); err != nil {
		return nil, fault.Errorf(fault.Invalid, op, "provider: %s", fault.ErrorMessage(err))
	}
	svc, err := cp.NewService(ctx, opts...)
	if err != nil {
		return nil, fault.Wrap(fault.Invalid, op, err)
	}
	return &Client{provider: provider, svc: svc}, nil
}

// Provider returns the provider id.
func (c *Client) Provider() string { return c.provider }

// AccountName returns providers/{provider}/accounts/{id}.
func (c *Client) AccountName(id string) string { return AccountName(c.provider, id) }

// EntitlementName returns providers/{provider}/entitlements/{id}.
func (c *Client) EntitlementName(id string) string { return EntitlementName(c.provider, id) }

// AccountName returns the resource name of an account of a provider.
func AccountName(provider, id string) string { return "providers/" + provider + "/accounts/" + id }

// EntitlementName returns the resource name of an entitlement of a
// provider.
func EntitlementName(provider, id string) string {
	return "providers/" + provider + "/entitlements/" + id
}

// AccountID returns the account id of a resource name
// ".../accounts/{id}", or "" when name is not one.
func AccountID(name string) string {
	i := strings.LastIndex(name, "accounts/")
	if i < 0 || (i > 0 && name[i-1] != '/') {
		return ""
	}
	id := name[i+len("accounts/"):]
	if validID(id) != nil {
		return ""
	}
	return id
}

// validID checks an id that becomes one segment of a resource name: the
// API's ids are letters, digits, '-', '_' and '.', which are the rules of
// tenant ids; anything else would change the path it is put in.
func validID(id string) error {
	if err := event.ValidTenant(id); err != nil {
		return fault.Errorf(fault.Invalid, "procurement.validID", "id %s: not a Procurement id", quote(id))
	}
	return nil
}

// check validates the ids of a call.
func check(op string, ids ...string) error {
	for _, id := range ids {
		if err := validID(id); err != nil {
			return fault.Errorf(fault.Invalid, op, "%s", fault.ErrorMessage(err))
		}
	}
	return nil
}

// GetAccount reads an account.
func (c *Client) GetAccount(ctx context.Context, id string) (*cp.Account, error) {
	const op = "procurement.GetAccount"
	if err := check(op, id); err != nil {
		return nil, err
	}
	a, err := c.svc.Providers.Accounts.Get(c.AccountName(id)).Context(ctx).Do()
	if err != nil {
		return nil, mapError(op, c.AccountName(id), err)
	}
	return a, nil
}

// GetEntitlement reads an entitlement.
func (c *Client) GetEntitlement(ctx context.Context, id string) (*cp.Entitlement, error) {
	const op = "procurement.GetEntitlement"
	if err := check(op, id); err != nil {
		return nil, err
	}
	e, err := c.svc.Providers.Entitlements.Get(c.EntitlementName(id)).Context(ctx).Do()
	if err != nil {
		return nil, mapError(op, c.EntitlementName(id), err)
	}
	return e, nil
}

// MaxFilter bounds a list filter.
const MaxFilter = 1024

// ListPageSize is the page size ListEntitlements asks for.
const ListPageSize = 100

// ListEntitlements returns one page of the provider's entitlements that
// match filter (the API's syntax, e.g. "state=ENTITLEMENT_ACTIVE" or
// "account=A"; "" for all), from pageToken ("" for the first page), and
// the token of the next page ("" after the last).
func (c *Client) ListEntitlements(ctx context.Context, filter, pageToken string) ([]*cp.Entitlement, string, error) {
	const op = "procurement.ListEntitlements"
	if len(filter) > MaxFilter || len(pageToken) > MaxFilter {
		return nil, "", fault.Errorf(fault.Invalid, op, "filter and page token are at most %d bytes", MaxFilter)
	}
	call := c.svc.Providers.Entitlements.List("providers/" + c.provider).PageSize(ListPageSize).Context(ctx)
	if filter != "" {
		call = call.Filter(filter)
	}
	if pageToken != "" {
		call = call.PageToken(pageToken)
	}
	res, err := call.Do()
	if err != nil {
		return nil, "", mapError(op, "providers/"+c.provider+"/entitlements", err)
	}
	return res.Entitlements, res.NextPageToken, nil
}

// ApproveAccount grants the "signup" approval of an account.
func (c *Client) ApproveAccount(ctx context.Context, id string) error {
	const op = "procurement.ApproveAccount"
	if err := check(op, id); err != nil {
		return err
	}
	_, err := c.svc.Providers.Accounts.Approve(c.AccountName(id), &cp.ApproveAccountRequest{ApprovalName: SignupApproval}).Context(ctx).Do()
	return mapError(op, c.AccountName(id), err)
}

// RejectAccount rejects the "signup" approval of an account, with a
// reason (truncated to MaxReason bytes).
func (c *Client) RejectAccount(ctx context.Context, id, reason string) error {
	const op = "procurement.RejectAccount"
	if err := check(op, id); err != nil {
		return err
	}
	_, err := c.svc.Providers.Accounts.Reject(c.AccountName(id), &cp.RejectAccountRequest{ApprovalName: SignupApproval, Reason: Truncate(reason, MaxReason)}).Context(ctx).Do()
	return mapError(op, c.AccountName(id), err)
}

// ResetAccount resets an account (a testing aid of the API: the approvals
// become pending and the account's entitlements are cancelled).
func (c *Client) ResetAccount(ctx context.Context, id string) error {
	const op = "procurement.ResetAccount"
	if err := check(op, id); err != nil {
		return err
	}
	_, err := c.svc.Providers.Accounts.Reset(c.AccountName(id), &cp.ResetAccountRequest{}).Context(ctx).Do()
	return mapError(op, c.AccountName(id), err)
}

// ApproveEntitlement approves an entitlement awaiting activation. It fails
// with FAILED_PRECONDITION (IsPrecondition) while the entitlement's
// account is not approved, or once the entitlement has left
// ENTITLEMENT_ACTIVATION_REQUESTED.
func (c *Client) ApproveEntitlement(ctx context.Context, id string) error {
	const op = "procurement.ApproveEntitlement"
	if err := check(op, id); err != nil {
		return err
	}
	_, err := c.svc.Providers.Entitlements.Approve(c.EntitlementName(id), &cp.ApproveEntitlementRequest{}).Context(ctx).Do()
	return mapError(op, c.EntitlementName(id), err)
}

// RejectEntitlement rejects an entitlement awaiting activation, with a
// reason (truncated to MaxReason bytes).
func (c *Client) RejectEntitlement(ctx context.Context, id, reason string) error {
	const op = "procurement.RejectEntitlement"
	if err := check(op, id); err != nil {
		return err
	}
	_, err := c.svc.Providers.Entitlements.Reject(c.EntitlementName(id), &cp.RejectEntitlementRequest{Reason: Truncate(reason, MaxReason)}).Context(ctx).Do()
	return mapError(op, c.EntitlementName(id), err)
}

// ApprovePlanChange approves the pending change of an entitlement to
// plan.
func (c *Client) ApprovePlanChange(ctx context.Context, id, plan string) error {
	const op = "procurement.ApprovePlanChange"
	if err := check(op, id, plan); err != nil {
		return err
	}
	_, err := c.svc.Providers.Entitlements.ApprovePlanChange(c.EntitlementName(id), &cp.ApproveEntitlementPlanChangeRequest{PendingPlanName: plan}).Context(ctx).Do()
	return mapError(op, c.EntitlementName(id), err)
}

// RejectPlanChange rejects the pending change of an entitlement to plan,
// with a reason (truncated to MaxReason bytes).
func (c *Client) RejectPlanChange(ctx context.Context, id, plan, reason string) error {
	const op = "procurement.RejectPlanChange"
	if err := check(op, id, plan); err != nil {
		return err
	}
	_, err := c.svc.Providers.Entitlements.RejectPlanChange(c.EntitlementName(id), &cp.RejectEntitlementPlanChangeRequest{PendingPlanName: plan, Reason: Truncate(reason, MaxReason)}).Context(ctx).Do()
	return mapError(op, c.EntitlementName(id), err)
}

// SetMessage sets the messageToUser of an entitlement (shown to the buyer
// in the Marketplace UI) and returns the entitlement as updated.
func (c *Client) SetMessage(ctx context.Context, id, message string) (*cp.Entitlement, error) {
	const op = "procurement.SetMessage"
	if err := check(op, id); err != nil {
		return nil, err
	}
	if len(message) > MaxMessage {
		return nil, fault.Errorf(fault.Invalid, op, "message is %d bytes, limit %d", len(message), MaxMessage)
	}
	e, err := c.svc.Providers.Entitlements.Patch(c.EntitlementName(id), &cp.Entitlement{MessageToUser: message, ForceSendFields: []string{"MessageToUser"}}).
		UpdateMask("messageToUser").Context(ctx).Do()
	if err != nil {
		return nil, mapError(op, c.EntitlementName(id), err)
	}
	return e, nil
}

// SignupApproval is the name of the account approval granted after the
// buyer signs up.
const SignupApproval = "signup"

// --- Errors ----------------------------------------------------------------------

// mapError maps an error of Google's client to a *fault.Error that
// wraps it: 404 NotFound; 400 FAILED_PRECONDITION Unavailable (retryable:
// the state may still change, see IsPrecondition); 408, 429 and 5xx and
// network faults Unavailable; other 4xx Invalid (permanent). A cancelled
// or expired context is Unavailable too.
func mapError(op, resource string, err error) error {
	if err == nil {
		return nil
	}
	var ge *googleapi.Error
	if !errors.As(err, &ge) {
		return &fault.Error{Code: fault.Unavailable, Op: op, Message: resource + ": " + truncate(err.Error(), 200), Err: err}
	}
	status := rpcStatus(ge)
	msg := fmt.Sprintf("%s: HTTP %d", resource, ge.Code)
	if status != "" {
		msg += " " + status
	}
	if ge.Message != "" {
		msg += ": " + truncate(ge.Message, 300)
	}
	code := fault.Invalid
	switch {
	case ge.Code == http.StatusNotFound:
		code = fault.NotFound
	case status == StatusFailedPrecondition:
		code = fault.Unavailable
	case ge.Code == http.StatusRequestTimeout, ge.Code == http.StatusTooManyRequests, ge.Code >= 500:
		code = fault.Unavailable
	}
	return &fault.Error{Code: code, Op: op, Message: msg, Err: err}
}

// rpcStatus reads the google.rpc status of an error body
// {"error":{"status": …}}.
func rpcStatus(ge *googleapi.Error) string {
	var body struct {
		Error struct {
			Status string `json:"status"`
		} `json:"error"`
	}
	if len(ge.Body) > 0 && len(ge.Body) < 1<<20 && json.Unmarshal([]byte(ge.Body), &body) == nil {
		return body.Error.Status
	}
	return ""
}

// IsPrecondition reports whether err is the API's FAILED_PRECONDITION: the
// call is not allowed in the resource's current state (an entitlement
// approved before its account, or approved once it moved on).
func IsPrecondition(err error) bool {
	var ge *googleapi.Error
	return errors.As(err, &ge) && rpcStatus(ge) == StatusFailedPrecondition
}

// HTTPStatus returns the HTTP status of a call's outcome: 200 for nil, the
// API's status for its errors, 0 when no answer came (a network fault or a
// call refused before it was made).
func HTTPStatus(err error) int {
	if err == nil {
		return http.StatusOK
	}
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		return ge.Code
	}
	return 0
}

// Truncate returns s cut to at most n bytes on a UTF-8 boundary.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return Truncate(s, n) + "…"
}

func quote(s string) string { return fmt.Sprintf("%q", truncate(s, 64)) }
