package usage

import (
	"context"
	"time"

	"github.com/autonomics/autonomics/shared/fault"
)

// Limits of what a cursor and the stores keep.
const (
	// MaxPending bounds the windows a cursor keeps waiting to be
	// reported. Past it no new window is opened: the next one, once the
	// backlog drains, spans the whole gap.
	MaxPending = 24
	// MaxCursors bounds the cursors Cursors returns for one entitlement:
	// one per quota metric.
	MaxCursors = 1000
)

// Window is one reporting interval of one (entitlement, metric), written
// as an intent before it is sent. Once written it is sent unchanged until
// it is marked done: a resent operation carries the same OperationID, and
// Service Control counts it once.
type Window struct {
	// Start and End bound the interval [Start, End).
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Value is the usage of the interval, the delta of the cumulative
	// usage since the window before.
	Value int64 `json:"value"`
	// Usage is the cumulative usage of the quota period when the window
	// was recorded: the baseline of the next window.
	Usage int64 `json:"usage"`
	// OperationID is the UUIDv5 of (entitlement, metric, Start).
	OperationID string `json:"operation_id"`
	// ConsumerID is the entitlement's usage reporting id.
	ConsumerID string `json:"consumer_id"`
	// MetricName is the Service Control metric name.
	MetricName string `json:"metric_name"`
	// RecordedAt is when the intent was written.
	RecordedAt time.Time `json:"recorded_at"`
}

// Cursor is where the reporting of one (entitlement, metric) stands: the
// end of the last window reported, the cumulative usage it reported up to,
// and the windows recorded but not yet confirmed.
type Cursor struct {
	Entitlement string `json:"entitlement"`
	Metric      string `json:"metric"`
	Tenant      string `json:"tenant"`
	// End is the end of the last window reported; at first sight, the
	// hour boundary the first window starts at.
	End time.Time `json:"end"`
	// Usage is the cumulative usage the last reported window ended with.
	Usage int64 `json:"usage"`
	// Pending are the windows recorded but not yet marked done, oldest
	// first, contiguous from End; at most MaxPending.
	Pending []Window `json:"pending,omitempty"`
	// Version is 1 for a new cursor and grows by one with every write:
	// PutCursor writes a cursor only over the version before it.
	Version   int64     `json:"version"`
	FirstSeen time.Time `json:"first_seen"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Next returns where the next new window starts and the cumulative usage
// it is measured from: the end and usage of the last pending window, or
// the cursor's own.
func (c Cursor) Next() (time.Time, int64) {
	if n := len(c.Pending); n > 0 {
		return c.Pending[n-1].End, c.Pending[n-1].Usage
	}
	return c.End, c.Usage
}

// Block records that Service Control's check refused an entitlement's
// consumer and that usage_blocked was published for it.
type Block struct {
	Entitlement string `json:"entitlement"`
	Tenant      string `json:"tenant"`
	// Code is the first check error's code, e.g. BILLING_DISABLED.
	Code string `json:"code"`
	// Reason is the reason published with usage_blocked.
	Reason string `json:"reason"`
	// WindowStart is the start of the window whose check failed.
	WindowStart time.Time `json:"window_start"`
	Since       time.Time `json:"since"`
}

// WindowStore keeps the reporter's cursors and blocks. Every method
// returns *fault.Error values: Conflict when PutCursor finds another
// version, Invalid for a record that is not one, Unavailable for transient
// storage faults.
type WindowStore interface {
	// Cursor returns the cursor of (entitlement, metric); false when there
	// is none.
	Cursor(ctx context.Context, entitlement, metric string) (Cursor, bool, error)
	// Cursors returns the cursors of an entitlement in metric order, at
	// most MaxCursors.
	Cursors(ctx context.Context, entitlement string) ([]Cursor, error)
	// PutCursor writes c when the stored cursor's version is c.Version-1
	// (no cursor counting as version 0), and is a Conflict otherwise.
	PutCursor(ctx context.Context, c Cursor) error
	// Block returns the block of an entitlement; false when there is none.
	Block(ctx context.Context, entitlement string) (Block, bool, error)
	// PutBlock writes b, replacing the entitlement's block if any.
	PutBlock(ctx context.Context, b Block) error
	// DeleteBlock removes an entitlement's block; removing none is not an
	// error.
	DeleteBlock(ctx context.Context, entitlement string) error
}

// ValidCursor returns an Invalid error unless c can be stored: ids that
// are subjects, a positive version, at most MaxPending contiguous pending
// windows from End, each with an operation id.
func ValidCursor(c Cursor) error {
	const op = "usage.ValidCursor"
	if !validID(c.Entitlement) || !validID(c.Metric) || !validID(c.Tenant) {
		return fault.Errorf(fault.Invalid, op, "cursor %q/%q of tenant %q: ids must be 1-128 of [A-Za-z0-9._-]", c.Entitlement, c.Metric, c.Tenant)
	}
	if c.Version < 1 {
		return fault.Errorf(fault.Invalid, op, "cursor %s~%s: version %d, want ≥ 1", c.Entitlement, c.Metric, c.Version)
	}
	if len(c.Pending) > MaxPending {
		return fault.Errorf(fault.Invalid, op, "cursor %s~%s: %d pending windows, limit %d", c.Entitlement, c.Metric, len(c.Pending), MaxPending)
	}
	at := c.End
	for i, w := range c.Pending {
		if !w.Start.Equal(at) || !w.End.After(w.Start) || w.OperationID == "" || w.Value < 0 || w.Usage < 0 {
			return fault.Errorf(fault.Invalid, op, "cursor %s~%s: pending window %d is not contiguous, empty or unnamed", c.Entitlement, c.Metric, i)
		}
		at = w.End
	}
	return nil
}

// validID reports whether s obeys the subject syntax: 1–128 of
// [A-Za-z0-9._-], not "." or "..", not starting with "__". Such ids are
// safe in document ids joined by "~".
func validID(s string) bool {
	if len(s) == 0 || len(s) > 128 || s == "." || s == ".." || (len(s) >= 2 && s[:2] == "__") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// ValidID reports whether s may name an entitlement, a metric or a tenant
// in a WindowStore.
func ValidID(s string) bool { return validID(s) }
