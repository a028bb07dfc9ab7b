package catalog

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
)

func TestCatalogPlanOf(t *testing.T) {
	key := Key("provider", "pro")
	tests := []struct {
		name string
		inst governor.Instance
		want Plan
		code fault.Code
	}{
		{
			name: "published",
			inst: governor.Instance{Key: key, State: Published, Data: json.RawMessage(entryData(2, pendingData(3, time.Hour)))},
			want: Plan{
				SKU: "pro", State: Published, Currency: "EUR",
				UnitPrices: map[string]int64{"api_calls": 2, "storage_gb": 150},
				Limits:     map[string]int64{"api_calls": 100000},
			},
		},
		{
			name: "draft without prices",
			inst: governor.Instance{Key: key, State: Draft, Data: json.RawMessage(`{"name":"Free","currency":"USD"}`)},
			want: Plan{SKU: "pro", State: Draft, Currency: "USD", UnitPrices: map[string]int64{}, Limits: map[string]int64{}},
		},
		{name: "not drafted", inst: governor.Instance{Key: key, State: governor.StateNone}, code: fault.NotFound},
		{name: "no state", inst: governor.Instance{Key: key}, code: fault.NotFound},
		{
			name: "another domain",
			inst: governor.Instance{Key: governor.Key{Tenant: "t", Domain: governor.Billing, Subject: "pro"}, State: "open"},
			code: fault.Invalid,
		},
		{name: "corrupt data", inst: governor.Instance{Key: key, State: Published, Data: json.RawMessage(`{"unit_prices":[]}`)}, code: fault.Internal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := PlanOf(tt.inst)
			if code := fault.ErrorCode(err); code != tt.code {
				t.Fatalf("PlanOf(%s %s) error %v, want code %q", tt.inst.State, tt.inst.Data, err, tt.code)
			}
			if err == nil && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("PlanOf(%s %s) = %+v, want %+v", tt.inst.State, tt.inst.Data, got, tt.want)
			}
		})
	}
}
