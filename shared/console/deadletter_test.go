package console_test

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/console"
	"github.com/autonomics/autonomics/shared/deadletter"
	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/store"
)

// outside is an event from outside, as a producer publishes it.
func outside(tenant string, name governor.EventName, data string) (store.Message, governor.Event) {
	ev := governor.Event{ID: "evt-" + string(name), Source: "//billing.example", Type: governor.TypeOf(governor.CustomerAccount, name),
		Tenant: tenant, Subject: "default", Data: []byte(data), Time: epoch}
	raw, attrs := event.Encode(ev)
	return store.Message{Topic: topics.Domain(governor.CustomerAccount), Data: raw, Attributes: attrs}, ev
}

// deadLettered runs m through the engine, which must dead-letter it, and
// returns the dead-letter message.
func (f *fixture) deadLettered(m store.Message) store.Message {
	f.t.Helper()
	before := len(f.pub.On(topics.DeadLetter()))
	if err := f.engine.HandleMessage(f.t.Context(), governor.CustomerAccount, event.Message{ID: "orig-1", Data: m.Data, Attributes: m.Attributes}); err != nil {
		f.t.Fatal(err)
	}
	dls := f.pub.On(topics.DeadLetter())
	if len(dls) != before+1 {
		f.t.Fatalf("the engine did not dead-letter the message")
	}
	return dls[len(dls)-1]
}

// push delivers a dead-letter message to the console with message id id.
func (f *fixture) push(id string, m store.Message) (int, string) {
	return f.do("POST", console.PushPath, string(event.PushBody(m.Data, m.Attributes, id)))
}

func TestPushRecordsADeadLetterOnce(t *testing.T) {
	f := newFixture(t, nil)
	dl := f.deadLettered(func() store.Message {
		m, _ := outside("acme", "rejected", `{"reason":5}`)
		return m
	}())
	for i, dup := range []bool{false, true} {
		code, body := f.push("100", dl)
		v := decode[map[string]any](t, body)
		if code != 200 || v["duplicate"] != dup {
			t.Fatalf("push %d = %d %s, want duplicate %v", i, code, body, dup)
		}
	}
	code, body := f.do("GET", "/api/v1/deadletters", "")
	p := decode[console.DeadLetterPage](t, body)
	if code != 200 || len(p.DeadLetters) != 1 {
		t.Fatalf("deadletters = %d %s", code, body)
	}
	d := p.DeadLetters[0]
	if d.ID != "100" || d.Code != "invalid" || d.Domain != "customer_account" || d.Type != "autonomics.customer_account.rejected" ||
		d.Tenant != "acme" || !strings.Contains(d.Reason, "reason") || !d.Replayable || string(d.Data) != `{"reason":5}` || !d.ReceivedAt.Equal(epoch) {
		t.Errorf("dead letter = %+v", d)
	}
	for _, want := range []string{`"data_base64":"eyJyZWFzb24iOjV9"`, `"replayable":true`, `"received_at":"2026-06-01T10:00:00Z"`} {
		if !strings.Contains(body, want) {
			t.Errorf("listing %s lacks %s", body, want)
		}
	}
}

func TestReplayRepublishesTheOriginalToTheDomainTopic(t *testing.T) {
	f := newFixture(t, nil)
	orig, _ := outside("acme", "rejected", `{"reason":5}`)
	dl := f.deadLettered(orig)
	if code, body := f.push("100", dl); code != 200 {
		t.Fatalf("push = %d %s", code, body)
	}
	f.clock.Advance(time.Minute)
	code, body := f.do("POST", "/api/v1/deadletters/100:replay", "", "Authorization", bearer("alice@example.com"))
	v := decode[map[string]string](t, body)
	if code != 200 || v["published"] != "evt-rejected" {
		t.Fatalf("replay = %d %s", code, body)
	}
	msgs := f.pub.On(topics.Domain(governor.CustomerAccount))
	if len(msgs) != 1 {
		t.Fatalf("%d messages on the domain topic, want 1", len(msgs))
	}
	m := msgs[0]
	if !maps.Equal(m.Attributes, orig.Attributes) || string(m.Data) != string(orig.Data) || m.OrderingKey != "acme" {
		t.Errorf("replayed %+v, want the original %+v with ordering key acme", m, orig)
	}
	d, err := f.console.DeadLetter(t.Context(), "100")
	if err != nil || d.Replay == nil || d.Replay.By != "alice@example.com" || !d.Replay.At.Equal(epoch.Add(time.Minute)) || d.Replay.MessageID != "evt-rejected" {
		t.Errorf("replay record = %+v (%v)", d.Replay, err)
	}
	// The replay goes through the engine's validation again: still invalid,
	// dead-lettered again.
	f.deadLettered(m)
}

func TestReplayAnswersTheBrokersMessageID(t *testing.T) {
	p := &idPublisher{}
	f := newFixture(t, func(o *console.Options) { o.Publisher = p })
	orig, _ := outside("acme", "verified", "")
	orig.Attributes[deadletter.AttrDomain] = "customer_account"
	if code, body := f.push("7", orig); code != 200 {
		t.Fatal(code, body)
	}
	code, body := f.do("POST", "/api/v1/deadletters/7:replay", "")
	if code != 200 || !strings.Contains(body, `"published":"broker-1"`) {
		t.Errorf("replay = %d %s, want the broker's id", code, body)
	}
}

// idPublisher answers the broker's message ids.
type idPublisher struct{ n int }

func (p *idPublisher) Publish(ctx context.Context, m store.Message) error { return nil }

func (p *idPublisher) PublishID(ctx context.Context, m store.Message) (string, error) {
	p.n++
	return fmt.Sprintf("broker-%d", p.n), nil
}

func TestForgedReplayOfAnInternalEventIsRefused(t *testing.T) {
	f := newFixture(t, nil)
	tests := []struct {
		name   string
		mutate func(attrs map[string]string)
		reason string
	}{
		{"governor source", func(a map[string]string) { a["ce-source"] = "autonomics/governor/billing" }, "internal topic"},
		{"timer source", func(a map[string]string) { a["ce-source"] = "AUTONOMICS/timer" }, "internal topic"},
		{"cascade extensions", func(a map[string]string) { a["ce-correlationid"] = "c1"; a["ce-causationid"] = "x" }, "internal topic"},
		{"internal subscription", func(a map[string]string) {
			delete(a, deadletter.AttrDomain)
			a[console.AttrPubSubSourceSubscription] = "projects/p/subscriptions/" + topics.Internal(governor.CustomerAccount) + "-push"
		}, "internal topic"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _ := outside("acme", "verified", "")
			m.Attributes[deadletter.AttrDomain] = "customer_account"
			tt.mutate(m.Attributes)
			id := fmt.Sprintf("forged-%d", i)
			if code, body := f.push(id, m); code != 200 || !strings.Contains(body, `"duplicate":false`) {
				t.Fatalf("push = %d %s", code, body)
			}
			d, _ := f.console.DeadLetter(t.Context(), id)
			if d.Replayable || !strings.Contains(d.Refusal, tt.reason) {
				t.Errorf("recorded replayable %v, refusal %q; want refused for %q", d.Replayable, d.Refusal, tt.reason)
			}
			code, body := f.do("POST", "/api/v1/deadletters/"+id+":replay", "")
			if code != 409 || !strings.Contains(body, tt.reason) {
				t.Errorf("replay = %d %s, want 409 saying %q", code, body, tt.reason)
			}
		})
	}
	if n := len(f.pub.On(topics.Domain(governor.CustomerAccount))) + len(f.pub.On(topics.Internal(governor.CustomerAccount))); n != 0 {
		t.Errorf("%d forged replays were published", n)
	}
}

func TestReplayOfWhatIsNoGovernorEventIsRefused(t *testing.T) {
	f := newFixture(t, nil)
	valid := func() store.Message {
		m, _ := outside("acme", "verified", "")
		m.Attributes[deadletter.AttrDomain] = "customer_account"
		return m
	}
	tests := []struct {
		name   string
		msg    func() store.Message
		reason string
	}{
		{"webhook action", func() store.Message {
			m := valid()
			m.Attributes[deadletter.AttrDomain] = "actuator"
			m.Attributes["ce-type"] = "autonomics.action.marketplace.approve_account"
			return m
		}, "not by a governor"},
		{"marketplace notification", func() store.Message {
			return store.Message{Data: []byte(`{"eventId":"1","eventType":"ENTITLEMENT_ACTIVE"}`), Attributes: map[string]string{deadletter.AttrDomain: "marketplace", deadletter.AttrReason: "x"}}
		}, "not by a governor"},
		{"no cloud event", func() store.Message {
			return store.Message{Data: []byte(`{}`), Attributes: map[string]string{deadletter.AttrDomain: "customer_account"}}
		}, "not a governor event"},
		{"other domain's type", func() store.Message {
			m := valid()
			m.Attributes[deadletter.AttrDomain] = "billing"
			return m
		}, "not of the billing governor"},
		{"truncated", func() store.Message {
			m := valid()
			m.Attributes["dead_letter_truncated"] = "1024"
			return m
		}, "truncated"},
		{"unknown subscription", func() store.Message {
			m := valid()
			delete(m.Attributes, deadletter.AttrDomain)
			m.Attributes[console.AttrPubSubSourceSubscription] = "t-autonomics-actions-push"
			return m
		}, "delivers no governor domain topic"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := fmt.Sprintf("n-%d", i)
			if code, body := f.push(id, tt.msg()); code != 200 {
				t.Fatalf("push = %d %s", code, body)
			}
			code, body := f.do("POST", "/api/v1/deadletters/"+id+":replay", "")
			if code != 409 || !strings.Contains(body, tt.reason) {
				t.Errorf("replay = %d %s, want 409 saying %q", code, body, tt.reason)
			}
		})
	}
	if n := len(f.pub.On(topics.Domain(governor.CustomerAccount))) + len(f.pub.On(topics.Domain(governor.Billing))); n != 0 {
		t.Errorf("%d refused replays were published", n)
	}
}

func TestReplayOfAnExhaustedDomainSubscriptionIsAllowed(t *testing.T) {
	f := newFixture(t, nil)
	m, _ := outside("acme", "verified", "")
	m.Attributes[console.AttrPubSubSourceSubscription] = topics.Domain(governor.CustomerAccount) + "-push"
	m.Attributes["CloudPubSubDeadLetterSourceDeliveryCount"] = "5"
	if code, body := f.push("9", m); code != 200 {
		t.Fatal(code, body)
	}
	if code, body := f.do("POST", "/api/v1/deadletters/9:replay", ""); code != 200 {
		t.Fatalf("replay = %d %s", code, body)
	}
	got := f.pub.On(topics.Domain(governor.CustomerAccount))
	if len(got) != 1 || got[0].Attributes["CloudPubSubDeadLetterSourceDeliveryCount"] != "" || got[0].Attributes[console.AttrPubSubSourceSubscription] != "" {
		t.Errorf("replayed %+v, want the Pub/Sub dead-letter attributes removed", got)
	}
}

func TestOversizePushIsRefused(t *testing.T) {
	f := newFixture(t, nil)
	body := `{"message":{"messageId":"1","data":"` + strings.Repeat("A", event.MaxPushBytes) + `"}}`
	code, resp := f.do("POST", console.PushPath, body)
	if code != 413 || len(resp) > 500 {
		t.Errorf("oversize push = %d %s, want 413", code, resp)
	}
	if p, _ := f.console.DeadLetters(t.Context(), "", 10); len(p.DeadLetters) != 0 {
		t.Errorf("an oversize push was recorded")
	}
}

func TestMalformedPushIsRefused(t *testing.T) {
	f := newFixture(t, nil)
	for name, body := range map[string]string{
		"not json":      `{"message":`,
		"no message":    `{"subscription":"s"}`,
		"no message id": string(event.PushBody([]byte(`{}`), nil, "")),
		"bad id":        string(event.PushBody([]byte(`{}`), nil, "a/b")),
		"bad base64":    `{"message":{"messageId":"1","data":"***"}}`,
	} {
		if code, resp := f.do("POST", console.PushPath, body); code != 400 {
			t.Errorf("%s: push = %d %s, want 400", name, code, resp)
		}
	}
	if p, _ := f.console.DeadLetters(t.Context(), "", 10); len(p.DeadLetters) != 0 {
		t.Errorf("a malformed push was recorded")
	}
}

func TestRecordsOutageIs503SoPubSubRedelivers(t *testing.T) {
	f := newFixture(t, nil)
	m, _ := outside("acme", "verified", "")
	f.records.Fail(true)
	if code, body := f.push("1", m); code != 503 {
		t.Errorf("push with the records down = %d %s, want 503", code, body)
	}
	f.records.Fail(false)
	if code, body := f.push("1", m); code != 200 || !strings.Contains(body, `"duplicate":false`) {
		t.Errorf("redelivered push = %d %s, want recorded", code, body)
	}
}

func TestReplayPublishFailureIs503AndNotRecorded(t *testing.T) {
	f := newFixture(t, nil)
	m, _ := outside("acme", "verified", "")
	m.Attributes[deadletter.AttrDomain] = "customer_account"
	f.push("1", m)
	f.pub.Fail(true)
	if code, body := f.do("POST", "/api/v1/deadletters/1:replay", ""); code != 503 {
		t.Errorf("replay with Pub/Sub down = %d %s, want 503", code, body)
	}
	if d, _ := f.console.DeadLetter(t.Context(), "1"); d.Replay != nil {
		t.Errorf("a failed replay was recorded: %+v", d.Replay)
	}
	if code, _ := f.do("POST", "/api/v1/deadletters/nope:replay", ""); code != 404 {
		t.Errorf("replay of an unknown dead letter = %d, want 404", code)
	}
	if code, _ := f.do("POST", "/api/v1/deadletters/1:explode", ""); code != 404 {
		t.Errorf("unknown dead-letter verb = %d, want 404", code)
	}
}

func TestDeadLettersArePagedWithOpaqueTokens(t *testing.T) {
	f := newFixture(t, nil)
	m, _ := outside("acme", "verified", "")
	for i := range 5 {
		f.push(fmt.Sprintf("m%d", i), m)
		f.clock.Advance(time.Second)
	}
	var got []string
	next := ""
	for range 5 {
		code, body := f.do("GET", "/api/v1/deadletters?limit=2&after="+next, "")
		p := decode[console.DeadLetterPage](t, body)
		if code != 200 {
			t.Fatalf("deadletters = %d %s", code, body)
		}
		for _, d := range p.DeadLetters {
			got = append(got, d.ID)
		}
		if next = p.Next; next == "" {
			break
		}
		if strings.Contains(next, "m") && !strings.HasPrefix(next, "d1.") {
			t.Errorf("token %q is not opaque", next)
		}
	}
	if fmt.Sprint(got) != "[m4 m3 m2 m1 m0]" {
		t.Errorf("pages = %v, want newest first", got)
	}
	// A token altered by one character is refused, not trusted.
	tok := console.FormatCursor(console.DeadLetterCursor{ReceivedAt: epoch, ID: "m2"})
	for _, bad := range []string{tok[:len(tok)-1] + "!", "d1." + "LTEubTI", tok + "A", strings.Replace(tok, "d1.", "d2.", 1)} {
		if code, body := f.do("GET", "/api/v1/deadletters?after="+bad, ""); code != 400 {
			t.Errorf("token %q = %d %s, want 400", bad, code, body)
		}
	}
}
