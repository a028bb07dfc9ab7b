package platform

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/topic"
)

// countingReader yields n bytes of 'a' and counts what was read.
type countingReader struct {
	n, read int
}

func (r *countingReader) Read(p []byte) (int, error) {
	if r.read >= r.n {
		return 0, io.EOF
	}
	k := min(len(p), r.n-r.read)
	for i := range p[:k] {
		p[i] = 'a'
	}
	r.read += k
	return k, nil
}

func TestHundredMegabytePushIsCappedBeforeReading(t *testing.T) {
	body := &countingReader{n: 100 << 20}
	r := httptest.NewRequest(http.MethodPost, "/Billing", body)
	msg, kept, err := readPush(httptest.NewRecorder(), r)
	if fault.ErrorCode(err) != fault.Invalid || !strings.Contains(err.Error(), "exceeds") {
		t.Fatalf("readPush(100 MB) = %v, want an invalid error saying the body is too large", err)
	}
	if kept != nil || msg.ID != "" {
		t.Errorf("readPush(100 MB) kept %d bytes, want none", len(kept))
	}
	if body.read > MaxRequestBytes+64<<10 {
		t.Errorf("read %d bytes of a 100 MB body, want at most about %d", body.read, MaxRequestBytes)
	}
	if strings.Contains(err.Error(), "aaaa") {
		t.Errorf("error echoes the body: %.100s", err.Error())
	}
}

func TestReadPushTakesEveryDeliveryShape(t *testing.T) {
	e := governor.Event{ID: "e1", Source: "//test", Type: "autonomics.billing.opened", Domain: governor.Billing,
		Name: "opened", Tenant: "acme", Subject: "2026-11"}
	data, attrs := event.Encode(e)
	push := event.PushBody(data, attrs, "m1")
	sub := topic.SubscriptionName("p", topic.Push(topic.Names{}.Internal(governor.Billing)))
	withSub := bytes.Replace(push, []byte(`{"message"`), []byte(`{"subscription":"`+sub+`","message"`), 1)
	tests := []struct {
		name    string
		header  http.Header
		body    []byte
		wantSub string
		wantErr string
	}{
		{name: "push body", body: push},
		{name: "push body with subscription", body: withSub, wantSub: sub},
		{name: "binary CloudEvent", header: http.Header{
			"Ce-Specversion": {"1.0"}, "Ce-Id": {"ce-1"}, "Ce-Source": {"//pubsub.googleapis.com/projects/p/topics/t"},
			"Ce-Type": {event.MessagePublishedType}, "Content-Type": {"application/json"},
		}, body: withSub, wantSub: sub},
		{name: "structured CloudEvent", header: http.Header{"Content-Type": {"application/cloudevents+json"}},
			body: []byte(`{"specversion":"1.0","id":"ce-2","source":"//pubsub.googleapis.com/projects/p/topics/t","type":"` +
				event.MessagePublishedType + `","datacontenttype":"application/json","data":` + string(withSub) + `}`), wantSub: sub},
		{name: "CloudEvent of another type", header: http.Header{
			"Ce-Specversion": {"1.0"}, "Ce-Id": {"ce-3"}, "Ce-Source": {"//x"}, "Ce-Type": {"com.example.other"},
		}, body: push, wantErr: "want " + event.MessagePublishedType},
		{name: "not JSON", body: []byte("hello"), wantErr: "push body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/Billing", bytes.NewReader(tt.body))
			for k, v := range tt.header {
				r.Header[k] = v
			}
			msg, _, err := readPush(httptest.NewRecorder(), r)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("readPush = %v, want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("readPush = %v", err)
			}
			if msg.Subscription != tt.wantSub || msg.Attributes["ce-id"] != "e1" {
				t.Errorf("readPush = subscription %q, ce-id %q; want %q, e1", msg.Subscription, msg.Attributes["ce-id"], tt.wantSub)
			}
		})
	}
}

func TestInternalSubscriptions(t *testing.T) {
	subs := InternalSubscriptions("proj", topic.Names{Prefix: "dev-"})
	if len(subs) != len(governor.Domains) {
		t.Fatalf("InternalSubscriptions = %d names, want %d", len(subs), len(governor.Domains))
	}
	if want := "projects/proj/subscriptions/dev-autonomics-customer-account-internal-push"; subs[4] != want {
		t.Errorf("InternalSubscriptions[4] = %q, want %q", subs[4], want)
	}
}
