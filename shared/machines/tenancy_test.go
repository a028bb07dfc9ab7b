package machines

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
)

func TestTenancyMachineValidate(t *testing.T) {
	m := tenancyMachine()
	if err := m.Validate(); err != nil {
		t.Fatalf("tenancyMachine().Validate() = %v, want nil", err)
	}
	if got, want := m.Timers["maintenance"], 60*time.Minute; got != want || len(m.Timers) != 1 {
		t.Errorf("tenancyMachine().Timers = %v, want maintenance %v only", m.Timers, want)
	}
}

func TestTenancyDecide(t *testing.T) {
	until := func(d time.Duration) string {
		return `{"maintenance_until":"` + lifecycleNow.Add(d).Format(time.RFC3339) + `"}`
	}
	cases := []lifecycleCase{
		{
			name: "provision_requested", state: governor.StateNone, event: "provision_requested",
			to: tenProvisioning, emits: []string{"actuate tenant.provision default"},
		},
		{name: "provisioned", state: tenProvisioning, event: "provisioned", to: tenActive},
		{
			name: "noisy_neighbor_detected", state: tenActive, event: "noisy_neighbor_detected", payload: `{"share_bp":4200}`,
			to: tenDegraded, emits: []string{"actuate tenant.throttle default"}, wantData: `{"share_bp":4200}`,
		},
		{
			name: "recovered", state: tenDegraded, data: `{"share_bp":4200}`, event: "recovered",
			to: tenActive, emits: []string{"actuate tenant.unthrottle default"}, wantData: `{}`,
		},
		{
			name: "maintenance_started", state: tenActive, event: "maintenance_started", payload: `{"minutes":90}`,
			to: tenMaintenance, armed: map[string]time.Duration{"maintenance": 90 * time.Minute},
			wantData: until(90 * time.Minute),
		},
		{
			name: "maintenance_started with default window", state: tenActive, event: "maintenance_started",
			to: tenMaintenance, armed: map[string]time.Duration{"maintenance": 60 * time.Minute},
			wantData: until(60 * time.Minute),
		},
		{
			name: "maintenance_ended", state: tenMaintenance, data: until(0), timers: []string{"maintenance"},
			event: "maintenance_ended", to: tenActive, cancelled: []string{"maintenance"}, wantData: `{}`,
		},
		{
			name: "maintenance timeout", state: tenMaintenance, data: until(0), timers: []string{"maintenance"},
			event: governor.Timeout("maintenance"), to: tenActive, cancelled: []string{"maintenance"}, wantData: `{}`,
		},
		{
			name: "suspend when active", state: tenActive, event: "suspend",
			to: tenSuspended, emits: []string{"actuate tenant.suspend default"},
		},
		{
			name: "suspend when degraded", state: tenDegraded, data: `{"share_bp":4200}`, event: "suspend",
			to: tenSuspended, emits: []string{"actuate tenant.suspend default"}, wantData: `{}`,
		},
		{
			name: "suspend during maintenance", state: tenMaintenance, data: until(0), timers: []string{"maintenance"},
			event: "suspend", to: tenSuspended, cancelled: []string{"maintenance"},
			emits: []string{"actuate tenant.suspend default"}, wantData: `{}`,
		},
		{
			name: "resume", state: tenSuspended, event: "resume",
			to: tenActive, emits: []string{"actuate tenant.resume default"},
		},
		{
			name: "deprovision when provisioning", state: tenProvisioning, event: "deprovision",
			to: tenDeprovisioned, emits: []string{"actuate tenant.deprovision default"},
		},
		{
			name: "deprovision when active", state: tenActive, event: "deprovision",
			to: tenDeprovisioned, emits: []string{"actuate tenant.deprovision default"},
		},
		{
			name: "deprovision when degraded", state: tenDegraded, event: "deprovision",
			to: tenDeprovisioned, emits: []string{"actuate tenant.deprovision default"},
		},
		{
			name: "deprovision during maintenance", state: tenMaintenance, timers: []string{"maintenance"}, event: "deprovision",
			to: tenDeprovisioned, cancelled: []string{"maintenance"}, emits: []string{"actuate tenant.deprovision default"},
		},
		{
			name: "deprovision when suspended", state: tenSuspended, event: "deprovision",
			to: tenDeprovisioned, emits: []string{"actuate tenant.deprovision default"},
		},

		// Rejections.
		{
			name: "provision_requested twice", state: tenActive, event: "provision_requested",
			want: governor.Rejected, reason: governor.ReasonNoTransition, to: tenActive,
		},
		{
			name: "suspend when provisioning", state: tenProvisioning, event: "suspend",
			want: governor.Rejected, reason: governor.ReasonNoTransition, to: tenProvisioning,
		},
		{
			name: "noisy_neighbor_detected when degraded", state: tenDegraded, data: `{"share_bp":4200}`,
			event: "noisy_neighbor_detected", payload: `{"share_bp":5000}`,
			want: governor.Rejected, reason: governor.ReasonNoTransition, to: tenDegraded,
		},
		{
			name: "maintenance_started when degraded", state: tenDegraded, event: "maintenance_started",
			want: governor.Rejected, reason: governor.ReasonNoTransition, to: tenDegraded,
		},
		{
			name: "resume when active", state: tenActive, event: "resume",
			want: governor.Rejected, reason: governor.ReasonNoTransition, to: tenActive,
		},
		{
			name: "deprovision when deprovisioned", state: tenDeprovisioned, event: "deprovision",
			want: governor.Rejected, reason: governor.ReasonNoTransition, to: tenDeprovisioned,
		},
		{
			name: "stale maintenance timer", state: tenMaintenance, data: until(0), timers: []string{"maintenance"},
			event: governor.Timeout("maintenance"), staleID: true,
			want: governor.Rejected, reason: governor.ReasonTimerCancelled, to: tenMaintenance,
		},
	}
	runLifecycleCases(t, tenancyMachine(), governor.DefaultSubject, cases)

	t.Run("configured maintenance window", func(t *testing.T) {
		m := tenancyMachine().WithTimers(map[string]time.Duration{"maintenance": 2 * time.Hour})
		runLifecycleCases(t, m, governor.DefaultSubject, []lifecycleCase{{
			name: "default", state: tenActive, event: "maintenance_started", payload: `{}`,
			to: tenMaintenance, armed: map[string]time.Duration{"maintenance": 2 * time.Hour},
		}})
	})
}

func TestTenancyPayloads(t *testing.T) {
	m := tenancyMachine()
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
