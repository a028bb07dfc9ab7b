package event_test

import (
	"encoding/json"
	"fmt"

	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
)

func ExampleDecodePush() {
	body := event.PushBody([]byte(`{"plan":"pro-monthly"}`), map[string]string{
		"ce-specversion": "1.0",
		"ce-id":          "evt-42",
		"ce-source":      "//autonomics/marketplace",
		"ce-type":        "autonomics.entitlement.creation_requested",
		"ce-tenantid":    "acme",
		"ce-subject":     "ent-7f3a",
		"content-type":   "application/json",
	}, "1001")
	ev, msg, err := event.DecodePush(body)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(msg.ID, ev.Key(), ev.Name, string(ev.Data))
	// Output: 1001 acme/entitlement/ent-7f3a creation_requested {"plan":"pro-monthly"}
}

func ExampleDecode_invalid() {
	_, err := event.Decode(event.Message{Attributes: map[string]string{
		"ce-specversion": "1.0",
		"ce-id":          "evt-43",
		"ce-source":      "//autonomics/test",
		"ce-type":        "autonomics.billing.opened",
		"ce-tenantid":    "../x",
	}})
	fmt.Println(fault.ErrorCode(err), err)
	// Output: invalid event.Decode: tenantid "../x": must match [A-Za-z0-9._-]{1,128}
}

func ExampleEncode() {
	data, attrs := event.Encode(governor.Event{
		ID:      "evt-44",
		Source:  "//autonomics/monitor",
		Domain:  governor.MultiTenant,
		Name:    "noisy_neighbor_detected",
		Tenant:  "acme",
		Subject: governor.DefaultSubject,
		Data:    json.RawMessage(`{"share_bp":"4200"}`),
	})
	ev, err := event.Decode(event.Message{Data: data, Attributes: attrs})
	fmt.Println(attrs["ce-type"], ev.Key(), err)
	// Output: autonomics.multi_tenant.noisy_neighbor_detected acme/multi_tenant/default <nil>
}
