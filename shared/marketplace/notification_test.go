package marketplace_test

import (
	"strings"
	"testing"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/marketplace"
)

func TestDecode(t *testing.T) {
	n, err := marketplace.Decode([]byte(`{"eventId":"e-1","eventType":"ENTITLEMENT_PLAN_CHANGE_REQUESTED","providerId":"acme-saas",
		"entitlement":{"id":"ent-1","updateTime":"2026-03-01T10:00:00Z","newPendingPlan":"pro","newOfferDuration":"P1Y"},
		"somethingGoogleAddedLater":{"nested":[1,2,3]}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := marketplace.Notification{EventID: "e-1", EventType: "ENTITLEMENT_PLAN_CHANGE_REQUESTED", ProviderID: "acme-saas",
		Resource: marketplace.ResourceEntitlement, ID: "ent-1", UpdateTime: "2026-03-01T10:00:00Z", NewPendingPlan: "pro"}
	if n != want {
		t.Errorf("Decode = %+v, want %+v", n, want)
	}
	n, err = marketplace.Decode([]byte(`{"eventId":"e-2","eventType":"ACCOUNT_DELETED","providerId":"acme-saas","account":{"id":"E-1"},"entitlement":null}`))
	if err != nil || n.Resource != marketplace.ResourceAccount || n.ID != "E-1" {
		t.Errorf("Decode(account) = %+v, %v", n, err)
	}
}

// TestHostileNotificationsAreRefused lists what Decode refuses, each with
// a word its message must contain.
func TestHostileNotificationsAreRefused(t *testing.T) {
	const ok = `"eventId":"1","eventType":"ENTITLEMENT_ACTIVE","providerId":"p"`
	tests := []struct{ name, in, want string }{
		{"empty", ``, "empty"},
		{"not an object", `["x"]`, "object"},
		{"a string", `"x"`, "object"},
		{"two values", `{` + ok + `,"entitlement":{"id":"e"}} {}`, "more than one value"},
		{"repeated member", `{` + ok + `,"entitlement":{"id":"e","id":"f"}}`, "duplicate member"},
		{"invalid UTF-8", "{\"eventId\":\"\xff\"}", "UTF-8"},
		{"missing eventId", `{"eventType":"ENTITLEMENT_ACTIVE","providerId":"p","entitlement":{"id":"e"}}`, "eventId is required"},
		{"missing eventType", `{"eventId":"1","providerId":"p","entitlement":{"id":"e"}}`, "eventType is required"},
		{"missing providerId", `{"eventId":"1","eventType":"ENTITLEMENT_ACTIVE","entitlement":{"id":"e"}}`, "providerId is required"},
		{"eventId a number", `{"eventId":1,"eventType":"ENTITLEMENT_ACTIVE","providerId":"p","entitlement":{"id":"e"}}`, "eventId"},
		{"eventType lower case", `{"eventId":"1","eventType":"entitlement_active","providerId":"p","entitlement":{"id":"e"}}`, "eventType"},
		{"control character", `{"eventId":"a\u0000b","eventType":"ENTITLEMENT_ACTIVE","providerId":"p","entitlement":{"id":"e"}}`, "control"},
		{"surrounding space", `{"eventId":" 1","eventType":"ENTITLEMENT_ACTIVE","providerId":"p","entitlement":{"id":"e"}}`, "white space"},
		{"long eventId", `{"eventId":"` + strings.Repeat("1", 241) + `","eventType":"ENTITLEMENT_ACTIVE","providerId":"p","entitlement":{"id":"e"}}`, "limit"},
		{"neither resource", `{` + ok + `}`, "neither"},
		{"both resources", `{` + ok + `,"entitlement":{"id":"e"},"account":{"id":"a"}}`, "both"},
		{"entitlement a string", `{` + ok + `,"entitlement":"e"}`, "entitlement"},
		{"entitlement without id", `{` + ok + `,"entitlement":{"updateTime":"x"}}`, "entitlement.id is required"},
		{"entitlement id a path", `{` + ok + `,"entitlement":{"id":"../x"}}`, "entitlement.id"},
		{"entitlement id broadcast", `{` + ok + `,"entitlement":{"id":"*"}}`, "entitlement.id"},
		{"account id with a slash", `{` + ok + `,"account":{"id":"a/b"}}`, "account"},
		{"too large", `{` + ok + `,"entitlement":{"id":"e"},"pad":"` + strings.Repeat("x", marketplace.MaxNotificationBytes) + `"}`, "limit"},
		{"too deep", `{` + ok + `,"entitlement":{"id":"e"},"x":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`, "deeper"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := marketplace.Decode([]byte(tt.in))
			if err == nil {
				t.Fatalf("Decode accepted it: %+v", n)
			}
			if fault.ErrorCode(err) != fault.Invalid || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Decode = %v (%s), want an invalid error containing %q", err, fault.ErrorCode(err), tt.want)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"eventId":"1","eventType":"ENTITLEMENT_ACTIVE","providerId":"p","entitlement":{"id":"e"}}`))
	f.Add([]byte(`{"eventId":"1","eventType":"ACCOUNT_DELETED","providerId":"p","account":{"id":"E-1"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := marketplace.Decode(data)
		if err != nil {
			if fault.ErrorCode(err) != fault.Invalid {
				t.Fatalf("Decode error code %s, want invalid", fault.ErrorCode(err))
			}
			return
		}
		if n.EventID == "" || n.EventType == "" || n.ProviderID == "" || n.ID == "" {
			t.Fatalf("Decode accepted a notification missing a required field: %+v", n)
		}
	})
}

func TestAccountOf(t *testing.T) {
	tests := []struct{ in, want string }{
		{"providers/acme/accounts/E-1", "E-1"},
		{"accounts/E-1", "E-1"},
		{"", ""},
		{"providers/acme/accounts/", ""},
		{"providers/acme/accounts/a/b", ""},
		{"providers/acme/xaccounts/E-1", ""},
	}
	for _, tt := range tests {
		got, err := marketplace.AccountOf(tt.in)
		if tt.want == "" {
			if err == nil {
				t.Errorf("AccountOf(%q) = %q, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("AccountOf(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}
