package deadletter_test

import (
	"fmt"
	"maps"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/autonomics/autonomics/shared/deadletter"
	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/fault"
)

func TestNew(t *testing.T) {
	long := strings.Repeat("é", deadletter.MaxReason) // 2 bytes a rune
	tests := []struct {
		name       string
		m          event.Message
		reason     string
		wantReason string
		wantID     bool
	}{
		{name: "short reason, with id", m: event.Message{ID: "m-1", Data: []byte("x"), Attributes: map[string]string{"ce-id": "e-1"}},
			reason: "bad data", wantReason: "bad data", wantID: true},
		{name: "no id", m: event.Message{Data: []byte("x")}, reason: "bad data", wantReason: "bad data"},
		{name: "reason at the bound", m: event.Message{ID: "m-2"},
			reason: strings.Repeat("r", deadletter.MaxReason), wantReason: strings.Repeat("r", deadletter.MaxReason), wantID: true},
		{name: "reason over the bound", m: event.Message{ID: "m-3"},
			reason: strings.Repeat("r", deadletter.MaxReason+1), wantReason: strings.Repeat("r", deadletter.MaxReason-len("…")) + "…", wantID: true},
		{name: "multi-byte reason over the bound", m: event.Message{ID: "m-4"},
			reason: long, wantReason: long[:deadletter.MaxReason-len("…")-1] + "…", wantID: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := maps.Clone(tt.m.Attributes)
			got := deadletter.New("t-dead-letter", tt.m, "billing", fault.Invalid, tt.reason)
			if got.Topic != "t-dead-letter" || string(got.Data) != string(tt.m.Data) || got.OrderingKey != "" {
				t.Errorf("New() = topic %q, data %q, key %q; want t-dead-letter, %q, none", got.Topic, got.Data, got.OrderingKey, tt.m.Data)
			}
			a := got.Attributes
			if r := a[deadletter.AttrReason]; r != tt.wantReason || len(r) > deadletter.MaxReason || !utf8.ValidString(r) {
				t.Errorf("New() reason = %q (%d bytes), want %q", r, len(r), tt.wantReason)
			}
			if a[deadletter.AttrCode] != "invalid" || a[deadletter.AttrDomain] != "billing" {
				t.Errorf("New() code, domain = %q, %q; want invalid, billing", a[deadletter.AttrCode], a[deadletter.AttrDomain])
			}
			if id, ok := a[deadletter.AttrOriginalID]; ok != tt.wantID || (ok && id != tt.m.ID) {
				t.Errorf("New() original id = %q, %v; want %q, %v", id, ok, tt.m.ID, tt.wantID)
			}
			for k, v := range tt.m.Attributes {
				if a[k] != v {
					t.Errorf("New() attribute %s = %q, want the original's %q", k, a[k], v)
				}
			}
			a["added"] = "by the caller"
			if !maps.Equal(tt.m.Attributes, before) {
				t.Errorf("New() shares its attributes with the original message: %v", tt.m.Attributes)
			}
		})
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name  string
		attrs map[string]string
		want  deadletter.Letter
	}{
		{
			name: "New's attributes",
			attrs: deadletter.New("t", event.Message{ID: "m-1", Attributes: map[string]string{"ce-id": "e-1", "ce-type": "x"}},
				"billing", fault.Invalid, "bad data").Attributes,
			want: deadletter.Letter{Reason: "bad data", Code: fault.Invalid, Domain: "billing", OriginalID: "m-1",
				Attributes: map[string]string{"ce-id": "e-1", "ce-type": "x"}},
		},
		{
			name:  "truncated",
			attrs: map[string]string{deadletter.AttrReason: "too big", deadletter.AttrDomain: "marketplace", deadletter.AttrTruncated: "65536", "k": "v"},
			want:  deadletter.Letter{Reason: "too big", Domain: "marketplace", Truncated: true, Attributes: map[string]string{"k": "v"}},
		},
		{
			name: "forwarded by Pub/Sub",
			attrs: map[string]string{deadletter.AttrPubSubSourceSubscription: "projects/p/subscriptions/s",
				"CloudPubSubDeadLetterSourceDeliveryCount": "5", "ce-id": "e-1"},
			want: deadletter.Letter{Reason: "delivery attempts exhausted on subscription projects/p/subscriptions/s", Domain: deadletter.DomainPubSub,
				SourceSubscription: "projects/p/subscriptions/s", Attributes: map[string]string{"ce-id": "e-1"}},
		},
		{
			name:  "forwarded by Pub/Sub after a component's dead-lettering",
			attrs: map[string]string{deadletter.AttrPubSubSourceSubscription: "s", deadletter.AttrDomain: "monitor", deadletter.AttrReason: "bad receipt"},
			want:  deadletter.Letter{Reason: "bad receipt", Domain: "monitor", SourceSubscription: "s", Attributes: map[string]string{}},
		},
		{
			name:  "no attributes",
			attrs: nil,
			want:  deadletter.Letter{Attributes: map[string]string{}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := deadletter.Parse(tt.attrs); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse(%v) = %+v, want %+v", tt.attrs, got, tt.want)
			}
		})
	}
}

func ExampleNew() {
	m := event.Message{ID: "m-1", Data: []byte(`{"specversion":"1.0"}`), Attributes: map[string]string{"ce-id": "e-1"}}
	dl := deadletter.New("autonomics-dead-letter", m, "billing", fault.Invalid, "data: unknown field \"amount\"")
	l := deadletter.Parse(dl.Attributes)
	fmt.Println(dl.Topic)
	fmt.Println(l.Domain, l.Code, l.OriginalID)
	fmt.Println(l.Reason)
	fmt.Println(l.Attributes)
	// Output:
	// autonomics-dead-letter
	// billing invalid m-1
	// data: unknown field "amount"
	// map[ce-id:e-1]
}
