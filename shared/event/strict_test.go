package event

import (
	"strings"
	"testing"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
)

func TestEventDataWithDuplicateKeysIsRefused(t *testing.T) {
	e := governor.Event{ID: "e1", Source: "//test", Type: "autonomics.entitlement.creation_requested",
		Domain: governor.Entitlement, Name: "creation_requested", Tenant: "acme", Subject: "ent-1"}
	for _, data := range []string{`{"plan":"free","plan":"enterprise"}`, `{"x":{"k":1,"k":2}}`} {
		e.Data = []byte(data)
		msgData, attrs := Encode(e)
		_, err := Decode(Message{Data: msgData, Attributes: attrs})
		if fault.ErrorCode(err) != fault.Invalid || !strings.Contains(err.Error(), "duplicate member") {
			t.Errorf("Decode(data %s) = %v, want an invalid error naming the duplicate", data, err)
		}
	}
}
