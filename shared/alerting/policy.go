package alerting

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/autonomics/autonomics/shared/fault"
)

// Comparison is how a policy compares a sample with its threshold.
type Comparison string

// The comparisons of a policy.
const (
	GT  Comparison = "gt"
	GTE Comparison = "gte"
	LT  Comparison = "lt"
	LTE Comparison = "lte"
)

// Holds reports whether value compares with threshold as c says.
func (c Comparison) Holds(value, threshold float64) bool {
	switch c {
	case GT:
		return value > threshold
	case GTE:
		return value >= threshold
	case LT:
		return value < threshold
	case LTE:
		return value <= threshold
	}
	return false
}

// Severity ranks an alert.
type Severity string

// The severities of a policy.
const (
	Warning  Severity = "warning"
	Critical Severity = "critical"
)

// Bounds of a policy.
const (
	// MaxPolicyDuration bounds for, keep_firing_for and absent_for.
	MaxPolicyDuration = 24 * time.Hour
	// MaxNameLen bounds policy names and silence ids.
	MaxNameLen = 128
	// MaxExprBytes bounds the PromQL expression of a policy.
	MaxExprBytes = 4096
)

// Policy is an alert policy, in one of two shapes:
//
//   - a PromQL policy (Expr set) is a Prometheus alerting rule: every
//     series the expression returns at an evaluation is a true condition,
//     whose alert carries the series' labels (without __name__) and the
//     policy's Labels;
//   - a simple policy (Metric set) compares the latest sample of every
//     series of one metric matching its label matchers with a threshold,
//     and may watch for absent data; Compile turns it into PromQL.
type Policy struct {
	// Name identifies the policy; see ValidName.
	Name string
	// Expr is the PromQL expression of a PromQL policy; empty for a
	// simple policy.
	Expr string
	// Metric is the metric name a simple policy reads.
	Metric string
	// Labels are on every alert of the policy. A simple policy matches
	// them exactly on the series' labels (empty matches every series of
	// the metric); a PromQL policy adds them to its alerts' labels,
	// replacing a label of the same name.
	Labels Labels
	// Comparison and Threshold make the condition; both are empty for a
	// policy that only watches for absent data.
	Comparison Comparison
	Threshold  float64
	// For is how long the condition must hold before the alert fires.
	For time.Duration
	// KeepFiringFor keeps a firing alert firing for that long after its
	// condition turned false.
	KeepFiringFor time.Duration
	// AbsentFor, when set, makes a series (or the metric) that received no
	// sample for that long a true condition.
	AbsentFor time.Duration
	Severity  Severity
}

// HasThreshold reports whether the policy compares values.
func (p *Policy) HasThreshold() bool { return p.Comparison != "" }

// IsPromQL reports whether the policy is a PromQL expression.
func (p *Policy) IsPromQL() bool { return p.Expr != "" }

// Validate checks a policy and returns an Invalid error naming the first
// problem.
func (p *Policy) Validate() error {
	const op = "alerting.Policy"
	fail := func(format string, args ...any) error {
		return fault.Errorf(fault.Invalid, op, "policy %s: "+format, append([]any{quoteInput(p.Name)}, args...)...)
	}
	if err := ValidName("policy name", p.Name); err != nil {
		return err
	}
	if p.Expr != "" {
		return p.validatePromQL(fail)
	}
	if r := metricNameReason(p.Metric); r != "" {
		return fail("metric %s", r)
	}
	if r := labelsReason(p.Labels); r != "" {
		return fail("labels: %s", r)
	}
	switch p.Comparison {
	case GT, GTE, LT, LTE:
		if math.IsNaN(p.Threshold) || math.IsInf(p.Threshold, 0) {
			return fail("threshold must be a finite number")
		}
	case "":
		if p.AbsentFor == 0 {
			return fail("comparison is required (gt, gte, lt or lte) unless absent_for is set")
		}
		if p.Threshold != 0 {
			return fail("threshold needs a comparison")
		}
	default:
		return fail("comparison %s: want gt, gte, lt or lte", quoteInput(string(p.Comparison)))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"for", p.For}, {"keep_firing_for", p.KeepFiringFor}, {"absent_for", p.AbsentFor}} {
		if d.v < 0 {
			return fail("%s %v must not be negative", d.name, d.v)
		}
		if d.v > MaxPolicyDuration {
			return fail("%s %v exceeds %v", d.name, d.v, MaxPolicyDuration)
		}
	}
	switch p.Severity {
	case Warning, Critical:
	case "":
		return fail("severity is required (warning or critical)")
	default:
		return fail("severity %s: want warning or critical", quoteInput(string(p.Severity)))
	}
	return nil
}

// validatePromQL checks a PromQL policy: a bounded expression, no member
// of the simple shape, valid labels, durations and severity. Whether the
// expression parses is the metrics engine's to say (see the monitor).
func (p *Policy) validatePromQL(fail func(string, ...any) error) error {
	switch {
	case len(p.Expr) > MaxExprBytes:
		return fail("expr is %d bytes, limit %d", len(p.Expr), MaxExprBytes)
	case !utf8.ValidString(p.Expr):
		return fail("expr is not valid UTF-8")
	case strings.TrimSpace(p.Expr) == "":
		return fail("expr is blank")
	case strings.ContainsRune(p.Expr, 0):
		return fail("expr contains a NUL byte")
	case p.Metric != "":
		return fail("expr and metric exclude each other: a policy is a PromQL expression or a simple policy")
	case p.Comparison != "" || p.Threshold != 0:
		return fail("comparison and threshold belong in the expression of a PromQL policy (e.g. \"x > 0.8\")")
	case p.AbsentFor != 0:
		return fail("absent_for belongs in the expression of a PromQL policy (e.g. \"absent_over_time(x[10m])\")")
	}
	if r := labelsReason(p.Labels); r != "" {
		return fail("labels: %s", r)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"for", p.For}, {"keep_firing_for", p.KeepFiringFor}} {
		if d.v < 0 {
			return fail("%s %v must not be negative", d.name, d.v)
		}
		if d.v > MaxPolicyDuration {
			return fail("%s %v exceeds %v", d.name, d.v, MaxPolicyDuration)
		}
	}
	switch p.Severity {
	case Warning, Critical:
	case "":
		return fail("severity is required (warning or critical)")
	default:
		return fail("severity %s: want warning or critical", quoteInput(string(p.Severity)))
	}
	return nil
}

// ValidName returns an Invalid error unless name is a valid policy name or
// silence id: 1 to 128 characters of [A-Za-z0-9._-] starting with a
// letter or digit. what names the value in the message.
func ValidName(what, name string) error {
	const op = "alerting.ValidName"
	if name == "" || len(name) > MaxNameLen {
		return fault.Errorf(fault.Invalid, op, "%s %s: want 1 to %d characters", what, quoteInput(name), MaxNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := isLetter(c) || isDigit(c) || i > 0 && (c == '.' || c == '_' || c == '-')
		if !ok {
			return fault.Errorf(fault.Invalid, op, "%s %s: want [A-Za-z0-9][A-Za-z0-9._-]*", what, quoteInput(name))
		}
	}
	return nil
}

// policyJSON is the wire form of a policy: durations as Go duration
// strings ("90s", "5m", "1h30m").
type policyJSON struct {
	Name          string     `json:"name,omitempty"`
	Expr          string     `json:"expr,omitempty"`
	Metric        string     `json:"metric,omitempty"`
	Labels        Labels     `json:"labels,omitempty"`
	Comparison    Comparison `json:"comparison,omitempty"`
	Threshold     *float64   `json:"threshold,omitempty"`
	For           string     `json:"for,omitempty"`
	KeepFiringFor string     `json:"keep_firing_for,omitempty"`
	AbsentFor     string     `json:"absent_for,omitempty"`
	Severity      Severity   `json:"severity"`
}

// policyMembers are the member names of policyJSON.
var policyMembers = []string{"name", "expr", "metric", "labels", "comparison", "threshold", "for", "keep_firing_for", "absent_for", "severity"}

// MarshalJSON renders the policy with durations as strings.
func (p Policy) MarshalJSON() ([]byte, error) {
	j := policyJSON{
		Name: p.Name, Expr: p.Expr, Metric: p.Metric, Labels: p.Labels, Comparison: p.Comparison,
		For: durString(p.For), KeepFiringFor: durString(p.KeepFiringFor), AbsentFor: durString(p.AbsentFor),
		Severity: p.Severity,
	}
	if p.HasThreshold() {
		t := p.Threshold
		j.Threshold = &t
	}
	return json.Marshal(j)
}

func durString(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

// ParsePolicy decodes the JSON body of PUT /v1/policies/{name}, a PromQL
// policy {expr, labels, for, keep_firing_for, severity} or a simple one
// {metric, labels, comparison, threshold, for, keep_firing_for,
// absent_for, severity}, strictly:
// unknown or repeated members, a threshold without a comparison (or the reverse),
// durations that are not Go duration strings and trailing data are Invalid
// errors. The name comes from the path; a name in the body must agree. The
// policy is validated.
func ParsePolicy(name string, body []byte) (Policy, error) {
	const op = "alerting.ParsePolicy"
	var j policyJSON
	if !utf8.Valid(body) {
		return Policy{}, fault.Errorf(fault.Invalid, op, "policy %q: body is not valid UTF-8", name)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return Policy{}, fault.Errorf(fault.Invalid, op, "policy %q: body: %v", name, jsonProblem(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Policy{}, fault.Errorf(fault.Invalid, op, "policy %q: body: trailing data after the object", name)
	}
	if err := duplicateMember(body); err != nil {
		return Policy{}, fault.Errorf(fault.Invalid, op, "policy %q: body: %v", name, err)
	}
	if err := unknownMember(body, policyMembers...); err != nil {
		return Policy{}, fault.Errorf(fault.Invalid, op, "policy %q: body: %v", name, err)
	}
	if j.Name != "" && j.Name != name {
		return Policy{}, fault.Errorf(fault.Invalid, op, "policy %q: body names %s", name, quoteInput(j.Name))
	}
	p := Policy{Name: name, Expr: j.Expr, Metric: j.Metric, Labels: j.Labels, Comparison: j.Comparison, Severity: j.Severity}
	if j.Comparison != "" && j.Threshold == nil {
		return Policy{}, fault.Errorf(fault.Invalid, op, "policy %q: comparison %s needs a threshold", name, quoteInput(string(j.Comparison)))
	}
	if j.Threshold != nil {
		if j.Comparison == "" {
			return Policy{}, fault.Errorf(fault.Invalid, op, "policy %q: threshold needs a comparison (gt, gte, lt or lte)", name)
		}
		p.Threshold = *j.Threshold
	}
	for _, d := range []struct {
		name string
		s    string
		dst  *time.Duration
	}{{"for", j.For, &p.For}, {"keep_firing_for", j.KeepFiringFor, &p.KeepFiringFor}, {"absent_for", j.AbsentFor, &p.AbsentFor}} {
		if d.s == "" {
			continue
		}
		v, err := time.ParseDuration(d.s)
		if err != nil {
			return Policy{}, fault.Errorf(fault.Invalid, op, "policy %q: %s %s: want a duration such as \"90s\", \"5m\" or \"1h30m\"", name, d.name, quoteInput(d.s))
		}
		*d.dst = v
	}
	if err := p.Validate(); err != nil {
		return Policy{}, err
	}
	return p, nil
}

// jsonProblem rewrites the errors of encoding/json into messages that
// name the member at fault.
func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	if e, ok := err.(*json.UnmarshalTypeError); ok {
		te = e
		if te.Field != "" {
			return fmt.Sprintf("%s: want %s, got %s", te.Field, te.Type, te.Value)
		}
		return fmt.Sprintf("want %s, got %s", te.Type, te.Value)
	}
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "json: ")
	if msg == "EOF" {
		return "empty body, want a JSON object"
	}
	return msg
}
