package tenancy

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/machines/machinetest"
)

func TestTenancyMachineValidate(t *testing.T) {
	m := Machine()
	if err := m.Validate(); err != nil {
		t.Fatalf("Machine().Validate() = %v, want nil", err)
	}
	if got, want := m.Timers["maintenance"], 60*time.Minute; got != want || len(m.Timers) != 1 {
		t.Errorf("Machine().Timers = %v, want maintenance %v only", m.Timers, want)
	}
}

// until renders the data of a maintenance window that ends d after
// machinetest.LifecycleNow.
func until(d time.Duration) string {
	return `{"maintenance_until":"` + machinetest.LifecycleNow.Add(d).Format(time.RFC3339) + `"}`
}

// decideCases are the decisions of the machine, one or more per row and
// the refusals.
func decideCases() []machinetest.Lifecycle {
	return []machinetest.Lifecycle{
		{
			Name: "provision_requested", State: governor.StateNone, Event: "provision_requested",
			To: Provisioning, Emits: []string{"actuate tenant.provision default"},
		},
		{Name: "provisioned", State: Provisioning, Event: "provisioned", To: Active},
		{
			Name: "noisy_neighbor_detected", State: Active, Event: "noisy_neighbor_detected", Payload: `{"share_bp":4200}`,
			To: Degraded, Emits: []string{"actuate tenant.throttle default"}, WantData: `{"share_bp":4200}`,
		},
		{
			Name: "recovered", State: Degraded, Data: `{"share_bp":4200}`, Event: "recovered",
			To: Active, Emits: []string{"actuate tenant.unthrottle default"}, WantData: `{}`,
		},
		{
			Name: "maintenance_started", State: Active, Event: "maintenance_started", Payload: `{"minutes":90}`,
			To: Maintenance, Armed: map[string]time.Duration{"maintenance": 90 * time.Minute},
			WantData: until(90 * time.Minute),
		},
		{
			Name: "maintenance_started with default window", State: Active, Event: "maintenance_started",
			To: Maintenance, Armed: map[string]time.Duration{"maintenance": 60 * time.Minute},
			WantData: until(60 * time.Minute),
		},
		{
			Name: "maintenance_ended", State: Maintenance, Data: until(0), Timers: []string{"maintenance"},
			Event: "maintenance_ended", To: Active, Cancelled: []string{"maintenance"}, WantData: `{}`,
		},
		{
			Name: "maintenance timeout", State: Maintenance, Data: until(0), Timers: []string{"maintenance"},
			Event: governor.Timeout("maintenance"), To: Active, Cancelled: []string{"maintenance"}, WantData: `{}`,
		},
		{
			Name: "suspend when active", State: Active, Event: "suspend",
			To: Suspended, Emits: []string{"actuate tenant.suspend default"},
		},
		{
			Name: "suspend when degraded", State: Degraded, Data: `{"share_bp":4200}`, Event: "suspend",
			To: Suspended, Emits: []string{"actuate tenant.suspend default"}, WantData: `{}`,
		},
		{
			Name: "suspend during maintenance", State: Maintenance, Data: until(0), Timers: []string{"maintenance"},
			Event: "suspend", To: Suspended, Cancelled: []string{"maintenance"},
			Emits: []string{"actuate tenant.suspend default"}, WantData: `{}`,
		},
		{
			Name: "resume", State: Suspended, Event: "resume",
			To: Active, Emits: []string{"actuate tenant.resume default"},
		},
		{
			Name: "deprovision when provisioning", State: Provisioning, Event: "deprovision",
			To: Deprovisioned, Emits: []string{"actuate tenant.deprovision default"},
		},
		{
			Name: "deprovision when active", State: Active, Event: "deprovision",
			To: Deprovisioned, Emits: []string{"actuate tenant.deprovision default"},
		},
		{
			Name: "deprovision when degraded", State: Degraded, Event: "deprovision",
			To: Deprovisioned, Emits: []string{"actuate tenant.deprovision default"},
		},
		{
			Name: "deprovision during maintenance", State: Maintenance, Timers: []string{"maintenance"}, Event: "deprovision",
			To: Deprovisioned, Cancelled: []string{"maintenance"}, Emits: []string{"actuate tenant.deprovision default"},
		},
		{
			Name: "deprovision when suspended", State: Suspended, Event: "deprovision",
			To: Deprovisioned, Emits: []string{"actuate tenant.deprovision default"},
		},

		// Rejections.
		{
			Name: "provision_requested twice", State: Active, Event: "provision_requested",
			Want: governor.Rejected, Reason: string(governor.ReasonNoTransition), To: Active,
		},
		{
			Name: "suspend when provisioning", State: Provisioning, Event: "suspend",
			Want: governor.Rejected, Reason: string(governor.ReasonNoTransition), To: Provisioning,
		},
		{
			Name: "noisy_neighbor_detected when degraded", State: Degraded, Data: `{"share_bp":4200}`,
			Event: "noisy_neighbor_detected", Payload: `{"share_bp":5000}`,
			Want: governor.Rejected, Reason: string(governor.ReasonNoTransition), To: Degraded,
		},
		{
			Name: "maintenance_started when degraded", State: Degraded, Event: "maintenance_started",
			Want: governor.Rejected, Reason: string(governor.ReasonNoTransition), To: Degraded,
		},
		{
			Name: "resume when active", State: Active, Event: "resume",
			Want: governor.Rejected, Reason: string(governor.ReasonNoTransition), To: Active,
		},
		{
			Name: "deprovision when deprovisioned", State: Deprovisioned, Event: "deprovision",
			Want: governor.Rejected, Reason: string(governor.ReasonNoTransition), To: Deprovisioned,
		},
		{
			Name: "stale maintenance timer", State: Maintenance, Data: until(0), Timers: []string{"maintenance"},
			Event: governor.Timeout("maintenance"), StaleID: true,
			Want: governor.Rejected, Reason: string(governor.ReasonTimerCancelled), To: Maintenance,
		},
	}
}

func TestTenancyDecide(t *testing.T) {
	machinetest.RunLifecycle(t, Machine(), governor.DefaultSubject, decideCases())

	t.Run("configured maintenance window", func(t *testing.T) {
		m := Machine().WithTimers(map[string]time.Duration{"maintenance": 2 * time.Hour})
		machinetest.RunLifecycle(t, m, governor.DefaultSubject, []machinetest.Lifecycle{{
			Name: "default", State: Active, Event: "maintenance_started", Payload: `{}`,
			To: Maintenance, Armed: map[string]time.Duration{"maintenance": 2 * time.Hour},
		}})
	})
}

func TestTenancyPayloads(t *testing.T) {
	m := Machine()
	cases := []struct {
		event governor.EventName
		data  string
		ok    bool
	}{
		{"noisy_neighbor_detected", `{"share_bp":1}`, true},
		{"noisy_neighbor_detected", `{"share_bp":10000}`, true},
		{"noisy_neighbor_detected", `{"share_bp":0}`, false},
		{"noisy_neighbor_detected", `{"share_bp":10001}`, false},
		{"noisy_neighbor_detected", `{"share_bp":"42%"}`, false},
		{"noisy_neighbor_detected", `{}`, false},
		{"noisy_neighbor_detected", ``, false},
		{"maintenance_started", ``, true},
		{"maintenance_started", `{}`, true},
		{"maintenance_started", `{"minutes":1}`, true},
		{"maintenance_started", `{"minutes":10080}`, true},
		{"maintenance_started", `{"minutes":0}`, false},
		{"maintenance_started", `{"minutes":10081}`, false},
		{"maintenance_started", `{"minutes":30,"reason":"upgrade"}`, false},
		{"provision_requested", `{"region":"europe-west1"}`, false},
		{"provision_requested", `{}`, true},
	}
	for _, c := range cases {
		t.Run(string(c.event)+" "+c.data, func(t *testing.T) {
			ev := governor.Event{
				Type: governor.TypeOf(governor.MultiTenant, c.event), Domain: governor.MultiTenant,
				Name: c.event, Data: json.RawMessage(c.data),
			}
			err := m.CheckEvent(ev)
			if (err == nil) != c.ok {
				t.Fatalf("CheckEvent(%s %s) = %v, want ok %v", c.event, c.data, err, c.ok)
			}
			if err != nil && fault.ErrorCode(err) != fault.Invalid {
				t.Errorf("ErrorCode(CheckEvent(%s %s)) = %s, want %s", c.event, c.data, fault.ErrorCode(err), fault.Invalid)
			}
		})
	}
}
