package alerting

import (
	"encoding/json"
	"math"
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
	// count; 0 means DefaultLookback.
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
	Series *SeriesSet
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
	// known is false when the evaluator cannot tell yet.
	known  bool
	cond   bool
	value  float64
	reason string
}

// Evaluate runs every policy at in.Now over in.Series and advances the
// alerts. It is a pure function of its input, apart from taking the
// series set's read lock.
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
	since := in.Series.Since()
	observedFor := now.Sub(since)

	in.Series.mu.RLock()
	for pi := range in.Policies {
		p := &in.Policies[pi]
		existing := byPolicy[p.Name]
		visited := 0
		matched := false
		in.Series.selectSeries(p.Metric, p.Labels, func(sr *series) {
			matched = true
			obs := observe(p, sr.value, sr.time, now, since, o.Lookback)
			a := existing[sr.key]
			if a != nil {
				visited++
			}
			if a == nil && !obs.cond {
				return
			}
			ev.step(p, a, sr.labelMap, sr.key, obs)
		})
		if !matched && p.AbsentFor > 0 {
			// No series at all: the metric itself is absent.
			key := p.Labels.Key()
			obs := observation{known: observedFor >= p.AbsentFor, cond: true, value: observedFor.Seconds(), reason: ReasonAbsent}
			a := existing[key]
			if a != nil {
				visited++
			}
			if a != nil || obs.known {
				ev.step(p, a, p.Labels.Clone, key, obs)
			}
			if a != nil {
				ev.seen[a.Fingerprint] = true
			}
		}
		if visited == len(existing) {
			continue
		}
		// Alerts whose series is gone: false once the lookback is over.
		for _, a := range existing {
			if ev.seen[a.Fingerprint] {
				continue
			}
			obs := observation{known: observedFor >= o.Lookback, reason: a.Reason, value: a.Value}
			ev.step(p, a, a.Labels.Clone, a.Labels.Key(), obs)
		}
	}
	in.Series.mu.RUnlock()

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

// observe computes the observation of a series for policy p.
func observe(p *Policy, value float64, at, now, since time.Time, lookback time.Duration) observation {
	age := now.Sub(at)
	if p.AbsentFor > 0 {
		quiet := now.Sub(maxTime(at, since))
		if quiet >= p.AbsentFor {
			return observation{known: true, cond: true, value: quiet.Seconds(), reason: ReasonAbsent}
		}
	}
	if age > lookback {
		// Stale: false, once this process has watched for the lookback.
		return observation{known: now.Sub(since) >= lookback, reason: ReasonThreshold, value: value}
	}
	if !p.HasThreshold() {
		return observation{known: true, reason: ReasonAbsent, value: math.Max(age.Seconds(), 0)}
	}
	return observation{known: true, cond: p.Comparison.Holds(value, p.Threshold), value: value, reason: ReasonThreshold}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
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
		Labels: n.Labels, Metric: p.Metric, Comparison: p.Comparison, Value: n.Value,
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
