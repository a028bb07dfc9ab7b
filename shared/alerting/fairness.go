package alerting

import (
	"encoding/json"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
)

// FairnessPolicy is the policy name of noisy-neighbour alerts. Policy
// names cannot start with "_", so it never clashes with a user's policy.
const FairnessPolicy = "__noisy_neighbor"

// Defaults of FairnessOptions.
const (
	DefaultFairnessMetric = "autonomics_tenant_usage"
	DefaultThresholdBP    = 5000
	DefaultHysteresisBP   = 1000
	DefaultFairnessWindow = 5 * time.Minute
)

// FairnessOptions configure the noisy-neighbour detector.
type FairnessOptions struct {
	// Metric is the usage metric; its series carry TenantLabel and
	// ResourceLabel, and its value is the tenant's consumption rate.
	Metric        string
	TenantLabel   string
	ResourceLabel string
	// Window is the averaging window.
	Window time.Duration
	// ThresholdBP is the share (basis points) a tenant must pass to be a
	// noisy neighbour; it recovers under ThresholdBP - HysteresisBP.
	ThresholdBP  int
	HysteresisBP int
}

// DefaultFairness returns the default options.
func DefaultFairness() FairnessOptions {
	return FairnessOptions{
		Metric: DefaultFairnessMetric, TenantLabel: "tenant", ResourceLabel: "resource",
		Window: DefaultFairnessWindow, ThresholdBP: DefaultThresholdBP, HysteresisBP: DefaultHysteresisBP,
	}
}

// Validate checks the options.
func (o FairnessOptions) Validate() error {
	const op = "alerting.FairnessOptions"
	switch {
	case metricNameReason(o.Metric) != "":
		return fault.Errorf(fault.Invalid, op, "metric %q %s", o.Metric, metricNameReason(o.Metric))
	case labelNameReason(o.TenantLabel) != "" || labelNameReason(o.ResourceLabel) != "":
		return fault.Errorf(fault.Invalid, op, "tenant and resource labels must be valid label names")
	case o.Window <= 0:
		return fault.Errorf(fault.Invalid, op, "window must be positive")
	case o.ThresholdBP < 1 || o.ThresholdBP > 9999:
		return fault.Errorf(fault.Invalid, op, "threshold %d bp: want 1 to 9999", o.ThresholdBP)
	case o.HysteresisBP < 0 || o.HysteresisBP >= o.ThresholdBP:
		return fault.Errorf(fault.Invalid, op, "hysteresis %d bp: want 0 to threshold-1", o.HysteresisBP)
	}
	return nil
}

// FairnessInput is what one fairness evaluation reads.
type FairnessInput struct {
	Now time.Time
	// Alerts are the stored alerts; only FairnessPolicy ones are read.
	Alerts []Alert
	// Shares are the contended shares above the recovery line
	// (ThresholdBP - HysteresisBP) at Now: ParseShares of the answer to
	// FairnessQuery.
	Shares []Share
	// Retention is how long recovered tenants stay listed.
	Retention time.Duration
	FairnessOptions
}

// Share is one tenant's share of one resource.
type Share struct {
	Tenant   string
	Resource string
	// BP is the share in basis points, 0 to 10000.
	BP int
	// Contended says that another tenant used the resource too.
	Contended bool
}

// tenantPattern matches the characters and length of a tenant id.
const tenantPattern = "[A-Za-z0-9._-]{1,128}"

// FairnessQuery returns the PromQL query of the shares that matter: with
// U the mean usage of each valid tenant id and resource over the window
// (a negative mean counts as zero), each tenant's part of its resource's total, in
// basis points, where at least two tenants use the resource, and only
// where it exceeds the recovery line (threshold minus hysteresis). The
// engine computes it over every tenant; the answer holds at most
// 10000/(threshold-hysteresis) tenants per resource, so that the monitor
// holds no per-tenant state whatever the number of tenants.
func FairnessQuery(o FairnessOptions) string {
	by := "(" + o.ResourceLabel + ", " + o.TenantLabel + ")"
	// Only valid tenant ids, and series with a resource, take part.
	sel := o.Metric + "{" + o.TenantLabel + "=~" + promString(tenantPattern) + "," + o.TenantLabel + "!~" + promString(`__.*|\.\.?`) +
		"," + o.ResourceLabel + "!=\"\"}"
	u := "(sum by " + by + " (clamp_min(avg_over_time(" + sel + "[" + promDuration(o.Window) + "]), 0)) > 0)"
	total := "sum by (" + o.ResourceLabel + ") (" + u + ")"
	count := "count by (" + o.ResourceLabel + ") (" + u + ")"
	return "((" + u + " / on (" + o.ResourceLabel + ") group_left " + total + ") * 10000 > " + strconv.Itoa(o.ThresholdBP-o.HysteresisBP) +
		") and on (" + o.ResourceLabel + ") (" + count + " > 1)"
}

// ParseShares reads the answer to FairnessQuery, dropping elements
// without a resource or with an invalid tenant id, sorted by resource
// then tenant.
func ParseShares(elems []Element, o FairnessOptions) []Share {
	out := make([]Share, 0, len(elems))
	for _, e := range elems {
		t, r := e.Labels[o.TenantLabel], e.Labels[o.ResourceLabel]
		if r == "" || !validTenant(t) || math.IsNaN(e.Value) {
			continue
		}
		out = append(out, Share{Tenant: t, Resource: r, BP: int(math.Round(math.Min(math.Max(e.Value, 0), 10000))), Contended: true})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Resource != out[j].Resource {
			return out[i].Resource < out[j].Resource
		}
		return out[i].Tenant < out[j].Tenant
	})
	return out
}

// EvaluateFairness detects noisy neighbours and their recovery. A tenant
// is detected when its share of some contended resource exceeds the
// threshold, and recovers when no resource leaves it above the threshold
// minus the hysteresis (a resource it no longer uses, or no longer shares,
// counts as recovered). The caller does not call it when the shares could
// not be read, so that nothing recovers for lack of evidence.
func EvaluateFairness(in FairnessInput) Output {
	o := in.FairnessOptions
	now := in.Now
	ev := &evaluation{now: now, put: map[string]*Alert{}, seen: map[string]bool{}}
	var mine []Alert
	for _, a := range in.Alerts {
		if a.Policy == FairnessPolicy {
			mine = append(mine, a)
		}
	}
	detect := map[string]int{}
	still := map[string]int{}
	for _, s := range in.Shares {
		if !s.Contended {
			continue
		}
		if s.BP > o.ThresholdBP && s.BP > detect[s.Tenant] {
			detect[s.Tenant] = s.BP
		}
		if s.BP > o.ThresholdBP-o.HysteresisBP && s.BP > still[s.Tenant] {
			still[s.Tenant] = s.BP
		}
	}
	byTenant := map[string]*Alert{}
	for i := range mine {
		byTenant[mine[i].Labels[o.TenantLabel]] = &mine[i]
	}
	tenants := make([]string, 0, len(detect))
	for t := range detect {
		tenants = append(tenants, t)
	}
	sort.Strings(tenants)
	for _, t := range tenants {
		a := byTenant[t]
		if a != nil && a.State == Firing {
			continue
		}
		labels := Labels{o.TenantLabel: t}
		n := Alert{
			Fingerprint: Fingerprint(FairnessPolicy, labels), Policy: FairnessPolicy, Severity: Warning,
			Labels: labels, State: Firing, Reason: ReasonNoisyNeighbor, Value: float64(detect[t]),
			ActiveAt: now, FiredAt: now, UpdatedAt: now, Notified: true,
		}
		if a != nil {
			n.Outbox, n.Sent, n.LastNotifiedAt = a.Outbox, a.Sent, a.LastNotifiedAt
		}
		bp := max(detect[t], 1)
		data, _ := json.Marshal(map[string]int{"share_bp": min(bp, 10000)})
		ev.record(&n, Notification{
			ID: NotificationID(n.Fingerprint, "noisy", now), Channel: ChannelMultiTenant, Type: TypeNoisyNeighbor,
			Tenant: t, Subject: governor.DefaultSubject, Time: now, Data: data,
		})
		ev.put[n.Fingerprint] = &n
	}
	for i := range mine {
		a := &mine[i]
		t := a.Labels[o.TenantLabel]
		switch {
		case a.State == Firing && still[t] == 0:
			n := a.Clone()
			n.State, n.ResolvedAt, n.UpdatedAt, n.Notified = Resolved, now, now, false
			ev.record(&n, Notification{
				ID: NotificationID(n.Fingerprint, "recovered", now), Channel: ChannelMultiTenant, Type: TypeRecovered,
				Tenant: t, Subject: governor.DefaultSubject, Time: now, Data: []byte(`{}`),
			})
			ev.put[n.Fingerprint] = &n
		case a.State == Firing && math.Abs(float64(still[t])-a.Value) >= 100:
			// Track the share in steps of one point, so that the listing
			// stays current without a write per evaluation.
			n := a.Clone()
			n.Value, n.UpdatedAt = float64(still[t]), now
			ev.put[n.Fingerprint] = &n
		case a.State != Firing && len(a.Outbox) == 0 && now.Sub(a.ResolvedAt) >= in.Retention && in.Retention > 0:
			if _, firing := ev.put[a.Fingerprint]; !firing {
				ev.del = append(ev.del, a.Fingerprint)
			}
		}
	}
	return ev.output(mine)
}

// validTenant reports whether t obeys the tenant id rules: 1 to 128 of
// [A-Za-z0-9._-], not "." or "..", not starting with "__".
func validTenant(t string) bool {
	if t == "" || len(t) > 128 || t == "." || t == ".." || strings.HasPrefix(t, "__") {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !(isLetter(c) || isDigit(c) || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
