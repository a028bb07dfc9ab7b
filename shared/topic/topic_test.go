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
	if got := len(n.All()); got != 13 {
		t.Errorf("len(All()) = %d, want 13", got)
	}
	if _, ok := n.DomainOf(n.Receipts()); ok {
		t.Errorf("DomainOf(%q) reported a domain", n.Receipts())
	}
	if got := n.DeadLetter(); got != "x-autonomics-dead-letter" {
		t.Errorf("DeadLetter() = %q", got)
	}
}
