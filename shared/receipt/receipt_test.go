package receipt

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/governor"
)

var t0 = time.Date(2026, 11, 3, 8, 15, 0, 123456789, time.UTC)

func billingInstance(version int64, last string) governor.Instance {
	return governor.Instance{
		Key:      governor.Key{Tenant: "acme", Domain: governor.Billing, Subject: "2026-11"},
		State:    "invoiced",
		Version:  version,
		LastHash: last,
	}
}

func billingEvent(id string) governor.Event {
	return governor.Event{
		ID:      id,
		Source:  "//stripe/webhooks",
		Type:    "autonomics.billing.payment_failed",
		Domain:  governor.Billing,
		Name:    "payment_failed",
		Tenant:  "acme",
		Subject: "2026-11",
		Data:    json.RawMessage(`{"attempt":1}`),
	}
}

func dunningDecision() governor.Decision {
	return governor.Decision{
		Outcome: governor.Accepted,
		From:    "invoiced",
		To:      "dunning",
		Emits: []governor.Emit{
			{Kind: governor.KindEvent, Type: "autonomics.subscription.payment_failed", Domain: governor.Subscription, Subject: "*"},
			{Kind: governor.KindActuate, Type: "billing.retry_payment", Domain: governor.Billing, Subject: "2026-11"},
		},
	}
}

// withIDs returns actions with their ActionID filled in for r's position.
func withIDs(r Receipt, actions ...Action) []Action {
	for i := range actions {
		actions[i].ID = ActionID(&r, i)
	}
	return actions
}

func TestNew(t *testing.T) {
	prev := strings.Repeat("ab", 32)
	tests := []struct {
		name string
		inst governor.Instance
		ev   governor.Event
		d    governor.Decision
		now  time.Time
		want Receipt // Hash and action ids are filled in by the test
	}{
		{
			name: "first receipt of a chain",
			inst: billingInstance(0, ""),
			ev:   billingEvent("ev-1"),
			d:    dunningDecision(),
			now:  t0,
			want: Receipt{
				TenantID: "acme", Domain: "billing", Subject: "2026-11", Seq: 1,
				ExecutionID: "ev-1", EventSource: "//stripe/webhooks", EventType: "autonomics.billing.payment_failed",
				CorrelationID: "ev-1", FromState: "invoiced", ToState: "dunning", Outcome: "accepted",
				Actions: []Action{
					{Kind: "event", Type: "autonomics.subscription.payment_failed", Domain: "subscription", Subject: "*"},
					{Kind: "actuate", Type: "billing.retry_payment", Domain: "billing", Subject: "2026-11"},
				},
				DataDigest: DataDigest([]byte(`{"attempt":1}`)),
				DecidedAt:  "2026-11-03T08:15:00.123456789Z",
				PrevHash:   ZeroHash,
			},
		},
		{
			name: "later receipt links to last hash and keeps correlation id",
			inst: billingInstance(4, prev),
			ev: func() governor.Event {
				e := billingEvent("ev-5")
				e.CorrelationID = "root-1"
				e.Data = nil
				return e
			}(),
			d:   governor.Decision{Outcome: governor.Rejected, Reason: "no_transition: event payment_failed not allowed in state paid", From: "paid", To: "paid"},
			now: time.Date(2026, 11, 3, 9, 15, 0, 0, time.FixedZone("CET", 3600)),
			want: Receipt{
				TenantID: "acme", Domain: "billing", Subject: "2026-11", Seq: 5,
				ExecutionID: "ev-5", EventSource: "//stripe/webhooks", EventType: "autonomics.billing.payment_failed",
				CorrelationID: "root-1", FromState: "paid", ToState: "paid", Outcome: "rejected",
				Reason:     "no_transition: event payment_failed not allowed in state paid",
				Actions:    []Action{},
				DataDigest: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
				DecidedAt:  "2026-11-03T08:15:00.000000000Z",
				PrevHash:   prev,
			},
		},
		{
			name: "snapshot of a missing instance takes the key from the event",
			inst: governor.Instance{},
			ev:   billingEvent("ev-1"),
			d:    governor.Decision{Outcome: governor.Rejected, Reason: "no_transition", From: governor.StateNone, To: governor.StateNone},
			now:  t0,
			want: Receipt{
				TenantID: "acme", Domain: "billing", Subject: "2026-11", Seq: 1,
				ExecutionID: "ev-1", EventSource: "//stripe/webhooks", EventType: "autonomics.billing.payment_failed",
				CorrelationID: "ev-1", FromState: "none", ToState: "none", Outcome: "rejected", Reason: "no_transition",
				Actions:    []Action{},
				DataDigest: DataDigest([]byte(`{"attempt":1}`)),
				DecidedAt:  "2026-11-03T08:15:00.123456789Z",
				PrevHash:   ZeroHash,
			},
		},
		{
			name: "broadcast event is recorded under the instance subject",
			inst: governor.Instance{Key: governor.Key{Tenant: "acme", Domain: governor.Entitlement, Subject: "ent-7"}, State: "active", Version: 2, LastHash: prev},
			ev: governor.Event{ID: "ev-9", Source: "autonomics/customer_account", Type: "autonomics.entitlement.suspend",
				Domain: governor.Entitlement, Name: "suspend", Tenant: "acme", Subject: "*", Data: json.RawMessage(`{}`),
				CorrelationID: "root-2", CascadeDepth: 1},
			d:   governor.Decision{Outcome: governor.Accepted, From: "active", To: "suspended"},
			now: t0,
			want: Receipt{
				TenantID: "acme", Domain: "entitlement", Subject: "ent-7", Seq: 3,
				ExecutionID: "ev-9", EventSource: "autonomics/customer_account", EventType: "autonomics.entitlement.suspend",
				CorrelationID: "root-2", FromState: "active", ToState: "suspended", Outcome: "accepted",
				Actions:    []Action{},
				DataDigest: DataDigest([]byte(`{}`)),
				DecidedAt:  "2026-11-03T08:15:00.123456789Z",
				PrevHash:   prev,
			},
		},
		{
			name: "invalid UTF-8 is replaced byte by byte",
			inst: billingInstance(0, ""),
			ev: func() governor.Event {
				e := billingEvent("ev-\xff\xfe")
				e.Source = "src-\xc3"
				return e
			}(),
			d: governor.Decision{Outcome: governor.Rejected, Reason: "bad \xed\xa0\x80 surrogate", From: "invoiced", To: "invoiced",
				Emits: []governor.Emit{{Kind: governor.KindActuate, Type: "x.\x80", Domain: governor.Billing, Subject: "2026-11"}}},
			now: t0,
			want: Receipt{
				TenantID: "acme", Domain: "billing", Subject: "2026-11", Seq: 1,
				ExecutionID: "ev-\uFFFD\uFFFD", EventSource: "src-\uFFFD", EventType: "autonomics.billing.payment_failed",
				CorrelationID: "ev-\uFFFD\uFFFD", FromState: "invoiced", ToState: "invoiced", Outcome: "rejected",
				Reason:     "bad \uFFFD\uFFFD\uFFFD surrogate",
				Actions:    []Action{{Kind: "actuate", Type: "x.\uFFFD", Domain: "billing", Subject: "2026-11"}},
				DataDigest: DataDigest([]byte(`{"attempt":1}`)),
				DecidedAt:  "2026-11-03T08:15:00.123456789Z",
				PrevHash:   ZeroHash,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := New(tt.inst, tt.ev, tt.d, tt.now)
			want := tt.want
			want.Actions = withIDs(want, want.Actions...)
			want.Hash = want.ComputeHash()
			if !reflect.DeepEqual(got, want) {
				t.Errorf("New(%v, %s, %v) =\n%+v\nwant\n%+v", tt.inst.Key, tt.ev.ID, tt.d.To, got, want)
			}
			if got.Hash != got.ComputeHash() {
				t.Errorf("New(...).Hash = %s, want ComputeHash() = %s", got.Hash, got.ComputeHash())
			}
			if err := Verify([]Receipt{got}); got.Seq == 1 && err != nil {
				t.Errorf("Verify(New(...)) = %v, want nil", err)
			}
		})
	}
}

func TestNewActionsIsEmptyArray(t *testing.T) {
	r := New(billingInstance(0, ""), billingEvent("ev-1"), governor.Decision{Outcome: governor.Accepted, From: "open", To: "open"}, t0)
	if r.Actions == nil {
		t.Fatalf("New(...).Actions = nil, want empty slice")
	}
	if js := string(r.JSON()); !strings.Contains(js, `"actions":[]`) {
		t.Errorf("JSON() = %s, want it to contain \"actions\":[]", js)
	}
	r.Actions = nil
	if js := string(r.JSON()); !strings.Contains(js, `"actions":[]`) {
		t.Errorf("JSON() with nil Actions = %s, want it to contain \"actions\":[]", js)
	}
}

// TestActionIDFormula recomputes action ids from the formula in doc.go.
func TestActionIDFormula(t *testing.T) {
	r := New(billingInstance(6, strings.Repeat("cd", 32)), billingEvent("ev-7"), dunningDecision(), t0)
	field := func(h []byte, s string) []byte {
		h = binary.AppendUvarint(h, uint64(len(s)))
		return append(h, s...)
	}
	for i := range r.Actions {
		var in []byte
		for _, s := range []string{"autonomics.receipt.action.v1", r.TenantID, r.Domain, r.Subject,
			strconv.FormatInt(r.Seq, 10), r.PrevHash, r.ExecutionID, strconv.Itoa(i)} {
			in = field(in, s)
		}
		sum := sha256.Sum256(in)
		want := hex.EncodeToString(sum[:16])
		if got := ActionID(&r, i); got != want {
			t.Errorf("ActionID(r, %d) = %s, want %s", i, got, want)
		}
		if r.Actions[i].ID != want {
			t.Errorf("New(...).Actions[%d].ID = %s, want %s", i, r.Actions[i].ID, want)
		}
	}
}

func TestActionIDDistinct(t *testing.T) {
	base := New(billingInstance(6, strings.Repeat("cd", 32)), billingEvent("ev-7"), dunningDecision(), t0)
	variants := map[string]func(r *Receipt){
		"tenant":       func(r *Receipt) { r.TenantID = "acme2" },
		"domain":       func(r *Receipt) { r.Domain = "subscription" },
		"subject":      func(r *Receipt) { r.Subject = "2026-12" },
		"seq":          func(r *Receipt) { r.Seq++ },
		"prev_hash":    func(r *Receipt) { r.PrevHash = ZeroHash },
		"execution_id": func(r *Receipt) { r.ExecutionID = "ev-8" },
		"boundary":     func(r *Receipt) { r.TenantID, r.Domain = "acmeb", "illing" },
	}
	seen := map[string]string{ActionID(&base, 0): "base/0", ActionID(&base, 1): "base/1"}
	for name, mutate := range variants {
		r := base
		mutate(&r)
		for i := range 2 {
			id := ActionID(&r, i)
			if len(id) != 32 {
				t.Errorf("ActionID(%s, %d) = %q, want 32 hex digits", name, i, id)
			}
			if other, dup := seen[id]; dup {
				t.Errorf("ActionID(%s, %d) = %s, same as %s", name, i, id, other)
			}
			seen[id] = fmt.Sprintf("%s/%d", name, i)
		}
	}
}

// TestGolden pins the wire format and hash of one receipt, so that a change
// to the encoder or to New that would break existing chains is noticed.
func TestGolden(t *testing.T) {
	r := New(billingInstance(0, ""), billingEvent("ev-1"), dunningDecision(), t0)
	const wantJSON = `{"actions":[{"domain":"subscription","id":"743fe4f841a50f9c41d8473bdf1b8f4d","kind":"event","subject":"*","type":"autonomics.subscription.payment_failed"},{"domain":"billing","id":"cb18085ec48e969fd625e827a1eb90a2","kind":"actuate","subject":"2026-11","type":"billing.retry_payment"}],"correlation_id":"ev-1","data_digest":"52b9d52738b411875c8fa0233e4e2cabe4579f9609b84bfc58671eae2055df4e","decided_at":"2026-11-03T08:15:00.123456789Z","domain":"billing","event_source":"//stripe/webhooks","event_type":"autonomics.billing.payment_failed","execution_id":"ev-1","from_state":"invoiced","hash":"HASH","outcome":"accepted","prev_hash":"0000000000000000000000000000000000000000000000000000000000000000","reason":"","seq":1,"subject":"2026-11","tenant_id":"acme","to_state":"dunning"}`
	const wantHash = "975b3f40c20a73e79c4fb273439a2cce05c0c66be11736cfcd758fe8243b6587"
	if got := string(r.JSON()); got != strings.Replace(wantJSON, "HASH", wantHash, 1) {
		t.Errorf("JSON() =\n%s\nwant\n%s", got, strings.Replace(wantJSON, "HASH", wantHash, 1))
	}
	if r.Hash != wantHash {
		t.Errorf("Hash = %s, want %s", r.Hash, wantHash)
	}
	sum := sha256.Sum256(r.Canonical())
	if got := hex.EncodeToString(sum[:]); got != r.Hash {
		t.Errorf("sha256(Canonical()) = %s, want Hash %s", got, r.Hash)
	}
}

func TestDataDigest(t *testing.T) {
	tests := []struct {
		data string
		want string
	}{
		{"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
		{"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
	}
	for _, tt := range tests {
		if got := DataDigest([]byte(tt.data)); got != tt.want {
			t.Errorf("DataDigest(%q) = %s, want %s", tt.data, got, tt.want)
		}
	}
}

func TestZeroHash(t *testing.T) {
	if ZeroHash != strings.Repeat("0", 64) {
		t.Errorf("ZeroHash = %q, want 64 zeros", ZeroHash)
	}
}

// randomString returns a short string drawn from ASCII, escapes, control
// characters and multi-byte UTF-8.
func randomString(rng *rand.Rand) string {
	alphabet := []string{"a", "b", "Z", "0", "-", ".", "_", " ", "\"", "\\", "/", "<", ">", "&", "\n", "\t", "\x01", "\x1f", "\x7f",
		"é", "€", "😂", "\u2028", "\uFFFD", "ö"}
	var b strings.Builder
	for range rng.IntN(12) {
		b.WriteString(alphabet[rng.IntN(len(alphabet))])
	}
	return b.String()
}

// randomChain builds a chain of n receipts of one instance with New, as the
// runtime does: each decision on the snapshot the previous one left.
func randomChain(rng *rand.Rand, key governor.Key, n int) []Receipt {
	inst := governor.Instance{Key: key}
	now := t0
	chain := make([]Receipt, 0, n)
	states := []governor.State{"none", "open", "invoiced", "paid", "dunning", "st-" + governor.State(randomString(rng))}
	for i := range n {
		ev := governor.Event{
			ID:      fmt.Sprintf("ev-%d-%s", i, randomString(rng)),
			Source:  randomString(rng),
			Type:    "autonomics." + string(key.Domain) + "." + randomString(rng),
			Domain:  key.Domain,
			Tenant:  key.Tenant,
			Subject: key.Subject,
			Data:    json.RawMessage(fmt.Sprintf(`{"n":%d,"s":%q}`, rng.IntN(1000), randomString(rng))),
		}
		if rng.IntN(2) == 0 {
			ev.CorrelationID = randomString(rng)
		}
		d := governor.Decision{
			Outcome: governor.Accepted,
			From:    states[rng.IntN(len(states))],
			To:      states[rng.IntN(len(states))],
		}
		if rng.IntN(3) == 0 {
			d.Outcome, d.Reason = governor.Rejected, "no_transition: "+randomString(rng)
		}
		for range rng.IntN(4) {
			kind := governor.KindEvent
			if rng.IntN(2) == 0 {
				kind = governor.KindActuate
			}
			d.Emits = append(d.Emits, governor.Emit{Kind: kind, Type: randomString(rng), Domain: governor.Domains[rng.IntN(8)], Subject: randomString(rng)})
		}
		now = now.Add(time.Duration(rng.Int64N(int64(48 * time.Hour))))
		r := New(inst, ev, d, now)
		chain = append(chain, r)
		inst.Version, inst.LastHash = r.Seq, r.Hash
	}
	return chain
}

func TestTraceID(t *testing.T) {
	ev := billingEvent("ev-1")
	tests := []struct {
		traceparent string
		want        string
	}{
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "4bf92f3577b34da6a3ce929d0e0e4736"},
		{"", ""},
		{"garbage", ""},
		{"00-00000000000000000000000000000000-00f067aa0ba902b7-01", ""},
	}
	for _, tt := range tests {
		ev.TraceParent = tt.traceparent
		r := New(billingInstance(0, ""), ev, dunningDecision(), t0)
		if r.TraceID != tt.want {
			t.Errorf("New(traceparent %q).TraceID = %q, want %q", tt.traceparent, r.TraceID, tt.want)
		}
		back, err := Parse(r.JSON())
		if err != nil || back.TraceID != r.TraceID || back.Hash != r.Hash {
			t.Errorf("Parse(JSON()) = %+v, %v", back, err)
		}
		if err := Verify([]Receipt{r}); err != nil {
			t.Errorf("Verify = %v", err)
		}
		if tt.want == "" && strings.Contains(string(r.JSON()), "trace_id") {
			t.Errorf("JSON() has trace_id without a trace: %s", r.JSON())
		}
	}
	r := New(billingInstance(0, ""), billingEvent("ev-1"), dunningDecision(), t0)
	tampered := strings.Replace(string(r.JSON()), `"to_state"`, `"trace_id":"","to_state"`, 1)
	if _, err := Parse([]byte(tampered)); err == nil {
		t.Errorf("Parse accepted an empty trace_id")
	}
	ev.TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	traced := New(billingInstance(0, ""), ev, dunningDecision(), t0)
	traced.TraceID = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	if err := Verify([]Receipt{traced}); err == nil {
		t.Errorf("Verify accepted a changed trace_id")
	}
}
