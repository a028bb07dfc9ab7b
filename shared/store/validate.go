package store

import (
	"strings"
	"time"
	"unicode/utf8"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
)

// MaxSeq is the largest receipt seq the store accepts, the largest that
// the Firestore layout's twelve-digit receipt ids keep in order.
const MaxSeq int64 = 999_999_999_999

// CheckID refuses ids that Firestore cannot use as a document id, so that
// both stores accept the same ids.
func CheckID(op, what, id string) error {
	switch {
	case id == "":
		return fault.Errorf(fault.Invalid, op, "empty %s", what)
	case len(id) > 1500:
		return fault.Errorf(fault.Invalid, op, "%s longer than 1500 bytes", what)
	case strings.Contains(id, "/"):
		return fault.Errorf(fault.Invalid, op, "%s %q contains '/'", what, id)
	case id == "." || id == "..":
		return fault.Errorf(fault.Invalid, op, "%s %q is reserved", what, id)
	case len(id) >= 4 && strings.HasPrefix(id, "__") && strings.HasSuffix(id, "__"):
		return fault.Errorf(fault.Invalid, op, "%s %q is reserved", what, id)
	}
	return nil
}

// CheckKey refuses incomplete keys and keys that do not map to document
// ids.
func CheckKey(op string, k governor.Key) error {
	if err := CheckID(op, "tenant id", k.Tenant); err != nil {
		return err
	}
	if k.Domain == "" || k.Subject == "" {
		return fault.Errorf(fault.Invalid, op, "incomplete key %s", k)
	}
	if strings.Contains(string(k.Domain), ":") {
		return fault.Errorf(fault.Invalid, op, "domain %q contains ':'", k.Domain)
	}
	return CheckID(op, "instance id", string(k.Domain)+":"+k.Subject)
}

// CheckChanges validates the changes of a decision and returns the
// receipt's decision time.
func CheckChanges(op string, c *Changes) (time.Time, error) {
	k := c.Instance.Key
	if err := CheckKey(op, k); err != nil {
		return time.Time{}, err
	}
	for name := range c.Instance.Timers {
		if name == "" {
			return time.Time{}, fault.Errorf(fault.Invalid, op, "instance %s has a timer without a name", k)
		}
	}
	r := &c.Receipt
	if r.Key() != k {
		return time.Time{}, fault.Errorf(fault.Invalid, op, "receipt of %s written with instance %s", r.Key(), k)
	}
	if r.Seq < 1 || r.Seq > MaxSeq {
		return time.Time{}, fault.Errorf(fault.Invalid, op, "receipt seq %d outside 1…%d", r.Seq, MaxSeq)
	}
	at, err := time.Parse(time.RFC3339Nano, r.DecidedAt)
	if err != nil {
		return time.Time{}, fault.Errorf(fault.Invalid, op, "receipt decided_at %q: %v", r.DecidedAt, err)
	}
	if d := c.Dedup; d.Source != "" || d.EventID != "" {
		if d.EventID == "" {
			return time.Time{}, fault.Errorf(fault.Invalid, op, "dedup marker without an event id")
		}
		if d.Key != (governor.Key{}) && d.Key != k {
			return time.Time{}, fault.Errorf(fault.Invalid, op, "dedup marker of %s written with instance %s", d.Key, k)
		}
	}
	if len(c.Outbox) > 0 && c.Dedup.EventID == "" {
		return time.Time{}, fault.Errorf(fault.Invalid, op, "outbox entries without a dedup marker to hold them")
	}
	seen := map[string]bool{}
	for _, e := range c.Outbox {
		if err := CheckID(op, "outbox id", e.ID); err != nil {
			return time.Time{}, err
		}
		if seen[e.ID] {
			return time.Time{}, fault.Errorf(fault.Invalid, op, "outbox id %q written twice", e.ID)
		}
		seen[e.ID] = true
	}
	clear(seen)
	for _, e := range c.ArmTimers {
		if err := CheckID(op, "timer id", e.ID); err != nil {
			return time.Time{}, err
		}
		if err := CheckKey(op, e.Key); err != nil {
			return time.Time{}, err
		}
		if seen[e.ID] {
			return time.Time{}, fault.Errorf(fault.Invalid, op, "timer id %q armed twice", e.ID)
		}
		seen[e.ID] = true
	}
	for _, id := range c.CancelTimers {
		if err := CheckID(op, "timer id", id); err != nil {
			return time.Time{}, err
		}
	}
	return at, nil
}

// CheckTenantQuery refuses a tenant query whose prefix or cursor no
// tenant id could start with or be: longer than a document id, not
// UTF-8, or holding a '/'.
func CheckTenantQuery(op string, q TenantQuery) error {
	for _, f := range []struct{ what, v string }{{"prefix", q.Prefix}, {"after", q.After}} {
		switch {
		case len(f.v) > 1500:
			return fault.Errorf(fault.Invalid, op, "tenant %s longer than 1500 bytes", f.what)
		case !utf8.ValidString(f.v):
			return fault.Errorf(fault.Invalid, op, "tenant %s %q is not UTF-8", f.what, f.v)
		case strings.Contains(f.v, "/"):
			return fault.Errorf(fault.Invalid, op, "tenant %s %q contains '/'", f.what, f.v)
		}
	}
	return nil
}

// CheckCorrelationID refuses a correlation id no receipt can carry:
// empty, longer than 1500 bytes or not UTF-8.
func CheckCorrelationID(op, id string) error {
	switch {
	case id == "":
		return fault.Errorf(fault.Invalid, op, "empty correlation id")
	case len(id) > 1500:
		return fault.Errorf(fault.Invalid, op, "correlation id longer than 1500 bytes")
	case !utf8.ValidString(id):
		return fault.Errorf(fault.Invalid, op, "correlation id %q is not UTF-8", id)
	}
	return nil
}

// PrefixEnd returns the least string greater than every string that
// starts with prefix, in byte (and so code point) order, and false when
// there is none (prefix is "" or only U+10FFFF). prefix must be UTF-8.
func PrefixEnd(prefix string) (string, bool) {
	for prefix != "" {
		r, size := utf8.DecodeLastRuneInString(prefix)
		prefix = prefix[:len(prefix)-size]
		switch {
		case r == utf8.MaxRune:
			continue
		case r == 0xD7FF:
			r = 0xE000 // past the surrogates, which UTF-8 cannot hold
		default:
			r++
		}
		return prefix + string(r), true
	}
	return "", false
}
