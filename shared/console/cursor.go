package console

import (
	"encoding/base64"
	"strconv"
	"strings"
	"time"

	"github.com/autonomics/autonomics/shared/fault"
)

// cursorPrefix starts every dead-letter cursor, so that a format change
// can be told apart.
const cursorPrefix = "d1."

// maxCursor bounds a cursor's length.
const maxCursor = 256

// FormatCursor returns the opaque page token of a dead-letter cursor.
func FormatCursor(c DeadLetterCursor) string {
	if c.IsZero() {
		return ""
	}
	raw := strconv.FormatInt(c.ReceivedAt.UnixNano(), 10) + "." + c.ID
	return cursorPrefix + base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// ParseCursor parses a page token FormatCursor returned; "" is the start.
// Anything else is an Invalid error.
func ParseCursor(s string) (DeadLetterCursor, error) {
	const op = "console.ParseCursor"
	if s == "" {
		return DeadLetterCursor{}, nil
	}
	bad := fault.Errorf(fault.Invalid, op, "page token %s is not one the console handed out", quote(s))
	rest, ok := strings.CutPrefix(s, cursorPrefix)
	if !ok || len(s) > maxCursor {
		return DeadLetterCursor{}, bad
	}
	raw, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil {
		return DeadLetterCursor{}, bad
	}
	ns, id, ok := strings.Cut(string(raw), ".")
	if !ok || ns == "" || ns[0] == '+' || ns[0] == '-' {
		return DeadLetterCursor{}, bad
	}
	n, err := strconv.ParseInt(ns, 10, 64)
	if err != nil || ValidID("id", id) != nil || strconv.FormatInt(n, 10) != ns {
		return DeadLetterCursor{}, bad
	}
	c := DeadLetterCursor{ReceivedAt: time.Unix(0, n).UTC(), ID: id}
	if FormatCursor(c) != s {
		return DeadLetterCursor{}, bad
	}
	return c, nil
}
