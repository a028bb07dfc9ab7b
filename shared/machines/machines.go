package machines

import (
	"strings"
	"time"

	"github.com/autonomics/autonomics/shared/governor"
)

// constructors builds each domain's machine with its default timers.
var constructors = map[governor.Domain]func() *governor.Machine{
	governor.CustomerAccount: accountMachine,
	governor.Entitlement:     entitlementMachine,
	governor.Subscription:    subscriptionMachine,
	governor.Billing:         billingMachine,
	governor.ProductCatalog:  catalogMachine,
	governor.QuotaSLA:        quotaMachine,
	governor.ComplianceAudit: complianceMachine,
	governor.MultiTenant:     tenancyMachine,
}

// New returns the eight machines by domain. timers overrides default
// durations, keyed "domain.timer" (for example
// "customer_account.verification"); other keys are ignored.
func New(timers map[string]time.Duration) map[governor.Domain]*governor.Machine {
	out := make(map[governor.Domain]*governor.Machine, len(constructors))
	for d, build := range constructors {
		own := map[string]time.Duration{}
		for k, v := range timers {
			if name, ok := strings.CutPrefix(k, string(d)+"."); ok {
				own[name] = v
			}
		}
		out[d] = build().WithTimers(own)
	}
	return out
}

// Machine returns the machine of one domain with default timers, or nil.
func Machine(d governor.Domain) *governor.Machine {
	if build, ok := constructors[d]; ok {
		return build()
	}
	return nil
}
