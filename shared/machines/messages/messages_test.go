package messages

import (
	"strings"
	"testing"

	"github.com/autonomics/autonomics/shared/governor"
)

func TestPayloadsValidate(t *testing.T) {
	neg, big, ok := -1, MaxTrialDays+1, 14
	bp0, bp := 0, 8000
	tests := []struct {
		name string
		p    governor.Payload
		ok   bool
	}{
		{"start", SubscriptionStart{Plan: "gold", TrialDays: &ok}, true},
		{"start without plan", SubscriptionStart{}, false},
		{"start with negative trial", SubscriptionStart{Plan: "gold", TrialDays: &neg}, false},
		{"start with too long a trial", SubscriptionStart{Plan: "gold", TrialDays: &big}, false},
		{"start billed by someone else", SubscriptionStart{Plan: "gold", BilledBy: "stripe"}, false},
		{"plan ref", PlanRef{Plan: "gold.v2"}, true},
		{"plan ref with a slash", PlanRef{Plan: "a/b"}, false},
		{"period close without plan", PeriodClose{}, true},
		{"period close with a reserved plan", PeriodClose{Plan: "__x"}, false},
		{"credit", Credit{BasisPoints: MaxBasisPoints}, true},
		{"credit of zero", Credit{}, false},
		{"credit over 100%", Credit{BasisPoints: MaxBasisPoints + 1}, false},
		{"limit", Limit{Limit: 10, WarningBP: &bp}, true},
		{"limit of zero", Limit{}, false},
		{"limit with a zero warning", Limit{Limit: 10, WarningBP: &bp0}, false},
		{"rejection", Rejection{Reason: "no"}, true},
		{"rejection with a newline", Rejection{Reason: "a\nb"}, false},
		{"rejection too long", Rejection{Reason: strings.Repeat("r", MaxReasonLen+1)}, false},
	}
	for _, tt := range tests {
		if err := tt.p.Validate(); (err == nil) != tt.ok {
			t.Errorf("%s: Validate() = %v, want ok %v", tt.name, err, tt.ok)
		}
	}
}

func TestCheckKeyAndCurrency(t *testing.T) {
	for _, k := range []string{"", ".", "..", "__x", "a b", strings.Repeat("k", 129)} {
		if CheckKey("meter", k) == nil {
			t.Errorf("CheckKey(%q) = nil, want an error", k)
		}
	}
	for _, k := range []string{"a", "api_calls", "v1.2-x", strings.Repeat("k", 128)} {
		if err := CheckKey("meter", k); err != nil {
			t.Errorf("CheckKey(%q) = %v, want nil", k, err)
		}
	}
	for c, ok := range map[string]bool{"EUR": true, "eur": false, "EURO": false, "E1R": false} {
		if (CheckCurrency(c) == nil) != ok {
			t.Errorf("CheckCurrency(%q) ok = %v, want %v", c, !ok, ok)
		}
	}
}

func TestExamplesValidate(t *testing.T) {
	for _, p := range []governor.Payload{
		SubscriptionCreated.Example, SubscriptionPlanChanged.Example, BillingClosed.Example,
		BillingCreditIssued.Example, QuotaLimitSet.Example,
	} {
		if err := p.Validate(); err != nil {
			t.Errorf("example %#v: %v", p, err)
		}
	}
}
