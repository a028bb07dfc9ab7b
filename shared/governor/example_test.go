package governor_test

import (
	"fmt"
	"time"

	"github.com/autonomics/autonomics/shared/governor"
)

// A two-state machine: an order is placed, then shipped; shipping arms
// nothing and actuates the warehouse.
func ExampleMachine_Decide() {
	m := &governor.Machine{
		Domain: governor.Billing,
		States: []governor.State{"placed", "shipped"},
		Timers: map[string]time.Duration{"ship_by": 48 * time.Hour},
		Transitions: []governor.Transition{
			{From: []governor.State{governor.StateNone}, On: "placed", To: "placed", Arm: []string{"ship_by"}},
			{From: []governor.State{"placed"}, On: "shipped", To: "shipped", Actuate: []string{"warehouse.release"}},
		},
		// Orders come from the shop; shipping is the warehouse system's word.
		Senders: map[governor.EventName][]governor.Sender{
			"placed": governor.FromProvider, "shipped": governor.FromProvider,
		},
	}
	key := governor.Key{Tenant: "acme", Domain: governor.Billing, Subject: "order-1"}
	now := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	event := func(name governor.EventName) governor.Event {
		return governor.Event{ID: string(name), Source: "//shop", Type: governor.TypeOf(governor.Billing, name),
			Domain: governor.Billing, Name: name, Tenant: "acme", Subject: "order-1"}
	}

	d, _ := m.Decide(governor.Input{Instance: governor.Instance{Key: key}, Event: event("placed"), Now: now})
	fmt.Println(d.Outcome, d.From, "→", d.To, "ship_by due", d.Timers["ship_by"].Due.Format(time.RFC3339))

	again, _ := m.Decide(governor.Input{Instance: governor.Instance{Key: key, State: "placed", Version: 1}, Event: event("placed"), Now: now})
	fmt.Println(again.Outcome, again.Reason)

	shipped, _ := m.Decide(governor.Input{Instance: governor.Instance{Key: key, State: "placed", Version: 1, Timers: d.Timers}, Event: event("shipped"), Now: now})
	fmt.Println(shipped.Outcome, shipped.To, shipped.Emits[0].Kind, shipped.Emits[0].Type, len(shipped.Timers))
	// Output:
	// accepted none → placed ship_by due 2026-11-29T09:00:00Z
	// rejected no_transition: event placed not allowed in state placed
	// accepted shipped actuate warehouse.release 0
}
