package marketplace

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/httpjson"
)

// MaxNotificationBytes bounds the data of a notification message.
const MaxNotificationBytes = 64 << 10

// MaxTextBytes bounds providerId, updateTime and the plan fields.
const MaxTextBytes = 256

// MaxEventIDBytes bounds eventId, which with a suffix such as "-2" is the
// id of the events a notification becomes (limit 256 bytes).
const MaxEventIDBytes = 240

// Notification is a Marketplace Pub/Sub message, decoded. It carries ids
// only: what the entitlement or account is now is read from the
// Procurement API.
type Notification struct {
	// EventID identifies the notification; a redelivery repeats it.
	EventID string
	// EventType is e.g. ENTITLEMENT_ACTIVE.
	EventType string
	// ProviderID is the provider the notification is for.
	ProviderID string
	// Resource says which of Entitlement and Account is set.
	Resource Resource
	// ID is the entitlement or account id.
	ID string
	// UpdateTime is the resource's updateTime as the message states it;
	// "" when absent.
	UpdateTime string
	// NewPendingPlan and NewPlan are the plan fields some entitlement
	// notifications carry; informational, the GET's values are used.
	NewPendingPlan, NewPlan string
}

// wire is the message's JSON. Unknown members are tolerated: Google adds
// fields.
type wire struct {
	EventID     *string  `json:"eventId"`
	EventType   *string  `json:"eventType"`
	ProviderID  *string  `json:"providerId"`
	Entitlement *wireRef `json:"entitlement"`
	Account     *wireRef `json:"account"`
}

type wireRef struct {
	ID             *string `json:"id"`
	UpdateTime     *string `json:"updateTime"`
	NewPendingPlan *string `json:"newPendingPlan"`
	NewPlan        *string `json:"newPlan"`
}

// Decode decodes the data of a Marketplace notification message. The data
// is at most MaxNotificationBytes of UTF-8 holding one JSON object that
// repeats no member name; eventId, eventType and providerId are required
// strings; exactly one of entitlement and account is an object with an id.
// Members Decode does not know are ignored. Every error is an Invalid
// *fault.Error.
func Decode(data []byte) (Notification, error) {
	const op = "marketplace.Decode"
	fail := func(format string, args ...any) (Notification, error) {
		return Notification{}, fault.Errorf(fault.Invalid, op, format, args...)
	}
	if len(data) > MaxNotificationBytes {
		return fail("notification is %d bytes, limit %d", len(data), MaxNotificationBytes)
	}
	if err := httpjson.CheckStrict(data); err != nil {
		return fail("notification: %v", err)
	}
	if t := bytes.TrimSpace(data); len(t) == 0 || t[0] != '{' {
		return fail("notification: must be a JSON object")
	}
	var w wire
	if err := json.Unmarshal(data, &w); err != nil {
		return fail("notification: %s", httpjson.Truncate(err.Error(), 256))
	}
	var n Notification
	var err error
	if n.EventID, err = text("eventId", w.EventID, true); err != nil {
		return fail("%v", err)
	}
	if len(n.EventID) > MaxEventIDBytes {
		return fail("eventId is %d bytes, limit %d", len(n.EventID), MaxEventIDBytes)
	}
	if n.EventType, err = text("eventType", w.EventType, true); err != nil {
		return fail("%v", err)
	}
	if !typePattern(n.EventType) {
		return fail("eventType %s: must be 1-64 of [A-Z0-9_]", quote(n.EventType))
	}
	if n.ProviderID, err = text("providerId", w.ProviderID, true); err != nil {
		return fail("%v", err)
	}
	var ref *wireRef
	switch {
	case w.Entitlement != nil && w.Account != nil:
		return fail("notification: has both entitlement and account, want one")
	case w.Entitlement != nil:
		n.Resource, ref = ResourceEntitlement, w.Entitlement
	case w.Account != nil:
		n.Resource, ref = ResourceAccount, w.Account
	default:
		return fail("notification: has neither entitlement nor account")
	}
	r := string(n.Resource)
	if n.ID, err = text(r+".id", ref.ID, true); err != nil {
		return fail("%v", err)
	}
	if n.Resource == ResourceAccount {
		if err := ValidAccount(n.ID); err != nil {
			return fail("account.id: %s", fault.ErrorMessage(err))
		}
	} else if err := event.ValidSubject(n.ID); err != nil || n.ID == governor.BroadcastSubject {
		return fail("entitlement.id %s: must be 1-128 characters of [A-Za-z0-9._-]", quote(n.ID))
	}
	if n.UpdateTime, err = text(r+".updateTime", ref.UpdateTime, false); err != nil {
		return fail("%v", err)
	}
	if n.NewPendingPlan, err = text(r+".newPendingPlan", ref.NewPendingPlan, false); err != nil {
		return fail("%v", err)
	}
	if n.NewPlan, err = text(r+".newPlan", ref.NewPlan, false); err != nil {
		return fail("%v", err)
	}
	return n, nil
}

// text checks a string member: present when required, at most
// MaxTextBytes of printable characters.
func text(name string, v *string, required bool) (string, error) {
	if v == nil || *v == "" {
		if required {
			return "", fmt.Errorf("%s is required", name)
		}
		return "", nil
	}
	s := *v
	if len(s) > MaxTextBytes {
		return "", fmt.Errorf("%s is %d bytes, limit %d", name, len(s), MaxTextBytes)
	}
	for _, c := range s {
		if c < 0x20 || c == 0x7f {
			return "", fmt.Errorf("%s %s: has a control character", name, quote(s))
		}
	}
	if strings.TrimSpace(s) != s {
		return "", fmt.Errorf("%s %s: has surrounding white space", name, quote(s))
	}
	return s, nil
}

// typePattern reports whether s is 1-64 of [A-Z0-9_].
func typePattern(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}
