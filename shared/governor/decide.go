package governor

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/autonomics/autonomics/shared/fault"
)

// NoTransitionError says that an event is not allowed in a state.
type NoTransitionError struct {
	Domain Domain
	State  State
	Event  EventName
}

// Error implements error.
func (e *NoTransitionError) Error() string { return e.Rejection().Reason() }

// Rejection returns the rejection a decision records for e.
func (e *NoTransitionError) Rejection() *Rejection {
	return &Rejection{Code: ReasonNoTransition, Detail: fmt.Sprintf("event %s not allowed in state %s", e.Event, e.State)}
}

// Ctx is what guards and Apply functions see of a decision in progress.
type Ctx struct {
	in      *Input
	m       *Machine
	t       *Transition
	data    json.RawMessage
	target  State
	arms    map[string]time.Duration
	cancels []string
	emits   []Emit
}

// Instance returns the instance snapshot before the decision.
func (c *Ctx) Instance() Instance { return c.in.Instance }

// Event returns the event being applied.
func (c *Ctx) Event() Event { return c.in.Event }

// Read returns an instance the row's Needs named, as read in the
// decision's transaction; one that does not exist has state StateNone. An
// instance the row did not name is an Internal error: the engine reads
// only what the row declares.
func (c *Ctx) Read(k Key) (Instance, error) {
	inst, ok := c.in.Reads[k]
	if !ok {
		return Instance{}, fault.Errorf(fault.Internal, "governor.Ctx.Read", "%s %s reads %s, which its row does not declare in Needs", c.m.Domain, c.in.Event.Name, k)
	}
	inst.Key = k
	if inst.State == "" {
		inst.State = StateNone
	}
	return inst, nil
}

// Provider returns the provider tenant, whose instances hold the
// provider's own records (Scope.Provider).
func (c *Ctx) Provider() string {
	if c.in.Provider == "" {
		return c.in.Event.Tenant
	}
	return c.in.Provider
}

// Now returns the decision time.
func (c *Ctx) Now() time.Time { return c.in.Now }

// Payload decodes the event's data into v. Data was validated before, so an
// error here is an Invalid error.
func (c *Ctx) Payload(v any) error {
	if len(bytes.TrimSpace(c.in.Event.Data)) == 0 {
		return nil
	}
	if err := json.Unmarshal(c.in.Event.Data, v); err != nil {
		return fault.Wrap(fault.Invalid, "governor.Ctx.Payload", err)
	}
	return nil
}

// Load decodes the instance data into v; empty data leaves v unchanged.
func (c *Ctx) Load(v any) error {
	if len(bytes.TrimSpace(c.data)) == 0 {
		return nil
	}
	if err := json.Unmarshal(c.data, v); err != nil {
		return fault.Wrap(fault.Internal, "governor.Ctx.Load", err)
	}
	return nil
}

// Data decodes the instance data into a T; empty data gives the zero T.
func Data[T any](c *Ctx) (T, error) {
	var d T
	err := c.Load(&d)
	return d, err
}

// Update decodes the instance data into a T, lets fn change it and stores
// the result. An error from fn, a rejection included, stores nothing.
func Update[T any](c *Ctx, fn func(*T) error) error {
	d, err := Data[T](c)
	if err != nil {
		return err
	}
	if err := fn(&d); err != nil {
		return err
	}
	return c.Store(d)
}

// Store replaces the instance data with the JSON encoding of v.
func (c *Ctx) Store(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fault.Wrap(fault.Internal, "governor.Ctx.Store", err)
	}
	c.data = b
	return nil
}

// Goto picks the target state; it must be the row's To or one of its Alt.
func (c *Ctx) Goto(s State) { c.target = s }

// Duration returns the configured duration of timer name.
func (c *Ctx) Duration(name string) time.Duration { return c.m.Timers[name] }

// Arm arms timer name after d (its configured duration when d is 0).
func (c *Ctx) Arm(name string, d time.Duration) {
	if d <= 0 {
		d = c.m.Timers[name]
	}
	c.arms[name] = d
}

// Cancel cancels timer name.
func (c *Ctx) Cancel(name string) {
	delete(c.arms, name)
	c.cancels = append(c.cancels, name)
}

// emit publishes event name to domain d of the same tenant after commit.
// Subject "" keeps the instance's subject; "*" broadcasts. data may be nil.
func (c *Ctx) emit(d Domain, name EventName, subject string, data any) error {
	if subject == "" {
		subject = c.in.Instance.Subject
	}
	raw, err := marshalData(data)
	if err != nil {
		return err
	}
	c.emits = append(c.emits, Emit{Kind: KindEvent, Type: TypeOf(d, name), Domain: d, Subject: subject, Data: raw})
	return nil
}

// actuate publishes an action of the given kind (e.g. "tenant.throttle")
// for actuators after commit. data may be nil.
func (c *Ctx) actuate(kind string, data any) error {
	raw, err := marshalData(data)
	if err != nil {
		return err
	}
	c.emits = append(c.emits, Emit{Kind: KindActuate, Type: kind, Domain: c.m.Domain, Subject: c.in.Instance.Subject, Data: raw})
	return nil
}

func marshalData(data any) (json.RawMessage, error) {
	switch d := data.(type) {
	case nil, None:
		return json.RawMessage(`{}`), nil
	case json.RawMessage:
		return d, nil
	}
	b, err := json.Marshal(data)
	if err != nil {
		return nil, fault.Wrap(fault.Internal, "governor.Ctx.Emit", err)
	}
	return b, nil
}

// Decide applies in.Event to in.Instance at in.Now. A refused event yields
// a rejected decision with the state, data and timers unchanged; an error
// is returned only for input that CheckEvent would refuse (Invalid) or for
// a fault in the machine's own code (Internal).
func (m *Machine) Decide(in Input) (Decision, error) {
	const op = "governor.Decide"
	inst := in.Instance
	if inst.State == "" {
		inst.State = StateNone
	}
	in.Instance = inst
	ev := in.Event
	if ev.Domain != m.Domain || inst.Domain != m.Domain {
		return Decision{}, fault.Errorf(fault.Invalid, op, "event domain %q, instance domain %q, governor %q", ev.Domain, inst.Domain, m.Domain)
	}
	if !m.HasState(inst.State) {
		return Decision{}, fault.Errorf(fault.Internal, op, "instance %s in unknown state %q", inst.Key, inst.State)
	}
	reject := func(r *Rejection) (Decision, error) {
		return Decision{
			Outcome: Rejected, Code: r.Code, Reason: r.Reason(), From: inst.State, To: inst.State,
			Data: inst.Data, Timers: inst.Timers,
		}, nil
	}
	if ev.CascadeDepth >= MaxCascadeDepth {
		return reject(&Rejection{Code: ReasonCascadeDepth, Detail: fmt.Sprintf("depth %d, limit %d", ev.CascadeDepth, MaxCascadeDepth)})
	}
	if ev.Name == ActuationFailed && m.actuates() {
		return m.decideActuationFailure(in), nil
	}
	timerName, isTimer := bytes.CutPrefix([]byte(ev.Name), []byte(TimeoutPrefix))
	if isTimer {
		var p struct {
			TimerID string `json:"timer_id"`
		}
		_ = json.Unmarshal(ev.Data, &p)
		armed, ok := inst.Timers[string(timerName)]
		if !ok || armed.ID != p.TimerID {
			return reject(&Rejection{Code: ReasonTimerCancelled, Detail: fmt.Sprintf("timer %s %s is no longer armed", timerName, p.TimerID)})
		}
		if armed.Due.After(in.Now) {
			// Only the scheduler sends timeouts, and only due ones: an
			// early one is clock skew, refused as transient so that it is
			// delivered again rather than lost.
			return Decision{}, fault.Errorf(fault.Unavailable, op, "timer %s of %s is due at %s, not yet at %s",
				timerName, inst.Key, armed.Due.UTC().Format(time.RFC3339), in.Now.UTC().Format(time.RFC3339))
		}
	}
	t := m.Lookup(inst.State, ev.Name)
	if t == nil {
		return reject((&NoTransitionError{Domain: m.Domain, State: inst.State, Event: ev.Name}).Rejection())
	}
	c := &Ctx{in: &in, m: m, t: t, data: inst.Data, target: t.To, arms: map[string]time.Duration{}}
	for _, name := range t.Arm {
		c.arms[name] = m.Timers[name]
	}
	for _, cs := range t.Cascade {
		if err := c.emit(cs.Domain, cs.Event, cs.Subject, nil); err != nil {
			return Decision{}, err
		}
	}
	for _, kind := range t.Actuate {
		if err := c.actuate(kind, nil); err != nil {
			return Decision{}, err
		}
	}
	for _, step := range []func(*Ctx) error{t.Guard, t.Apply} {
		if step == nil {
			continue
		}
		if err := step(c); err != nil {
			var r *Rejection
			if errors.As(err, &r) {
				if !m.HasReason(r.Code) {
					return Decision{}, fault.Errorf(fault.Internal, op, "%s: %s in %s rejects with undeclared reason %q", m.Domain, ev.Name, inst.State, r.Code)
				}
				return reject(r)
			}
			return Decision{}, fmt.Errorf("%s %s %s in %s: %w", op, m.Domain, ev.Name, inst.State, err)
		}
	}
	if !slices.Contains(t.Targets(), c.target) {
		return Decision{}, fault.Errorf(fault.Internal, op, "%s: %s in %s chose target %q outside the table", m.Domain, ev.Name, inst.State, c.target)
	}
	if err := m.checkEmits(t, c.emits); err != nil {
		return Decision{}, err
	}
	for name := range c.arms {
		if _, ok := m.Timers[name]; !ok {
			return Decision{}, fault.Errorf(fault.Internal, op, "%s: %s in %s arms undeclared timer %q", m.Domain, ev.Name, inst.State, name)
		}
	}
	return Decision{
		Outcome: Accepted,
		From:    inst.State,
		To:      c.target,
		Data:    c.data,
		Timers:  c.timers(string(timerName), isTimer),
		Emits:   c.emits,
	}, nil
}

// timers computes the armed timers after an accepted transition.
func (c *Ctx) timers(fired string, isTimer bool) map[string]Timer {
	inst := c.in.Instance
	out := map[string]Timer{}
	if c.target == inst.State {
		maps.Copy(out, inst.Timers)
	}
	if isTimer {
		delete(out, fired)
	}
	for _, name := range c.cancels {
		delete(out, name)
	}
	seq := inst.Version + 1
	for name, d := range c.arms {
		out[name] = Timer{Name: name, ID: timerID(inst.Key, name, seq, c.in.Nonce), Due: c.in.Now.Add(d).UTC()}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// TimerID is the deterministic id of timer name armed by the decision with
// sequence number seq of instance k, when the decision has no nonce.
func TimerID(k Key, name string, seq int64) string { return timerID(k, name, seq, nil) }

// timerID mixes the decision's nonce into the timer id, so that nobody can
// predict the id of a timer from the instance's public fields.
func timerID(k Key, name string, seq int64, nonce []byte) string {
	h := sha256.New()
	if len(nonce) > 0 {
		h.Write(nonce)
		h.Write([]byte{0})
	}
	for _, s := range []string{k.Tenant, string(k.Domain), k.Subject, name, strconv.FormatInt(seq, 10)} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}
