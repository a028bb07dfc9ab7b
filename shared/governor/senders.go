package governor

import (
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/autonomics/autonomics/shared/fault"
)

// Sender is a class of sender of governor events. Which classes may send
// which events is part of each machine's data (Machine.Senders), and the
// engine refuses any event whose sender class is not allowed to send it.
type Sender string

// Sender classes. External and Marketplace events come by the domain
// topics, which producers outside the governors may publish to; Governor,
// Scheduler and Monitor events come by the internal topics, which only
// Autonomics itself may publish to.
const (
	// SenderExternal is the provider's own systems and its operators.
	SenderExternal Sender = "external"
	// SenderMarketplace is the Google Cloud Marketplace adapter; its
	// events carry a source starting with "marketplace/".
	SenderMarketplace Sender = "marketplace"
	// SenderGovernor is another governor, cascading a decision.
	SenderGovernor Sender = "governor"
	// SenderScheduler is the scheduler firing a due timer.
	SenderScheduler Sender = "scheduler"
	// SenderMonitor is the monitor (fairness and alert-driven events).
	SenderMonitor Sender = "monitor"
	// SenderActuator is an actuator reporting that an action failed for
	// good (ActuationFailed), or what it learned from the system it
	// drives, for the events whose rule names it.
	SenderActuator Sender = "actuator"
)

// Senders lists every sender class in documentation order.
var Senders = []Sender{SenderExternal, SenderMarketplace, SenderGovernor, SenderScheduler, SenderMonitor, SenderActuator}

// Internal reports whether s is one of Autonomics' own components, whose
// events travel only on internal topics.
func (s Sender) Internal() bool {
	return s == SenderGovernor || s == SenderScheduler || s == SenderMonitor || s == SenderActuator
}

// String returns the class name.
func (s Sender) String() string { return string(s) }

// Shorthands for the sender rules of the machines.
var (
	// FromOutside is what the provider's systems and the Marketplace
	// adapter may both send.
	FromOutside = []Sender{SenderExternal, SenderMarketplace}
	// FromProvider is what only the provider's own systems send.
	FromProvider = []Sender{SenderExternal}
	// FromGovernors is coordination between governors only.
	FromGovernors = []Sender{SenderGovernor}
	// FromActuators is what only Autonomics' actuators report, by the
	// internal topic: what they learned from the systems they drive.
	FromActuators = []Sender{SenderActuator}
)

// May reports whether sender s may send event name to m. Timeouts may be
// sent by the scheduler only; other events as m.Senders says.
func (m *Machine) May(s Sender, name EventName) bool {
	switch {
	case strings.HasPrefix(string(name), TimeoutPrefix):
		return s == SenderScheduler
	case name == ActuationFailed:
		return s == SenderActuator && m.HasEvent(name)
	}
	return slices.Contains(m.Senders[name], s)
}

// SendersOf returns the sender classes allowed to send event name to m.
func (m *Machine) SendersOf(name EventName) []Sender {
	switch {
	case strings.HasPrefix(string(name), TimeoutPrefix):
		return []Sender{SenderScheduler}
	case name == ActuationFailed:
		return []Sender{SenderActuator}
	}
	return m.Senders[name]
}

// CascadeTargets returns the domains m may cascade to: those of its rows'
// static cascades and declared emissions, sorted.
func (m *Machine) CascadeTargets() []Domain {
	set := map[Domain]bool{}
	for _, t := range m.Transitions {
		for _, c := range t.Cascade {
			set[c.Domain] = true
		}
		for _, r := range t.Emits {
			if r.Kind == KindEvent {
				set[r.Domain] = true
			}
		}
	}
	out := make([]Domain, 0, len(set))
	for d := range set {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// Actions returns the action kinds m may actuate: those of its rows'
// static actions and declared emissions, sorted.
func (m *Machine) Actions() []string {
	set := map[string]bool{}
	for _, t := range m.Transitions {
		for _, a := range t.Actuate {
			set[a] = true
		}
		for _, r := range t.Emits {
			if r.Kind == KindActuate {
				set[r.Name] = true
			}
		}
	}
	out := make([]string, 0, len(set))
	for a := range set {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// checkEmits reports an Internal error for an emission of row t that the
// row does not declare, statically or in Emits. It allocates nothing.
func (m *Machine) checkEmits(t *Transition, emits []Emit) error {
	for _, e := range emits {
		if !t.declares(e) {
			what := "emits undeclared event " + e.Type
			if e.Kind == KindActuate {
				what = "actuates undeclared action " + strconv.Quote(e.Type)
			}
			return fault.Errorf(fault.Internal, "governor.Decide", "%s %s: %s", m.Domain, t.On, what)
		}
	}
	return nil
}

// declares reports whether e is among the effects row t declares.
func (t *Transition) declares(e Emit) bool {
	if e.Kind == KindActuate {
		if slices.Contains(t.Actuate, e.Type) {
			return true
		}
	}
	for _, c := range t.Cascade {
		if e.Kind == KindEvent && c.Domain == e.Domain && isType(e.Type, c.Domain, string(c.Event)) {
			return true
		}
	}
	for _, r := range t.Emits {
		if r.Kind != e.Kind {
			continue
		}
		if e.Kind == KindActuate && r.Name == e.Type {
			return true
		}
		if e.Kind == KindEvent && r.Domain == e.Domain && isType(e.Type, r.Domain, r.Name) {
			return true
		}
	}
	return false
}

// validateSenders checks that every event of m has a sender rule, that
// every rule names an event of m and known sender classes but the
// scheduler's, and that timeouts have none (they are the scheduler's).
// ActuationFailed needs no rule: it is the actuators' in every machine
// that actuates.
func (m *Machine) validateSenders() error {
	const op = "governor.Machine.Validate"
	for _, name := range m.Events() {
		if name == ActuationFailed {
			continue
		}
		if strings.HasPrefix(string(name), TimeoutPrefix) {
			if _, ok := m.Senders[name]; ok {
				return fault.Errorf(fault.Internal, op, "%s: timeout %s has a sender rule; timeouts are the scheduler's", m.Domain, name)
			}
			continue
		}
		if len(m.Senders[name]) == 0 {
			return fault.Errorf(fault.Internal, op, "%s: event %s has no sender rule", m.Domain, name)
		}
	}
	for name, ss := range m.Senders {
		if !m.HasEvent(name) {
			return fault.Errorf(fault.Internal, op, "%s: sender rule for unknown event %s", m.Domain, name)
		}
		for _, s := range ss {
			if !slices.Contains(Senders, s) || s == SenderScheduler {
				return fault.Errorf(fault.Internal, op, "%s: event %s: sender %q not allowed in a rule", m.Domain, name, s)
			}
		}
	}
	return nil
}

// isType reports whether typ is TypeOf(d, name), without building it.
func isType(typ string, d Domain, name string) bool {
	rest, ok := strings.CutPrefix(typ, "autonomics.")
	if !ok {
		return false
	}
	rest, ok = strings.CutPrefix(rest, string(d))
	return ok && len(rest) == len(name)+1 && rest[0] == '.' && rest[1:] == name
}
