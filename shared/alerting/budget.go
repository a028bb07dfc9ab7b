package alerting

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/autonomics/autonomics/shared/fault"
)

// Limit names one bound of what a request may cost the monitor. Input
// refused for exceeding a bound is a fault.Invalid *fault.Error that
// wraps the Limit, so that a transport can tell which bound was hit
// (LimitOf) and answer accordingly: a request too large (LimitBodyBytes,
// LimitPoints, LimitRequestLabelBytes, LimitSeriesLabelBytes) differs from
// a capacity that is full for now (LimitConcurrency).
type Limit string

// The bounds of a request.
const (
	// LimitBodyBytes bounds the body of one request.
	LimitBodyBytes Limit = "body_bytes"
	// LimitPoints bounds the points of one request.
	LimitPoints Limit = "request_points"
	// LimitRequestLabelBytes bounds the name and label bytes of all the
	// points of one request together.
	LimitRequestLabelBytes Limit = "request_label_bytes"
	// LimitSeriesLabelBytes bounds the name and label bytes of one series.
	LimitSeriesLabelBytes Limit = "series_label_bytes"
	// LimitConcurrency bounds the requests read and decoded at once.
	LimitConcurrency Limit = "concurrent_requests"
)

// Error makes a Limit an error that a *fault.Error can wrap.
func (l Limit) Error() string { return string(l) + " limit exceeded" }

// TooLarge reports whether the limit is one of a single request's size
// rather than of a capacity that frees up shortly.
func (l Limit) TooLarge() bool {
	switch l {
	case LimitBodyBytes, LimitPoints, LimitRequestLabelBytes, LimitSeriesLabelBytes:
		return true
	}
	return false
}

// LimitOf returns the limit err reports exceeding, if it does.
func LimitOf(err error) (Limit, bool) {
	var l Limit
	if errors.As(err, &l) {
		return l, true
	}
	return "", false
}

// LimitError returns the fault.Invalid error of op refusing input over
// limit l, with a formatted message.
func LimitError(l Limit, op, format string, args ...any) error {
	return &fault.Error{Code: fault.Invalid, Op: op, Message: fmt.Sprintf(format, args...), Err: l}
}

// labelBytes returns the bytes of a series' name, label names and values.
func labelBytes(name string, l Labels) int {
	n := len(name)
	for k, v := range l {
		n += len(k) + len(v)
	}
	return n
}

// maxEcho bounds how much of a caller's input an error message quotes.
const maxEcho = 64

// quoteInput quotes input for an error message, truncated to maxEcho
// bytes.
func quoteInput(s string) string { return strconv.Quote(truncate(s, maxEcho)) }

// truncate cuts s to at most n bytes on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
