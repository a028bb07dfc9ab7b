package receipt

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/autonomics/autonomics/shared/governor"
)

// ZeroHash is the prev_hash of the first receipt of every chain.
const ZeroHash = "0000000000000000000000000000000000000000000000000000000000000000"

// TimeFormat is the layout of decided_at: RFC 3339, UTC, nanoseconds with
// a fixed width so that the strings sort in time order.
const TimeFormat = "2006-01-02T15:04:05.000000000Z07:00"

// MaxSeq is the largest seq a receipt may carry: the largest integer that
// RFC 8785 numbers represent exactly.
const MaxSeq int64 = 1<<53 - 1

// Action is a message a decision emitted: a cascade event for a governor
// (kind "event") or a command for actuators (kind "actuate").
type Action struct {
	Kind    string `json:"kind"`
	Type    string `json:"type"`
	Domain  string `json:"domain"`
	Subject string `json:"subject"`
	ID      string `json:"id"`
}

// Receipt is the record of one decision on one governor instance.
type Receipt struct {
	TenantID      string   `json:"tenant_id"`
	Domain        string   `json:"domain"`
	Subject       string   `json:"subject"`
	Seq           int64    `json:"seq"`
	ExecutionID   string   `json:"execution_id"`
	EventSource   string   `json:"event_source"`
	EventType     string   `json:"event_type"`
	CorrelationID string   `json:"correlation_id"`
	FromState     string   `json:"from_state"`
	ToState       string   `json:"to_state"`
	Outcome       string   `json:"outcome"`
	Reason        string   `json:"reason"`
	Actions       []Action `json:"actions"`
	DataDigest    string   `json:"data_digest"`
	DecidedAt     string   `json:"decided_at"`
	PrevHash      string   `json:"prev_hash"`
	Hash          string   `json:"hash"`
	// TraceID is the W3C trace id of the decision, so that an auditor can
	// open its trace. It is optional: absent from the JSON when empty.
	TraceID string `json:"trace_id,omitempty"`
}

// New builds the receipt of decision d, taken at now, of event ev on
// instance inst (the snapshot before the decision), and computes its hash.
//
// The instance fields come from inst, or from ev where inst leaves them
// empty (a snapshot of an instance that does not exist yet). seq is
// inst.Version+1 and prev_hash is inst.LastHash, or ZeroHash when
// inst.Version is 0. correlation_id is ev.CorrelationID, or ev.ID for a
// root event; an empty d.From or d.To is recorded as "none". Actions follow
// d.Emits in order, each with its ActionID. decided_at is now in UTC with
// TimeFormat. Strings that are not valid UTF-8 have each bad byte replaced
// by U+FFFD.
func New(inst governor.Instance, ev governor.Event, d governor.Decision, now time.Time) Receipt {
	r := Receipt{
		TenantID:      validUTF8(firstNonEmpty(inst.Tenant, ev.Tenant)),
		Domain:        validUTF8(firstNonEmpty(string(inst.Domain), string(ev.Domain))),
		Subject:       validUTF8(firstNonEmpty(inst.Subject, ev.Subject)),
		Seq:           inst.Version + 1,
		ExecutionID:   validUTF8(ev.ID),
		EventSource:   validUTF8(ev.Source),
		EventType:     validUTF8(ev.Type),
		CorrelationID: validUTF8(firstNonEmpty(ev.CorrelationID, ev.ID)),
		FromState:     validUTF8(firstNonEmpty(string(d.From), string(governor.StateNone))),
		ToState:       validUTF8(firstNonEmpty(string(d.To), string(governor.StateNone))),
		Outcome:       validUTF8(string(d.Outcome)),
		Reason:        validUTF8(d.Reason),
		Actions:       make([]Action, len(d.Emits)),
		DataDigest:    DataDigest(ev.Data),
		DecidedAt:     now.UTC().Format(TimeFormat),
		PrevHash:      validUTF8(inst.LastHash),
		TraceID:       traceIDOf(ev.TraceParent),
	}
	if inst.Version == 0 {
		r.PrevHash = ZeroHash
	}
	// The ids share one allocation.
	var ids strings.Builder
	ids.Grow(32 * len(d.Emits))
	for i := range d.Emits {
		id := actionID(&r, i)
		ids.Write(id[:])
	}
	all := ids.String()
	for i, e := range d.Emits {
		r.Actions[i] = Action{
			Kind:    validUTF8(string(e.Kind)),
			Type:    validUTF8(e.Type),
			Domain:  validUTF8(string(e.Domain)),
			Subject: validUTF8(e.Subject),
			ID:      all[32*i : 32*i+32],
		}
	}
	r.Hash = r.ComputeHash()
	return r
}

// Key returns the governor instance the receipt belongs to.
func (r *Receipt) Key() governor.Key {
	return governor.Key{Tenant: r.TenantID, Domain: governor.Domain(r.Domain), Subject: r.Subject}
}

// DataDigest returns the lowercase hex SHA-256 of an event's data bytes,
// the receipt's data_digest.
func DataDigest(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// ActionID returns the deterministic id of the index-th message emitted by
// the decision of r. It depends only on r's chain position (tenant, domain,
// subject, seq, prev_hash), its execution_id and index, never on r's hash,
// which covers the ids; see the package documentation for the exact input.
func ActionID(r *Receipt, index int) string {
	id := actionID(r, index)
	return string(id[:])
}

// actionIDTag separates action ids from every other SHA-256 use.
const actionIDTag = "autonomics.receipt.action.v1"

// actionID computes ActionID into a fixed array without allocating for
// receipts of ordinary size.
func actionID(r *Receipt, index int) [32]byte {
	var buf [320]byte
	var num [20]byte
	b := appendField(buf[:0], actionIDTag)
	b = appendField(b, r.TenantID)
	b = appendField(b, r.Domain)
	b = appendField(b, r.Subject)
	b = appendFieldBytes(b, strconv.AppendInt(num[:0], r.Seq, 10))
	b = appendField(b, r.PrevHash)
	b = appendField(b, r.ExecutionID)
	b = appendFieldBytes(b, strconv.AppendInt(num[:0], int64(index), 10))
	sum := sha256.Sum256(b)
	var id [32]byte
	hex.Encode(id[:], sum[:16])
	return id
}

func appendField(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendFieldBytes(b, s []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// Canonical returns the RFC 8785 canonical JSON of r without "hash": the
// bytes whose SHA-256 is r's hash.
func (r *Receipt) Canonical() []byte {
	return r.appendJSON(make([]byte, 0, r.sizeHint()), false)
}

// JSON returns the RFC 8785 canonical JSON of r including "hash": the form
// that is published and stored.
func (r *Receipt) JSON() []byte {
	return r.appendJSON(make([]byte, 0, r.sizeHint()+len(r.Hash)+10), true)
}

// ComputeHash returns the lowercase hex SHA-256 of r.Canonical(). New sets
// Hash to it; a receipt is intact when the two agree.
func (r *Receipt) ComputeHash() string {
	var buf [2048]byte
	h, _ := r.hash(buf[:0])
	return string(h[:])
}

// hash computes the hex hash of r, encoding into scratch, and returns the
// scratch buffer for reuse (grown if r did not fit).
func (r *Receipt) hash(scratch []byte) ([64]byte, []byte) {
	b := r.appendJSON(scratch[:0], false)
	sum := sha256.Sum256(b)
	var h [64]byte
	hex.Encode(h[:], sum[:])
	return h, b
}

// MarshalJSON implements json.Marshaler with r.JSON(). It has a value
// receiver so that receipts encode canonically wherever they are embedded.
func (r Receipt) MarshalJSON() ([]byte, error) { return r.JSON(), nil }

// UnmarshalJSON implements json.Unmarshaler with the strict rules of Parse.
func (r *Receipt) UnmarshalJSON(b []byte) error {
	p, err := Parse(b)
	if err != nil {
		return err
	}
	*r = p
	return nil
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// validUTF8 returns s with every byte that is not part of valid UTF-8
// replaced by U+FFFD, as the canonical encoder writes it.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	b := make([]byte, 0, len(s)+8)
	for i := 0; i < len(s); {
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			b = append(b, "\uFFFD"...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return string(b)
}

// traceIDOf returns the trace id of a W3C traceparent, or "".
func traceIDOf(tp string) string {
	// version "-" trace-id "-" parent-id "-" flags
	if len(tp) < 55 || tp[2] != '-' || tp[35] != '-' {
		return ""
	}
	if id := tp[3:35]; isTraceID(id) {
		return id
	}
	return ""
}
