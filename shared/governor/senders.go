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
// static cascades and those it declares in EmitsTo, sorted.
func (m *Machine) CascadeTargets() []Domain {
	set := map[Domain]bool{}
	for _, t := range m.Transitions {
		for _, c := range t.Cascade {
			set[c.Domain] = true
		}
	}
	for _, d := range m.EmitsTo {
		set[d] = true
	}
	out := make([]Domain, 0, len(set))
	for d := range set {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// Actions returns the action kinds m may actuate: those of its rows and
// those it declares in ActionKinds, sorted.
func (m *Machine) Actions() []string {
	set := map[string]bool{}
	for _, t := range m.Transitions {
		for _, a := range t.Actuate {
			set[a] = true
		}
	}
	for _, a := range m.ActionKinds {
		set[a] = true
	}
	out := make([]string, 0, len(set))
	for a := range set {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// checkEmits reports an Internal error for an emission of row t that m
// does not declare. It allocates nothing: the row's own effects and the
// machine's declarations are searched before the other rows.
func (m *Machine) checkEmits(t *Transition, emits []Emit) error {
	for _, e := range emits {
		if !m.declares(t, e) {
			what := "cascades to undeclared domain " + string(e.Domain)
			if e.Kind == KindActuate {
				what = "actuates undeclared action " + strconv.Quote(e.Type)
			}
			return fault.Errorf(fault.Internal, "governor.Decide", "%s %s", m.Domain, what)
		}
	}
	return nil
}

// declares reports whether e is among the effects m declares.
func (m *Machine) declares(t *Transition, e Emit) bool {
	if e.Kind == KindActuate {
		if slices.Contains(t.Actuate, e.Type) || slices.Contains(m.ActionKinds, e.Type) {
			return true
		}
		for i := range m.Transitions {
			if slices.Contains(m.Transitions[i].Actuate, e.Type) {
				return true
			}
		}
		return false
	}
	if slices.Contains(m.EmitsTo, e.Domain) {
		return true
	}
	if cascadesTo(t, e.Domain) {
		return true
	}
	for i := range m.Transitions {
		if cascadesTo(&m.Transitions[i], e.Domain) {
			return true
		}
	}
	return false
}

func cascadesTo(t *Transition, d Domain) bool {
	for _, c := range t.Cascade {
		if c.Domain == d {
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
