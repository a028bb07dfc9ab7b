package machines

import (
	"errors"
	"fmt"
	"time"

	"github.com/autonomics/autonomics/shared/governor"
)

// States of the multi_tenant machine.
const (
	tenProvisioning  governor.State = "provisioning"
	tenActive        governor.State = "active"
	tenDegraded      governor.State = "degraded"
	tenMaintenance   governor.State = "maintenance"
	tenSuspended     governor.State = "suspended"
	tenDeprovisioned governor.State = "deprovisioned"
)

// Bounds of the multi_tenant payloads.
const (
	tenMaxShareBP = 10000
	tenMaxMinutes = 7 * 24 * 60
)

// tenNoisy is the data of multi_tenant.noisy_neighbor_detected: the
// tenant's share of the shared resources in basis points.
type tenNoisy struct {
	ShareBP *int `json:"share_bp"`
}

// Validate requires share_bp in 1..10000.
func (p tenNoisy) Validate() error {
	if p.ShareBP == nil {
		return errors.New("share_bp is required")
	}
	if *p.ShareBP < 1 || *p.ShareBP > tenMaxShareBP {
		return fmt.Errorf("share_bp %d out of range 1..%d", *p.ShareBP, tenMaxShareBP)
	}
	return nil
}

// tenMaintenanceStart is the data of multi_tenant.maintenance_started; the
// window lasts the configured maintenance duration when minutes is omitted.
type tenMaintenanceStart struct {
	Minutes *int `json:"minutes"`
}

// Validate requires minutes, when present, in 1..10080 (one week).
func (p tenMaintenanceStart) Validate() error {
	if p.Minutes != nil && (*p.Minutes < 1 || *p.Minutes > tenMaxMinutes) {
		return fmt.Errorf("minutes %d out of range 1..%d", *p.Minutes, tenMaxMinutes)
	}
	return nil
}

// tenData is what a multi_tenant instance keeps while it applies: the share
// that degraded the tenant and the end of a maintenance window.
type tenData struct {
	ShareBP          int       `json:"share_bp,omitempty"`
	MaintenanceUntil time.Time `json:"maintenance_until,omitzero"`
}

// tenancyMachine returns the multi_tenant machine: one
// instance per tenant, subject "default"; the instance keeps tenData.
func tenancyMachine() *governor.Machine {
	return &governor.Machine{
		Domain: governor.MultiTenant,
		States: []governor.State{
			tenProvisioning, tenActive, tenDegraded, tenMaintenance, tenSuspended, tenDeprovisioned,
		},
		Terminal: []governor.State{tenDeprovisioned},
		Timers: map[string]time.Duration{
			"maintenance": 60 * time.Minute,
		},
		Transitions: []governor.Transition{
			{
				From: []governor.State{governor.StateNone}, On: "provision_requested", To: tenProvisioning,
				Actuate: []string{"tenant.provision"},
			},
			{
				From: []governor.State{tenProvisioning}, On: "provisioned", To: tenActive,
			},
			{
				From: []governor.State{tenActive}, On: "noisy_neighbor_detected", To: tenDegraded,
				Actuate: []string{"tenant.throttle"},
				Apply:   tenDegrade,
				Note:    "keeps share_bp",
			},
			{
				From: []governor.State{tenDegraded}, On: "recovered", To: tenActive,
				Actuate: []string{"tenant.unthrottle"},
				Apply:   tenClear,
				Note:    "clears share_bp",
			},
			{
				From: []governor.State{tenActive}, On: "maintenance_started", To: tenMaintenance,
				Apply: tenStartMaintenance,
				Note:  "timer maintenance after minutes (the configured maintenance duration when omitted); keeps maintenance_until",
			},
			{
				From: []governor.State{tenMaintenance}, On: "maintenance_ended", To: tenActive,
				Cancel: []string{"maintenance"},
				Apply:  tenClear,
				Note:   "clears maintenance_until",
			},
			{
				From: []governor.State{tenMaintenance}, On: governor.Timeout("maintenance"), To: tenActive,
				Apply: tenClear,
				Note:  "clears maintenance_until",
			},
			{
				From: []governor.State{tenActive, tenDegraded, tenMaintenance}, On: "suspend", To: tenSuspended,
				Actuate: []string{"tenant.suspend"},
				Apply:   tenClear,
				Note:    "clears share_bp and maintenance_until",
			},
			{
				From: []governor.State{tenSuspended}, On: "resume", To: tenActive,
				Actuate: []string{"tenant.resume"},
			},
			{
				Any: true, On: "deprovision", To: tenDeprovisioned,
				Actuate: []string{"tenant.deprovision"},
			},
		},
		Senders: map[governor.EventName][]governor.Sender{
			"provision_requested":     governor.FromGovernors,
			"provisioned":             governor.FromProvider,
			"noisy_neighbor_detected": {governor.SenderMonitor},
			"recovered":               {governor.SenderMonitor},
			"maintenance_started":     governor.FromProvider,
			"maintenance_ended":       governor.FromProvider,
			"suspend":                 governor.FromGovernors,
			"resume":                  governor.FromGovernors,
			"deprovision":             governor.FromGovernors,
		},
		Payloads: map[governor.EventName]governor.PayloadCheck{
			"noisy_neighbor_detected": governor.Schema[tenNoisy](),
			"maintenance_started":     governor.Schema[tenMaintenanceStart](),
		},
	}
}

// tenDegrade keeps the share reported for a noisy neighbour.
func tenDegrade(c *governor.Ctx) error {
	var p tenNoisy
	if err := c.Payload(&p); err != nil {
		return err
	}
	var d tenData
	if err := c.Load(&d); err != nil {
		return err
	}
	if p.ShareBP != nil {
		d.ShareBP = *p.ShareBP
	}
	return c.Store(d)
}

// tenStartMaintenance arms the maintenance timer for the requested window.
func tenStartMaintenance(c *governor.Ctx) error {
	var p tenMaintenanceStart
	if err := c.Payload(&p); err != nil {
		return err
	}
	var d tenData
	if err := c.Load(&d); err != nil {
		return err
	}
	window := c.Duration("maintenance")
	if p.Minutes != nil {
		window = time.Duration(*p.Minutes) * time.Minute
	}
	c.Arm("maintenance", window)
	d.MaintenanceUntil = c.Now().Add(window).UTC()
	return c.Store(d)
}

// tenClear forgets the degradation and maintenance details once the tenant
// leaves those states.
func tenClear(c *governor.Ctx) error {
	return c.Store(tenData{})
}
