package catalog

import (
	"bytes"
	"encoding/json"
	"maps"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
)

// Domain is the governor's domain.
const Domain = governor.ProductCatalog

// States of the product_catalog machine.
const (
	Draft           governor.State = "draft"
	PendingApproval governor.State = "pending_approval"
	Published       governor.State = "published"
	Deprecated      governor.State = "deprecated"
	Retired         governor.State = "retired"
)

// Entry is what a catalog instance keeps: the plan whose SKU is the
// instance's subject.
type Entry struct {
	Name       string           `json:"name"`
	Currency   string           `json:"currency"`
	UnitPrices map[string]int64 `json:"unit_prices,omitempty"`
	Limits     map[string]int64 `json:"limits,omitempty"`
	// Pending is the scheduled price change, if any.
	Pending *PendingChange `json:"pending_price_change,omitempty"`
}

// PendingChange is a price change that takes effect at EffectiveAt.
type PendingChange struct {
	UnitPrices  map[string]int64 `json:"unit_prices"`
	EffectiveAt string           `json:"effective_at"`
}

// Plan is a catalog entry as other governors' guards see it.
type Plan struct {
	SKU        string           `json:"sku"`
	State      governor.State   `json:"state"`
	Currency   string           `json:"currency"`
	UnitPrices map[string]int64 `json:"unit_prices"`
	Limits     map[string]int64 `json:"limits"`
}

// Key is the key of the catalog entry of plan sku, kept by the provider
// tenant (governor.Scope.Provider).
func Key(provider, sku string) governor.Key {
	return governor.Key{Tenant: provider, Domain: Domain, Subject: sku}
}

// Needs returns the keys of the catalog entries of skus, for a row's
// Needs; empty and broadcast SKUs are left out.
func Needs(provider string, skus ...string) []governor.Key {
	var out []governor.Key
	for _, sku := range skus {
		if sku != "" && sku != governor.BroadcastSubject {
			out = append(out, Key(provider, sku))
		}
	}
	return out
}

// Lookup returns the plan sku as the decision read it from the provider's
// catalog, and whether the catalog has it. The row must name the entry in
// its Needs.
func Lookup(c *governor.Ctx, sku string) (Plan, bool, error) {
	inst, err := c.Read(Key(c.Provider(), sku))
	if err != nil {
		return Plan{}, false, err
	}
	if inst.State == governor.StateNone {
		return Plan{}, false, nil
	}
	p, err := PlanOf(inst)
	return p, err == nil, err
}

// PlanOf converts a product_catalog instance into the Plan the guards
// consult: SKU is the subject, State the instance state, and currency,
// unit prices and limits come from the instance data. Prices are the
// current ones; a pending price change is not included.
func PlanOf(inst governor.Instance) (Plan, error) {
	const op = "catalog.PlanOf"
	if inst.Domain != Domain {
		return Plan{}, fault.Errorf(fault.Invalid, op, "instance %s is not a %s instance", inst.Key, Domain)
	}
	if inst.State == "" || inst.State == governor.StateNone {
		return Plan{}, fault.Errorf(fault.NotFound, op, "plan %q is not in the catalog", inst.Subject)
	}
	var d Entry
	if len(bytes.TrimSpace(inst.Data)) > 0 {
		if err := json.Unmarshal(inst.Data, &d); err != nil {
			return Plan{}, fault.Wrap(fault.Internal, op+" "+inst.Key.String(), err)
		}
	}
	p := Plan{
		SKU:        inst.Subject,
		State:      inst.State,
		Currency:   d.Currency,
		UnitPrices: map[string]int64{},
		Limits:     map[string]int64{},
	}
	maps.Copy(p.UnitPrices, d.UnitPrices)
	maps.Copy(p.Limits, d.Limits)
	return p, nil
}

// Instance returns the catalog instance of provider that holds p, as
// PlanOf reads it back: for seeding a decision's reads in tests and
// fixtures.
func Instance(provider string, p Plan) governor.Instance {
	d := Entry{Currency: p.Currency, UnitPrices: p.UnitPrices, Limits: p.Limits}
	b, err := json.Marshal(d)
	if err != nil {
		panic(err) // maps of strings to integers always encode
	}
	return governor.Instance{Key: Key(provider, p.SKU), State: p.State, Version: 1, Data: b}
}
