package topic

import (
	"testing"

	"github.com/autonomics/autonomics/shared/governor"
)

func TestNames(t *testing.T) {
	tests := []struct {
		prefix string
		domain governor.Domain
		want   string
	}{
		{"", governor.ProductCatalog, "autonomics-product-catalog"},
		{"", governor.QuotaSLA, "autonomics-quota-sla"},
		{"dev-", governor.Billing, "dev-autonomics-billing"},
		{"", governor.MultiTenant, "autonomics-multi-tenant"},
	}
	for _, tt := range tests {
		n := Names{Prefix: tt.prefix}
		if got := n.Domain(tt.domain); got != tt.want {
			t.Errorf("Names{%q}.Domain(%v) = %q, want %q", tt.prefix, tt.domain, got, tt.want)
		}
		if d, ok := n.DomainOf(tt.want); !ok || d != tt.domain {
			t.Errorf("DomainOf(%q) = %v, %v, want %v", tt.want, d, ok, tt.domain)
		}
	}
	n := Names{Prefix: "x-"}
	if got := len(n.All()); got != 21 {
		t.Errorf("len(All()) = %d, want 21", got)
	}
	if _, ok := n.DomainOf(n.Receipts()); ok {
		t.Errorf("DomainOf(%q) reported a domain", n.Receipts())
	}
	if got := n.DeadLetter(); got != "x-autonomics-dead-letter" {
		t.Errorf("DeadLetter() = %q", got)
	}
}

func TestInternalAndPush(t *testing.T) {
	n := Names{Prefix: "dev-"}
	if got, want := n.Internal(governor.QuotaSLA), "dev-autonomics-quota-sla-internal"; got != want {
		t.Errorf("Internal(quota_sla) = %q, want %q", got, want)
	}
	if d, ok := n.DomainOf(n.Internal(governor.Billing)); !ok || d != governor.Billing {
		t.Errorf("DomainOf(internal billing) = %v, %v, want billing", d, ok)
	}
	if got, want := SubscriptionName("p", Push(n.Internal(governor.Billing))), "projects/p/subscriptions/dev-autonomics-billing-internal-push"; got != want {
		t.Errorf("SubscriptionName = %q, want %q", got, want)
	}
}
