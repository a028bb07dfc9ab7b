package receipt

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gowebpki/jcs"
)

// oracleAction and oracleReceipt mirror the wire format for encoding/json,
// so that the oracle does not go through the package's own encoder.
type oracleAction struct {
	Kind    string `json:"kind"`
	Type    string `json:"type"`
	Domain  string `json:"domain"`
	Subject string `json:"subject"`
	ID      string `json:"id"`
}

type oracleReceipt struct {
	TenantID      string         `json:"tenant_id"`
	Domain        string         `json:"domain"`
	Subject       string         `json:"subject"`
	Seq           int64          `json:"seq"`
	ExecutionID   string         `json:"execution_id"`
	EventSource   string         `json:"event_source"`
	EventType     string         `json:"event_type"`
	CorrelationID string         `json:"correlation_id"`
	FromState     string         `json:"from_state"`
	ToState       string         `json:"to_state"`
	Outcome       string         `json:"outcome"`
	Reason        string         `json:"reason"`
	Actions       []oracleAction `json:"actions"`
	DataDigest    string         `json:"data_digest"`
	DecidedAt     string         `json:"decided_at"`
	PrevHash      string         `json:"prev_hash"`
	Hash          *string        `json:"hash,omitempty"`
}

// oracle returns the canonical JSON of r as github.com/gowebpki/jcs
// produces it from encoding/json output.
func oracle(t testing.TB, r *Receipt, withHash bool) []byte {
	t.Helper()
	o := oracleReceipt{
		TenantID: r.TenantID, Domain: r.Domain, Subject: r.Subject, Seq: r.Seq,
		ExecutionID: r.ExecutionID, EventSource: r.EventSource, EventType: r.EventType,
		CorrelationID: r.CorrelationID, FromState: r.FromState, ToState: r.ToState,
		Outcome: r.Outcome, Reason: r.Reason, Actions: []oracleAction{},
		DataDigest: r.DataDigest, DecidedAt: r.DecidedAt, PrevHash: r.PrevHash,
	}
	for _, a := range r.Actions {
		o.Actions = append(o.Actions, oracleAction(a))
	}
	if withHash {
		o.Hash = &r.Hash
	}
	b, err := json.Marshal(o)
	if err != nil {
		t.Fatalf("json.Marshal(%+v) = %v", o, err)
	}
	c, err := jcs.Transform(b)
	if err != nil {
		t.Fatalf("jcs.Transform(%s) = %v", b, err)
	}
	return c
}

// checkAgainstOracle compares Canonical, JSON and ComputeHash of r with
// the oracle.
func checkAgainstOracle(t testing.TB, r *Receipt) {
	t.Helper()
	if got, want := r.Canonical(), oracle(t, r, false); !bytes.Equal(got, want) {
		t.Errorf("Canonical() =\n%q\nwant (jcs)\n%q", got, want)
	}
	if got, want := r.JSON(), oracle(t, r, true); !bytes.Equal(got, want) {
		t.Errorf("JSON() =\n%q\nwant (jcs)\n%q", got, want)
	}
	sum := sha256.Sum256(oracle(t, r, false))
	if got, want := r.ComputeHash(), hex.EncodeToString(sum[:]); got != want {
		t.Errorf("ComputeHash() = %s, want %s", got, want)
	}
	if c := r.JSON(); !utf8.Valid(c) {
		t.Errorf("JSON() = %q is not valid UTF-8", c)
	}
}

func TestCanonicalMatchesJCS(t *testing.T) {
	allControls := func() string {
		var b strings.Builder
		for c := range 0x20 {
			b.WriteByte(byte(c))
		}
		b.WriteByte(0x7f)
		return b.String()
	}()
	tests := []struct {
		name   string
		mutate func(r *Receipt)
	}{
		{"as built", func(r *Receipt) {}},
		{"empty actions", func(r *Receipt) { r.Actions = []Action{} }},
		{"nil actions", func(r *Receipt) { r.Actions = nil }},
		{"many actions", func(r *Receipt) {
			for i := range 200 {
				r.Actions = append(r.Actions, Action{Kind: "event", Type: "autonomics.quota_sla.limit_set", Domain: "quota_sla", Subject: "api_calls", ID: ActionID(r, i)})
			}
		}},
		{"unicode", func(r *Receipt) {
			r.Reason = "é € 😂 דּ Å A\u030a \u2028\u2029 \uFEFF \U0010FFFF \uFFFD"
			r.Subject = "日本語"
			r.Actions[0].Subject = "😀"
		}},
		{"control characters", func(r *Receipt) {
			r.Reason = allControls
			r.Actions[1].Type = "\x00\x1f\x7f"
		}},
		{"escapes and html", func(r *Receipt) {
			r.Reason = `"quoted" \back\slash\ /slash/ <script>&amp;</script> '`
			r.EventSource = `\"\\\/`
		}},
		{"invalid UTF-8", func(r *Receipt) {
			r.Reason = "a\xffb\xc3(c\xed\xa0\x80d\xf4\x90\x80\x80e\x80"
			r.Actions[0].ID = "\xfe"
		}},
		{"empty strings", func(r *Receipt) {
			*r = Receipt{Seq: 1}
		}},
		{"largest seq", func(r *Receipt) { r.Seq = MaxSeq }},
		{"seq 10", func(r *Receipt) { r.Seq = 10 }},
		{"long strings", func(r *Receipt) {
			r.Reason = strings.Repeat("long reason \n", 400)
			r.CorrelationID = strings.Repeat("€", 700)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := New(billingInstance(0, ""), billingEvent("ev-1"), dunningDecision(), t0)
			tt.mutate(&r)
			r.Hash = r.ComputeHash()
			checkAgainstOracle(t, &r)
		})
	}
}

// TestMemberOrder checks that the encoder writes exactly the json members
// of Receipt and Action, in RFC 8785 order.
func TestMemberOrder(t *testing.T) {
	r := New(billingInstance(0, ""), billingEvent("ev-1"), dunningDecision(), t0)
	r.Actions = r.Actions[:1]
	r.TraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	var names []string
	for _, m := range regexp.MustCompile(`[{,]"([a-z_]+)":`).FindAllStringSubmatch(string(r.JSON()), -1) {
		names = append(names, m[1])
	}
	if len(names) != 23 {
		t.Fatalf("JSON() = %s has %d members, want 18 + 5", r.JSON(), len(names))
	}
	top := append([]string{names[0]}, names[6:]...)
	action := names[1:6]
	tags := func(typ reflect.Type) []string {
		var out []string
		for i := range typ.NumField() {
			out = append(out, strings.Split(typ.Field(i).Tag.Get("json"), ",")[0])
		}
		slices.Sort(out)
		return out
	}
	if want := tags(reflect.TypeFor[Receipt]()); !slices.Equal(top, want) {
		t.Errorf("JSON() members = %v, want sorted json tags %v", top, want)
	}
	if want := tags(reflect.TypeFor[Action]()); !slices.Equal(action, want) {
		t.Errorf("JSON() action members = %v, want sorted json tags %v", action, want)
	}
}

// TestRFC8785StringExample is the string example of RFC 8785 §3.2.2.2.
func TestRFC8785StringExample(t *testing.T) {
	const in = `"\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/"`
	const want = `"€$\u000f\nA'B\"\\\\\"/"`
	var s string
	if err := json.Unmarshal([]byte(in), &s); err != nil {
		t.Fatalf("json.Unmarshal(%s) = %v", in, err)
	}
	if got := string(appendString(nil, s)); got != want {
		t.Errorf("appendString(%q) = %s, want %s", s, got, want)
	}
	lib, err := jcs.Transform([]byte(in))
	if err != nil || string(lib) != want {
		t.Errorf("jcs.Transform(%s) = %s, %v, want %s", in, lib, err, want)
	}
}

// TestRFC8785SortingExample is the member sorting example of RFC 8785
// §3.2.3: names sort by UTF-16 code units, not by code points or UTF-8.
// The receipt's names are ASCII, where the orders coincide.
func TestRFC8785SortingExample(t *testing.T) {
	const in = `{
  "\u20ac": "Euro Sign",
  "\r": "Carriage Return",
  "\ufb33": "Hebrew Letter Dalet With Dagesh",
  "1": "One",
  "\ud83d\ude00": "Emoji: Grinning Face",
  "\u0080": "Control",
  "\u00f6": "Latin Small Letter O With Diaeresis"
}`
	const want = "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u0080\":\"Control\",\"ö\":\"Latin Small Letter O With Diaeresis\"," +
		"\"€\":\"Euro Sign\",\"😀\":\"Emoji: Grinning Face\",\"\ufb33\":\"Hebrew Letter Dalet With Dagesh\"}"
	got, err := jcs.Transform([]byte(in))
	if err != nil || string(got) != want {
		t.Errorf("jcs.Transform(example) = %s, %v, want %s", got, err, want)
	}
}

func TestAppendString(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"", `""`},
		{"plain", `"plain"`},
		{"\x00\x01\x1f", `"\u0000\u0001\u001f"`},
		{"\b\f\n\r\t", `"\b\f\n\r\t"`},
		{"\x7f", "\"\x7f\""},
		{`"\`, `"\"\\"`},
		{"</>&", `"</>&"`},
		{"\u2028\u2029", "\"\u2028\u2029\""},
		{"é😂", `"é😂"`},
		{"\xff", "\"\uFFFD\""},
		{"a\xe2\x82", "\"a\uFFFD\uFFFD\""},
	}
	for _, tt := range tests {
		if got := string(appendString(nil, tt.in)); got != tt.want {
			t.Errorf("appendString(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzCanonical(f *testing.F) {
	f.Add("acme", "2026-11", "no_transition", "tenant.throttle", int64(1), uint8(2))
	f.Add("", "", "", "", int64(0), uint8(0))
	f.Add("t\x00\x1f\x7f", "\u2028", "\"\\/<>&", "é€😂", int64(-5), uint8(7))
	f.Add("\xff\xfe", "a\xc3", "\xed\xa0\x80", "\xf4\x90\x80\x80", int64(MaxSeq), uint8(1))
	f.Fuzz(func(t *testing.T, tenant, subject, reason, actionType string, seq int64, actions uint8) {
		r := New(billingInstance(0, ""), billingEvent("ev-1"), dunningDecision(), t0)
		r.TenantID, r.Subject, r.Reason = tenant, subject, reason
		r.EventSource, r.CorrelationID, r.FromState = tenant+reason, subject+actionType, actionType
		if seq < 0 {
			seq = -(seq + 1)
		}
		r.Seq = 1 + seq%MaxSeq
		r.Actions = nil
		for i := range int(actions % 8) {
			r.Actions = append(r.Actions, Action{Kind: "event", Type: actionType, Domain: reason, Subject: subject, ID: ActionID(&r, i)})
		}
		r.Hash = r.ComputeHash()
		checkAgainstOracle(t, &r)
		p, err := Parse(r.JSON())
		if err != nil {
			t.Fatalf("Parse(JSON()) = %v", err)
		}
		if got, want := p.JSON(), r.JSON(); !bytes.Equal(got, want) {
			t.Errorf("Parse(JSON()).JSON() =\n%q\nwant\n%q", got, want)
		}
	})
}
