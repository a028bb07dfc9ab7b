package marketplace

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	"github.com/autonomics/autonomics/shared/governor"
)

// RenderNotifications renders the mapping table as Markdown: the page
// docs/notifications.md, which a golden test keeps equal to the table.
func RenderNotifications() []byte {
	var b bytes.Buffer
	b.WriteString("<!-- Generated from shared/marketplace/mapping.go by `go test ./shared/marketplace -run TestGolden -update`. Do not edit. -->\n\n")
	b.WriteString("# Marketplace notifications\n\n")
	b.WriteString("Every notification Marketplace publishes is decoded, its entitlement or account is read from the\n" +
		"Procurement API, and the state read then decides the governor events published (source\n" +
		"`marketplace/<provider>`, id = the notification's `eventId`, then `eventId-2`… for a second event,\n" +
		"ordering key = tenant, subject = the entitlement id, or `default` for the customer account).\n" +
		"The state read wins over the notification's type, so a duplicate, late or reordered notification\n" +
		"becomes the event that brings the governor to where Marketplace is now; an event the governor is\n" +
		"already past is rejected by its machine with a receipt and changes nothing. `NOT_FOUND` is a GET\n" +
		"that found nothing. A type not listed here, a `providerId` of another provider or a malformed\n" +
		"message is copied to the dead-letter topic with the reason.\n\n")
	b.WriteString("| Notification | Meaning | Handling |\n|---|---|---|\n")
	for _, r := range rules {
		handling := "mapped by the state read"
		if r.Ignored != "" {
			handling = "ignored: " + r.Ignored
		}
		fmt.Fprintf(&b, "| [`%s`](#%s) | %s | %s |\n", r.Type, strings.ToLower(r.Type), cell(r.Meaning), cell(handling))
	}
	for _, r := range rules {
		fmt.Fprintf(&b, "\n## %s\n\n%s (%s).\n", r.Type, upper(r.Meaning), r.Resource)
		if r.Ignored != "" {
			fmt.Fprintf(&b, "\nIgnored, the %s is not read: %s.\n", r.Resource, r.Ignored)
			continue
		}
		b.WriteString("\n| Procurement state (GET) | Governor events |\n|---|---|\n")
		for _, s := range StatesOf(r.Resource) {
			evs, reason := r.Events(s)
			if len(evs) == 0 {
				fmt.Fprintf(&b, "| `%s` | ignored: %s |\n", s, cell(reason))
				continue
			}
			types := make([]string, len(evs))
			for i, e := range evs {
				types[i] = "`" + governor.TypeOf(r.Resource.Domain(), e) + "`" + payloadNote(e)
			}
			fmt.Fprintf(&b, "| `%s` | %s |\n", s, strings.Join(types, ", then "))
		}
	}
	b.WriteString("\nPayloads, from the entitlement as read: `creation_requested` and `activated` carry `plan`, and\n" +
		"`product`, `offer`, `offer_end_time` and `usage_reporting_id` when Procurement has them;\n" +
		"`plan_change_requested` carries `plan` = `newPendingPlan`; `plan_changed` carries `plan`;\n" +
		"`offer_ended` carries `offer_end_time` when set. The other events carry no data.\n\n")
	b.WriteString("The reconciler (`POST /v1/reconcile`) lists the entitlements of every state with the filter\n" +
		"`state=<STATE>` and compares each with its governor; a drift becomes the corrective events that\n" +
		"bring the governor there (ids `reconcile-<hash of entitlement, state, updateTime>`, then `-2`…),\n" +
		"counted by `autonomics.marketplace.drift`.\n")
	return b.Bytes()
}

// payloadNote names what an event carries in the table.
func payloadNote(e governor.EventName) string {
	switch e {
	case EvCreationRequested, EvActivated:
		return " {plan, …}"
	case EvPlanChangeRequested:
		return " {plan: newPendingPlan}"
	case EvPlanChanged:
		return " {plan}"
	case EvOfferEnded:
		return " {offer_end_time}"
	}
	return ""
}

// upper capitalises the first letter of s.
func upper(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// StatesOf lists the states a rule of resource r can see, StateGone
// last.
func StatesOf(r Resource) []string {
	if r == ResourceAccount {
		return []string{AccountActivationRequested, AccountActive, StateGone}
	}
	return append(slices.Clone(EntitlementStates), StateGone)
}

// cell escapes a table cell.
func cell(s string) string { return strings.ReplaceAll(s, "|", "\\|") }
