package alerting

import (
	"strconv"
	"strings"
	"sync"
	"time"

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

// Message attributes read next to a receipt.
const (
	AttrCascadeDepth   = "cascadedepth"
	AttrCECascadeDepth = "ce-cascadedepth"
	AttrEventTime      = "event_time"
)

// OtherTenant is the tenant label of the latency series of tenants beyond
// MaxReceiptTenants.
const OtherTenant = "__other"

// MaxReceiptTenants bounds the tenants with latency series of their own.
const MaxReceiptTenants = 10000

// windowSlots is the number of buckets of a window.
const windowSlots = 30

// ReceiptMetrics derives metrics from receipts. It is safe for concurrent
// use.
type ReceiptMetrics struct {
	window time.Duration
	mu     sync.Mutex
	totals map[[2]string]float64
	depthX map[string]float64
	counts map[[2]string]*ring
	depth  map[string]*ring
	lat    map[string]*ring
	lag    map[string]*ring
}

// NewReceiptMetrics returns a deriver with the given window.
func NewReceiptMetrics(window time.Duration) *ReceiptMetrics {
	if window <= 0 {
		window = DefaultLookback
	}
	return &ReceiptMetrics{
		window: window,
		totals: map[[2]string]float64{}, depthX: map[string]float64{},
		counts: map[[2]string]*ring{}, depth: map[string]*ring{},
		lat: map[string]*ring{}, lag: map[string]*ring{},
	}
}

// Observe records one receipt delivered at now; attrs are its message's
// attributes and published its Pub/Sub publish time (zero if unknown). It
// returns the counter samples it updated.
func (m *ReceiptMetrics) Observe(r *receipt.Receipt, attrs map[string]string, published, now time.Time) []Sample {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := [2]string{r.Domain, r.Outcome}
	m.totals[k]++
	ringAt(m.counts, k).add(now, 1, m.window)
	out := []Sample{{Name: MetricDecisionsTotal, Labels: Labels{"domain": r.Domain, "outcome": r.Outcome}, Value: m.totals[k], Time: now}}
	if r.Outcome == string(governor.Rejected) && strings.HasPrefix(r.Reason, governor.ReasonCascadeDepth) {
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

// tenantLabel returns the tenant's label value, OtherTenant past the cap.
func (m *ReceiptMetrics) tenantLabel(t string) string {
	if _, ok := m.lat[t]; ok {
		return t
	}
	if _, ok := m.lag[t]; ok {
		return t
	}
	if max(len(m.lat), len(m.lag)) >= MaxReceiptTenants {
		return OtherTenant
	}
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
