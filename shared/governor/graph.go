package governor

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/autonomics/autonomics/shared/fault"
)

// CheckGraph checks the machines as one graph: each machine's table
// (Validate), and every cascade of every row, static or declared in
// Emits, against the machine that receives it: that machine is among ms,
// accepts the event from a governor, and its payload check accepts the
// data the cascade sends (the empty object for a static cascade, the
// declared example otherwise). The engine runs it before serving.
func CheckGraph(ms map[Domain]*Machine) error {
	const op = "governor.CheckGraph"
	domains := make([]Domain, 0, len(ms))
	for d := range ms {
		domains = append(domains, d)
	}
	sort.Slice(domains, func(i, j int) bool { return domains[i] < domains[j] })
	var errs []error
	for _, d := range domains {
		m := ms[d]
		if m.Domain != d {
			errs = append(errs, fault.Errorf(fault.Internal, op, "machine of %s is registered as %s", m.Domain, d))
			continue
		}
		if err := m.Validate(); err != nil {
			errs = append(errs, err)
			continue
		}
		for i, t := range m.Transitions {
			for _, c := range t.Cascade {
				if err := checkCascade(ms, c.Domain, string(c.Event), json.RawMessage(`{}`)); err != nil {
					errs = append(errs, fault.Errorf(fault.Internal, op, "%s row %d (%s): static cascade %s", d, i, t.On, err))
				}
			}
			for _, r := range t.Emits {
				if r.Kind != KindEvent {
					continue
				}
				if err := checkCascade(ms, r.Domain, r.Name, r.Example); err != nil {
					errs = append(errs, fault.Errorf(fault.Internal, op, "%s row %d (%s): cascade %s", d, i, t.On, err))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// checkCascade checks one cascade against its receiving machine.
func checkCascade(ms map[Domain]*Machine, d Domain, name string, data json.RawMessage) error {
	target := ms[d]
	if target == nil {
		return fmt.Errorf("to %s.%s: no machine serves %s", d, name, d)
	}
	ev := EventName(name)
	if !target.HasEvent(ev) {
		return fmt.Errorf("to %s.%s: %s has no such event", d, name, d)
	}
	if !target.May(SenderGovernor, ev) {
		return fmt.Errorf("to %s.%s: %s does not accept it from a governor", d, name, d)
	}
	probe := Event{ID: "graph-check", Source: "graph-check", Type: TypeOf(d, ev), Domain: d, Name: ev,
		Tenant: "graph-check", Subject: DefaultSubject, Data: data}
	if err := target.CheckEvent(probe); err != nil {
		return fmt.Errorf("to %s.%s with %s: %s refuses the data: %v", d, name, data, d, err)
	}
	return nil
}
