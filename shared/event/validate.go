package event

import (
	"fmt"
	"mime"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
)

// idPattern is the pattern of tenant ids and subjects, as error messages
// state it.
const idPattern = "[A-Za-z0-9._-]{1,128}"

// ValidTenant returns an Invalid *fault.Error unless id is a valid
// tenant id: 1–128 characters of [A-Za-z0-9._-], not "." or "..", not
// starting with "__".
func ValidTenant(id string) error {
	if r := idReason(id); r != "" {
		return fault.Errorf(fault.Invalid, "event.ValidTenant", "tenant id %s: %s", quote(id), r)
	}
	return nil
}

// ValidSubject returns an Invalid *fault.Error unless s is a valid
// instance subject: the broadcast subject "*" or a string obeying the
// tenant id rules.
func ValidSubject(s string) error {
	if r := subjectReason(s); r != "" {
		return fault.Errorf(fault.Invalid, "event.ValidSubject", "subject %s: %s", quote(s), r)
	}
	return nil
}

// idReason says what is wrong with a tenant id, or "" when it is valid.
func idReason(s string) string {
	if len(s) == 0 || len(s) > MaxIDLen {
		return fmt.Sprintf("must match %s, got %d characters", idPattern, utf8.RuneCountInString(s))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return "must match " + idPattern
		}
	}
	if s == "." || s == ".." {
		return `must not be "." or ".."`
	}
	if strings.HasPrefix(s, "__") {
		return `must not start with "__"`
	}
	return ""
}

// subjectReason says what is wrong with a subject, or "" when it is valid.
func subjectReason(s string) string {
	if s == governor.BroadcastSubject {
		return ""
	}
	r := idReason(s)
	if rest, ok := strings.CutPrefix(r, "must match "); ok {
		return `must be "*" or match ` + rest
	}
	return r
}

// textReason says what is wrong with a free-text attribute value such as
// an id, or "" when it is valid: it must be non-blank valid UTF-8 of at
// most limit bytes without control characters or surrounding white space
// (which some encoders trim, changing the event's identity).
func textReason(s string, limit int) string {
	switch {
	case len(s) > limit:
		return fmt.Sprintf("is %d bytes, limit %d", len(s), limit)
	case !utf8.ValidString(s):
		return "invalid UTF-8"
	case strings.TrimSpace(s) == "":
		return "must not be empty or blank"
	case strings.IndexFunc(s, unicode.IsControl) >= 0:
		return "must not contain control characters"
	case strings.TrimSpace(s) != s:
		return "must not start or end with white space"
	}
	return ""
}

// sourceReason says what is wrong with a source, or "" when it is valid. A
// source must be a URI-reference in the form url.URL prints it, so that an
// event's (source, id) identity survives every encoding unchanged.
func sourceReason(s string) string {
	if r := textReason(s, MaxTextBytes); r != "" {
		return r
	}
	u, err := url.Parse(s)
	if err != nil || u.String() != s {
		return "must be a URI-reference (RFC 3986) in normalized form"
	}
	return ""
}

// parseType splits an event type autonomics.<domain>.<name>.
func parseType(t string) (governor.Domain, governor.EventName, string) {
	if r := textReason(t, MaxTextBytes); r != "" {
		return "", "", r
	}
	rest, ok := strings.CutPrefix(t, "autonomics.")
	if !ok {
		return "", "", `must have the form autonomics.<domain>.<event>`
	}
	d, name, ok := strings.Cut(rest, ".")
	if !ok {
		return "", "", `must have the form autonomics.<domain>.<event>`
	}
	domain := governor.Domain(d)
	known := false
	for _, k := range governor.Domains {
		if k == domain {
			known = true
			break
		}
	}
	if !known {
		return "", "", "unknown domain " + quote(d)
	}
	if !validEventName(name) {
		return "", "", fmt.Sprintf(`event name %s must match [a-z0-9_]+, optionally prefixed by %q`, quote(name), governor.TimeoutPrefix)
	}
	return domain, governor.EventName(name), ""
}

// validEventName reports whether name is [a-z0-9_]+ with an optional
// "timeout." prefix.
func validEventName(name string) bool {
	name = strings.TrimPrefix(name, governor.TimeoutPrefix)
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// validAttrName reports whether name is a CloudEvents attribute name:
// lowercase ASCII letters and digits, at most 64 of them.
func validAttrName(name string) bool {
	if name == "" || len(name) > 64 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// jsonMediaReason says what is wrong with a datacontenttype, or "" when it
// is application/json, optionally with charset utf-8.
func jsonMediaReason(ct string) string {
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return "not a media type: " + err.Error()
	}
	if mt != "application/json" {
		return "must be application/json"
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return "charset must be utf-8"
	}
	return ""
}

// validTraceParent reports whether s is a W3C trace-context traceparent:
// version-traceid-parentid-flags in lowercase hex, ids not all zero. Later
// versions may append fields after a dash.
func validTraceParent(s string) bool {
	const n = 55
	if len(s) < n || len(s) > 512 || (len(s) > n && (s[:2] == "00" || s[n] != '-')) {
		return false
	}
	for i := 0; i < n; i++ {
		switch i {
		case 2, 35, 52:
			if s[i] != '-' {
				return false
			}
		default:
			c := s[i]
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return false
			}
		}
	}
	return s[:2] != "ff" &&
		s[3:35] != strings.Repeat("0", 32) &&
		s[36:52] != strings.Repeat("0", 16)
}

// quote renders s for an error message, cutting values longer than 64
// bytes so that hostile input cannot flood the logs.
func quote(s string) string {
	const keep = 64
	if len(s) <= keep {
		return strconv.Quote(s)
	}
	cut := keep
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s... (%d bytes)", strconv.Quote(s[:cut]), len(s))
}
