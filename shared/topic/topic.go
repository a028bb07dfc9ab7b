// Package topic names the Pub/Sub topics of Autonomics (DESIGN.md §1). An
// optional prefix lets several environments share one project.
package topic

import (
	"strings"

	"github.com/autonomics/autonomics/shared/governor"
)

// Base names of the topics that are not domain topics.
const (
	Receipts   = "autonomics-receipts"
	Actions    = "autonomics-actions"
	Alerts     = "autonomics-alerts"
	DeadLetter = "autonomics-dead-letter"
	// Checkpoints carries every signed checkpoint of the receipt ledger.
	Checkpoints = "autonomics-checkpoints"
)

// Names builds topic ids with a prefix.
type Names struct {
	// Prefix is prepended to every topic id, e.g. "dev-".
	Prefix string
}

// Domain returns the topic id of a governor domain, e.g.
// "autonomics-product-catalog" for product_catalog.
func (n Names) Domain(d governor.Domain) string {
	return n.Prefix + "autonomics-" + strings.ReplaceAll(string(d), "_", "-")
}

// Receipts returns the receipts topic id.
func (n Names) Receipts() string { return n.Prefix + Receipts }

// Actions returns the actions topic id.
func (n Names) Actions() string { return n.Prefix + Actions }

// Alerts returns the alerts topic id.
func (n Names) Alerts() string { return n.Prefix + Alerts }

// DeadLetter returns the dead-letter topic id.
func (n Names) DeadLetter() string { return n.Prefix + DeadLetter }

// Checkpoints returns the ledger checkpoints topic id.
func (n Names) Checkpoints() string { return n.Prefix + Checkpoints }

// All returns every topic id: the eight domain topics, then receipts,
// actions, alerts, dead-letter and checkpoints.
func (n Names) All() []string {
	out := make([]string, 0, len(governor.Domains)+5)
	for _, d := range governor.Domains {
		out = append(out, n.Domain(d))
	}
	return append(out, n.Receipts(), n.Actions(), n.Alerts(), n.DeadLetter(), n.Checkpoints())
}

// DomainOf returns the domain whose topic id is t, if any.
func (n Names) DomainOf(t string) (governor.Domain, bool) {
	for _, d := range governor.Domains {
		if n.Domain(d) == t {
			return d, true
		}
	}
	return "", false
}
