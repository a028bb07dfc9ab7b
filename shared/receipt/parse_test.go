package receipt

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/gowebpki/jcs"
)

func TestParseRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	chain := randomChain(rng, governor.Key{Tenant: "acme", Domain: governor.Billing, Subject: "2026-11"}, 50)
	for _, r := range chain {
		got, err := Parse(r.JSON())
		if err != nil {
			t.Fatalf("Parse(%s) = %v", r.JSON(), err)
		}
		if !reflect.DeepEqual(got, r) {
			t.Errorf("Parse(JSON()) =\n%+v\nwant\n%+v", got, r)
		}
	}
}

func TestParseAcceptsNonCanonicalJSON(t *testing.T) {
	r := New(billingInstance(0, ""), billingEvent("ev-1"), dunningDecision(), t0)
	r.Reason = "é \"x\" \n"
	r.Hash = r.ComputeHash()
	var indented bytes.Buffer
	if err := json.Indent(&indented, r.JSON(), "", "\t"); err != nil {
		t.Fatal(err)
	}
	// encoding/json writes struct order and escapes <, >, & and U+2028.
	viaStd, err := json.Marshal(oracleReceipt{
		TenantID: r.TenantID, Domain: r.Domain, Subject: r.Subject, Seq: r.Seq, ExecutionID: r.ExecutionID,
		EventSource: r.EventSource, EventType: r.EventType, CorrelationID: r.CorrelationID,
		FromState: r.FromState, ToState: r.ToState, Outcome: r.Outcome, Reason: r.Reason,
		Actions:    []oracleAction{oracleAction(r.Actions[0]), oracleAction(r.Actions[1])},
		DataDigest: r.DataDigest, DecidedAt: r.DecidedAt, PrevHash: r.PrevHash, Hash: &r.Hash,
	})
	if err != nil {
		t.Fatal(err)
	}
	escaped := strings.Replace(string(r.JSON()), `"reason":"é`, `"reason":"\u00e9`, 1)
	for name, in := range map[string][]byte{
		"indented":        indented.Bytes(),
		"struct order":    viaStd,
		"escaped unicode": []byte(escaped),
		"surrounding ws":  append(append([]byte(" \r\n\t"), r.JSON()...), " \n"...),
	} {
		got, err := Parse(in)
		if err != nil || !reflect.DeepEqual(got, r) {
			t.Errorf("Parse(%s) = %+v, %v, want %+v", name, got, err, r)
		}
	}
}

func TestParseRejects(t *testing.T) {
	r := New(billingInstance(0, ""), billingEvent("ev-1"), dunningDecision(), t0)
	valid := string(r.JSON())
	replace := func(old, new string) string {
		if !strings.Contains(valid, old) {
			t.Fatalf("JSON() = %s lacks %s", valid, old)
		}
		return strings.Replace(valid, old, new, 1)
	}
	tests := []struct {
		name string
		in   string
		want string // part of the error message
	}{
		{"empty input", "", "end of input"},
		{"array", "[]", "want '{'"},
		{"null document", "null", "nulls are not allowed"},
		{"unknown member", replace(`{"actions"`, `{"extra":"x","actions"`), `unknown member "extra"`},
		{"missing member", replace(`"reason":"",`, ``), `missing member "reason"`},
		{"duplicate member", replace(`"reason":""`, `"reason":"","reason":"x"`), `duplicate member "reason"`},
		{"escaped duplicate member", replace(`"reason":""`, `"reason":"","re\u0061son":"x"`), `duplicate member "reason"`},
		{"null string", replace(`"reason":""`, `"reason":null`), "nulls are not allowed"},
		{"null actions", strings.Replace(valid, valid[strings.Index(valid, "["):strings.Index(valid, `],"corr`)+1], "null", 1), "nulls are not allowed"},
		{"float seq", replace(`"seq":1`, `"seq":1.0`), "floats are not allowed"},
		{"exponent seq", replace(`"seq":1`, `"seq":1e0`), "floats are not allowed"},
		{"float as string", replace(`"reason":""`, `"reason":0.5`), "floats are not allowed"},
		{"number as string", replace(`"reason":""`, `"reason":5`), "want a string"},
		{"boolean as string", replace(`"reason":""`, `"reason":true`), "want a string"},
		{"string seq", replace(`"seq":1`, `"seq":"1"`), "want an integer"},
		{"zero seq", replace(`"seq":1`, `"seq":0`), "outside"},
		{"negative seq", replace(`"seq":1`, `"seq":-1`), "outside"},
		{"seq above 2^53-1", replace(`"seq":1`, `"seq":9007199254740992`), "outside"},
		{"huge seq", replace(`"seq":1`, `"seq":123456789012345678901234567890`), "outside"},
		{"leading zero seq", replace(`"seq":1`, `"seq":01`), "leading zero"},
		{"actions object", strings.Replace(valid, valid[strings.Index(valid, "["):strings.Index(valid, `],"corr`)+1], "{}", 1), "want '['"},
		{"action not object", replace(`"actions":[{`, `"actions":["x",{`), "want '{'"},
		{"action null", replace(`"actions":[{`, `"actions":[null,{`), "nulls are not allowed"},
		{"action unknown member", replace(`{"domain":"subscription"`, `{"data":{},"domain":"subscription"`), `actions[0]: unknown member "data"`},
		{"action missing member", replace(`"kind":"event",`, ``), `actions[0]: missing member "kind"`},
		{"action duplicate member", replace(`"kind":"event"`, `"kind":"event","kind":"event"`), `actions[0]: duplicate member "kind"`},
		{"action number", replace(`"subject":"*"`, `"subject":7`), "actions[0].subject"},
		{"trailing comma", replace(`"to_state":"dunning"}`, `"to_state":"dunning",}`), "want a member name"},
		{"trailing data", valid + "{}", "trailing data"},
		{"truncated", valid[:len(valid)-1], "end of input"},
		{"invalid UTF-8", replace(`"reason":""`, "\"reason\":\"\xff\""), "invalid UTF-8"},
		{"encoded surrogate", replace(`"reason":""`, "\"reason\":\"\xed\xa0\x80\""), "invalid UTF-8"},
		{"lone high surrogate", replace(`"reason":""`, `"reason":"\ud83d"`), "lone high surrogate"},
		{"lone low surrogate", replace(`"reason":""`, `"reason":"\ude00"`), "lone low surrogate"},
		{"bad surrogate pair", replace(`"reason":""`, `"reason":"\ud83d\u0041"`), "followed by"},
		{"raw control character", replace(`"reason":""`, "\"reason\":\"\n\""), "control character"},
		{"unknown escape", replace(`"reason":""`, `"reason":"\x41"`), "unknown escape"},
		{"bad hex escape", replace(`"reason":""`, `"reason":"\u00g0"`), "bad \\u escape"},
		{"unterminated string", `{"reason":"abc`, "unterminated string"},
		{"missing colon", replace(`"reason":""`, `"reason" ""`), "want ':'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.in))
			if err == nil {
				t.Fatalf("Parse(%q) = %+v, nil, want an error", tt.in, got)
			}
			if code := fault.ErrorCode(err); code != fault.Invalid {
				t.Errorf("ErrorCode(Parse(%q)) = %q, want %q", tt.in, code, fault.Invalid)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse(%q) = %v, want an error containing %q", tt.in, err, tt.want)
			}
		})
	}
}

func TestParseValidEscapes(t *testing.T) {
	r := New(billingInstance(0, ""), billingEvent("ev-1"), dunningDecision(), t0)
	in := strings.Replace(string(r.JSON()), `"reason":""`, `"reason":"\"\\\/\b\f\n\r\t\u0041\u00E9\ud83d\ude00\u2028"`, 1)
	got, err := Parse([]byte(in))
	if err != nil {
		t.Fatalf("Parse(%s) = %v", in, err)
	}
	if want := "\"\\/\b\f\n\r\tAé😀\u2028"; got.Reason != want {
		t.Errorf("Parse(...).Reason = %q, want %q", got.Reason, want)
	}
}

func TestJSONMarshalers(t *testing.T) {
	r := New(billingInstance(0, ""), billingEvent("ev-1"), governor.Decision{Outcome: governor.Accepted, From: "open", To: "open"}, t0)
	r.Actions = nil
	type page struct {
		Receipts []Receipt `json:"receipts"`
		First    Receipt   `json:"first"`
	}
	b, err := json.Marshal(page{Receipts: []Receipt{r}, First: r})
	if err != nil {
		t.Fatalf("json.Marshal(page) = %v", err)
	}
	want := `{"receipts":[` + string(r.JSON()) + `],"first":` + string(r.JSON()) + `}`
	if string(b) != want {
		t.Errorf("json.Marshal(page) = %s, want %s", b, want)
	}
	var back page
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("json.Unmarshal(%s) = %v", b, err)
	}
	r.Actions = []Action{}
	if !reflect.DeepEqual(back.First, r) || !reflect.DeepEqual(back.Receipts, []Receipt{r}) {
		t.Errorf("json.Unmarshal(%s) = %+v, want %+v", b, back, r)
	}
	bad := strings.Replace(string(b), `"seq":1`, `"seq":1.5`, 1)
	if err := json.Unmarshal([]byte(bad), &back); fault.ErrorCode(err) != fault.Invalid {
		t.Errorf("json.Unmarshal(float seq) = %v, want an Invalid error", err)
	}
}

// FuzzParse checks Parse against encoding/json: whatever Parse accepts,
// encoding/json decodes to the same values, and re-encoding is canonical.
func FuzzParse(f *testing.F) {
	r := New(billingInstance(0, ""), billingEvent("ev-1"), dunningDecision(), t0)
	f.Add(r.JSON())
	f.Add([]byte(strings.Replace(string(r.JSON()), `"reason":""`, `"reason":"\ud83d\ude00\u0000\/"`, 1)))
	f.Add([]byte(`{"seq":1.5}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := Parse(in)
		if err != nil {
			if fault.ErrorCode(err) != fault.Invalid {
				t.Fatalf("ErrorCode(Parse(%q)) = %q, want invalid", in, fault.ErrorCode(err))
			}
			return
		}
		var std oracleReceipt
		if err := json.Unmarshal(in, &std); err != nil {
			t.Fatalf("Parse(%q) succeeded, json.Unmarshal = %v", in, err)
		}
		if std.Hash == nil || *std.Hash != got.Hash || std.Seq != got.Seq || std.Reason != got.Reason ||
			std.TenantID != got.TenantID || len(std.Actions) != len(got.Actions) {
			t.Fatalf("Parse(%q) = %+v, json.Unmarshal = %+v", in, got, std)
		}
		for i, a := range std.Actions {
			if oracleAction(got.Actions[i]) != a {
				t.Fatalf("Parse(%q).Actions[%d] = %+v, json.Unmarshal = %+v", in, i, got.Actions[i], a)
			}
		}
		out := got.JSON()
		canon, err := jcs.Transform(out)
		if err != nil || !bytes.Equal(canon, out) {
			t.Fatalf("jcs.Transform(JSON()) = %q, %v, want %q", canon, err, out)
		}
		again, err := Parse(out)
		if err != nil || !reflect.DeepEqual(again, got) {
			t.Fatalf("Parse(JSON()) = %+v, %v, want %+v", again, err, got)
		}
	})
}
