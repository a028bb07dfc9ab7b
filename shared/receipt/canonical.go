package receipt

import (
	"strconv"
	"unicode/utf8"
)

// The member names of a receipt and of an action, each with its opening
// separator, in RFC 8785 order (sorted by UTF-16 code units, which for
// ASCII names is byte order). TestMemberOrder pins the order.
const (
	kActions       = `{"actions":[`
	kCorrelationID = `],"correlation_id":`
	kDataDigest    = `,"data_digest":`
	kDecidedAt     = `,"decided_at":`
	kDomain        = `,"domain":`
	kEventSource   = `,"event_source":`
	kEventType     = `,"event_type":`
	kExecutionID   = `,"execution_id":`
	kFromState     = `,"from_state":`
	kHash          = `,"hash":`
	kOutcome       = `,"outcome":`
	kPrevHash      = `,"prev_hash":`
	kReason        = `,"reason":`
	kSeq           = `,"seq":`
	kSubject       = `,"subject":`
	kTenantID      = `,"tenant_id":`
	kToState       = `,"to_state":`
	kTraceID       = `,"trace_id":`

	kActionDomain  = `{"domain":`
	kActionID      = `,"id":`
	kActionKind    = `,"kind":`
	kActionSubject = `,"subject":`
	kActionType    = `,"type":`
)

// appendJSON appends the canonical JSON of r to dst, with the "hash"
// member when withHash is set.
func (r *Receipt) appendJSON(dst []byte, withHash bool) []byte {
	dst = append(dst, kActions...)
	for i := range r.Actions {
		a := &r.Actions[i]
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, kActionDomain...)
		dst = appendString(dst, a.Domain)
		dst = append(dst, kActionID...)
		dst = appendString(dst, a.ID)
		dst = append(dst, kActionKind...)
		dst = appendString(dst, a.Kind)
		dst = append(dst, kActionSubject...)
		dst = appendString(dst, a.Subject)
		dst = append(dst, kActionType...)
		dst = appendString(dst, a.Type)
		dst = append(dst, '}')
	}
	dst = append(dst, kCorrelationID...)
	dst = appendString(dst, r.CorrelationID)
	dst = append(dst, kDataDigest...)
	dst = appendString(dst, r.DataDigest)
	dst = append(dst, kDecidedAt...)
	dst = appendString(dst, r.DecidedAt)
	dst = append(dst, kDomain...)
	dst = appendString(dst, r.Domain)
	dst = append(dst, kEventSource...)
	dst = appendString(dst, r.EventSource)
	dst = append(dst, kEventType...)
	dst = appendString(dst, r.EventType)
	dst = append(dst, kExecutionID...)
	dst = appendString(dst, r.ExecutionID)
	dst = append(dst, kFromState...)
	dst = appendString(dst, r.FromState)
	if withHash {
		dst = append(dst, kHash...)
		dst = appendString(dst, r.Hash)
	}
	dst = append(dst, kOutcome...)
	dst = appendString(dst, r.Outcome)
	dst = append(dst, kPrevHash...)
	dst = appendString(dst, r.PrevHash)
	dst = append(dst, kReason...)
	dst = appendString(dst, r.Reason)
	dst = append(dst, kSeq...)
	dst = strconv.AppendInt(dst, r.Seq, 10)
	dst = append(dst, kSubject...)
	dst = appendString(dst, r.Subject)
	dst = append(dst, kTenantID...)
	dst = appendString(dst, r.TenantID)
	dst = append(dst, kToState...)
	dst = appendString(dst, r.ToState)
	if r.TraceID != "" {
		dst = append(dst, kTraceID...)
		dst = appendString(dst, r.TraceID)
	}
	return append(dst, '}')
}

// sizeHint estimates the length of r's canonical JSON without "hash"; it is
// exact unless strings need escaping.
func (r *Receipt) sizeHint() int {
	n := len(kActions) + len(kCorrelationID) + len(kDataDigest) + len(kDecidedAt) +
		len(kDomain) + len(kEventSource) + len(kEventType) + len(kExecutionID) +
		len(kFromState) + len(kOutcome) + len(kPrevHash) + len(kReason) + len(kSeq) +
		len(kSubject) + len(kTenantID) + len(kToState) + 1 + 20 + 2*15 +
		len(r.CorrelationID) + len(r.DataDigest) + len(r.DecidedAt) + len(r.Domain) +
		len(r.EventSource) + len(r.EventType) + len(r.ExecutionID) + len(r.FromState) +
		len(r.Outcome) + len(r.PrevHash) + len(r.Reason) + len(r.Subject) +
		len(r.TenantID) + len(r.ToState) + len(kTraceID) + 2 + len(r.TraceID)
	for i := range r.Actions {
		a := &r.Actions[i]
		n += 1 + len(kActionDomain) + len(kActionID) + len(kActionKind) + len(kActionSubject) +
			len(kActionType) + 1 + 2*5 +
			len(a.Domain) + len(a.ID) + len(a.Kind) + len(a.Subject) + len(a.Type)
	}
	return n
}

// plain marks the ASCII bytes a JSON string carries verbatim.
var plain = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string the way ECMAScript
// JSON.stringify (and so RFC 8785) writes it. Bytes that are not part of
// valid UTF-8 are written as U+FFFD.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if plain[c] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, "\uFFFD"...)
			i++
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
