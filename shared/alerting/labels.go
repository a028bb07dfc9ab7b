package alerting

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// Limits on names and labels. They bound memory and keep every name usable
// as a Firestore field or document id.
const (
	MaxMetricNameBytes = 200
	MaxLabels          = 32
	MaxLabelNameBytes  = 100
	MaxLabelValueBytes = 1024
)

// Labels are the label names and values of a series, or the equality
// matchers of a policy or a silence.
type Labels map[string]string

// Names returns the label names, sorted.
func (l Labels) Names() []string {
	names := make([]string, 0, len(l))
	for k := range l {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

// Key returns the canonical form of l: the pairs sorted by name, each
// name=value, separated by 0xff bytes (which valid UTF-8 never contains).
func (l Labels) Key() string {
	if len(l) == 0 {
		return ""
	}
	var b strings.Builder
	for i, k := range l.Names() {
		if i > 0 {
			b.WriteByte(0xff)
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(l[k])
	}
	return b.String()
}

// String renders l as {a="x", b="y"} with names sorted.
func (l Labels) String() string {
	parts := make([]string, 0, len(l))
	for _, k := range l.Names() {
		parts = append(parts, fmt.Sprintf("%s=%q", k, l[k]))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// Clone returns a copy of l; nil stays nil.
func (l Labels) Clone() Labels {
	if l == nil {
		return nil
	}
	c := make(Labels, len(l))
	for k, v := range l {
		c[k] = v
	}
	return c
}

// Matches reports whether every matcher of m has the same value in l.
func (m Labels) Matches(l Labels) bool {
	for k, v := range m {
		if l[k] != v {
			return false
		}
	}
	return true
}

// Fingerprint returns the stable identity of the alert of policy on the
// series with labels: 16 hex digits of the SHA-256 of the policy name and
// the sorted label pairs, each part preceded by its length.
func Fingerprint(policy string, labels Labels) string {
	h := sha256.New()
	writePart := func(s string) {
		var n [8]byte
		l := uint64(len(s))
		for i := range n {
			n[i] = byte(l >> (8 * i))
		}
		h.Write(n[:])
		h.Write([]byte(s))
	}
	writePart(policy)
	for _, k := range labels.Names() {
		writePart(k)
		writePart(labels[k])
	}
	sum := h.Sum(nil)
	return hex.EncodeToString(sum[:8])
}

// metricNameReason says what is wrong with a metric name, or "".
func metricNameReason(name string) string {
	if name == "" {
		return "is empty"
	}
	if len(name) > MaxMetricNameBytes {
		return fmt.Sprintf("is %d bytes, limit %d", len(name), MaxMetricNameBytes)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(isLetter(c) || c == '_' || c == ':' || i > 0 && isDigit(c)) {
			return "must match [a-zA-Z_:][a-zA-Z0-9_:]*"
		}
	}
	return ""
}

// labelNameReason says what is wrong with a label name, or "".
func labelNameReason(name string) string {
	if name == "" {
		return "is empty"
	}
	if len(name) > MaxLabelNameBytes {
		return fmt.Sprintf("is %d bytes, limit %d", len(name), MaxLabelNameBytes)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(isLetter(c) || c == '_' || i > 0 && isDigit(c)) {
			return "must match [a-zA-Z_][a-zA-Z0-9_]*"
		}
	}
	if strings.HasPrefix(name, "__") {
		return `must not start with "__" (reserved)`
	}
	return ""
}

// labelValueReason says what is wrong with a label value, or "".
func labelValueReason(v string) string {
	switch {
	case v == "":
		return "is empty"
	case len(v) > MaxLabelValueBytes:
		return fmt.Sprintf("is %d bytes, limit %d", len(v), MaxLabelValueBytes)
	case !utf8.ValidString(v):
		return "is not valid UTF-8"
	}
	return ""
}

// labelsReason says what is wrong with a label set, or "".
func labelsReason(l Labels) string {
	if len(l) > MaxLabels {
		return fmt.Sprintf("has %d labels, limit %d", len(l), MaxLabels)
	}
	for _, k := range l.Names() {
		if r := labelNameReason(k); r != "" {
			return fmt.Sprintf("name %s %s", quoteInput(k), r)
		}
		if r := labelValueReason(l[k]); r != "" {
			return fmt.Sprintf("%s value %s", k, r)
		}
	}
	return ""
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
