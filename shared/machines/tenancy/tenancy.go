// Package tenancy is the multi_tenant governor: one instance per tenant,
// subject "default", for the tenant's share of the shared resources, from
// provisioning to deprovisioning. The instance keeps Data while it
// applies: the share that degraded the tenant and the end of a maintenance
// window.
//
// Other governors provision, suspend, resume and deprovision the tenant
// (messages.TenantProvisionRequested, TenantSuspend, TenantResume and
// TenantDeprovision, always to subject "default"); the monitor reports
// noisy neighbours and their recovery; the provider reports provisioning
// and maintenance. The machine sends no cascades: its effects are actions
// for the tenant actuator (ProvisionTenant, ThrottleTenant, ...), with no
// data, addressed to the instance.
package tenancy

import (
	"errors"
	"fmt"
	"time"

	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/machines/messages"
)

// Domain is the governor's domain.
const Domain = governor.MultiTenant

// States of the multi_tenant machine.
const (
	Provisioning  governor.State = "provisioning"
	Active        governor.State = "active"
	Degraded      governor.State = "degraded"
	Maintenance   governor.State = "maintenance"
	Suspended     governor.State = "suspended"
	Deprovisioned governor.State = "deprovisioned"
)

// Events of the multi_tenant machine that come from outside the
// governors; messages.TenantProvisionRequested, TenantSuspend,
// TenantResume and TenantDeprovision are its events other governors send.
const (
	Provisioned           governor.EventName = "provisioned"
	NoisyNeighborDetected governor.EventName = "noisy_neighbor_detected"
	Recovered             governor.EventName = "recovered"
	MaintenanceStarted    governor.EventName = "maintenance_started"
	MaintenanceEnded      governor.EventName = "maintenance_ended"
)

// MaintenanceTimer ends a maintenance window; DefaultMaintenance is its
// default duration, the window of a maintenance_started without minutes.
const (
	MaintenanceTimer   = "maintenance"
	DefaultMaintenance = 60 * time.Minute
)

// Bounds of the payloads: MaxShareBP is the largest share_bp of a noisy
// neighbour (100%), MaxMaintenanceMinutes the longest maintenance window
// (one week).
const (
	MaxShareBP            = messages.MaxBasisPoints
	MaxMaintenanceMinutes = 7 * 24 * 60
)

// Actions the machine publishes for the tenant actuator; none carries
// data.
var (
	ProvisionTenant   = governor.DefineAction("tenant.provision", governor.None{})
	ThrottleTenant    = governor.DefineAction("tenant.throttle", governor.None{})
	UnthrottleTenant  = governor.DefineAction("tenant.unthrottle", governor.None{})
	SuspendTenant     = governor.DefineAction("tenant.suspend", governor.None{})
	ResumeTenant      = governor.DefineAction("tenant.resume", governor.None{})
	DeprovisionTenant = governor.DefineAction("tenant.deprovision", governor.None{})
)

// NoisyNeighbor is the data of multi_tenant.noisy_neighbor_detected: the
// tenant's share of the shared resources in basis points.
type NoisyNeighbor struct {
	ShareBP *int `json:"share_bp"`
}

// Validate requires share_bp in 1..MaxShareBP.
func (p NoisyNeighbor) Validate() error {
	if p.ShareBP == nil {
		return errors.New("share_bp is required")
	}
	if *p.ShareBP < 1 || *p.ShareBP > MaxShareBP {
		return fmt.Errorf("share_bp %d out of range 1..%d", *p.ShareBP, MaxShareBP)
	}
	return nil
}

// MaintenanceStart is the data of multi_tenant.maintenance_started; the
// window lasts the configured maintenance duration when minutes is
// omitted.
type MaintenanceStart struct {
	Minutes *int `json:"minutes"`
}

// Validate requires minutes, when present, in 1..MaxMaintenanceMinutes.
func (p MaintenanceStart) Validate() error {
	if p.Minutes != nil && (*p.Minutes < 1 || *p.Minutes > MaxMaintenanceMinutes) {
		return fmt.Errorf("minutes %d out of range 1..%d", *p.Minutes, MaxMaintenanceMinutes)
	}
	return nil
}

// Data is what a multi_tenant instance keeps while it applies: the share
// that degraded the tenant and the end of a maintenance window.
type Data struct {
	ShareBP          int       `json:"share_bp,omitempty"`
	MaintenanceUntil time.Time `json:"maintenance_until,omitzero"`
}

// Machine returns the multi_tenant machine with its default timer.
func Machine() *governor.Machine {
	provision, suspend := messages.TenantProvisionRequested.Name, messages.TenantSuspend.Name
	resume, deprovision := messages.TenantResume.Name, messages.TenantDeprovision.Name
	return &governor.Machine{
		Domain:   Domain,
		States:   []governor.State{Provisioning, Active, Degraded, Maintenance, Suspended, Deprovisioned},
		Terminal: []governor.State{Deprovisioned},
		Timers:   map[string]time.Duration{MaintenanceTimer: DefaultMaintenance},
		Transitions: []governor.Transition{
			{
				From: []governor.State{governor.StateNone}, On: provision, To: Provisioning,
				Actuate: []string{ProvisionTenant.Kind},
			},
			{
				From: []governor.State{Provisioning}, On: Provisioned, To: Active,
			},
			{
				From: []governor.State{Active}, On: NoisyNeighborDetected, To: Degraded,
				Actuate: []string{ThrottleTenant.Kind},
				Apply:   degrade,
				Note:    "keeps share_bp",
			},
			{
				From: []governor.State{Degraded}, On: Recovered, To: Active,
				Actuate: []string{UnthrottleTenant.Kind},
				Apply:   forget,
				Note:    "clears share_bp",
			},
			{
				From: []governor.State{Active}, On: MaintenanceStarted, To: Maintenance,
				Apply: startMaintenance,
				Note:  "timer " + MaintenanceTimer + " after minutes (the configured " + MaintenanceTimer + " duration when omitted); keeps maintenance_until",
			},
			{
				From: []governor.State{Maintenance}, On: MaintenanceEnded, To: Active,
				Cancel: []string{MaintenanceTimer},
				Apply:  forget,
				Note:   "clears maintenance_until",
			},
			{
				From: []governor.State{Maintenance}, On: governor.Timeout(MaintenanceTimer), To: Active,
				Apply: forget,
				Note:  "clears maintenance_until",
			},
			{
				From: []governor.State{Active, Degraded, Maintenance}, On: suspend, To: Suspended,
				Actuate: []string{SuspendTenant.Kind},
				Apply:   forget,
				Note:    "clears share_bp and maintenance_until",
			},
			{
				From: []governor.State{Suspended}, On: resume, To: Active,
				Actuate: []string{ResumeTenant.Kind},
			},
			{
				Any: true, On: deprovision, To: Deprovisioned,
				Actuate: []string{DeprovisionTenant.Kind},
			},
		},
		Senders: map[governor.EventName][]governor.Sender{
			provision:             governor.FromGovernors,
			Provisioned:           governor.FromProvider,
			NoisyNeighborDetected: {governor.SenderMonitor},
			Recovered:             {governor.SenderMonitor},
			MaintenanceStarted:    governor.FromProvider,
			MaintenanceEnded:      governor.FromProvider,
			suspend:               governor.FromGovernors,
			resume:                governor.FromGovernors,
			deprovision:           governor.FromGovernors,
		},
		Payloads: map[governor.EventName]governor.PayloadCheck{
			NoisyNeighborDetected: governor.Schema[NoisyNeighbor](),
			MaintenanceStarted:    governor.Schema[MaintenanceStart](),
		},
	}
}

// degrade keeps the share reported for a noisy neighbour.
func degrade(c *governor.Ctx) error {
	var p NoisyNeighbor
	if err := c.Payload(&p); err != nil {
		return err
	}
	var d Data
	if err := c.Load(&d); err != nil {
		return err
	}
	if p.ShareBP != nil {
		d.ShareBP = *p.ShareBP
	}
	return c.Store(d)
}

// startMaintenance arms the maintenance timer for the requested window.
func startMaintenance(c *governor.Ctx) error {
	var p MaintenanceStart
	if err := c.Payload(&p); err != nil {
		return err
	}
	var d Data
	if err := c.Load(&d); err != nil {
		return err
	}
	window := c.Duration(MaintenanceTimer)
	if p.Minutes != nil {
		window = time.Duration(*p.Minutes) * time.Minute
	}
	c.Arm(MaintenanceTimer, window)
	d.MaintenanceUntil = c.Now().Add(window).UTC()
	return c.Store(d)
}

// forget clears the degradation and maintenance details once the tenant
// leaves those states.
func forget(c *governor.Ctx) error {
	return c.Store(Data{})
}
