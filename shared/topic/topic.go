// Package topic names the Pub/Sub topics and push subscriptions of
// Autonomics. An optional prefix lets several environments share one
// project.
//
// Every governor domain has two topics. The domain topic
// (autonomics-<domain>) is where producers outside the governors publish;
// the internal topic (autonomics-<domain>-internal) carries the events only
// Autonomics itself sends: cascades between governors, timeouts from the
// scheduler and the monitor's fairness events. Only the governors, the
// scheduler and the monitor may publish to internal topics, and each topic
// is delivered to its function by its own push subscription
// (<topic>-push), so a governor knows from the subscription that
// delivered a message which path it came by.
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

// Suffixes of internal topics and of push subscriptions.
const (
	InternalSuffix = "-internal"
	PushSuffix     = "-push"
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

// Internal returns the internal topic id of a governor domain, e.g.
// "autonomics-product-catalog-internal".
func (n Names) Internal(d governor.Domain) string { return n.Domain(d) + InternalSuffix }

// Push returns the id of the push subscription that delivers topic t to
// its consumer, e.g. "autonomics-billing-push".
func Push(t string) string { return t + PushSuffix }

// SubscriptionName returns the full resource name of subscription id in
// project.
func SubscriptionName(project, id string) string {
	return "projects/" + project + "/subscriptions/" + id
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

// All returns every topic id: the eight domain topics, the eight internal
// topics, then receipts, actions, alerts, dead-letter and checkpoints.
func (n Names) All() []string {
	out := make([]string, 0, 2*len(governor.Domains)+5)
	for _, d := range governor.Domains {
		out = append(out, n.Domain(d))
	}
	for _, d := range governor.Domains {
		out = append(out, n.Internal(d))
	}
	return append(out, n.Receipts(), n.Actions(), n.Alerts(), n.DeadLetter(), n.Checkpoints())
}

// DomainOf returns the domain whose domain or internal topic id is t, if
// any.
func (n Names) DomainOf(t string) (governor.Domain, bool) {
	for _, d := range governor.Domains {
		if n.Domain(d) == t || n.Internal(d) == t {
			return d, true
		}
	}
	return "", false
}
