package event

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
)

// checkDecoded fails unless err is an Invalid *fault.Error or ev obeys
// every rule of the package and survives both encodings unchanged.
func checkDecoded(t *testing.T, ev governor.Event, err error) {
	t.Helper()
	if err != nil {
		var e *fault.Error
		if !errors.As(err, &e) || e.Code != fault.Invalid || e.Message == "" {
			t.Fatalf("error %#v is not an Invalid *fault.Error with a message", err)
		}
		if len(e.Message) > 1024 {
			t.Fatalf("error message is %d bytes: %.200s", len(e.Message), e.Message)
		}
		return
	}
	if e := ValidTenant(ev.Tenant); e != nil {
		t.Fatalf("decoded tenant: %v", e)
	}
	if e := ValidSubject(ev.Subject); e != nil {
		t.Fatalf("decoded subject: %v", e)
	}
	if ev.Type != governor.TypeOf(ev.Domain, ev.Name) {
		t.Fatalf("decoded type %q, domain %q, name %q disagree", ev.Type, ev.Domain, ev.Name)
	}
	if ev.ID == "" || ev.Source == "" || ev.CascadeDepth < 0 || ev.CascadeDepth > CascadeDepthLimit {
		t.Fatalf("decoded event breaks the rules: %s", fmtEvent(ev))
	}
	if len(ev.Data) > 0 && (len(ev.Data) > MaxDataBytes || !json.Valid(ev.Data) || ev.Data[0] != '{') {
		t.Fatalf("decoded data is not a JSON object within limits: %q", ev.Data)
	}
	data, attrs := Encode(ev)
	got, err := Decode(Message{Data: data, Attributes: attrs})
	if err != nil || !equalEvent(got, ev) {
		t.Fatalf("Decode(Encode(%s)) =\n%s, %v", fmtEvent(ev), fmtEvent(got), err)
	}
	b, err := EncodeStructured(ev)
	if err != nil {
		t.Fatalf("EncodeStructured(%s) = %v", fmtEvent(ev), err)
	}
	got, err = Decode(Message{Data: b, Attributes: structuredCT})
	if err != nil || !equalEvent(got, ev) {
		t.Fatalf("Decode(EncodeStructured(%s)) =\n%s, %v", fmtEvent(ev), fmtEvent(got), err)
	}
}

func FuzzDecodePush(f *testing.F) {
	for _, name := range []string{"push_binary.json", "push_structured.json"} {
		f.Add(readFixture(f, name))
	}
	f.Add(PushBody(testData, binAttrs(nil), "1"))
	f.Add(PushBody(structEvent(nil), structuredCT, "2"))
	f.Add(PushBody(structEvent(nil), nil, "3"))
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, m, err := DecodePush(body)
		checkDecoded(t, ev, err)
		if err == nil && len(m.Data) > MaxMessageBytes {
			t.Fatalf("accepted message data of %d bytes", len(m.Data))
		}
	})
}

// fuzzAttrs parses attributes written one per line as name=value.
func fuzzAttrs(s string) map[string]string {
	if s == "" {
		return nil
	}
	m := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		k, v, _ := strings.Cut(line, "=")
		m[k] = v
	}
	return m
}

// formatAttrs is the inverse of fuzzAttrs for names without "=" and values
// without newlines.
func formatAttrs(m map[string]string) string {
	var lines []string
	for k, v := range m {
		lines = append(lines, k+"="+v)
	}
	return strings.Join(lines, "\n")
}

func FuzzDecode(f *testing.F) {
	f.Add(testData, formatAttrs(binAttrs(nil)))
	f.Add([]byte(nil), formatAttrs(binAttrs(map[string]string{"ce-subject": "*", "ce-type": "autonomics.quota_sla.timeout.x"})))
	f.Add(structEvent(nil), formatAttrs(structuredCT))
	f.Add(structEvent(nil), "")
	f.Add(structEvent(map[string]any{"data": nil, "data_base64": "e30="}), "content-type=application/cloudevents+json\nce-tenantid=acme")
	f.Fuzz(func(t *testing.T, data []byte, attrs string) {
		ev, err := Decode(Message{Data: data, Attributes: fuzzAttrs(attrs)})
		checkDecoded(t, ev, err)
	})
}
