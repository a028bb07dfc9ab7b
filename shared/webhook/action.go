package webhook

import (
	"bytes"
	"encoding/json"
	"maps"
	"mime"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/autonomics/autonomics/shared/engine"
	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/httpjson"
	"github.com/autonomics/autonomics/shared/strictjson"
)

// AttrAction is the Pub/Sub attribute naming an action's kind.
const AttrAction = "action"

// Limits of an action's fields.
const (
	MaxIDBytes   = 256
	MaxKindBytes = 128
	MaxTextBytes = 256
)

// Action is an action a governor published on the actions topic, as the
// actuator records it.
type Action struct {
	// ID is the action's deterministic id (ce-id): the webhook-id of
	// every delivery of it.
	ID string
	// Kind is the action kind, e.g. "tenant.provision".
	Kind string
	// Domain is the emitting governor's, from the source
	// "autonomics/governor/<domain>".
	Domain governor.Domain
	Source string
	Tenant string
	// Subject is the emitting instance's subject.
	Subject string
	// Time is the decision time (ce-time): when the action was committed.
	Time time.Time
	// Data is the action's JSON object; nil when it has none.
	Data json.RawMessage
	// CorrelationID and CausationID (the emitting receipt's hash) and
	// TraceParent come from the extensions of the same names.
	CorrelationID string
	CausationID   string
	TraceParent   string
	// MessageID and PublishTime are Pub/Sub's; Raw and Attributes are the
	// message as received, kept to dead-letter it unchanged.
	MessageID   string
	PublishTime time.Time
	Raw         []byte
	Attributes  map[string]string
	// ReceivedAt is when the actuator first recorded the action.
	ReceivedAt time.Time
}

// Kinds maps each governor domain to the action kinds its machine may
// emit (governor.Machine.Actions); DecodeAction refuses any other pair.
type Kinds map[governor.Domain][]string

// KindsOf returns the Kinds of machines.
func KindsOf(ms map[governor.Domain]*governor.Machine) Kinds {
	k := Kinds{}
	for d, m := range ms {
		if a := m.Actions(); len(a) > 0 {
			k[d] = a
		}
	}
	return k
}

// All returns every kind, sorted, without repetition.
func (k Kinds) All() []string {
	var out []string
	for _, ks := range k {
		out = append(out, ks...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Domains returns the domains that actuate, sorted.
func (k Kinds) Domains() []governor.Domain {
	out := slices.Collect(maps.Keys(k))
	slices.Sort(out)
	return out
}

// Known reports whether some domain emits kind.
func (k Kinds) Known(kind string) bool { return slices.Contains(k.All(), kind) }

// DecodeAction decodes the action a Pub/Sub message of the actions topic
// carries, in the binary mode the engine publishes it: ce-specversion 1.0,
// ce-id (letters, digits, "_" and "-": a webhook-id may not hold a "."),
// ce-source autonomics/governor/<domain>, ce-type autonomics.action.<kind>
// with the attribute action = <kind>, where kind is one of the domain's
// kinds, ce-tenantid, optional ce-subject, ce-time, ce-correlationid,
// ce-causationid and ce-traceparent, and data empty or a JSON object of at
// most event.MaxDataBytes with no repeated member. Every error is an
// Invalid *fault.Error whose message quotes at most a short prefix of
// the input.
func DecodeAction(m event.Message, kinds Kinds) (Action, error) {
	const op = "webhook.DecodeAction"
	fail := func(format string, args ...any) (Action, error) {
		return Action{}, fault.Errorf(fault.Invalid, op, format, args...)
	}
	if len(m.Data) > event.MaxMessageBytes {
		return fail("message data is %d bytes, limit %d", len(m.Data), event.MaxMessageBytes)
	}
	if len(m.Attributes) > event.MaxAttributes {
		return fail("message has %d attributes, limit %d", len(m.Attributes), event.MaxAttributes)
	}
	attrs := make(map[string]string, len(m.Attributes))
	for _, k := range slices.Sorted(maps.Keys(m.Attributes)) {
		v := m.Attributes[k]
		lk := strings.ToLower(k)
		if _, dup := attrs[lk]; dup {
			return fail("attributes differ only in case: %s", quote(k))
		}
		if len(k) > event.MaxAttributeNameBytes || len(v) > event.MaxAttributeValueBytes || !utf8.ValidString(k) || !utf8.ValidString(v) {
			return fail("attribute %s is over its limits or not UTF-8", quote(k))
		}
		attrs[lk] = v
	}
	if ct, ok := attrs["content-type"]; ok {
		mt, params, err := mime.ParseMediaType(ct)
		if err != nil || mt != event.DataContentType || (params["charset"] != "" && !strings.EqualFold(params["charset"], "utf-8")) {
			return fail("content-type %s: an action is a binary-mode CloudEvent with %s data", quote(ct), event.DataContentType)
		}
	}
	if v := attrs["ce-specversion"]; v != "1.0" {
		return fail(`ce-specversion %s: want "1.0" (binary mode)`, quote(v))
	}
	a := Action{
		ID: attrs["ce-id"], Source: attrs["ce-source"], Tenant: attrs["ce-tenantid"], Subject: attrs["ce-subject"],
		CorrelationID: attrs["ce-correlationid"], CausationID: attrs["ce-causationid"],
		MessageID: m.ID, PublishTime: m.PublishTime, Raw: m.Data, Attributes: m.Attributes,
	}
	if !validID(a.ID) {
		return fail("ce-id %s: want 1 to %d letters, digits, '_' or '-'", quote(a.ID), MaxIDBytes)
	}
	d, ok := strings.CutPrefix(a.Source, engine.GovernorSourcePrefix)
	if !ok || !slices.Contains(governor.Domains, governor.Domain(d)) {
		return fail("ce-source %s: actions come from %s<domain>", quote(a.Source), engine.GovernorSourcePrefix)
	}
	a.Domain = governor.Domain(d)
	typ := attrs["ce-type"]
	a.Kind, ok = strings.CutPrefix(typ, engine.ActionTypePrefix)
	if !ok || !validKind(a.Kind) {
		return fail("ce-type %s: want %s<kind>", quote(typ), engine.ActionTypePrefix)
	}
	if k := attrs[AttrAction]; k != a.Kind {
		return fail("attribute %s %s differs from the kind %s of ce-type", AttrAction, quote(k), quote(a.Kind))
	}
	if !slices.Contains(kinds[a.Domain], a.Kind) {
		return fail("%s is not an action of the %s governor", quote(a.Kind), a.Domain)
	}
	if err := event.ValidTenant(a.Tenant); err != nil {
		return fail("ce-tenantid: %s", fault.ErrorMessage(err))
	}
	if a.Subject == "" {
		a.Subject = governor.DefaultSubject
	}
	if err := event.ValidSubject(a.Subject); err != nil || a.Subject == governor.BroadcastSubject {
		return fail("ce-subject %s: an instance's subject", quote(a.Subject))
	}
	for name, v := range map[string]string{"ce-correlationid": a.CorrelationID, "ce-causationid": a.CausationID} {
		if v != "" && !validText(v) {
			return fail("%s %s: at most %d bytes of printable UTF-8", name, quote(v), MaxTextBytes)
		}
	}
	if tp := attrs["ce-traceparent"]; len(tp) <= 512 && validText(tp) {
		a.TraceParent = tp
	}
	a.Time = m.PublishTime
	if s, ok := attrs["ce-time"]; ok {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return fail("ce-time %s: want an RFC 3339 timestamp", quote(s))
		}
		a.Time = t.UTC()
	}
	if a.Time.IsZero() {
		return fail("the action has neither ce-time nor a publish time")
	}
	data := bytes.TrimSpace(m.Data)
	if len(data) > 0 {
		switch {
		case len(data) > event.MaxDataBytes:
			return fail("data is %d bytes, limit %d", len(data), event.MaxDataBytes)
		case !utf8.Valid(data) || !json.Valid(data) || data[0] != '{':
			return fail("data must be a JSON object")
		}
		if err := strictjson.Check(data); err != nil {
			return fail("data: %v", err)
		}
		a.Data = json.RawMessage(data)
	}
	return a, nil
}

// validID reports whether s is 1 to MaxIDBytes of [A-Za-z0-9_-].
func validID(s string) bool {
	if s == "" || len(s) > MaxIDBytes {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// validKind reports whether s is dot-separated [a-z0-9_]+ words of at
// most MaxKindBytes in all.
func validKind(s string) bool {
	if s == "" || len(s) > MaxKindBytes {
		return false
	}
	for _, w := range strings.Split(s, ".") {
		if w == "" {
			return false
		}
		for i := 0; i < len(w); i++ {
			c := w[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_') {
				return false
			}
		}
	}
	return true
}

// validText reports whether s is non-empty UTF-8 of at most MaxTextBytes
// without control characters.
func validText(s string) bool {
	return s != "" && len(s) <= MaxTextBytes && utf8.ValidString(s) && strings.IndexFunc(s, unicode.IsControl) < 0
}

// Payload is the JSON body of a webhook: the Standard Webhooks fields
// type, timestamp and data, and Autonomics' own beside them.
type Payload struct {
	// Type is the action kind, e.g. "tenant.provision".
	Type string `json:"type"`
	// Timestamp is when the governor decided the action (RFC 3339).
	Timestamp string `json:"timestamp"`
	// Data is the action's data, {} when it has none.
	Data json.RawMessage `json:"data"`
	// ActionID is the action's id, the same as the webhook-id header.
	ActionID string `json:"action_id"`
	TenantID string `json:"tenant_id"`
	// Domain and Subject name the governor instance that decided it.
	Domain  string `json:"domain"`
	Subject string `json:"subject"`
	// ReceiptHash is the hash of the receipt that records the decision;
	// the query API and the ledger prove it.
	ReceiptHash   string `json:"receipt_hash,omitempty"`
	CorrelationID string `json:"correlation_id,omitempty"`
}

// Body returns the webhook body of a, the same bytes on every call.
func (a Action) Body() []byte {
	data := a.Data
	if len(data) == 0 {
		data = json.RawMessage(`{}`)
	}
	b, _ := json.Marshal(Payload{
		Type: a.Kind, Timestamp: a.Time.UTC().Format(time.RFC3339Nano), Data: data,
		ActionID: a.ID, TenantID: a.Tenant, Domain: string(a.Domain), Subject: a.Subject,
		ReceiptHash: a.CausationID, CorrelationID: a.CorrelationID,
	})
	return b
}

// quote quotes s for an error message, truncated.
func quote(s string) string { return httpjson.Quote(s) }
