package alerting

import (
	"slices"
	"strconv"
	"time"

	"github.com/autonomics/autonomics/shared/fault"
)

// State is the state of an alert.
type State string

// Alert states. Inactive alerts are kept only until their outbox is empty
// and are never listed.
const (
	Pending  State = "pending"
	Firing   State = "firing"
	Resolved State = "resolved"
	Inactive State = "inactive"
)

// Reasons an alert's condition holds.
const (
	ReasonThreshold     = "threshold"
	ReasonExpr          = "expr"
	ReasonAbsent        = "absent"
	ReasonPolicyDeleted = "policy_deleted"
	ReasonNoisyNeighbor = "noisy_neighbor"
)

// Channel says where a notification goes.
type Channel string

// Notification channels.
const (
	// ChannelAlerts is the autonomics-alerts topic.
	ChannelAlerts Channel = "alerts"
	// ChannelMultiTenant is the multi_tenant governor's topic.
	ChannelMultiTenant Channel = "multi_tenant"
)

// CloudEvents types of notifications.
const (
	TypeFiring        = "autonomics.alert.firing"
	TypeResolved      = "autonomics.alert.resolved"
	TypeNoisyNeighbor = "autonomics.multi_tenant.noisy_neighbor_detected"
	TypeRecovered     = "autonomics.multi_tenant.recovered"
)

// Notification is a message an evaluation decided to send. It is recorded
// in its alert's outbox before it is published.
type Notification struct {
	// ID is deterministic: fingerprint-kind-unixnanos of the decision.
	ID      string
	Channel Channel
	// Type is the CloudEvents type.
	Type string
	// Tenant is the CloudEvents tenantid: the alert's tenant label, if any.
	Tenant string
	// Subject is the CloudEvents subject.
	Subject string
	Time    time.Time
	// Data is the JSON data of the event, fixed when decided so that a
	// re-publication sends the same bytes.
	Data []byte
}

// MaxSentIDs bounds the notification ids an alert remembers as sent.
const MaxSentIDs = 16

// Alert is the state of the alert of one policy on one series.
type Alert struct {
	Fingerprint string
	Policy      string
	Severity    Severity
	// Labels are the series' labels (for an absent metric, the policy's
	// matchers).
	Labels Labels
	State  State
	Reason string
	// Value is the sample value when the alert last changed; for an
	// absence, the seconds since the last sample.
	Value           float64
	ActiveAt        time.Time
	FiredAt         time.Time
	ResolvedAt      time.Time
	LastNotifiedAt  time.Time
	KeepFiringSince time.Time
	// Notified says that the current episode's firing was notified, so its
	// resolution will be.
	Notified  bool
	UpdatedAt time.Time
	// Outbox holds the notifications recorded but not yet published.
	Outbox []Notification
	// Sent holds the ids of the latest notifications published, oldest
	// first, at most MaxSentIDs.
	Sent []string
}

// Clone returns a deep copy of a.
func (a Alert) Clone() Alert {
	a.Labels = a.Labels.Clone()
	a.Outbox = slices.Clone(a.Outbox)
	for i := range a.Outbox {
		a.Outbox[i].Data = slices.Clone(a.Outbox[i].Data)
	}
	a.Sent = slices.Clone(a.Sent)
	return a
}

// Listed reports whether the alert is shown by the alerts API.
func (a *Alert) Listed() bool { return a.State == Pending || a.State == Firing || a.State == Resolved }

// MarkSent moves the notifications with ids from the outbox to the sent
// ids and reports whether anything changed.
func (a *Alert) MarkSent(ids ...string) bool {
	changed := false
	for _, id := range ids {
		i := slices.IndexFunc(a.Outbox, func(n Notification) bool { return n.ID == id })
		if i < 0 {
			continue
		}
		a.Outbox = slices.Delete(slices.Clone(a.Outbox), i, i+1)
		a.Sent = append(slices.Clone(a.Sent), id)
		if len(a.Sent) > MaxSentIDs {
			a.Sent = a.Sent[len(a.Sent)-MaxSentIDs:]
		}
		changed = true
	}
	if len(a.Outbox) == 0 {
		a.Outbox = nil
	}
	return changed
}

// Validate checks what a store must be able to keep.
func (a *Alert) Validate() error {
	const op = "alerting.Alert"
	if len(a.Fingerprint) != 16 {
		return fault.Errorf(fault.Invalid, op, "fingerprint %s: want 16 hex digits", quoteInput(a.Fingerprint))
	}
	for _, c := range []byte(a.Fingerprint) {
		if !isDigit(c) && !('a' <= c && c <= 'f') {
			return fault.Errorf(fault.Invalid, op, "fingerprint %s: want 16 hex digits", quoteInput(a.Fingerprint))
		}
	}
	switch a.State {
	case Pending, Firing, Resolved, Inactive:
	default:
		return fault.Errorf(fault.Invalid, op, "alert %s: unknown state %s", a.Fingerprint, quoteInput(string(a.State)))
	}
	if a.Policy == "" {
		return fault.Errorf(fault.Invalid, op, "alert %s: no policy", a.Fingerprint)
	}
	for _, n := range a.Outbox {
		if n.ID == "" || n.Type == "" || n.Channel == "" {
			return fault.Errorf(fault.Invalid, op, "alert %s: outbox entry without id, type or channel", a.Fingerprint)
		}
	}
	return nil
}

// NotificationID returns the deterministic id of the notification of kind
// for the alert with fingerprint, decided at t.
func NotificationID(fingerprint, kind string, t time.Time) string {
	return fingerprint + "-" + kind + "-" + strconv.FormatInt(t.UnixNano(), 10)
}

// Silence mutes the notifications of matching alerts until EndsAt.
type Silence struct {
	ID string
	// Matchers must all equal the alert's labels; the pseudo-labels
	// "alertname" (the policy name) and "severity" match those fields.
	Matchers  Labels
	StartsAt  time.Time
	EndsAt    time.Time
	Comment   string
	CreatedAt time.Time
}

// Bounds of a silence.
const (
	MaxSilenceComment  = 1024
	MaxSilenceDuration = 90 * 24 * time.Hour
)

// Active reports whether the silence applies at now.
func (s *Silence) Active(now time.Time) bool {
	return !now.Before(s.StartsAt) && now.Before(s.EndsAt)
}

// Mutes reports whether the silence applies to a at now.
func (s *Silence) Mutes(a *Alert, now time.Time) bool {
	if !s.Active(now) {
		return false
	}
	for k, v := range s.Matchers {
		var got string
		switch k {
		case "alertname":
			got = a.Policy
		case "severity":
			got = string(a.Severity)
		default:
			got = a.Labels[k]
		}
		if got != v {
			return false
		}
	}
	return true
}

// Validate checks a silence at now: a valid id, at least one matcher with
// valid names and values (alertname and severity are allowed), an end
// after its start and after now, within MaxSilenceDuration of now, and a
// comment of at most MaxSilenceComment bytes.
func (s *Silence) Validate(now time.Time) error {
	const op = "alerting.Silence"
	if err := ValidName("silence id", s.ID); err != nil {
		return err
	}
	fail := func(format string, args ...any) error {
		return fault.Errorf(fault.Invalid, op, "silence %s: "+format, append([]any{quoteInput(s.ID)}, args...)...)
	}
	if len(s.Matchers) == 0 {
		return fail("matchers are required: a silence without matchers would mute everything")
	}
	if r := labelsReason(s.Matchers); r != "" {
		return fail("matchers: %s", r)
	}
	switch {
	case s.EndsAt.IsZero():
		return fail("ends_at is required")
	case !s.EndsAt.After(s.StartsAt):
		return fail("ends_at must be after starts_at")
	case !s.EndsAt.After(now):
		return fail("ends_at %s is in the past", s.EndsAt.UTC().Format(time.RFC3339))
	case s.EndsAt.Sub(now) > MaxSilenceDuration:
		return fail("ends_at is more than %v ahead", MaxSilenceDuration)
	case len(s.Comment) > MaxSilenceComment:
		return fail("comment is %d bytes, limit %d", len(s.Comment), MaxSilenceComment)
	}
	if sev, ok := s.Matchers["severity"]; ok && sev != string(Warning) && sev != string(Critical) {
		return fail("matcher severity %s: want warning or critical", quoteInput(sev))
	}
	return nil
}

// Lease is the evaluation lease: only its holder evaluates, until Expires.
type Lease struct {
	Name       string
	Holder     string
	Expires    time.Time
	AcquiredAt time.Time
}

// HeldBy reports whether holder holds the lease at now.
func (l *Lease) HeldBy(holder string, now time.Time) bool {
	return l.Holder == holder && now.Before(l.Expires)
}
