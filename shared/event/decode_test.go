package event

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/governor"
)

const testTraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

var testData = []byte(`{"attempt": 1, "reason": "card_declined"}`)

// baseEvent is the event that binAttrs/testData and structEvent encode.
func baseEvent() governor.Event {
	return governor.Event{
		ID:            "evt-1",
		Source:        "//autonomics/test",
		Type:          "autonomics.billing.payment_failed",
		Domain:        governor.Billing,
		Name:          "payment_failed",
		Tenant:        "acme",
		Subject:       "2026-11",
		Time:          time.Date(2026, 11, 3, 10, 15, 0, 0, time.UTC),
		Data:          json.RawMessage(testData),
		CorrelationID: "root-1",
		CascadeDepth:  1,
		TraceParent:   testTraceParent,
	}
}

// binAttrs returns the binary-mode attributes of baseEvent, changed by
// set: a value of "\x00delete" removes the attribute.
func binAttrs(set map[string]string) map[string]string {
	a := map[string]string{
		"ce-specversion":   "1.0",
		"ce-id":            "evt-1",
		"ce-source":        "//autonomics/test",
		"ce-type":          "autonomics.billing.payment_failed",
		"ce-tenantid":      "acme",
		"ce-subject":       "2026-11",
		"ce-time":          "2026-11-03T10:15:00Z",
		"ce-correlationid": "root-1",
		"ce-cascadedepth":  "1",
		"ce-traceparent":   testTraceParent,
		"content-type":     "application/json",
	}
	for k, v := range set {
		if v == "\x00delete" {
			delete(a, k)
		} else {
			a[k] = v
		}
	}
	return a
}

// structEvent returns baseEvent as structured JSON, changed by set: a nil
// value removes the member, a json.RawMessage is written as is.
func structEvent(set map[string]any) []byte {
	m := map[string]any{
		"specversion":     "1.0",
		"id":              "evt-1",
		"source":          "//autonomics/test",
		"type":            "autonomics.billing.payment_failed",
		"tenantid":        "acme",
		"subject":         "2026-11",
		"time":            "2026-11-03T10:15:00Z",
		"correlationid":   "root-1",
		"cascadedepth":    1,
		"traceparent":     testTraceParent,
		"datacontenttype": "application/json",
		"data":            json.RawMessage(testData),
	}
	for k, v := range set {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	// Marshal would compact data; write members by hand to keep it exact.
	var b bytes.Buffer
	b.WriteString("{")
	first := true
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if !first {
			b.WriteString(",")
		}
		first = false
		kb, _ := json.Marshal(k)
		b.Write(kb)
		b.WriteString(":")
		if raw, ok := m[k].(json.RawMessage); ok {
			b.Write(raw)
			continue
		}
		vb, err := json.Marshal(m[k])
		if err != nil {
			panic(err)
		}
		b.Write(vb)
	}
	b.WriteString("}")
	return b.Bytes()
}

var structuredCT = map[string]string{"content-type": "application/cloudevents+json; charset=utf-8"}

// equalEvent reports whether two events are equal, comparing times as
// instants and nil data equal to empty data.
func equalEvent(a, b governor.Event) bool {
	da, db := a.Data, b.Data
	a.Data, b.Data = nil, nil
	ta, tb := a.Time, b.Time
	a.Time, b.Time = time.Time{}, time.Time{}
	return reflect.DeepEqual(a, b) && ta.Equal(tb) && bytes.Equal(da, db)
}

func fmtEvent(e governor.Event) string {
	return fmt.Sprintf("%+v data=%q", e, e.Data)
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name string
		msg  Message
		want func(*governor.Event)
	}{
		{"binary", Message{Data: testData, Attributes: binAttrs(nil)}, nil},
		{"binary without optional attributes", Message{Data: testData, Attributes: binAttrs(map[string]string{
			"ce-subject": "\x00delete", "ce-time": "\x00delete", "ce-correlationid": "\x00delete",
			"ce-cascadedepth": "\x00delete", "ce-traceparent": "\x00delete", "content-type": "\x00delete",
		})}, func(e *governor.Event) {
			e.Subject, e.Time, e.CorrelationID, e.CascadeDepth, e.TraceParent = governor.DefaultSubject, time.Time{}, "", 0, ""
		}},
		{"binary broadcast subject", Message{Data: testData, Attributes: binAttrs(map[string]string{"ce-subject": "*"})},
			func(e *governor.Event) { e.Subject = "*" }},
		{"binary timeout event", Message{Data: testData, Attributes: binAttrs(map[string]string{"ce-type": "autonomics.subscription.timeout.grace"})},
			func(e *governor.Event) {
				e.Type, e.Domain, e.Name = "autonomics.subscription.timeout.grace", governor.Subscription, "timeout.grace"
			}},
		{"binary unknown event name is the machine's business", Message{Data: testData, Attributes: binAttrs(map[string]string{"ce-type": "autonomics.multi_tenant.no_such_event_9"})},
			func(e *governor.Event) {
				e.Type, e.Domain, e.Name = "autonomics.multi_tenant.no_such_event_9", governor.MultiTenant, "no_such_event_9"
			}},
		{"binary empty data", Message{Attributes: binAttrs(nil)}, func(e *governor.Event) { e.Data = nil }},
		{"binary blank data", Message{Data: []byte(" \n"), Attributes: binAttrs(nil)}, func(e *governor.Event) { e.Data = nil }},
		{"binary data bytes kept exactly", Message{Data: []byte("\r\n{ \"a\" :1,\n\"b\":\"\\u00e9\"}\n"), Attributes: binAttrs(nil)},
			func(e *governor.Event) { e.Data = json.RawMessage("{ \"a\" :1,\n\"b\":\"\\u00e9\"}") }},
		{"structured data bytes kept exactly", Message{Data: structEvent(map[string]any{"data": json.RawMessage("{ \"a\" :1,\n\"b\":\"\\u00e9\"}")}), Attributes: structuredCT},
			func(e *governor.Event) { e.Data = json.RawMessage("{ \"a\" :1,\n\"b\":\"\\u00e9\"}") }},
		{"binary attribute names are case-insensitive", Message{Data: testData, Attributes: map[string]string{
			"CE-SpecVersion": "1.0", "Ce-Id": "evt-1", "ce-source": "//autonomics/test", "ce-type": "autonomics.billing.payment_failed",
			"ce-TenantID": "acme", "Content-Type": "application/json; charset=UTF-8",
		}}, func(e *governor.Event) {
			e.Subject, e.Time, e.CorrelationID, e.CascadeDepth, e.TraceParent = governor.DefaultSubject, time.Time{}, "", 0, ""
		}},
		{"binary ce-datacontenttype", Message{Data: testData, Attributes: binAttrs(map[string]string{"content-type": "\x00delete", "ce-datacontenttype": "application/json"})}, nil},
		{"binary unknown extensions and attributes ignored", Message{Data: testData, Attributes: binAttrs(map[string]string{"ce-partition": "7", "googclient_schemaencoding": "JSON"})}, nil},
		{"binary fractional time with offset", Message{Data: testData, Attributes: binAttrs(map[string]string{"ce-time": "2026-11-03T11:15:00.5+01:00"})},
			func(e *governor.Event) { e.Time = time.Date(2026, 11, 3, 10, 15, 0, 5e8, time.UTC) }},
		{"binary invalid traceparent ignored", Message{Data: testData, Attributes: binAttrs(map[string]string{"ce-traceparent": "garbage"})},
			func(e *governor.Event) { e.TraceParent = "" }},
		{"binary cascade depth at the limit", Message{Data: testData, Attributes: binAttrs(map[string]string{"ce-cascadedepth": "64"})},
			func(e *governor.Event) { e.CascadeDepth = 64 }},
		{"binary causation and unicode id", Message{Data: testData, Attributes: binAttrs(map[string]string{"ce-causationid": "r-1", "ce-id": "évènement 1"})},
			func(e *governor.Event) { e.CausationID, e.ID = "r-1", "évènement 1" }},
		{"binary urn source", Message{Data: testData, Attributes: binAttrs(map[string]string{"ce-source": "urn:autonomics:monitor"})},
			func(e *governor.Event) { e.Source = "urn:autonomics:monitor" }},

		{"structured", Message{Data: structEvent(nil), Attributes: structuredCT}, nil},
		{"structured detected without content-type", Message{Data: structEvent(nil)}, nil},
		{"structured detected with content-type application/json", Message{Data: structEvent(nil), Attributes: map[string]string{"content-type": "application/json"}}, nil},
		{"structured cascadedepth as string", Message{Data: structEvent(map[string]any{"cascadedepth": "3"}), Attributes: structuredCT},
			func(e *governor.Event) { e.CascadeDepth = 3 }},
		{"structured data_base64", Message{Data: structEvent(map[string]any{"data": nil, "data_base64": base64.StdEncoding.EncodeToString([]byte(`{"x":[1,2]}`))}), Attributes: structuredCT},
			func(e *governor.Event) { e.Data = json.RawMessage(`{"x":[1,2]}`) }},
		{"structured empty data_base64", Message{Data: structEvent(map[string]any{"data": nil, "data_base64": ""}), Attributes: structuredCT},
			func(e *governor.Event) { e.Data = nil }},
		{"structured null data", Message{Data: structEvent(map[string]any{"data": json.RawMessage("null")}), Attributes: structuredCT},
			func(e *governor.Event) { e.Data = nil }},
		{"structured no data, null subject", Message{Data: structEvent(map[string]any{"data": nil, "datacontenttype": nil, "subject": json.RawMessage("null")}), Attributes: structuredCT},
			func(e *governor.Event) { e.Data, e.Subject = nil, governor.DefaultSubject }},
		{"structured scalar extensions", Message{Data: structEvent(map[string]any{"priority": 3, "sampled": true, "region": "eu"}), Attributes: structuredCT}, nil},
		{"structured with agreeing ce- attributes", Message{Data: structEvent(nil), Attributes: map[string]string{
			"content-type": "application/cloudevents+json", "ce-tenantid": "acme", "ce-type": "autonomics.billing.payment_failed",
			"ce-cascadedepth": "1", "ce-time": "2026-11-03T11:15:00+01:00",
		}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := baseEvent()
			if tt.want != nil {
				tt.want(&want)
			}
			got, err := Decode(tt.msg)
			if err != nil {
				t.Fatalf("Decode(%q, %v) = %v, want nil error", tt.msg.Data, tt.msg.Attributes, err)
			}
			if !equalEvent(got, want) {
				t.Errorf("Decode(%q, %v) =\n%s\nwant\n%s", tt.msg.Data, tt.msg.Attributes, fmtEvent(got), fmtEvent(want))
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	del := "\x00delete"
	bin := func(set map[string]string) Message { return Message{Data: testData, Attributes: binAttrs(set)} }
	st := func(set map[string]any) Message { return Message{Data: structEvent(set), Attributes: structuredCT} }
	manyAttrs := binAttrs(nil)
	for i := range MaxAttributes {
		manyAttrs[fmt.Sprintf("x-%d", i)] = "v"
	}
	bigAttrs := binAttrs(nil)
	for i := range 80 {
		bigAttrs[fmt.Sprintf("x-%d", i)] = strings.Repeat("v", 1000)
	}
	bigData := []byte(`{"pad":"` + strings.Repeat("p", MaxDataBytes) + `"}`)
	tests := []struct {
		name string
		msg  Message
		want string // the error message, or a part of it
	}{
		// Required attributes, binary mode.
		{"binary missing specversion", bin(map[string]string{"ce-specversion": del}), "binary mode: required attribute ce-specversion is missing"},
		{"binary missing id", bin(map[string]string{"ce-id": del}), "binary mode: required attribute ce-id is missing"},
		{"binary missing source", bin(map[string]string{"ce-source": del}), "binary mode: required attribute ce-source is missing"},
		{"binary missing type", bin(map[string]string{"ce-type": del}), "binary mode: required attribute ce-type is missing"},
		{"binary missing tenantid", bin(map[string]string{"ce-tenantid": del}), "binary mode: required attribute ce-tenantid is missing"},
		{"no event at all", Message{Data: []byte(`{"a":1}`)}, "message carries no CloudEvent"},
		{"no event, empty message", Message{}, "message carries no CloudEvent"},
		{"structured-looking data with text content-type", Message{Data: structEvent(nil), Attributes: map[string]string{"content-type": "text/plain"}}, "message carries no CloudEvent"},

		// Required attributes, structured mode.
		{"structured missing specversion", st(map[string]any{"specversion": nil}), "structured mode: required attribute specversion is missing"},
		{"structured missing id", st(map[string]any{"id": nil}), "structured mode: required attribute id is missing"},
		{"structured null id", st(map[string]any{"id": json.RawMessage("null")}), "structured mode: required attribute id is missing"},
		{"structured missing source", st(map[string]any{"source": nil}), "structured mode: required attribute source is missing"},
		{"structured missing type", st(map[string]any{"type": nil}), "structured mode: required attribute type is missing"},
		{"structured missing tenantid", st(map[string]any{"tenantid": nil}), "structured mode: required attribute tenantid is missing"},

		// specversion, type.
		{"binary specversion 0.3", bin(map[string]string{"ce-specversion": "0.3"}), `specversion "0.3": must be "1.0"`},
		{"structured specversion 1", st(map[string]any{"specversion": "1"}), `specversion "1": must be "1.0"`},
		{"structured specversion number", st(map[string]any{"specversion": 1.0}), "structured mode: specversion must be a string, got number"},
		{"unknown domain", bin(map[string]string{"ce-type": "autonomics.payroll.paid"}), `type "autonomics.payroll.paid": unknown domain "payroll"`},
		{"foreign type", bin(map[string]string{"ce-type": "com.example.billing.paid"}), `type "com.example.billing.paid": must have the form autonomics.<domain>.<event>`},
		{"type without event", bin(map[string]string{"ce-type": "autonomics.billing"}), "must have the form autonomics.<domain>.<event>"},
		{"type with empty event", bin(map[string]string{"ce-type": "autonomics.billing."}), `event name "" must match [a-z0-9_]+`},
		{"type with upper case event", bin(map[string]string{"ce-type": "autonomics.billing.Paid"}), `event name "Paid" must match`},
		{"type with dotted event", bin(map[string]string{"ce-type": "autonomics.billing.a.b"}), `event name "a.b" must match`},
		{"type with empty timeout", bin(map[string]string{"ce-type": "autonomics.billing.timeout."}), `event name "timeout." must match`},
		{"type with double timeout", bin(map[string]string{"ce-type": "autonomics.billing.timeout.timeout.x"}), `event name "timeout.timeout.x" must match`},
		{"type with dash", bin(map[string]string{"ce-type": "autonomics.billing.payment-failed"}), "must match [a-z0-9_]+"},
		{"type upper domain", bin(map[string]string{"ce-type": "autonomics.Billing.paid"}), `unknown domain "Billing"`},

		// Tenants and subjects.
		{"tenant ../x", bin(map[string]string{"ce-tenantid": "../x"}), `tenantid "../x": must match [A-Za-z0-9._-]{1,128}`},
		{"tenant __x__", bin(map[string]string{"ce-tenantid": "__x__"}), `tenantid "__x__": must not start with "__"`},
		{"tenant .", bin(map[string]string{"ce-tenantid": "."}), `tenantid ".": must not be "." or ".."`},
		{"tenant ..", st(map[string]any{"tenantid": ".."}), `tenantid "..": must not be "." or ".."`},
		{"tenant 10 KB", st(map[string]any{"tenantid": strings.Repeat("a", 10<<10)}), `... (10240 bytes): must match [A-Za-z0-9._-]{1,128}, got 10240 characters`},
		{"tenant 10 KB binary", bin(map[string]string{"ce-tenantid": strings.Repeat("a", 10<<10)}), `attribute "ce-tenantid": value is 10240 bytes, limit 1024`},
		{"tenant non-ASCII", bin(map[string]string{"ce-tenantid": "zürich"}), `tenantid "zürich": must match`},
		{"tenant empty", bin(map[string]string{"ce-tenantid": ""}), `tenantid "": must match [A-Za-z0-9._-]{1,128}, got 0 characters`},
		{"tenant number", st(map[string]any{"tenantid": 7}), "structured mode: tenantid must be a string, got number"},
		{"subject empty", bin(map[string]string{"ce-subject": ""}), `subject "": must be "*" or match [A-Za-z0-9._-]{1,128}`},
		{"subject path", bin(map[string]string{"ce-subject": "a/b"}), `subject "a/b": must be "*" or match`},
		{"subject ..", st(map[string]any{"subject": ".."}), `subject "..": must not be "." or ".."`},
		{"subject __", bin(map[string]string{"ce-subject": "__all"}), `subject "__all": must not start with "__"`},
		{"subject glob", bin(map[string]string{"ce-subject": "a*"}), `subject "a*": must be "*" or match`},

		// id, source, other attributes.
		{"id blank", bin(map[string]string{"ce-id": "  "}), `id "  ": must not be empty or blank`},
		{"id control character", bin(map[string]string{"ce-id": "a\nb"}), `id "a\nb": must not contain control characters`},
		{"id with surrounding space", bin(map[string]string{"ce-id": " a"}), `id " a": must not start or end with white space`},
		{"correlationid with trailing space", st(map[string]any{"correlationid": "a\u00a0"}), `correlationid "a\u00a0": must not start or end with white space`},
		{"id too long", st(map[string]any{"id": strings.Repeat("i", 257)}), "is 257 bytes, limit 256"},
		{"source not a URI", bin(map[string]string{"ce-source": "a b"}), `source "a b": must be a URI-reference (RFC 3986) in normalized form`},
		{"source bad escape", bin(map[string]string{"ce-source": "/%zz"}), `source "/%zz": must be a URI-reference`},
		{"source empty", bin(map[string]string{"ce-source": ""}), `source "": must not be empty or blank`},
		{"time not RFC 3339", bin(map[string]string{"ce-time": "yesterday"}), `time "yesterday": must be an RFC 3339 timestamp`},
		{"time beyond 9999 in UTC", bin(map[string]string{"ce-time": "9999-12-31T23:00:00-02:00"}), `time "9999-12-31T23:00:00-02:00": must be between years 0000 and 9999 in UTC`},
		{"time before 0000 in UTC", st(map[string]any{"time": "0000-01-01T00:30:00+01:00"}), "must be between years 0000 and 9999 in UTC"},
		{"datacontenttype text", bin(map[string]string{"content-type": "text/plain"}), `datacontenttype "text/plain": must be application/json`},
		{"datacontenttype charset", bin(map[string]string{"content-type": "application/json; charset=latin1"}), "charset must be utf-8"},
		{"datacontenttype garbage", bin(map[string]string{"content-type": "/"}), `attribute content-type "/": not a media type`},
		{"content-type and ce-datacontenttype differ", bin(map[string]string{"ce-datacontenttype": "text/plain"}), "binary mode: attributes content-type \"application/json\" and ce-datacontenttype \"text/plain\" differ"},
		{"dataschema relative", bin(map[string]string{"ce-dataschema": "schema.json"}), `dataschema "schema.json": must be an absolute URI`},
		{"correlationid too long", bin(map[string]string{"ce-correlationid": strings.Repeat("c", 300)}), "correlationid \"ccc"},
		{"causationid blank", st(map[string]any{"causationid": ""}), `causationid "": must not be empty or blank`},

		// cascadedepth.
		{"cascadedepth negative", bin(map[string]string{"ce-cascadedepth": "-1"}), `cascadedepth "-1": must be a non-negative integer`},
		{"cascadedepth over limit", bin(map[string]string{"ce-cascadedepth": "65"}), `cascadedepth "65": must be at most 64`},
		{"cascadedepth huge", bin(map[string]string{"ce-cascadedepth": "99999999999999999999999"}), "must be at most 64"},
		{"cascadedepth text", bin(map[string]string{"ce-cascadedepth": "two"}), `cascadedepth "two": must be a non-negative integer`},
		{"cascadedepth fraction", st(map[string]any{"cascadedepth": json.RawMessage("1.0")}), `cascadedepth "1.0": must be a non-negative integer`},
		{"cascadedepth exponent", st(map[string]any{"cascadedepth": json.RawMessage("1e1")}), `cascadedepth "1e1": must be a non-negative integer`},
		{"cascadedepth bool", st(map[string]any{"cascadedepth": true}), `cascadedepth "true": must be a non-negative integer`},

		// Data.
		{"binary data array", Message{Data: []byte(`[1]`), Attributes: binAttrs(nil)}, "data must be a JSON object, got array"},
		{"binary data string", Message{Data: []byte(`"x"`), Attributes: binAttrs(nil)}, "data must be a JSON object, got string"},
		{"binary data number", Message{Data: []byte(`42`), Attributes: binAttrs(nil)}, "data must be a JSON object, got number"},
		{"binary data invalid JSON", Message{Data: []byte(`{"a":}`), Attributes: binAttrs(nil)}, "data: invalid JSON at byte 6: invalid character '}'"},
		{"binary data two objects", Message{Data: []byte(`{}{}`), Attributes: binAttrs(nil)}, "data: invalid JSON"},
		{"binary data invalid UTF-8", Message{Data: []byte("{\"a\":\"\xff\"}"), Attributes: binAttrs(nil)}, "data: invalid UTF-8"},
		{"binary data too large", Message{Data: bigData, Attributes: binAttrs(nil)}, "data is 65546 bytes, limit 65536"},
		{"structured data string", st(map[string]any{"data": "{}"}), "structured mode: data must be a JSON object, got string"},
		{"structured data array", st(map[string]any{"data": []int{1}}), "structured mode: data must be a JSON object, got array"},
		{"structured data and data_base64", st(map[string]any{"data_base64": "e30="}), "structured mode: data and data_base64 are mutually exclusive"},
		{"structured bad base64", st(map[string]any{"data": nil, "data_base64": "e30"}), "structured mode: data_base64: illegal base64 data at input byte 0"},
		{"structured data_base64 not object", st(map[string]any{"data": nil, "data_base64": base64.StdEncoding.EncodeToString([]byte("[]"))}), "data must be a JSON object, got array"},
		{"structured data_base64 invalid UTF-8", st(map[string]any{"data": nil, "data_base64": base64.StdEncoding.EncodeToString([]byte("{\"\xc3\":1}"))}), "data: invalid UTF-8"},
		{"structured data_base64 number", st(map[string]any{"data": nil, "data_base64": 5}), "structured mode: data_base64: must be a string, got number"},
		{"structured data too large", st(map[string]any{"data": json.RawMessage(bigData)}), "data is 65546 bytes, limit 65536"},
		{"structured datacontenttype xml", st(map[string]any{"datacontenttype": "application/xml"}), `datacontenttype "application/xml": must be application/json`},

		// Structured event JSON.
		{"structured not JSON", Message{Data: []byte("{nope"), Attributes: structuredCT}, "structured mode: event: invalid JSON at byte 2: invalid character 'n'"},
		{"structured array", Message{Data: []byte("[]"), Attributes: structuredCT}, "structured mode: event: must be a JSON object, got array"},
		{"structured empty", Message{Attributes: structuredCT}, "structured mode: event: invalid JSON"},
		{"structured trailing bytes", Message{Data: append(structEvent(nil), " x"...), Attributes: structuredCT}, "structured mode: event: invalid JSON"},
		{"structured invalid UTF-8", Message{Data: append(structEvent(nil)[:1], "\"x\xff\":1,"+string(structEvent(nil)[1:])...), Attributes: structuredCT}, "structured mode: event: invalid UTF-8"},
		{"structured duplicate member", Message{Data: []byte(`{"specversion":"1.0","id":"a","id":"b"}`), Attributes: structuredCT}, `structured mode: event: duplicate member "id"`},
		{"structured escaped duplicate member", Message{Data: []byte(`{"specversion":"1.0","id":"a","\u0069d":"b"}`), Attributes: structuredCT}, `structured mode: event: duplicate member "id"`},
		{"structured upper-case member", st(map[string]any{"ID": "x"}), `structured mode: member "ID": not a CloudEvents attribute name`},
		{"structured object extension", st(map[string]any{"meta": map[string]int{"a": 1}}), "structured mode: meta must be a string, number or boolean, got object"},
		{"structured long extension", st(map[string]any{"note": strings.Repeat("n", 2000)}), "note: value is 2000 bytes, limit 1024"},
		{"structured avro", Message{Data: structEvent(nil), Attributes: map[string]string{"content-type": "application/cloudevents+avro"}}, "unsupported event format, want application/cloudevents+json"},
		{"structured batch", Message{Data: []byte("[]"), Attributes: map[string]string{"content-type": "application/cloudevents-batch+json"}}, "unsupported event format"},
		{"structured charset", Message{Data: structEvent(nil), Attributes: map[string]string{"content-type": "application/cloudevents+json; charset=latin1"}}, "charset must be utf-8"},
		{"structured with differing ce- attribute", Message{Data: structEvent(nil), Attributes: map[string]string{"content-type": "application/cloudevents+json", "ce-tenantid": "other"}},
			`structured mode: attribute "ce-tenantid" "other" differs from the event's tenantid "acme"`},
		{"structured with ce- attribute not in event", Message{Data: structEvent(nil), Attributes: map[string]string{"content-type": "application/cloudevents+json", "ce-causationid": "r"}},
			`structured mode: attribute "ce-causationid" is not in the event`},

		// Attributes and sizes.
		{"binary attribute name not CloudEvents", bin(map[string]string{"ce-trace_id": "x"}), `binary mode: attribute "ce-trace_id": not a CloudEvents attribute name`},
		{"binary ce-data", bin(map[string]string{"ce-data": "{}"}), `binary mode: attribute "ce-data": not a CloudEvents attribute name`},
		{"attributes differing in case", bin(map[string]string{"CE-ID": "evt-2"}), `attributes "CE-ID" and "ce-id" differ only in case`},
		{"attribute empty name", bin(map[string]string{"": "x"}), "attribute with an empty name"},
		{"attribute name too long", bin(map[string]string{strings.Repeat("k", 257): "x"}), "is 257 bytes, limit 256"},
		{"attribute invalid UTF-8", bin(map[string]string{"ce-id": "a\xffb"}), `attribute "ce-id": value is invalid UTF-8`},
		{"attribute name invalid UTF-8", bin(map[string]string{"x\xff": "v"}), `attribute name "x\xff": invalid UTF-8`},
		{"too many attributes", Message{Data: testData, Attributes: manyAttrs}, "message has 111 attributes, limit 100"},
		{"attributes too large", Message{Data: bytes.Repeat([]byte(" "), 200<<10), Attributes: bigAttrs}, "with attributes, limit 262144"},
		{"message too large", Message{Data: bytes.Repeat([]byte(" "), MaxMessageBytes+1), Attributes: binAttrs(nil)}, "message data is 262145 bytes, limit 262144"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode(tt.msg)
			checkErr(t, fmt.Sprintf("Decode(%.80q)", tt.msg.Data), err, tt.want)
			if err == nil {
				t.Errorf("Decode returned %s", fmtEvent(got))
			}
			if err != nil && !strings.HasPrefix(err.Error(), "event.Decode: ") {
				t.Errorf("Decode error %q does not name the operation", err)
			}
		})
	}
}

func TestDecodeErrorMessage(t *testing.T) {
	_, err := Decode(Message{Data: testData, Attributes: binAttrs(map[string]string{"ce-tenantid": "../x"})})
	want := `event.Decode: tenantid "../x": must match [A-Za-z0-9._-]{1,128}`
	if err == nil || err.Error() != want {
		t.Errorf("Decode(tenant ../x) = %v, want %s", err, want)
	}
}
