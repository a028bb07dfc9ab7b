package governor

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Payload is the type of an event's or an action's data: a struct that
// validates itself. None is the payload of events that carry no data.
type Payload interface{ Validate() error }

// None is the payload of events and actions that carry no data.
type None struct{}

// Validate accepts the empty object.
func (None) Validate() error { return nil }

// Message is the typed contract of one governor event: the domain that
// receives it, its name and the type P of its data, with an example the
// whole-graph check and the generated docs use. The receiving machine
// declares a row On Message.Name with Message.Schema as its payload
// check; a sending machine emits it with Emit, or statically with To, so
// that both sides name the same value rather than a string each.
type Message[P Payload] struct {
	Domain Domain
	Name   EventName
	// Example is valid data of the event: CheckGraph sends it to the
	// receiving machine's payload check.
	Example P
}

// Define returns the Message of event name of domain d, whose data is a P.
func Define[P Payload](d Domain, name EventName, example P) Message[P] {
	return Message[P]{Domain: d, Name: name, Example: example}
}

// Type returns the CloudEvents type of the message.
func (m Message[P]) Type() string { return TypeOf(m.Domain, m.Name) }

// Schema is the receiving machine's payload check of the message. For
// None it is nil: the event carries no data, or an empty object.
func (m Message[P]) Schema() PayloadCheck {
	var p P
	if _, ok := any(p).(None); ok {
		return nil
	}
	return Schema[P]()
}

// To is a static cascade of the message, with no data, to subject
// ("" keeps the sending instance's subject, "*" broadcasts).
func (m Message[P]) To(subject string) Cascade {
	return Cascade{Domain: m.Domain, Event: m.Name, Subject: subject}
}

// May declares that a row's Apply may emit the message dynamically, to
// the subject described by subject (documentation only: "" keeps the
// instance's subject, "*" broadcasts, anything else names the rule).
func (m Message[P]) May(subject string) Ref {
	return Ref{Kind: KindEvent, Domain: m.Domain, Name: string(m.Name), Subject: subject, Example: exampleJSON(m.Example)}
}

// Emit publishes the message with data p to subject of the same tenant
// after commit; subject "" keeps the instance's subject, "*" broadcasts.
// The row must declare the message (Transition.Cascade or Emits).
func (m Message[P]) Emit(c *Ctx, subject string, p P) error {
	return c.emit(m.Domain, m.Name, subject, p)
}

// Action is the typed contract of one action a governor publishes for
// actuators: its kind, e.g. "tenant.provision", and the type P of its
// data.
type Action[P Payload] struct {
	Kind    string
	Example P
}

// DefineAction returns the Action of kind whose data is a P.
func DefineAction[P Payload](kind string, example P) Action[P] {
	return Action[P]{Kind: kind, Example: example}
}

// May declares that a row's Apply may actuate the action dynamically.
func (a Action[P]) May() Ref {
	return Ref{Kind: KindActuate, Name: a.Kind, Example: exampleJSON(a.Example)}
}

// Emit publishes the action with data p for actuators after commit. The
// row must declare the action (Transition.Actuate or Emits).
func (a Action[P]) Emit(c *Ctx, p P) error { return c.actuate(a.Kind, p) }

// Ref is a declared dynamic emission of a row: an event (Domain and Name)
// or an action (Name is the kind), with example data.
type Ref struct {
	Kind    EmitKind
	Domain  Domain
	Name    string
	Subject string
	Example json.RawMessage
}

// String renders the reference for the docs.
func (r Ref) String() string {
	if r.Kind == KindActuate {
		return fmt.Sprintf("actuate `%s`", r.Name)
	}
	s := fmt.Sprintf("→ %s.`%s`", r.Domain, r.Name)
	if r.Subject != "" {
		s += fmt.Sprintf(" (%s)", r.Subject)
	}
	return s
}

func exampleJSON(p any) json.RawMessage {
	b, err := json.Marshal(p)
	if err != nil {
		panic(fmt.Sprintf("governor: example %T does not encode: %v", p, err))
	}
	return b
}

// ReasonCode is the stable, snake_case code of a rejection reason; a
// receipt's reason is the code, then ": " and a detail when there is one.
type ReasonCode string

// String returns the code.
func (r ReasonCode) String() string { return string(r) }

// Reason documents one rejection reason a machine may give.
type Reason struct {
	Code ReasonCode
	// Doc says when the reason is given, for the generated docs.
	Doc string
}

// Reasons every machine may give, decided by the governor itself rather
// than by a guard.
var EngineReasons = []Reason{
	{ReasonNoTransition, "the event is not allowed in the instance's state"},
	{ReasonCascadeDepth, fmt.Sprintf("the event is a cascade at depth %d or more", MaxCascadeDepth)},
	{ReasonTimerCancelled, "the timeout is of a timer that is no longer armed"},
}

// Rejection is returned by guards and Apply functions to refuse an event.
// Decide turns it into a rejected decision; it is not an error of Decide.
type Rejection struct {
	Code   ReasonCode
	Detail string
}

// Reason renders the rejection as a receipt records it: the code, then
// ": " and the detail when there is one.
func (r *Rejection) Reason() string {
	if r.Detail == "" {
		return string(r.Code)
	}
	return string(r.Code) + ": " + r.Detail
}

// Error implements error.
func (r *Rejection) Error() string { return "rejected: " + r.Reason() }

// Reject returns a *Rejection with code and a detail formatted from format
// and args; an empty format gives no detail.
func Reject(code ReasonCode, format string, args ...any) error {
	r := &Rejection{Code: code}
	if format != "" {
		r.Detail = fmt.Sprintf(format, args...)
	}
	return r
}

// CodeOf returns the code of a receipt's rejection reason: what precedes
// the first ": ", or the whole reason.
func CodeOf(reason string) ReasonCode {
	code, _, _ := strings.Cut(reason, ": ")
	return ReasonCode(code)
}
