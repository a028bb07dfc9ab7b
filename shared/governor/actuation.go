package governor

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"unicode/utf8"
)

// ActuationFailed is the event an actuator sends back to the governor that
// emitted an action once the action has failed for good (a permanent
// refusal, or retries exhausted). Every machine that actuates accepts it in
// every existing state, terminal ones included, as a self-transition that
// changes neither data nor timers: its receipt is the record of the
// failure in the instance's chain. Only actuators may send it.
const ActuationFailed EventName = "actuation_failed"

// Limits of an ActuationFailure.
const (
	MaxFailureReason = 512
	MaxActionIDLen   = 256
)

// ActuationFailure is the data of ActuationFailed.
type ActuationFailure struct {
	// ActionID is the failed action's deterministic id.
	ActionID string `json:"action_id"`
	// Kind is the action kind, e.g. "tenant.provision".
	Kind string `json:"kind"`
	// Reason says why, e.g. "HTTP 400 from https://…" or "3 days of retries".
	Reason string `json:"reason"`
	// Attempts counts the deliveries tried.
	Attempts int `json:"attempts"`
}

// checkActuationFailure validates the data of ActuationFailed for m.
func (m *Machine) checkActuationFailure(data json.RawMessage) error {
	var f ActuationFailure
	if err := exactMembers(data, reflect.TypeOf(f)); err != nil {
		return fmt.Errorf("data: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return fmt.Errorf("data: %w", err)
	}
	switch {
	case f.ActionID == "" || len(f.ActionID) > MaxActionIDLen || !utf8.ValidString(f.ActionID):
		return fmt.Errorf("action_id must be 1 to %d bytes", MaxActionIDLen)
	case !slices.Contains(m.Actions(), f.Kind):
		return fmt.Errorf("kind %q is not an action of %s", truncateText(f.Kind, 64), m.Domain)
	case len(f.Reason) > MaxFailureReason || !utf8.ValidString(f.Reason):
		return fmt.Errorf("reason must be at most %d bytes of UTF-8", MaxFailureReason)
	case f.Attempts < 0:
		return fmt.Errorf("attempts must not be negative")
	}
	return nil
}

// decideActuationFailure accepts ActuationFailed as a self-transition in
// every existing state.
func (m *Machine) decideActuationFailure(in Input) Decision {
	inst := in.Instance
	var f ActuationFailure
	_ = json.Unmarshal(in.Event.Data, &f)
	d := Decision{From: inst.State, To: inst.State, Data: inst.Data, Timers: inst.Timers}
	if inst.State == StateNone {
		r := (&NoTransitionError{Domain: m.Domain, State: inst.State, Event: ActuationFailed}).Rejection()
		d.Outcome, d.Code, d.Reason = Rejected, r.Code, r.Reason()
		return d
	}
	d.Outcome = Accepted
	d.Reason = truncateText(fmt.Sprintf("%s: %s %s after %d attempts: %s", ActuationFailed, f.Kind, f.ActionID, f.Attempts, f.Reason), 1024)
	return d
}

func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
