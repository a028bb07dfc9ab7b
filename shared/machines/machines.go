package machines

import (
	"strings"
	"time"

	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/machines/account"
	"github.com/autonomics/autonomics/shared/machines/billing"
	"github.com/autonomics/autonomics/shared/machines/catalog"
	"github.com/autonomics/autonomics/shared/machines/compliance"
	"github.com/autonomics/autonomics/shared/machines/entitlement"
	"github.com/autonomics/autonomics/shared/machines/quota"
	"github.com/autonomics/autonomics/shared/machines/subscription"
	"github.com/autonomics/autonomics/shared/machines/tenancy"
)

// constructors builds each domain's machine with its default timers.
var constructors = map[governor.Domain]func() *governor.Machine{
	account.Domain:      account.Machine,
	entitlement.Domain:  entitlement.Machine,
	subscription.Domain: subscription.Machine,
	billing.Domain:      billing.Machine,
	catalog.Domain:      catalog.Machine,
	quota.Domain:        quota.Machine,
	compliance.Domain:   compliance.Machine,
	tenancy.Domain:      tenancy.Machine,
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
