package alerting

import (
	"strconv"
	"sync"
	"time"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/receipt"
)

// Metrics derived from the receipts topic.
const (
	// MetricDecisionsTotal counts decisions since the process started, by
	// domain and outcome (a counter).
	MetricDecisionsTotal = "autonomics_decisions_total"
	// MetricDecisions is the number of decisions in the window, by domain
	// and outcome.
	MetricDecisions = "autonomics_decisions"
	// MetricRejectionRatio is rejected / all decisions in the window, by
	// domain (0 to 1); absent when the domain decided nothing.
	MetricRejectionRatio = "autonomics_rejection_ratio"
	// MetricCascadeDepth is the largest cascade depth in the window, by
	// domain, from the message attribute "cascadedepth" (or
	// "ce-cascadedepth"); receipts without it are not counted.
	MetricCascadeDepth = "autonomics_cascade_depth"
	// MetricCascadeDepthExceeded counts receipts rejected with reason
	// cascade_depth_exceeded, by domain (a counter).
	MetricCascadeDepthExceeded = "autonomics_cascade_depth_exceeded_total"
	// MetricDecisionLatency is the largest decided_at minus event time in
	// the window, by tenant, in seconds, for receipts whose message
	// carries the attribute "event_time" (RFC 3339).
	MetricDecisionLatency = "autonomics_decision_latency_seconds"
	// MetricDeliveryLag is the largest Pub/Sub publish time minus
	// decided_at in the window, by tenant, in seconds: how long a receipt
	// waited in the outbox.
	MetricDeliveryLag = "autonomics_receipt_delivery_lag_seconds"
)

// ReceiptMetricNames are the metrics derived from receipts. Only the
// monitor writes them: pushes naming them are refused.
var ReceiptMetricNames = []string{
	MetricDecisionsTotal, MetricDecisions, MetricRejectionRatio, MetricCascadeDepth,
	MetricCascadeDepthExceeded, MetricDecisionLatency, MetricDeliveryLag,
}

// Message attributes read next to a receipt.
const (
	AttrCascadeDepth   = "cascadedepth"
	AttrCECascadeDepth = "ce-cascadedepth"
	AttrEventTime      = "event_time"
)

// OtherTenant is the tenant label of the latency series of tenants beyond
// the tenant limit (ReceiptOptions.MaxTenants).
const OtherTenant = "__other"

// DefaultMaxReceiptTenants bounds the tenants with latency series of their
// own.
const DefaultMaxReceiptTenants = 10000

// outcomes are the outcomes a receipt may record.
var outcomes = []governor.Outcome{governor.Accepted, governor.Rejected}

// ReceiptSeriesBound returns the most series the receipt-derived metrics
// can have with at most maxTenants tenants of their own: per domain, the
// decision counter and gauge of each outcome, the depth-exceeded counter,
// the rejection ratio and the cascade depth; per tenant (and OtherTenant),
// the decision latency and the delivery lag.
func ReceiptSeriesBound(maxTenants int) int {
	d := len(governor.Domains)
	return 2*d*len(outcomes) + 3*d + 2*(maxTenants+1)
}

// Bounds of the fields of a receipt the monitor accepts (ValidateReceipt).
const (
	// MaxReceiptTextBytes bounds execution_id, event_source, event_type,
	// correlation_id and the type and id of actions (the event limits).
	MaxReceiptTextBytes = 256
	// MaxReceiptNameBytes bounds subject, from_state, to_state and the
	// subject of actions.
	MaxReceiptNameBytes = 128
	// MaxReceiptReasonBytes bounds reason.
	MaxReceiptReasonBytes = 4096
	// MaxReceiptActions bounds the actions of one receipt.
	MaxReceiptActions = 256
)

// ValidateReceipt checks a receipt before the monitor derives metrics from
// it, with an Invalid error naming the first problem: the domain must be
// one of governor.Domains, the outcome accepted or rejected, the tenant id
// valid (1–128 of [A-Za-z0-9._-], not "." or "..", not starting with
// "__"), decided_at an RFC 3339 time, hashes 64 hex digits, and every other
// field within its bound (MaxReceiptTextBytes, MaxReceiptNameBytes,
// MaxReceiptReasonBytes, MaxReceiptActions). Error messages quote at most
// 64 bytes of a field.
func ValidateReceipt(r *receipt.Receipt) error {
	const op = "alerting.ValidateReceipt"
	fail := func(format string, args ...any) error {
		return fault.Errorf(fault.Invalid, op, "receipt: "+format, args...)
	}
	if !knownDomain(r.Domain) {
		return fail("domain %s (%d bytes) is not a governor domain", quoteInput(r.Domain), len(r.Domain))
	}
	if !knownOutcome(r.Outcome) {
		return fail("outcome %s (%d bytes): want accepted or rejected", quoteInput(r.Outcome), len(r.Outcome))
	}
	if !validTenant(r.TenantID) {
		return fail("tenant_id %s (%d bytes): want 1 to 128 of [A-Za-z0-9._-], not \".\" or \"..\", not starting with \"__\"", quoteInput(r.TenantID), len(r.TenantID))
	}
	for _, f := range []struct {
		name, v string
		max     int
	}{
		{"subject", r.Subject, MaxReceiptNameBytes},
		{"from_state", r.FromState, MaxReceiptNameBytes},
		{"to_state", r.ToState, MaxReceiptNameBytes},
		{"execution_id", r.ExecutionID, MaxReceiptTextBytes},
		{"event_source", r.EventSource, MaxReceiptTextBytes},
		{"event_type", r.EventType, MaxReceiptTextBytes},
		{"correlation_id", r.CorrelationID, MaxReceiptTextBytes},
		{"reason", r.Reason, MaxReceiptReasonBytes},
	} {
		if len(f.v) > f.max {
			return fail("%s is %d bytes, limit %d", f.name, len(f.v), f.max)
		}
	}
	if r.Subject == "" {
		return fail("subject is empty")
	}
	for _, h := range []struct{ name, v string }{{"prev_hash", r.PrevHash}, {"hash", r.Hash}, {"data_digest", r.DataDigest}} {
		if h.v == "" && h.name == "data_digest" {
			continue
		}
		if !isHex64(h.v) {
			return fail("%s %s: want 64 hex digits", h.name, quoteInput(h.v))
		}
	}
	if len(r.DecidedAt) > 64 {
		return fail("decided_at is %d bytes, want an RFC 3339 time", len(r.DecidedAt))
	}
	if _, err := time.Parse(time.RFC3339Nano, r.DecidedAt); err != nil {
		return fail("decided_at %s: want an RFC 3339 time", quoteInput(r.DecidedAt))
	}
	if len(r.Actions) > MaxReceiptActions {
		return fail("%d actions, limit %d", len(r.Actions), MaxReceiptActions)
	}
	for i, a := range r.Actions {
		for _, f := range []struct {
			name, v string
			max     int
		}{
			{"kind", a.Kind, MaxReceiptNameBytes}, {"type", a.Type, MaxReceiptTextBytes},
			{"domain", a.Domain, MaxReceiptNameBytes}, {"subject", a.Subject, MaxReceiptNameBytes},
			{"id", a.ID, MaxReceiptTextBytes},
		} {
			if len(f.v) > f.max {
				return fail("actions[%d].%s is %d bytes, limit %d", i, f.name, len(f.v), f.max)
			}
		}
	}
	return nil
}

// knownDomain reports whether d is one of governor.Domains.
func knownDomain(d string) bool {
	for _, k := range governor.Domains {
		if string(k) == d {
			return true
		}
	}
	return false
}

// knownOutcome reports whether o is accepted or rejected.
func knownOutcome(o string) bool {
	for _, k := range outcomes {
		if string(k) == o {
			return true
		}
	}
	return false
}

// isHex64 reports whether s is 64 lowercase hex digits.
func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// windowSlots is the number of buckets of a window.
const windowSlots = 30

// ReceiptOptions configure a ReceiptMetrics.
type ReceiptOptions struct {
	// Window is the window of the gauges; 0 means DefaultLookback.
	Window time.Duration
	// MaxTenants bounds the tenants with latency series of their own;
	// later ones share OtherTenant. 0 means DefaultMaxReceiptTenants.
	MaxTenants int
}

// ReceiptMetrics derives metrics from receipts. Their series are bounded
// by ReceiptSeriesBound(MaxTenants): receipts whose domain or outcome is
// unknown are not counted, and tenants past the limit share one label. It
// is safe for concurrent use.
type ReceiptMetrics struct {
	window     time.Duration
	maxTenants int
	mu         sync.Mutex
	totals     map[[2]string]float64
	depthX     map[string]float64
	counts     map[[2]string]*ring
	depth      map[string]*ring
	lat        map[string]*ring
	lag        map[string]*ring
	// tenants are the tenants with series of their own.
	tenants map[string]bool
}

// NewReceiptMetrics returns a deriver with the given window and the
// default tenant limit.
func NewReceiptMetrics(window time.Duration) *ReceiptMetrics {
	return NewReceiptMetricsWith(ReceiptOptions{Window: window})
}

// NewReceiptMetricsWith returns a deriver configured by o.
func NewReceiptMetricsWith(o ReceiptOptions) *ReceiptMetrics {
	if o.Window <= 0 {
		o.Window = DefaultLookback
	}
	if o.MaxTenants <= 0 {
		o.MaxTenants = DefaultMaxReceiptTenants
	}
	return &ReceiptMetrics{
		window: o.Window, maxTenants: o.MaxTenants,
		totals: map[[2]string]float64{}, depthX: map[string]float64{},
		counts: map[[2]string]*ring{}, depth: map[string]*ring{},
		lat: map[string]*ring{}, lag: map[string]*ring{}, tenants: map[string]bool{},
	}
}

// MaxSeries returns the most series the deriver's metrics can have.
func (m *ReceiptMetrics) MaxSeries() int { return ReceiptSeriesBound(m.maxTenants) }

// Observe records one receipt delivered at now; attrs are its message's
// attributes and published its Pub/Sub publish time (zero if unknown). It
// returns the counter samples it updated. A receipt whose domain or
// outcome is unknown is ignored (the caller checks receipts with
// ValidateReceipt first); an invalid tenant id counts as OtherTenant.
func (m *ReceiptMetrics) Observe(r *receipt.Receipt, attrs map[string]string, published, now time.Time) []Sample {
	if !knownDomain(r.Domain) || !knownOutcome(r.Outcome) {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	k := [2]string{r.Domain, r.Outcome}
	m.totals[k]++
	ringAt(m.counts, k).add(now, 1, m.window)
	out := []Sample{{Name: MetricDecisionsTotal, Labels: Labels{"domain": r.Domain, "outcome": r.Outcome}, Value: m.totals[k], Time: now}}
	if r.Outcome == string(governor.Rejected) && governor.CodeOf(r.Reason) == governor.ReasonCascadeDepth {
		m.depthX[r.Domain]++
		out = append(out, Sample{Name: MetricCascadeDepthExceeded, Labels: Labels{"domain": r.Domain}, Value: m.depthX[r.Domain], Time: now})
	}
	d := attrs[AttrCascadeDepth]
	if d == "" {
		d = attrs[AttrCECascadeDepth]
	}
	if n, err := strconv.Atoi(d); err == nil && n >= 0 {
		ringAt(m.depth, r.Domain).add(now, float64(n), m.window)
	}
	decided, err := time.Parse(time.RFC3339Nano, r.DecidedAt)
	if err != nil {
		return out
	}
	tenant := m.tenantLabel(r.TenantID)
	if et, err := time.Parse(time.RFC3339Nano, attrs[AttrEventTime]); err == nil {
		ringAt(m.lat, tenant).add(now, decided.Sub(et).Seconds(), m.window)
	}
	if !published.IsZero() {
		ringAt(m.lag, tenant).add(now, published.Sub(decided).Seconds(), m.window)
	}
	return out
}

// tenantLabel returns the tenant's label value: OtherTenant past the cap
// and for invalid tenant ids.
func (m *ReceiptMetrics) tenantLabel(t string) string {
	if !validTenant(t) {
		return OtherTenant
	}
	if m.tenants[t] {
		return t
	}
	if len(m.tenants) >= m.maxTenants {
		return OtherTenant
	}
	m.tenants[t] = true
	return t
}

// ringAt returns the ring of key k in rs, creating it.
func ringAt[K comparable](rs map[K]*ring, k K) *ring {
	r := rs[k]
	if r == nil {
		r = &ring{}
		rs[k] = r
	}
	return r
}

// Samples returns the windowed gauges at now.
func (m *ReceiptMetrics) Samples(now time.Time) []Sample {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Sample
	all := map[string]float64{}
	rejected := map[string]float64{}
	for k, r := range m.counts {
		n, _, _ := r.read(now, m.window)
		out = append(out, Sample{Name: MetricDecisions, Labels: Labels{"domain": k[0], "outcome": k[1]}, Value: n, Time: now})
		all[k[0]] += n
		if k[1] == string(governor.Rejected) {
			rejected[k[0]] += n
		}
	}
	for d, n := range all {
		if n > 0 {
			out = append(out, Sample{Name: MetricRejectionRatio, Labels: Labels{"domain": d}, Value: rejected[d] / n, Time: now})
		}
	}
	for _, g := range []struct {
		name, label string
		rs          map[string]*ring
	}{{MetricCascadeDepth, "domain", m.depth}, {MetricDecisionLatency, "tenant", m.lat}, {MetricDeliveryLag, "tenant", m.lag}} {
		for k, r := range g.rs {
			if n, mx, _ := r.read(now, m.window); n > 0 {
				out = append(out, Sample{Name: g.name, Labels: Labels{g.label: k}, Value: mx, Time: now})
			}
		}
	}
	return out
}

// Snapshot returns every series of the deriver at now: the counters
// since the process started and the windowed gauges (Samples). The
// monitor forwards it to the metrics engine every cycle, so that a
// forward that fails loses nothing: the next one carries the same state.
func (m *ReceiptMetrics) Snapshot(now time.Time) []Sample {
	out := m.Samples(now)
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, n := range m.totals {
		out = append(out, Sample{Name: MetricDecisionsTotal, Labels: Labels{"domain": k[0], "outcome": k[1]}, Value: n, Time: now})
	}
	for d, n := range m.depthX {
		out = append(out, Sample{Name: MetricCascadeDepthExceeded, Labels: Labels{"domain": d}, Value: n, Time: now})
	}
	return out
}

// ring aggregates observations over a sliding window in windowSlots
// buckets.
type ring struct {
	slots [windowSlots]slot
}

type slot struct {
	idx int64
	n   float64
	max float64
	sum float64
}

func width(window time.Duration) int64 {
	return max(int64(window/windowSlots), 1)
}

func (r *ring) add(t time.Time, v float64, window time.Duration) {
	i := t.UnixNano() / width(window)
	s := &r.slots[i%windowSlots]
	if s.idx != i || s.n == 0 {
		*s = slot{idx: i, max: v}
	}
	s.n++
	s.sum += v
	s.max = max(s.max, v)
}

// read returns the count, maximum and sum of the observations in the
// window ending at now.
func (r *ring) read(now time.Time, window time.Duration) (n, mx, sum float64) {
	hi := now.UnixNano() / width(window)
	lo := hi - windowSlots + 1
	first := true
	for _, s := range r.slots {
		if s.n == 0 || s.idx < lo || s.idx > hi {
			continue
		}
		n += s.n
		sum += s.sum
		if first || s.max > mx {
			mx = s.max
		}
		first = false
	}
	return n, mx, sum
}
