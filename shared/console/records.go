package console

import (
	"context"
	"strings"
	"time"

	"github.com/autonomics/autonomics/shared/fault"
)

// Records keeps what the console receives and sees: the dead letters
// pushed to it and the distinct ledger checkpoints it has read. Adapters
// (MemoryRecords here, fsconsole in the monitor's Firestore database)
// prove themselves with the conformance suite of consoletest.
type Records interface {
	// PutDeadLetter records d under d.ID; recording an id again changes
	// nothing and reports created false.
	PutDeadLetter(ctx context.Context, d DeadLetter) (created bool, err error)
	// DeadLetter returns the dead letter with that id; NotFound when none.
	DeadLetter(ctx context.Context, id string) (DeadLetter, error)
	// DeadLetters returns up to q.Limit dead letters, newest received
	// first, after the cursor q.After (the first page when zero).
	DeadLetters(ctx context.Context, q DeadLetterQuery) ([]DeadLetter, error)
	// MarkReplayed records a replay of the dead letter id; NotFound when
	// none.
	MarkReplayed(ctx context.Context, id string, r Replay) error
	// PutCheckpoint records a checkpoint unless one of the same size and
	// root is recorded.
	PutCheckpoint(ctx context.Context, c CheckpointRecord) (created bool, err error)
	// Checkpoints returns up to limit checkpoints, largest tree first.
	Checkpoints(ctx context.Context, limit int) ([]CheckpointRecord, error)
	// Prune deletes, a bounded batch per call, the dead letters received
	// before now minus the retention and those beyond the maximum count
	// (oldest first), and checkpoints beyond their maximum count
	// (smallest first).
	Prune(ctx context.Context, now time.Time) error
}

// RecordLimits bound what a Records keeps. Zero fields take the defaults
// of DefaultRecordLimits.
type RecordLimits struct {
	Retention      time.Duration
	MaxDeadLetters int
	MaxCheckpoints int
}

// DefaultRecordLimits are the record limits of zero fields.
var DefaultRecordLimits = RecordLimits{Retention: 30 * 24 * time.Hour, MaxDeadLetters: 10_000, MaxCheckpoints: 1000}

// WithDefaults returns l with zero fields set to their defaults.
func (l RecordLimits) WithDefaults() RecordLimits {
	if l.Retention <= 0 {
		l.Retention = DefaultRecordLimits.Retention
	}
	if l.MaxDeadLetters <= 0 {
		l.MaxDeadLetters = DefaultRecordLimits.MaxDeadLetters
	}
	if l.MaxCheckpoints <= 0 {
		l.MaxCheckpoints = DefaultRecordLimits.MaxCheckpoints
	}
	return l
}

// PruneBatch bounds the documents one Prune call deletes of each kind.
const PruneBatch = 500

// DeadLetter is a message of the dead-letter topic as the console keeps
// it: the message, what the dead-lettering component said about it, and
// whether it may be replayed.
type DeadLetter struct {
	// ID is the message id of the dead-letter message.
	ID          string    `json:"id"`
	ReceivedAt  time.Time `json:"received_at"`
	PublishTime time.Time `json:"publish_time,omitzero"`
	// Reason, Code and Domain are the dead-letter attributes: why, the
	// error code and the component (a governor domain, "actuator",
	// "marketplace", "monitor") that refused the message.
	Reason string `json:"reason"`
	Code   string `json:"code"`
	Domain string `json:"domain"`
	// Type, Tenant, Subject, Source and EventID are read from the
	// message's CloudEvents attributes, when it has them.
	Type       string            `json:"type"`
	Tenant     string            `json:"tenant"`
	Subject    string            `json:"subject,omitempty"`
	Source     string            `json:"source,omitempty"`
	EventID    string            `json:"event_id,omitempty"`
	Attributes map[string]string `json:"attributes"`
	Data       []byte            `json:"data_base64"`
	// Replayable says whether Replay would republish it; Refusal says why
	// not.
	Replayable bool   `json:"replayable"`
	Refusal    string `json:"refusal,omitempty"`
	// Replay is the last replay, if any.
	Replay *Replay `json:"replay,omitempty"`
}

// Cursor returns the cursor of the page that follows d.
func (d DeadLetter) Cursor() DeadLetterCursor {
	return DeadLetterCursor{ReceivedAt: d.ReceivedAt, ID: d.ID}
}

// Replay records who replayed a dead letter, when, and the message id of
// the republished message.
type Replay struct {
	By        string    `json:"by"`
	At        time.Time `json:"at"`
	MessageID string    `json:"message_id"`
}

// DeadLetterCursor is the position of a dead letter in the newest-first
// order: received time, then id descending.
type DeadLetterCursor struct {
	ReceivedAt time.Time
	ID         string
}

// IsZero reports whether c is the start.
func (c DeadLetterCursor) IsZero() bool { return c.ID == "" && c.ReceivedAt.IsZero() }

// before reports whether a dead letter at (t, id) comes after the cursor
// in newest-first order.
func (c DeadLetterCursor) before(t time.Time, id string) bool {
	if c.IsZero() {
		return true
	}
	if !t.Equal(c.ReceivedAt) {
		return t.Before(c.ReceivedAt)
	}
	return id < c.ID
}

// DeadLetterQuery selects a page of dead letters.
type DeadLetterQuery struct {
	After DeadLetterCursor
	Limit int
}

// CheckpointRecord is a checkpoint the console has seen.
type CheckpointRecord struct {
	Size int64 `json:"size"`
	// Root is the base64 tree hash, as in the checkpoint's text.
	Root string `json:"root"`
	// Time is when the ledger committed the checkpoint; SeenAt when the
	// console first saw it.
	Time   time.Time `json:"time"`
	SeenAt time.Time `json:"seen_at"`
}

// ValidID returns an Invalid error unless id can be a dead letter id: 1 to
// 128 characters of [A-Za-z0-9._-], not "." or "..", not starting with
// "__" (so that it is a document id as well).
func ValidID(what, id string) error {
	const op = "console.ValidID"
	if id == "" || len(id) > 128 {
		return fault.Errorf(fault.Invalid, op, "%s %s: want 1 to 128 characters", what, quote(id))
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fault.Errorf(fault.Invalid, op, "%s %s: want [A-Za-z0-9._-]", what, quote(id))
		}
	}
	if id == "." || id == ".." || strings.HasPrefix(id, "__") {
		return fault.Errorf(fault.Invalid, op, "%s %s is reserved", what, quote(id))
	}
	return nil
}
