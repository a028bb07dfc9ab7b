package alerting

import (
	"encoding/json"
	"sort"
	"time"
)

// Defaults of Options.
const (
	DefaultRepeatInterval    = 5 * time.Minute
	DefaultLookback          = 5 * time.Minute
	DefaultResolvedRetention = 24 * time.Hour
)

// Options tune evaluation.
type Options struct {
	// RepeatInterval is the least time between two firing notifications of
	// one alert; 0 means DefaultRepeatInterval, negative never repeats.
	RepeatInterval time.Duration
	// Lookback is how old the latest sample of a series may be and still
	// count (see CompileOptions); 0 means DefaultLookback.
	Lookback time.Duration
	// ResolvedRetention is how long resolved alerts stay listed; 0 means
	// DefaultResolvedRetention.
	ResolvedRetention time.Duration
}

func (o Options) withDefaults() Options {
	if o.RepeatInterval == 0 {
		o.RepeatInterval = DefaultRepeatInterval
	}
	if o.Lookback <= 0 {
		o.Lookback = DefaultLookback
	}
	if o.ResolvedRetention <= 0 {
		o.ResolvedRetention = DefaultResolvedRetention
	}
	return o
}

// Input is what one evaluation reads.
type Input struct {
	Now      time.Time
	Policies []Policy
	Silences []Silence
	// Alerts are the stored alerts; Evaluate does not modify them.
	Alerts []Alert
	// Results hold, by policy name, the series whose condition holds at
	// Now (Policy.Activate). A policy without a result (its queries failed)
	// keeps its alerts as they are: an evaluator never fires or resolves
	// for lack of evidence.
	Results map[string][]Active
	Options
}

// Output is what one evaluation decided.
type Output struct {
	// Put are the alerts that changed, in fingerprint order, with their new
	// notifications appended to their outboxes.
	Put []Alert
	// Delete are the fingerprints of alerts to forget.
	Delete []string
	// Notifications are the new notifications, in Put order.
	Notifications []Notification
	// Pending and Firing count the alerts in those states afterwards.
	Pending, Firing int
}

// observation is what one evaluation knows about one alert's series.
type observation struct {
	// known is false when the evaluator cannot tell.
	known  bool
	cond   bool
	value  float64
	reason string
}

// Evaluate advances the alerts of every policy at in.Now given the series
// whose condition holds. It is a pure function of its input.
func Evaluate(in Input) Output {
	o := in.Options.withDefaults()
	now := in.Now
	byPolicy := map[string]map[string]*Alert{}
	for i := range in.Alerts {
		a := &in.Alerts[i]
		m := byPolicy[a.Policy]
		if m == nil {
			m = map[string]*Alert{}
			byPolicy[a.Policy] = m
		}
		m[a.Labels.Key()] = a
	}
	ev := &evaluation{now: now, o: o, silences: activeSilences(in.Silences, now),
		put: map[string]*Alert{}, seen: map[string]bool{}}
	for pi := range in.Policies {
		p := &in.Policies[pi]
		existing := byPolicy[p.Name]
		active, known := in.Results[p.Name]
		if !known {
			for _, a := range existing {
				ev.seen[a.Fingerprint] = true
			}
			continue
		}
		for i := range active {
			act := &active[i]
			key := act.Labels.Key()
			a := existing[key]
			ev.step(p, a, act.Labels.Clone, key, observation{known: true, cond: true, value: act.Value, reason: act.Reason})
		}
		// Alerts whose condition no longer holds.
		for _, a := range existing {
			if ev.seen[a.Fingerprint] {
				continue
			}
			ev.step(p, a, a.Labels.Clone, a.Labels.Key(), observation{known: true, reason: a.Reason, value: a.Value})
		}
	}

	// Alerts of deleted policies resolve.
	policies := make(map[string]bool, len(in.Policies))
	for i := range in.Policies {
		policies[in.Policies[i].Name] = true
	}
	for i := range in.Alerts {
		a := &in.Alerts[i]
		if ev.seen[a.Fingerprint] {
			continue
		}
		ev.seen[a.Fingerprint] = true
		if policies[a.Policy] || a.Policy == FairnessPolicy {
			continue
		}
		ev.orphan(a)
	}
	// Retention.
	for i := range in.Alerts {
		a := &in.Alerts[i]
		if _, changed := ev.put[a.Fingerprint]; changed || len(a.Outbox) > 0 || a.Policy == FairnessPolicy {
			continue
		}
		if a.State == Inactive || a.State == Resolved && now.Sub(a.ResolvedAt) >= o.ResolvedRetention {
			ev.del = append(ev.del, a.Fingerprint)
		}
	}
	mine := make([]Alert, 0, len(in.Alerts))
	for i := range in.Alerts {
		if in.Alerts[i].Policy != FairnessPolicy {
			mine = append(mine, in.Alerts[i])
		}
	}
	return ev.output(mine)
}

// evaluation accumulates the changes of one Evaluate call.
type evaluation struct {
	now      time.Time
	o        Options
	silences []*Silence
	put      map[string]*Alert
	seen     map[string]bool
	del      []string
	notes    []Notification
}

func activeSilences(all []Silence, now time.Time) []*Silence {
	var out []*Silence
	for i := range all {
		if all[i].Active(now) {
			out = append(out, &all[i])
		}
	}
	return out
}

func (ev *evaluation) silenced(a *Alert) bool {
	for _, s := range ev.silences {
		if s.Mutes(a, ev.now) {
			return true
		}
	}
	return false
}

// step advances alert a (nil when there is none) of policy p on the
// series whose labels labelsOf returns (a copy, built only when a new
// episode needs them), given obs.
func (ev *evaluation) step(p *Policy, a *Alert, labelsOf func() Labels, key string, obs observation) {
	if a != nil {
		ev.seen[a.Fingerprint] = true
	}
	if !obs.known {
		return
	}
	now := ev.now
	if a == nil || a.State == Resolved || a.State == Inactive {
		if !obs.cond {
			return
		}
		labels := labelsOf()
		n := Alert{
			Policy: p.Name, Severity: p.Severity, Labels: labels,
			State: Pending, Reason: obs.reason, Value: obs.value, ActiveAt: now, UpdatedAt: now,
		}
		if a != nil {
			n.Fingerprint = a.Fingerprint
			n.Outbox, n.Sent, n.LastNotifiedAt = a.Outbox, a.Sent, a.LastNotifiedAt
		} else {
			n.Fingerprint = Fingerprint(p.Name, labels)
		}
		ev.seen[n.Fingerprint] = true
		if p.For == 0 {
			ev.fire(p, &n)
		}
		ev.put[n.Fingerprint] = &n
		return
	}
	n := a.Clone()
	changed := false
	switch a.State {
	case Pending:
		switch {
		case !obs.cond:
			n.State = Inactive
			changed = true
		case now.Sub(a.ActiveAt) >= p.For:
			n.Value, n.Reason = obs.value, obs.reason
			ev.fire(p, &n)
			changed = true
		}
	case Firing:
		if obs.cond {
			if !n.KeepFiringSince.IsZero() {
				n.KeepFiringSince = time.Time{}
				changed = true
			}
			if n.Reason != obs.reason {
				n.Reason = obs.reason
				changed = true
			}
			if ev.repeat(p, &n, obs) {
				changed = true
			}
			break
		}
		if p.KeepFiringFor > 0 {
			if n.KeepFiringSince.IsZero() {
				n.KeepFiringSince = now
				changed = true
			}
			if now.Sub(n.KeepFiringSince) < p.KeepFiringFor {
				if ev.repeat(p, &n, obs) {
					changed = true
				}
				break
			}
		}
		n.Value = obs.value
		ev.resolve(p, &n)
		changed = true
	}
	if changed {
		n.UpdatedAt = now
		if n.Severity != p.Severity {
			n.Severity = p.Severity
		}
		ev.put[n.Fingerprint] = &n
	}
}

// orphan resolves an alert whose policy no longer exists.
func (ev *evaluation) orphan(a *Alert) {
	if a.State != Pending && a.State != Firing {
		return
	}
	n := a.Clone()
	n.UpdatedAt = ev.now
	if a.State == Pending {
		n.State = Inactive
	} else {
		n.Reason = ReasonPolicyDeleted
		ev.resolve(&Policy{Name: a.Policy, Severity: a.Severity}, &n)
	}
	ev.put[n.Fingerprint] = &n
}

// fire makes n fire now and notifies unless silenced.
func (ev *evaluation) fire(p *Policy, n *Alert) {
	n.State = Firing
	n.FiredAt = ev.now
	n.ResolvedAt = time.Time{}
	n.KeepFiringSince = time.Time{}
	n.Notified = false
	if !ev.silenced(n) {
		ev.notify(p, n, "firing", TypeFiring)
		n.Notified = true
	}
}

// repeat re-notifies a firing alert when the repeat interval has passed,
// or when its firing was muted by a silence that has ended.
func (ev *evaluation) repeat(p *Policy, n *Alert, obs observation) bool {
	if ev.silenced(n) {
		return false
	}
	due := !n.Notified || ev.o.RepeatInterval > 0 && ev.now.Sub(n.LastNotifiedAt) >= ev.o.RepeatInterval
	if !due {
		return false
	}
	if obs.cond {
		n.Value = obs.value
	}
	ev.notify(p, n, "firing", TypeFiring)
	n.Notified = true
	return true
}

// resolve resolves n now and notifies once if its firing was notified.
func (ev *evaluation) resolve(p *Policy, n *Alert) {
	n.State = Resolved
	n.ResolvedAt = ev.now
	n.KeepFiringSince = time.Time{}
	if n.Notified && !ev.silenced(n) {
		ev.notify(p, n, "resolved", TypeResolved)
	}
	n.Notified = false
}

// alertData is the data of an alert notification.
type alertData struct {
	Fingerprint string            `json:"fingerprint"`
	Policy      string            `json:"policy"`
	Severity    Severity          `json:"severity"`
	State       State             `json:"state"`
	Reason      string            `json:"reason"`
	Labels      map[string]string `json:"labels"`
	Metric      string            `json:"metric,omitempty"`
	Expr        string            `json:"expr,omitempty"`
	Comparison  Comparison        `json:"comparison,omitempty"`
	Threshold   *float64          `json:"threshold,omitempty"`
	Value       float64           `json:"value"`
	ActiveAt    string            `json:"active_at"`
	FiredAt     string            `json:"fired_at,omitempty"`
	ResolvedAt  string            `json:"resolved_at,omitempty"`
}

// notify records a notification of kind for n in its outbox.
func (ev *evaluation) notify(p *Policy, n *Alert, kind, typ string) {
	id := NotificationID(n.Fingerprint, kind, ev.now)
	d := alertData{
		Fingerprint: n.Fingerprint, Policy: n.Policy, Severity: n.Severity, State: n.State, Reason: n.Reason,
		Labels: n.Labels, Metric: p.Metric, Expr: p.Expr, Comparison: p.Comparison, Value: n.Value,
		ActiveAt: formatTime(n.ActiveAt), FiredAt: formatTime(n.FiredAt), ResolvedAt: formatTime(n.ResolvedAt),
	}
	if d.Labels == nil {
		d.Labels = map[string]string{}
	}
	if p.HasThreshold() {
		t := p.Threshold
		d.Threshold = &t
	}
	data, _ := json.Marshal(d) // plain strings and finite floats always marshal
	ev.record(n, Notification{
		ID: id, Channel: ChannelAlerts, Type: typ, Tenant: n.Labels["tenant"], Subject: n.Policy,
		Time: ev.now, Data: data,
	})
}

// record appends note to n's outbox unless it was already recorded.
func (ev *evaluation) record(n *Alert, note Notification) {
	for _, id := range n.Sent {
		if id == note.ID {
			return
		}
	}
	for _, o := range n.Outbox {
		if o.ID == note.ID {
			return
		}
	}
	n.Outbox = append(append([]Notification(nil), n.Outbox...), note)
	n.LastNotifiedAt = ev.now
	ev.notes = append(ev.notes, note)
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// output assembles the Output, counting states over all alerts.
func (ev *evaluation) output(all []Alert) Output {
	var out Output
	fps := make([]string, 0, len(ev.put))
	for fp := range ev.put {
		fps = append(fps, fp)
	}
	sort.Strings(fps)
	for _, fp := range fps {
		a := ev.put[fp]
		out.Put = append(out.Put, *a)
	}
	count := func(s State) {
		switch s {
		case Pending:
			out.Pending++
		case Firing:
			out.Firing++
		}
	}
	for i := range all {
		if _, ok := ev.put[all[i].Fingerprint]; !ok {
			count(all[i].State)
		}
	}
	fresh := make(map[string]bool, len(ev.notes))
	for _, n := range ev.notes {
		fresh[n.ID] = true
	}
	for _, a := range out.Put {
		count(a.State)
		for _, n := range a.Outbox {
			if fresh[n.ID] {
				out.Notifications = append(out.Notifications, n)
			}
		}
	}
	out.Delete = ev.del
	sort.Strings(out.Delete)
	return out
}
