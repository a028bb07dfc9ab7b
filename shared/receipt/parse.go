package receipt

import (
	"fmt"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/autonomics/autonomics/shared/fault"
)

// Parse decodes the JSON of one receipt. It accepts any whitespace and
// member order, and refuses, with a fault.Invalid error, anything that
// is not exactly a receipt: unknown, missing or duplicate members, nulls,
// floats, values of the wrong type, seq outside 1…MaxSeq, lone surrogate
// escapes, invalid UTF-8 and trailing data. Parse does not check the hash;
// Verify or ComputeHash does.
func Parse(b []byte) (Receipt, error) {
	p := parser{b: string(b)}
	r, err := p.receipt()
	if err != nil {
		return Receipt{}, fault.Errorf(fault.Invalid, "receipt.Parse", "%v", err)
	}
	return r, nil
}

// parser is a strict recursive-descent parser for the receipt schema. It
// works on one string copy of the input, so that member names and values
// without escapes are substrings of it rather than allocations of their own.
type parser struct {
	b string
	i int
}

// parseError is an error at an input offset.
type parseError struct {
	off int
	msg string
}

func (e *parseError) Error() string { return fmt.Sprintf("offset %d: %s", e.off, e.msg) }

func (p *parser) fail(format string, args ...any) error {
	return &parseError{off: p.i, msg: fmt.Sprintf(format, args...)}
}

func (p *parser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// expect skips whitespace and consumes c.
func (p *parser) expect(c byte) error {
	p.ws()
	if p.i >= len(p.b) {
		return p.fail("unexpected end of input, want %q", c)
	}
	if p.b[p.i] != c {
		return p.fail("unexpected %s, want %q", p.describe(), c)
	}
	p.i++
	return nil
}

// describe names the value starting at the current offset, for errors.
func (p *parser) describe() string {
	if p.i >= len(p.b) {
		return "end of input"
	}
	switch c := p.b[p.i]; {
	case c == 'n':
		return "null (nulls are not allowed)"
	case c == 't' || c == 'f':
		return "boolean"
	case c == '"':
		return "string"
	case c == '{':
		return "object"
	case c == '[':
		return "array"
	case c == '-' || c >= '0' && c <= '9':
		for _, d := range p.b[p.i:] {
			switch d {
			case '.', 'e', 'E':
				return "float (floats are not allowed)"
			case '-', '+', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
				continue
			}
			return "number"
		}
		return "number"
	default:
		return fmt.Sprintf("character %q", c)
	}
}

// members parses an object, calling member for each name once the name
// and colon are consumed; member must consume the value.
func (p *parser) members(member func(name string) error) error {
	if err := p.expect('{'); err != nil {
		return err
	}
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == '}' {
		p.i++
		return nil
	}
	for {
		p.ws()
		if p.i >= len(p.b) || p.b[p.i] != '"' {
			return p.fail("unexpected %s, want a member name", p.describe())
		}
		name, err := p.str()
		if err != nil {
			return err
		}
		if err := p.expect(':'); err != nil {
			return err
		}
		if err := member(name); err != nil {
			return err
		}
		p.ws()
		if p.i >= len(p.b) {
			return p.fail("unexpected end of input in object")
		}
		switch p.b[p.i] {
		case ',':
			p.i++
		case '}':
			p.i++
			return nil
		default:
			return p.fail("unexpected %s, want ',' or '}'", p.describe())
		}
	}
}

// field bits of the receipt members, for duplicate and missing checks.
var receiptFields = [...]string{
	"tenant_id", "domain", "subject", "seq", "execution_id", "event_source",
	"event_type", "correlation_id", "from_state", "to_state", "outcome",
	"reason", "actions", "data_digest", "decided_at", "prev_hash", "hash",
	"trace_id",
}

// optionalReceiptFields marks the members a receipt may omit: trace_id.
const optionalReceiptFields uint32 = 1 << 17

var actionFields = [...]string{"kind", "type", "domain", "subject", "id"}

func (p *parser) receipt() (Receipt, error) {
	var r Receipt
	var seen uint32
	err := p.members(func(name string) error {
		var dst *string
		bit := -1
		for i, f := range receiptFields {
			if f == name {
				bit = i
				break
			}
		}
		if bit < 0 {
			return p.fail("unknown member %q", name)
		}
		if seen&(1<<bit) != 0 {
			return p.fail("duplicate member %q", name)
		}
		seen |= 1 << bit
		switch name {
		case "tenant_id":
			dst = &r.TenantID
		case "domain":
			dst = &r.Domain
		case "subject":
			dst = &r.Subject
		case "execution_id":
			dst = &r.ExecutionID
		case "event_source":
			dst = &r.EventSource
		case "event_type":
			dst = &r.EventType
		case "correlation_id":
			dst = &r.CorrelationID
		case "from_state":
			dst = &r.FromState
		case "to_state":
			dst = &r.ToState
		case "outcome":
			dst = &r.Outcome
		case "reason":
			dst = &r.Reason
		case "data_digest":
			dst = &r.DataDigest
		case "decided_at":
			dst = &r.DecidedAt
		case "prev_hash":
			dst = &r.PrevHash
		case "hash":
			dst = &r.Hash
		case "trace_id":
			if err := p.stringValue(&r.TraceID, -1, name); err != nil {
				return err
			}
			if !isTraceID(r.TraceID) {
				return p.fail("trace_id %q is not 32 lowercase hex digits", r.TraceID)
			}
			return nil
		case "seq":
			n, err := p.seq()
			r.Seq = n
			return err
		case "actions":
			a, err := p.actions()
			r.Actions = a
			return err
		}
		return p.stringValue(dst, -1, name)
	})
	if err != nil {
		return Receipt{}, err
	}
	if err := missing(seen|optionalReceiptFields, receiptFields[:], -1); err != nil {
		return Receipt{}, err
	}
	p.ws()
	if p.i != len(p.b) {
		return Receipt{}, p.fail("trailing data after the receipt")
	}
	return r, nil
}

func (p *parser) actions() ([]Action, error) {
	p.ws()
	if err := p.expect('['); err != nil {
		return nil, fmt.Errorf("actions: %w", err)
	}
	out := []Action{}
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == ']' {
		p.i++
		return out, nil
	}
	for {
		a, err := p.action(len(out))
		if err != nil {
			return nil, err
		}
		out = append(out, a)
		p.ws()
		if p.i >= len(p.b) {
			return nil, p.fail("unexpected end of input in actions")
		}
		switch p.b[p.i] {
		case ',':
			p.i++
		case ']':
			p.i++
			return out, nil
		default:
			return nil, p.fail("unexpected %s, want ',' or ']'", p.describe())
		}
	}
}

func (p *parser) action(index int) (Action, error) {
	var a Action
	var seen uint32
	err := p.members(func(name string) error {
		var dst *string
		switch name {
		case "kind":
			dst = &a.Kind
		case "type":
			dst = &a.Type
		case "domain":
			dst = &a.Domain
		case "subject":
			dst = &a.Subject
		case "id":
			dst = &a.ID
		default:
			return p.fail("actions[%d]: unknown member %q", index, name)
		}
		for bit, f := range actionFields {
			if f == name {
				if seen&(1<<bit) != 0 {
					return p.fail("actions[%d]: duplicate member %q", index, name)
				}
				seen |= 1 << bit
			}
		}
		return p.stringValue(dst, index, name)
	})
	if err != nil {
		return Action{}, err
	}
	return a, missing(seen, actionFields[:], index)
}

// missing reports the first field whose bit is not set in seen, of the
// index-th action when index is not negative.
func missing(seen uint32, fields []string, index int) error {
	for i, f := range fields {
		if seen&(1<<i) == 0 {
			if index >= 0 {
				return fmt.Errorf("actions[%d]: missing member %q", index, f)
			}
			return fmt.Errorf("receipt: missing member %q", f)
		}
	}
	return nil
}

// stringValue parses the string value of member name, of the index-th
// action when index is not negative.
func (p *parser) stringValue(dst *string, index int, name string) error {
	p.ws()
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		if index >= 0 {
			name = fmt.Sprintf("actions[%d].%s", index, name)
		}
		return p.fail("%s: unexpected %s, want a string", name, p.describe())
	}
	s, err := p.str()
	*dst = s
	return err
}

// seq parses a JSON integer in 1…MaxSeq.
func (p *parser) seq() (int64, error) {
	p.ws()
	start := p.i
	if p.i < len(p.b) && p.b[p.i] == '-' {
		p.i++
	}
	digits := p.i
	var n int64
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		if n <= MaxSeq {
			n = n*10 + int64(p.b[p.i]-'0')
		}
		p.i++
	}
	switch {
	case p.i == digits:
		p.i = start
		return 0, p.fail("seq: unexpected %s, want an integer", p.describe())
	case p.i < len(p.b) && (p.b[p.i] == '.' || p.b[p.i] == 'e' || p.b[p.i] == 'E'):
		p.i = start
		return 0, p.fail("seq: unexpected float (floats are not allowed)")
	case p.b[digits] == '0' && p.i-digits > 1:
		p.i = start
		return 0, p.fail("seq: leading zero")
	case start != digits || n < 1 || n > MaxSeq:
		text := string(p.b[start:p.i])
		p.i = start
		return 0, p.fail("seq: %s outside 1…%d", text, MaxSeq)
	}
	return n, nil
}

// str parses a JSON string starting at '"'. It refuses control
// characters, unknown escapes, lone surrogates and invalid UTF-8.
func (p *parser) str() (string, error) {
	p.i++ // opening quote
	start := p.i
	// Fast path: no escapes.
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			s := p.b[start:p.i]
			p.i++
			return s, nil
		case c == '\\':
			return p.strSlow(start)
		case c < 0x20:
			return "", p.fail("control character %#02x in string", c)
		case c < utf8.RuneSelf:
			p.i++
		default:
			r, size := utf8.DecodeRuneInString(p.b[p.i:])
			if r == utf8.RuneError && size == 1 {
				return "", p.fail("invalid UTF-8 in string")
			}
			p.i += size
		}
	}
	return "", p.fail("unterminated string")
}

// strSlow continues a string with escapes from offset start.
func (p *parser) strSlow(start int) (string, error) {
	out := append(make([]byte, 0, p.i-start+16), p.b[start:p.i]...)
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			return string(out), nil
		case c == '\\':
			if p.i+1 >= len(p.b) {
				return "", p.fail("unterminated escape")
			}
			e := p.b[p.i+1]
			p.i += 2
			switch e {
			case '"', '\\', '/':
				out = append(out, e)
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				r, err := p.hex4()
				if err != nil {
					return "", err
				}
				if utf16.IsSurrogate(r) {
					if r >= 0xDC00 {
						return "", p.fail("lone low surrogate \\u%04x", r)
					}
					if p.i+1 >= len(p.b) || p.b[p.i] != '\\' || p.b[p.i+1] != 'u' {
						return "", p.fail("lone high surrogate \\u%04x", r)
					}
					p.i += 2
					lo, err := p.hex4()
					if err != nil {
						return "", err
					}
					if lo < 0xDC00 || lo > 0xDFFF {
						return "", p.fail("high surrogate \\u%04x followed by \\u%04x", r, lo)
					}
					r = utf16.DecodeRune(r, lo)
				}
				out = utf8.AppendRune(out, r)
			default:
				return "", p.fail("unknown escape \\%c", e)
			}
		case c < 0x20:
			return "", p.fail("control character %#02x in string", c)
		case c < utf8.RuneSelf:
			out = append(out, c)
			p.i++
		default:
			r, size := utf8.DecodeRuneInString(p.b[p.i:])
			if r == utf8.RuneError && size == 1 {
				return "", p.fail("invalid UTF-8 in string")
			}
			out = append(out, p.b[p.i:p.i+size]...)
			p.i += size
		}
	}
	return "", p.fail("unterminated string")
}

// hex4 parses the four hex digits of a \u escape.
func (p *parser) hex4() (rune, error) {
	if p.i+4 > len(p.b) {
		return 0, p.fail("short \\u escape")
	}
	var r rune
	for _, c := range p.b[p.i : p.i+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, p.fail("bad \\u escape")
		}
	}
	p.i += 4
	return r, nil
}

// isTraceID reports whether s is a W3C trace id: 32 lowercase hex digits,
// not all zero.
func isTraceID(s string) bool {
	if len(s) != 32 || s == "00000000000000000000000000000000" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
