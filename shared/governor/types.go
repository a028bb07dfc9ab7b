package governor

import (
	"encoding/json"
	"time"
)

// Domain names one of the eight governor domains.
type Domain string

// The eight governor domains.
const (
	Entitlement     Domain = "entitlement"
	Billing         Domain = "billing"
	ProductCatalog  Domain = "product_catalog"
	Subscription    Domain = "subscription"
	CustomerAccount Domain = "customer_account"
	QuotaSLA        Domain = "quota_sla"
	ComplianceAudit Domain = "compliance_audit"
	MultiTenant     Domain = "multi_tenant"
)

// Domains lists every domain in a fixed order.
var Domains = []Domain{
	Entitlement, Billing, ProductCatalog, Subscription,
	CustomerAccount, QuotaSLA, ComplianceAudit, MultiTenant,
}

// String returns the domain id.
func (d Domain) String() string { return string(d) }

// State is a governor state. StateNone is the state of an instance that does
// not exist yet.
type State string

// StateNone is the state of an instance before its first accepted event.
const StateNone State = "none"

// String returns the state name.
func (s State) String() string { return string(s) }

// EventName is the part of an event type after the domain, for example
// "payment_failed" or "timeout.grace".
type EventName string

// String returns the event name.
func (e EventName) String() string { return string(e) }

// TimeoutPrefix starts the name of every timer event.
const TimeoutPrefix = "timeout."

// Timeout returns the event name of timer name, e.g. "timeout.grace".
func Timeout(name string) EventName { return EventName(TimeoutPrefix + name) }

// Outcome is the result of applying an event to an instance.
type Outcome string

// Outcomes of a decision.
const (
	Accepted Outcome = "accepted"
	Rejected Outcome = "rejected"
)

// Default subject values.
const (
	DefaultSubject   = "default"
	BroadcastSubject = "*"
)

// Key identifies a governor instance.
type Key struct {
	Tenant  string `json:"tenant_id"`
	Domain  Domain `json:"domain"`
	Subject string `json:"subject"`
}

// String renders the key as tenant/domain/subject.
func (k Key) String() string { return k.Tenant + "/" + string(k.Domain) + "/" + k.Subject }

// Timer is an armed timeout of an instance. ID is deterministic and unique
// per arming, so a timeout event can be matched to the arming that caused it.
type Timer struct {
	Name string    `json:"name"`
	ID   string    `json:"id"`
	Due  time.Time `json:"due"`
}

// Instance is a snapshot of one governor instance.
type Instance struct {
	Key
	State State `json:"state"`
	// Version is the seq of the instance's last receipt; 0 for none.
	Version int64 `json:"version"`
	// LastHash is the hash of the instance's last receipt; "" for none.
	LastHash string `json:"last_hash"`
	// Data is the domain's JSON object; nil or empty means {}.
	Data json.RawMessage `json:"data,omitempty"`
	// Timers are the armed timers by name.
	Timers    map[string]Timer `json:"timers,omitempty"`
	UpdatedAt time.Time        `json:"updated_at"`
}

// Event is a validated inbound CloudEvent addressed to one domain.
type Event struct {
	ID     string
	Source string
	// Type is the full CloudEvents type, autonomics.<domain>.<name>.
	Type    string
	Domain  Domain
	Name    EventName
	Tenant  string
	Subject string
	Time    time.Time
	// Data is the raw JSON data; its SHA-256 is the receipt's data_digest.
	Data          json.RawMessage
	CorrelationID string
	CausationID   string
	CascadeDepth  int
	TraceParent   string
}

// Key returns the instance key the event addresses.
func (e Event) Key() Key { return Key{Tenant: e.Tenant, Domain: e.Domain, Subject: e.Subject} }

// TypeOf returns the CloudEvents type of an event name in a domain.
func TypeOf(d Domain, name EventName) string {
	return "autonomics." + string(d) + "." + string(name)
}

// EmitKind says whether an emitted message is an event for a governor or a
// command for an actuator.
type EmitKind string

// Kinds of emitted messages.
const (
	KindEvent   EmitKind = "event"
	KindActuate EmitKind = "actuate"
)

// Emit is a message a decision publishes after commit: a cascade event to
// a governor of the same tenant, or an action for actuators.
type Emit struct {
	Kind EmitKind
	// Type is the CloudEvents type of a cascade event, or the action kind,
	// e.g. "marketplace.approve_account".
	Type    string
	Domain  Domain
	Subject string
	Data    json.RawMessage
}

// Decision is what Decide returns.
type Decision struct {
	Outcome Outcome
	// Code is the rejection's reason code and Reason the reason a receipt
	// records (the code, then ": " and a detail); both are empty for an
	// acceptance.
	Code   ReasonCode
	Reason string
	From   State
	To     State
	// Data is the instance data after the decision.
	Data json.RawMessage
	// Timers is the complete set of armed timers after the decision.
	Timers map[string]Timer
	// Emits lists the cascade events and actions, in order.
	Emits []Emit
}

// Input is everything Decide needs.
type Input struct {
	Instance Instance
	Event    Event
	// Reads holds the instances the row's Needs named, as the engine
	// read them in the decision's transaction: every key the row named is
	// present, one that does not exist with state StateNone or "".
	Reads map[Key]Instance
	// Provider is the provider tenant the Needs were computed with
	// (Scope.Provider); "" means the event's tenant.
	Provider string
	Now      time.Time
	// Nonce makes the ids of the timers this decision arms unpredictable:
	// the engine passes fresh random bytes for every decision. With no
	// nonce, timer ids are TimerID's deterministic ones.
	Nonce []byte
}
