package governor

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/autonomics/autonomics/shared/fault"
)

// MaxCascadeDepth bounds cascades: an event whose cascadedepth is at least
// this value is rejected with reason ReasonCascadeDepth.
const MaxCascadeDepth = 8

// Reasons recorded on rejections the engine itself decides.
const (
	ReasonNoTransition   ReasonCode = "no_transition"
	ReasonCascadeDepth   ReasonCode = "cascade_depth_exceeded"
	ReasonTimerCancelled ReasonCode = "timer_cancelled"
)

// Cascade is a static effect: publish event Event to domain Domain of the
// same tenant. Subject "" keeps the instance's subject; "*" broadcasts.
type Cascade struct {
	Domain  Domain
	Event   EventName
	Subject string
}

// Transition is one row of a machine's table.
type Transition struct {
	// From lists the source states; StateNone stands for "no instance yet".
	From []State
	// Any makes the row apply in every existing, non-terminal state.
	Any bool
	// On is the event name.
	On EventName
	// To is the target state. Apply may pick one of Alt instead.
	To  State
	Alt []State
	// Arm names timers armed with their configured duration.
	Arm []string
	// Cancel names timers cancelled by this transition. Every transition
	// that changes state cancels all timers it does not arm.
	Cancel []string
	// Cascade and Actuate are static effects, emitted in that order before
	// any effect Apply adds.
	Cascade []Cascade
	Actuate []string
	// Emits declares the events and actions Apply may emit beyond the
	// static ones (Message.May, Action.May). Decide refuses an undeclared
	// emission as an Internal error, and CheckGraph sends each example to
	// the machine that receives it.
	Emits []Ref
	// Needs names the other instances the guard and Apply read
	// (Ctx.Read), computed from the event and the instance before the
	// decision. The engine reads them in the decision's transaction.
	Needs func(Scope) []Key
	// Guard may refuse the event by returning Reject(...).
	Guard func(*Ctx) error
	// Apply updates data, picks a target among To and Alt, and adds
	// dynamic effects. It may also return Reject(...).
	Apply func(*Ctx) error
	// Note documents guards and dynamic effects in the generated docs;
	// numbers in it come from the values the code uses.
	Note string
}

// Scope is what a row's Needs sees: the instance before the decision, the
// event, and the provider tenant, whose instances hold the provider's own
// records (the product catalog).
type Scope struct {
	Instance Instance
	Event    Event
	Provider string
}

// Targets returns To followed by Alt.
func (t *Transition) Targets() []State { return append([]State{t.To}, t.Alt...) }

// PayloadCheck validates an event's data for one event name.
type PayloadCheck func(data json.RawMessage) error

// Machine is a governor's state machine as data.
type Machine struct {
	Domain Domain
	// States lists every state but StateNone, in documentation order.
	States   []State
	Terminal []State
	// Timers holds the default duration of every timer the machine arms.
	Timers      map[string]time.Duration
	Transitions []Transition
	// Payloads validates the data of the named events before any state is
	// read; events not listed carry no data (none, or an empty object).
	Payloads map[EventName]PayloadCheck
	// Senders says which sender classes may send each event; every event
	// but the timeouts (the scheduler's alone) needs a rule.
	Senders map[EventName][]Sender
	// Reasons lists the reason codes the machine's guards and Apply
	// functions reject with, in documentation order; EngineReasons are
	// every machine's without being listed. Decide refuses a rejection
	// with an undeclared code as an Internal error.
	Reasons []Reason
}

// HasReason reports whether code is one of EngineReasons or of m.Reasons.
func (m *Machine) HasReason(code ReasonCode) bool {
	for _, r := range EngineReasons {
		if r.Code == code {
			return true
		}
	}
	for _, r := range m.Reasons {
		if r.Code == code {
			return true
		}
	}
	return false
}

// Reads returns the keys of the instances a decision of ev on inst needs
// to read, as the matching row's Needs computes them with provider as the
// provider tenant; nil when the row needs none or there is no row.
func (m *Machine) Reads(inst Instance, ev Event, provider string) []Key {
	s := inst.State
	if s == "" {
		s = StateNone
	}
	t := m.Lookup(s, ev.Name)
	if t == nil || t.Needs == nil {
		return nil
	}
	if provider == "" {
		provider = ev.Tenant
	}
	return t.Needs(Scope{Instance: inst, Event: ev, Provider: provider})
}

// IsTerminal reports whether s is a terminal state of m.
func (m *Machine) IsTerminal(s State) bool { return slices.Contains(m.Terminal, s) }

// HasState reports whether s is StateNone or a declared state of m.
func (m *Machine) HasState(s State) bool { return s == StateNone || slices.Contains(m.States, s) }

// Events returns the machine's event names, sorted; ActuationFailed is
// one of them when the machine actuates.
func (m *Machine) Events() []EventName {
	seen := map[EventName]bool{}
	var out []EventName
	for _, t := range m.Transitions {
		if !seen[t.On] {
			seen[t.On] = true
			out = append(out, t.On)
		}
	}
	if m.actuates() {
		out = append(out, ActuationFailed)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// HasEvent reports whether some transition of m is triggered by name, or
// name is ActuationFailed and m actuates.
func (m *Machine) HasEvent(name EventName) bool {
	if name == ActuationFailed {
		return m.actuates()
	}
	for i := range m.Transitions {
		if m.Transitions[i].On == name {
			return true
		}
	}
	return false
}

// actuates reports whether m emits any action.
func (m *Machine) actuates() bool {
	for i := range m.Transitions {
		if len(m.Transitions[i].Actuate) > 0 {
			return true
		}
		for _, r := range m.Transitions[i].Emits {
			if r.Kind == KindActuate {
				return true
			}
		}
	}
	return false
}

// WithTimers returns a copy of m whose timer durations are overridden by
// the entries of d that name one of m's timers.
func (m *Machine) WithTimers(d map[string]time.Duration) *Machine {
	c := *m
	c.Timers = make(map[string]time.Duration, len(m.Timers))
	for k, v := range m.Timers {
		if o, ok := d[k]; ok && o > 0 {
			v = o
		}
		c.Timers[k] = v
	}
	return &c
}

// Lookup returns the transition for event name in state s, or nil.
func (m *Machine) Lookup(s State, name EventName) *Transition {
	for i := range m.Transitions {
		t := &m.Transitions[i]
		if t.On != name {
			continue
		}
		if slices.Contains(t.From, s) {
			return t
		}
		if t.Any && s != StateNone && !m.IsTerminal(s) {
			return t
		}
	}
	return nil
}

// Validate checks the table: declared states, no ambiguous rows, every
// armed timer has a duration, every timer event names a timer, and every
// event has a sender rule.
func (m *Machine) Validate() error {
	op := "governor.Machine.Validate"
	if err := m.validateSenders(); err != nil {
		return err
	}
	for _, s := range m.Terminal {
		if !slices.Contains(m.States, s) {
			return fault.Errorf(fault.Internal, op, "%s: terminal state %q not declared", m.Domain, s)
		}
	}
	codes := map[ReasonCode]bool{}
	for _, r := range append(slices.Clone(EngineReasons), m.Reasons...) {
		if !snakeCase(string(r.Code)) || r.Doc == "" || codes[r.Code] {
			return fault.Errorf(fault.Internal, op, "%s: reason %q must be snake_case, documented and declared once", m.Domain, r.Code)
		}
		codes[r.Code] = true
	}
	seen := map[string]int{}
	for i, t := range m.Transitions {
		for _, r := range t.Emits {
			if (r.Kind != KindEvent && r.Kind != KindActuate) || r.Name == "" || (r.Kind == KindEvent && r.Domain == "") {
				return fault.Errorf(fault.Internal, op, "%s row %d: malformed emission %+v", m.Domain, i, r)
			}
		}
		for _, s := range append(slices.Clone(t.From), t.Targets()...) {
			if !m.HasState(s) {
				return fault.Errorf(fault.Internal, op, "%s row %d: state %q not declared", m.Domain, i, s)
			}
		}
		if t.To == StateNone || t.To == "" {
			return fault.Errorf(fault.Internal, op, "%s row %d: missing target", m.Domain, i)
		}
		for _, name := range append(slices.Clone(t.Arm), t.Cancel...) {
			if _, ok := m.Timers[name]; !ok {
				return fault.Errorf(fault.Internal, op, "%s row %d: timer %q has no duration", m.Domain, i, name)
			}
		}
		if n, ok := bytes.CutPrefix([]byte(t.On), []byte(TimeoutPrefix)); ok {
			if _, ok := m.Timers[string(n)]; !ok {
				return fault.Errorf(fault.Internal, op, "%s row %d: timeout of unknown timer %q", m.Domain, i, n)
			}
		}
		from := t.From
		if t.Any {
			from = nil
			for _, s := range m.States {
				if !m.IsTerminal(s) {
					from = append(from, s)
				}
			}
		}
		for _, s := range from {
			k := string(s) + "\x00" + string(t.On)
			if j, dup := seen[k]; dup && !t.Any {
				return fault.Errorf(fault.Internal, op, "%s rows %d and %d both handle %s in %s", m.Domain, j, i, t.On, s)
			}
			if _, dup := seen[k]; !dup {
				seen[k] = i
			}
		}
	}
	return nil
}

// CheckEvent validates an event against the machine before any state is
// read: the domain must match, the name must be one of the machine's
// events, the data must be a JSON object and pass the payload check.
func (m *Machine) CheckEvent(ev Event) error {
	const op = "governor.CheckEvent"
	if ev.Domain != m.Domain {
		return fault.Errorf(fault.Invalid, op, "event domain %q does not match governor %q", ev.Domain, m.Domain)
	}
	if !m.HasEvent(ev.Name) {
		return fault.Errorf(fault.Invalid, op, "unknown event type %q for domain %s", ev.Type, m.Domain)
	}
	if err := checkObject(ev.Data); err != nil {
		return fault.Wrap(fault.Invalid, op, err)
	}
	_, isTimer := bytes.CutPrefix([]byte(ev.Name), []byte(TimeoutPrefix))
	if isTimer {
		var p struct {
			TimerID string `json:"timer_id"`
		}
		dec := json.NewDecoder(bytes.NewReader(ev.Data))
		dec.DisallowUnknownFields()
		if err := exactMembers(ev.Data, reflect.TypeOf(p)); err != nil || dec.Decode(&p) != nil || p.TimerID == "" {
			return fault.Errorf(fault.Invalid, op, "%s: data must be {\"timer_id\": ...} and nothing else", ev.Type)
		}
	}
	if ev.Name == ActuationFailed {
		if err := m.checkActuationFailure(ev.Data); err != nil {
			return fault.Wrap(fault.Invalid, op+" "+ev.Type, err)
		}
		return nil
	}
	if check := m.Payloads[ev.Name]; check != nil {
		if err := check(ev.Data); err != nil {
			return fault.Wrap(fault.Invalid, op+" "+ev.Type, err)
		}
	} else if !isTimer {
		if err := emptySchema(ev.Data); err != nil {
			return fault.Wrap(fault.Invalid, op+" "+ev.Type, err)
		}
	}
	return nil
}

// emptySchema is the payload check of events without a schema: no data,
// or an empty JSON object.
func emptySchema(data json.RawMessage) error {
	var fields map[string]json.RawMessage
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, &fields); err != nil {
		return fmt.Errorf("data: %w", err)
	}
	for name := range fields {
		return fmt.Errorf("data: unknown field %q (this event carries no data)", name)
	}
	return nil
}

// checkObject reports an error unless data is empty or a JSON object.
func checkObject(data json.RawMessage) error {
	d := bytes.TrimSpace(data)
	if len(d) == 0 {
		return nil
	}
	if d[0] != '{' || !json.Valid(d) {
		return fmt.Errorf("data must be a JSON object")
	}
	return nil
}

// Schema returns a PayloadCheck that decodes data into a T, rejecting
// unknown fields and wrong types, then calls its Validate method.
func Schema[T interface{ Validate() error }]() PayloadCheck {
	return func(data json.RawMessage) error {
		var v T
		if len(bytes.TrimSpace(data)) == 0 {
			return v.Validate()
		}
		if err := exactMembers(data, reflect.TypeOf(v)); err != nil {
			return fmt.Errorf("data: %w", err)
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&v); err != nil {
			return fmt.Errorf("data: %w", err)
		}
		return v.Validate()
	}
}

// exactMembers reports an error when an object decoded into a struct of
// type t names a member not spelled exactly as one of its fields:
// encoding/json would match it regardless of case, so that {"n":1,"N":2}
// means n=2 here and n=1 to a case-sensitive reader. Objects nested in
// struct fields are checked too; map keys are free.
func exactMembers(data []byte, t reflect.Type) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
	case reflect.Slice, reflect.Array:
		var items []json.RawMessage
		if json.Unmarshal(data, &items) != nil {
			return nil // the decoder reports it
		}
		for _, it := range items {
			if err := exactMembers(it, t.Elem()); err != nil {
				return err
			}
		}
		return nil
	default:
		return nil
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(data, &obj) != nil {
		return nil // not an object (or null): the decoder reports it
	}
	fields := map[string]reflect.Type{}
	jsonFields(t, fields)
	for name, raw := range obj {
		ft, ok := fields[name]
		if !ok {
			return fmt.Errorf("json: unknown field %q", name)
		}
		if err := exactMembers(raw, ft); err != nil {
			return err
		}
	}
	return nil
}

// jsonFields adds the JSON member names of struct type t's fields, as
// encoding/json names them, with their types; untagged embedded structs
// contribute their own fields.
func jsonFields(t reflect.Type, out map[string]reflect.Type) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if f.Anonymous && name == "" && ft.Kind() == reflect.Struct {
			jsonFields(ft, out)
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
}

// snakeCase reports whether s is a non-empty snake_case word.
func snakeCase(s string) bool {
	if s == "" || s[0] == '_' || s[len(s)-1] == '_' {
		return false
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '_' {
			return false
		}
	}
	return true
}
