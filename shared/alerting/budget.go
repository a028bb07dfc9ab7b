package alerting

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/autonomics/autonomics/shared/governor"
)

// Limit names one bound of the monitor's memory budget. Input refused for
// exceeding a bound is a governor.Invalid *governor.Error that wraps the
// Limit, so that a transport can tell which bound was hit (LimitOf) and
// answer accordingly: a request too large (LimitBodyBytes, LimitPoints,
// LimitRequestLabelBytes, LimitSeriesLabelBytes) differs from a budget that
// is full for now (LimitSeries, LimitSourceShare, LimitReservedSeries).
type Limit string

// The bounds of the memory budget.
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
	// LimitSeries bounds the pushed series of all sources together, by
	// number and by estimated memory.
	LimitSeries Limit = "series"
	// LimitSourceShare bounds the part of the series budget one source
	// may hold.
	LimitSourceShare Limit = "source_share"
	// LimitReservedSeries bounds the series of the reserved (receipt
	// derived) metrics.
	LimitReservedSeries Limit = "reserved_series"
	// LimitConcurrency bounds the requests read and decoded at once.
	LimitConcurrency Limit = "concurrent_requests"
)

// Error makes a Limit an error that a *governor.Error can wrap.
func (l Limit) Error() string { return string(l) + " limit exceeded" }

// TooLarge reports whether the limit is one of a single request's size
// rather than of a budget that frees up when series expire.
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

// LimitError returns the governor.Invalid error of op refusing input over
// limit l, with a formatted message.
func LimitError(l Limit, op, format string, args ...any) error {
	return &governor.Error{Code: governor.Invalid, Op: op, Message: fmt.Sprintf(format, args...), Err: l}
}

// Estimated memory of the series index, in bytes. SeriesCost and the
// budget's accounting use them; TestSeriesCostCoversMemory holds them to
// the heap the index really takes, so that the budget bounds memory and
// not merely a count.
const (
	// seriesBaseCost covers a series' own record, its entries in the
	// metric's index and list, and size-class rounding.
	seriesBaseCost = 320
	// labelCost covers one label of a series: its name and value string
	// headers and its entry in the postings index, which is a map entry
	// and a list of its own when the name=value pair is new.
	labelCost = 176
	// metricCost covers one metric name's index (three maps).
	metricCost = 640
	// sourceCost covers one source's accounting record.
	sourceCost = 256
	// pointCost is one point of a series' history.
	pointCost = 16
)

// labelBytes returns the bytes of a series' name, label names and values.
func labelBytes(name string, l Labels) int {
	n := len(name)
	for k, v := range l {
		n += len(k) + len(v)
	}
	return n
}

// SeriesCost returns the estimated memory, in bytes, that a new series of
// metric name with labels takes in a SeriesSet, with room for historyPoints
// points of history. The series' label bytes are stored once.
func SeriesCost(name string, labels Labels, historyPoints int) int64 {
	// The key: name=value pairs joined by one separator byte.
	bytes := labelBytes(name, labels) - len(name) + 2*len(labels)
	// Strings are allocated in size classes up to 1/8 larger.
	return int64(seriesBaseCost + labelCost*len(labels) + bytes + bytes/8 + pointCost*historyPoints)
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
