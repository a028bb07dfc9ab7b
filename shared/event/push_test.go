package event

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2/event"

	"github.com/autonomics/autonomics/shared/governor"
)

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The events and messages the fixtures under testdata/ carry.
var (
	billingPaymentFailed = governor.Event{
		ID: "evt-0001", Source: "//autonomics/billing-api", Type: "autonomics.billing.payment_failed",
		Domain: governor.Billing, Name: "payment_failed", Tenant: "acme", Subject: "2026-11",
		Time: time.Date(2026, 11, 3, 10, 15, 0, 0, time.UTC), Data: json.RawMessage(`{"attempt":1,"amount":4900,"currency":"EUR"}`),
		CorrelationID: "evt-0001", TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	}
	entitlementCreationRequested = governor.Event{
		ID: "evt-0002", Source: "//autonomics/marketplace", Type: "autonomics.entitlement.creation_requested",
		Domain: governor.Entitlement, Name: "creation_requested", Tenant: "acme", Subject: "ent-7f3a",
		Time: time.Date(2026, 11, 3, 9, 0, 0, 5e8, time.UTC), Data: json.RawMessage(`{"plan":"pro-monthly"}`),
	}
	subscriptionGraceTimeout = governor.Event{
		ID: "evt-0003", Source: "//autonomics/sweeper", Type: "autonomics.subscription.timeout.grace",
		Domain: governor.Subscription, Name: "timeout.grace", Tenant: "acme", Subject: "sub_9",
		Time: time.Date(2026, 11, 10, 0, 0, 0, 0, time.UTC), Data: json.RawMessage(`{"timer_id": "c0ffee00c0ffee00c0ffee00c0ffee00"}`),
		CorrelationID: "evt-0001", CausationID: "3f1c5a0e9b7d2c4e6a8f0b1d3e5c7a9f2b4d6e8f0a1c3e5d7b9f1a3c5e7d9b1f", CascadeDepth: 2,
	}
)

func TestDecodePushFixtures(t *testing.T) {
	tests := []struct {
		file string
		want governor.Event
		msg  Message // compared without Data and Attributes
	}{
		{"push_binary.json", entitlementCreationRequested, Message{
			ID: "2070443601311540", PublishTime: time.Date(2026, 11, 3, 9, 0, 0, 612e6, time.UTC), OrderingKey: "acme",
			Subscription: "projects/local/subscriptions/autonomics-entitlement-push", DeliveryAttempt: 1,
		}},
		{"push_structured.json", subscriptionGraceTimeout, Message{
			ID: "2070443601311541", PublishTime: time.Date(2026, 11, 10, 0, 0, 0, 101e6, time.UTC),
			Subscription: "projects/local/subscriptions/autonomics-subscription-push",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			ev, m, err := DecodePush(readFixture(t, tt.file))
			if err != nil {
				t.Fatalf("DecodePush(%s) = %v", tt.file, err)
			}
			if !equalEvent(ev, tt.want) {
				t.Errorf("DecodePush(%s) =\n%s\nwant\n%s", tt.file, fmtEvent(ev), fmtEvent(tt.want))
			}
			m.Data, m.Attributes = nil, nil
			if !reflect.DeepEqual(m, tt.msg) {
				t.Errorf("DecodePush(%s) message = %+v, want %+v", tt.file, m, tt.msg)
			}
		})
	}
}

func TestDecodeMessagePublishedFixtures(t *testing.T) {
	tests := []struct {
		file string
		want governor.Event
		msg  Message
	}{
		// As an Eventarc trigger delivers it: snake_case duplicates of the
		// message fields and the trigger's subscription.
		{"eventarc_message_published.json", billingPaymentFailed, Message{
			ID: "9937403523126401", PublishTime: time.Date(2026, 11, 3, 10, 15, 1, 234e6, time.UTC), OrderingKey: "acme",
			Subscription: "projects/acme-prod/subscriptions/eventarc-europe-west1-autonomics-billing-412-sub-733",
		}},
		// As the Functions Framework converts a push body: "@type" added,
		// subscription and orderingKey dropped.
		{"framework_message_published.json", entitlementCreationRequested, Message{
			ID: "2070443601311540", PublishTime: time.Date(2026, 11, 3, 9, 0, 0, 612e6, time.UTC),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			var ce cloudevents.Event
			if err := ce.UnmarshalJSON(readFixture(t, tt.file)); err != nil {
				t.Fatalf("UnmarshalJSON(%s) = %v", tt.file, err)
			}
			ev, m, err := DecodeMessagePublished(ce)
			if err != nil {
				t.Fatalf("DecodeMessagePublished(%s) = %v", tt.file, err)
			}
			if !equalEvent(ev, tt.want) {
				t.Errorf("DecodeMessagePublished(%s) =\n%s\nwant\n%s", tt.file, fmtEvent(ev), fmtEvent(tt.want))
			}
			m.Data, m.Attributes = nil, nil
			if !reflect.DeepEqual(m, tt.msg) {
				t.Errorf("DecodeMessagePublished(%s) message = %+v, want %+v", tt.file, m, tt.msg)
			}
		})
	}
}

func TestDecodeMessagePublishedErrors(t *testing.T) {
	good := func() cloudevents.Event {
		var ce cloudevents.Event
		if err := ce.UnmarshalJSON(readFixture(t, "eventarc_message_published.json")); err != nil {
			t.Fatal(err)
		}
		return ce
	}
	wrongType := good()
	wrongType.SetType("google.cloud.storage.object.v1.finalized")
	wrongCT := good()
	wrongCT.SetDataContentType("text/plain")
	badData := good()
	badData.DataEncoded = []byte(`{"message": {"data": "%%%"}}`)
	badEvent := good()
	badEvent.DataEncoded = PushBody(testData, binAttrs(map[string]string{"ce-tenantid": "__x__"}), "1")
	tests := []struct {
		name string
		ce   cloudevents.Event
		want string
	}{
		{"wrong type", wrongType, `CloudEvent type "google.cloud.storage.object.v1.finalized": want google.cloud.pubsub.topic.v1.messagePublished`},
		{"wrong content type", wrongCT, `CloudEvent datacontenttype "text/plain": must be application/json`},
		{"bad message data", badData, "push body: message.data: illegal base64 data at input byte 0"},
		{"bad event", badEvent, `tenantid "__x__": must not start with "__"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, m, err := DecodeMessagePublished(tt.ce)
			checkErr(t, "DecodeMessagePublished("+tt.name+")", err, tt.want)
			if tt.name == "bad event" && m.ID != "1" {
				t.Errorf("DecodeMessagePublished(%s) message id = %q, want %q", tt.name, m.ID, "1")
			}
		})
	}
}

func TestParsePush(t *testing.T) {
	tests := []struct {
		name string
		body string
		want Message
	}{
		{"minimal", `{"message":{}}`, Message{}},
		{"data and attributes", `{"message":{"data":"e30=","attributes":{"a":"1","B":"2"},"messageId":"7"}}`,
			Message{Data: []byte("{}"), Attributes: map[string]string{"a": "1", "B": "2"}, ID: "7"}},
		{"nulls are absent", `{"message":{"data":null,"attributes":null,"messageId":null},"subscription":null,"deliveryAttempt":null}`, Message{}},
		{"snake case", `{"message":{"message_id":"7","publish_time":"2026-01-02T03:04:05Z","ordering_key":"t"}}`,
			Message{ID: "7", PublishTime: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), OrderingKey: "t"}},
		{"both cases agree", `{"message":{"messageId":"7","message_id":"7"}}`, Message{ID: "7"}},
		{"unknown members ignored", `{"message":{"@type":"type.googleapis.com/google.pubsub.v1.PubsubMessage","extra":[1]},"other":{}}`, Message{}},
		{"delivery attempt", `{"message":{},"deliveryAttempt":5,"subscription":"projects/p/subscriptions/s"}`,
			Message{DeliveryAttempt: 5, Subscription: "projects/p/subscriptions/s"}},
		{"publish time with offset", `{"message":{"publishTime":"2026-01-02T04:04:05.5+01:00"}}`,
			Message{PublishTime: time.Date(2026, 1, 2, 3, 4, 5, 5e8, time.UTC)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePush([]byte(tt.body))
			if err != nil {
				t.Fatalf("ParsePush(%s) = %v", tt.body, err)
			}
			if !bytes.Equal(got.Data, tt.want.Data) {
				t.Errorf("ParsePush(%s).Data = %q, want %q", tt.body, got.Data, tt.want.Data)
			}
			got.Data, tt.want.Data = nil, nil
			if len(got.Attributes) == 0 && len(tt.want.Attributes) == 0 {
				got.Attributes, tt.want.Attributes = nil, nil
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParsePush(%s) = %+v, want %+v", tt.body, got, tt.want)
			}
		})
	}
}

func TestParsePushErrors(t *testing.T) {
	tests := []struct {
		name string
		body string
		want string
	}{
		{"empty", ``, "push body: invalid JSON"},
		{"not JSON", `hello`, "push body: invalid JSON at byte 1: invalid character 'h'"},
		{"array", `[]`, "push body: must be a JSON object, got array"},
		{"trailing", `{"message":{}} {}`, "push body: invalid JSON"},
		{"invalid UTF-8", "{\"message\":{},\"x\":\"\xfe\"}", "push body: invalid UTF-8"},
		{"missing message", `{"subscription":"s"}`, `push body: member "message" is missing`},
		{"message null", `{"message":null}`, `push body: member "message" is missing`},
		{"message not object", `{"message":"x"}`, "push body: message: must be a JSON object, got string"},
		{"duplicate message", `{"message":{},"message":{"data":"e30="}}`, `push body: duplicate member "message"`},
		{"duplicate data", `{"message":{"data":"","data":"e30="}}`, `push body: message: duplicate member "data"`},
		{"data not string", `{"message":{"data":{}}}`, "push body: message.data: must be a string, got object"},
		{"bad base64", `{"message":{"data":"e30"}}`, "push body: message.data: illegal base64 data at input byte 0"},
		{"url base64", `{"message":{"data":"-_-_"}}`, "push body: message.data: illegal base64 data at input byte 0"},
		{"attributes array", `{"message":{"attributes":[]}}`, "push body: message.attributes: must be a JSON object, got array"},
		{"attribute number", `{"message":{"attributes":{"a":1}}}`, `push body: message.attributes["a"]: must be a string, got number`},
		{"attribute duplicate", `{"message":{"attributes":{"a":"1","a":"2"}}}`, `push body: message.attributes: duplicate member "a"`},
		{"messageId number", `{"message":{"messageId":7}}`, "push body: message.messageId: must be a string, got number"},
		{"messageId differs", `{"message":{"messageId":"7","message_id":"8"}}`, `push body: message.messageId "7" and message.message_id "8" differ`},
		{"messageId control", `{"message":{"messageId":"7\n"}}`, `push body: message.messageId "7\n": must not contain control characters`},
		{"bad publish time", `{"message":{"publishTime":"now"}}`, `push body: message.publishTime "now": must be an RFC 3339 timestamp`},
		{"subscription number", `{"message":{},"subscription":1}`, "push body: subscription: must be a string, got number"},
		{"negative delivery attempt", `{"message":{},"deliveryAttempt":-1}`, `push body: deliveryAttempt "-1": must be a non-negative integer below 10^9`},
		{"fractional delivery attempt", `{"message":{},"deliveryAttempt":1.5}`, `push body: deliveryAttempt "1.5"`},
		{"oversized", `{"message":{"data":"` + strings.Repeat("A", MaxPushBytes) + `"}}`, fmt.Sprintf("push body is %d bytes, limit %d", MaxPushBytes+23, MaxPushBytes)},
		{"deep nesting", `{"message":{},"x":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`, "push body: invalid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParsePush([]byte(tt.body))
			checkErr(t, fmt.Sprintf("ParsePush(%.60q)", tt.body), err, tt.want)
			if err != nil && !strings.HasPrefix(err.Error(), "event.ParsePush: ") {
				t.Errorf("ParsePush error %q does not name the operation", err)
			}
			_, _, err = DecodePush([]byte(tt.body))
			checkErr(t, fmt.Sprintf("DecodePush(%.60q)", tt.body), err, tt.want)
		})
	}
}

func TestDecodePushKeepsMessageOfInvalidEvent(t *testing.T) {
	attrs := binAttrs(map[string]string{"ce-type": "autonomics.nope.x"})
	_, m, err := DecodePush(PushBody(testData, attrs, "42"))
	checkErr(t, "DecodePush(unknown domain)", err, `type "autonomics.nope.x": unknown domain "nope"`)
	if m.ID != "42" || !reflect.DeepEqual(m.Attributes, attrs) || !bytes.Equal(m.Data, testData) {
		t.Errorf("DecodePush(unknown domain) message = %+v, want id 42 with the published data and attributes", m)
	}
}
