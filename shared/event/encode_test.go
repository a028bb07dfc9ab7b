package event

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2/event"

	"github.com/autonomics/autonomics/shared/governor"
)

func TestEncode(t *testing.T) {
	data, attrs := Encode(baseEvent())
	want := binAttrs(nil)
	if !reflect.DeepEqual(attrs, want) {
		t.Errorf("Encode(base) attributes = %v, want %v", attrs, want)
	}
	if string(data) != string(testData) {
		t.Errorf("Encode(base) data = %q, want %q", data, testData)
	}
	min := governor.Event{ID: "e", Source: "s", Domain: governor.MultiTenant, Name: "resume", Tenant: "t"}
	_, attrs = Encode(min)
	want = map[string]string{
		"ce-specversion": "1.0", "ce-id": "e", "ce-source": "s", "ce-type": "autonomics.multi_tenant.resume",
		"ce-tenantid": "t", "content-type": "application/json",
	}
	if !reflect.DeepEqual(attrs, want) {
		t.Errorf("Encode(minimal) attributes = %v, want %v", attrs, want)
	}
}

func TestEncodeStructured(t *testing.T) {
	got, err := EncodeStructured(baseEvent())
	if err != nil {
		t.Fatalf("EncodeStructured(base) = %v", err)
	}
	want := `{"specversion":"1.0","id":"evt-1","source":"//autonomics/test","type":"autonomics.billing.payment_failed",` +
		`"subject":"2026-11","datacontenttype":"application/json","time":"2026-11-03T10:15:00Z",` +
		`"data":{"attempt": 1, "reason": "card_declined"},"cascadedepth":1,"correlationid":"root-1",` +
		`"tenantid":"acme","traceparent":"` + testTraceParent + `"}`
	if string(got) != want {
		t.Errorf("EncodeStructured(base) =\n%s\nwant\n%s", got, want)
	}
}

func TestEncodeStructuredInvalid(t *testing.T) {
	tests := []struct {
		name string
		set  func(*governor.Event)
		want string
	}{
		{"bad tenant", func(e *governor.Event) { e.Tenant = "../x" }, `tenantid "../x": must match`},
		{"no id", func(e *governor.Event) { e.ID = "" }, `id "": must not be empty or blank`},
		{"data not object", func(e *governor.Event) { e.Data = json.RawMessage(`[1]`) }, "data must be a JSON object, got array"},
		{"data not JSON", func(e *governor.Event) { e.Data = json.RawMessage(`{`) }, "data: invalid JSON"},
		{"negative depth", func(e *governor.Event) { e.CascadeDepth = -1 }, `cascadedepth "-1": must be a non-negative integer`},
		{"unknown domain", func(e *governor.Event) { e.Type, e.Domain = "", "payroll" }, `unknown domain "payroll"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := baseEvent()
			tt.set(&ev)
			got, err := EncodeStructured(ev)
			checkErr(t, "EncodeStructured("+tt.name+")", err, tt.want)
			if got != nil {
				t.Errorf("EncodeStructured(%s) = %s, want nil", tt.name, got)
			}
		})
	}
}

// TestEncodeStructuredSDK checks that the CloudEvents SDK reads the
// structured encoding as the same event.
func TestEncodeStructuredSDK(t *testing.T) {
	ev := baseEvent()
	b, err := EncodeStructured(ev)
	if err != nil {
		t.Fatal(err)
	}
	var ce cloudevents.Event
	if err := ce.UnmarshalJSON(b); err != nil {
		t.Fatalf("cloudevents UnmarshalJSON(%s) = %v", b, err)
	}
	if err := ce.Validate(); err != nil {
		t.Errorf("cloudevents Validate(%s) = %v", b, err)
	}
	ext := ce.Extensions()
	got := []any{ce.ID(), ce.Source(), ce.Type(), ce.Subject(), ce.Time().UTC(), string(ce.Data()), ext["tenantid"], ext["correlationid"], fmt.Sprint(ext["cascadedepth"]), ext["traceparent"]}
	want := []any{ev.ID, ev.Source, ev.Type, ev.Subject, ev.Time, string(ev.Data), ev.Tenant, ev.CorrelationID, "1", ev.TraceParent}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("cloudevents UnmarshalJSON(EncodeStructured(base)) = %v, want %v", got, want)
	}
}

// randomEvent returns a valid event with every field exercised at random.
func randomEvent(r *rand.Rand) governor.Event {
	pick := func(s string) byte { return s[r.IntN(len(s))] }
	word := func(alphabet string, min, max int) string {
		b := make([]byte, min+r.IntN(max-min+1))
		for i := range b {
			b[i] = pick(alphabet)
		}
		return string(b)
	}
	const idChars = "ABCXYZabcxyz0189._-"
	ident := func() string {
		for {
			s := word(idChars, 1, MaxIDLen)
			if idReason(s) == "" {
				return s
			}
		}
	}
	text := func(max int) string {
		runes := []rune("aZ09-_:/. éü日本€😀")
		for {
			var b strings.Builder
			n := 1 + r.IntN(max/4)
			for range n {
				b.WriteRune(runes[r.IntN(len(runes))])
			}
			if s := b.String(); textReason(s, max) == "" {
				return s
			}
		}
	}
	maybe := func(s string) string {
		if r.IntN(2) == 0 {
			return ""
		}
		return s
	}
	var ev governor.Event
	ev.ID = text(MaxTextBytes)
	for {
		ev.Source = []string{"//autonomics/", "https://example.com/", "urn:autonomics:", "/", ""}[r.IntN(5)] + word("abcz019-._~", 1, 40)
		if sourceReason(ev.Source) == "" {
			break
		}
	}
	ev.Domain = governor.Domains[r.IntN(len(governor.Domains))]
	ev.Name = governor.EventName(word("abcxyz019_", 1, 30))
	if r.IntN(4) == 0 {
		ev.Name = governor.Timeout(string(ev.Name))
	}
	ev.Type = governor.TypeOf(ev.Domain, ev.Name)
	ev.Tenant = ident()
	switch r.IntN(3) {
	case 0:
		ev.Subject = governor.DefaultSubject
	case 1:
		ev.Subject = governor.BroadcastSubject
	default:
		ev.Subject = ident()
	}
	if r.IntN(3) > 0 {
		ev.Time = time.Unix(r.Int64N(1<<35), r.Int64N(1e9)).UTC()
	}
	if r.IntN(4) > 0 {
		m := map[string]any{}
		for range r.IntN(5) {
			m[text(16)] = []any{text(20), r.Int64(), true, nil, map[string]any{"n": []int{1, 2}}}[r.IntN(5)]
		}
		b, _ := json.Marshal(m)
		if r.IntN(2) == 0 {
			b, _ = json.MarshalIndent(m, "", "\t")
		}
		ev.Data = b
	}
	ev.CorrelationID = maybe(text(MaxTextBytes))
	ev.CausationID = maybe(text(MaxTextBytes))
	ev.CascadeDepth = r.IntN(CascadeDepthLimit + 1)
	ev.TraceParent = maybe(fmt.Sprintf("00-%016x%016x-%016x-%02x", r.Uint64()|1, r.Uint64(), r.Uint64()|1, r.IntN(256)))
	return ev
}

func TestRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 3000 {
		ev := randomEvent(r)
		data, attrs := Encode(ev)
		got, err := Decode(Message{Data: data, Attributes: attrs})
		if err != nil || !equalEvent(got, ev) {
			t.Fatalf("#%d Decode(Encode(%s)) =\n%s, %v", i, fmtEvent(ev), fmtEvent(got), err)
		}
		got, _, err = DecodePush(PushBody(data, attrs, "m"))
		if err != nil || !equalEvent(got, ev) {
			t.Fatalf("#%d DecodePush(PushBody(Encode(%s))) =\n%s, %v", i, fmtEvent(ev), fmtEvent(got), err)
		}
		b, err := EncodeStructured(ev)
		if err != nil {
			t.Fatalf("#%d EncodeStructured(%s) = %v", i, fmtEvent(ev), err)
		}
		for _, attrs := range []map[string]string{structuredCT, nil} {
			got, err = Decode(Message{Data: b, Attributes: attrs})
			if err != nil || !equalEvent(got, ev) {
				t.Fatalf("#%d Decode(EncodeStructured(%s), %v) =\n%s, %v", i, fmtEvent(ev), attrs, fmtEvent(got), err)
			}
		}
	}
}
