package alerting

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/autonomics/autonomics/shared/governor"
)

// Sample is one metric point.
type Sample struct {
	Name   string
	Labels Labels
	Value  float64
	Time   time.Time
}

// Limits of a metrics request.
const (
	// MaxSamplesPerRequest bounds the points of one POST /v1/metrics.
	MaxSamplesPerRequest = 10000
	// MaxMetricsBody bounds the body of one POST /v1/metrics.
	MaxMetricsBody = 8 << 20
)

// SampleRules bound the times ParseSamples accepts.
type SampleRules struct {
	// MaxFuture is how far ahead of now a sample time may be (clock skew).
	MaxFuture time.Duration
	// MaxAge is how far behind now a sample time may be.
	MaxAge time.Duration
}

// DefaultSampleRules accept samples from an hour ago to five minutes ahead.
var DefaultSampleRules = SampleRules{MaxFuture: 5 * time.Minute, MaxAge: time.Hour}

// Validate checks a sample against the naming rules, requires a finite
// value, and a time within rules of now.
func (s *Sample) Validate(now time.Time, rules SampleRules) error {
	const op = "alerting.Sample"
	if r := metricNameReason(s.Name); r != "" {
		return governor.Errorf(governor.Invalid, op, "name %q %s", s.Name, r)
	}
	if r := labelsReason(s.Labels); r != "" {
		return governor.Errorf(governor.Invalid, op, "%s labels: %s", s.Name, r)
	}
	if math.IsNaN(s.Value) || math.IsInf(s.Value, 0) {
		return governor.Errorf(governor.Invalid, op, "%s value %v is not a finite number", s.Name, s.Value)
	}
	if s.Time.IsZero() {
		return governor.Errorf(governor.Invalid, op, "%s has no time", s.Name)
	}
	if rules.MaxFuture > 0 && s.Time.After(now.Add(rules.MaxFuture)) {
		return governor.Errorf(governor.Invalid, op, "%s time %s is more than %v ahead of the monitor's clock (%s)",
			s.Name, s.Time.UTC().Format(time.RFC3339Nano), rules.MaxFuture, now.UTC().Format(time.RFC3339))
	}
	if rules.MaxAge > 0 && s.Time.Before(now.Add(-rules.MaxAge)) {
		return governor.Errorf(governor.Invalid, op, "%s time %s is more than %v old",
			s.Name, s.Time.UTC().Format(time.RFC3339Nano), rules.MaxAge)
	}
	return nil
}

// sampleJSON is the wire form of a sample.
type sampleJSON struct {
	Name   string      `json:"name"`
	Labels Labels      `json:"labels"`
	Value  json.Number `json:"value"`
	Time   string      `json:"time"`
}

// ParseSamples decodes and validates the body of POST /v1/metrics: a JSON
// array of {name, labels, value, time}, time an RFC 3339 timestamp that
// defaults to now when omitted. The whole batch is refused, with an
// Invalid error naming the index of the first bad point, if any point is
// malformed.
func ParseSamples(body []byte, now time.Time, rules SampleRules) ([]Sample, error) {
	const op = "alerting.ParseSamples"
	if len(body) > MaxMetricsBody {
		return nil, governor.Errorf(governor.Invalid, op, "body is %d bytes, limit %d", len(body), MaxMetricsBody)
	}
	if !utf8.Valid(body) {
		return nil, governor.Errorf(governor.Invalid, op, "body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	var raw []sampleJSON
	if err := dec.Decode(&raw); err != nil {
		return nil, governor.Errorf(governor.Invalid, op, "body: %s (want a JSON array of {name, labels, value, time})", jsonProblem(err))
	}
	if dec.More() {
		return nil, governor.Errorf(governor.Invalid, op, "body: trailing data after the array")
	}
	if len(raw) == 0 {
		return nil, governor.Errorf(governor.Invalid, op, "body: no metric points")
	}
	if len(raw) > MaxSamplesPerRequest {
		return nil, governor.Errorf(governor.Invalid, op, "body: %d points, limit %d per request", len(raw), MaxSamplesPerRequest)
	}
	out := make([]Sample, len(raw))
	for i, r := range raw {
		fail := func(format string, args ...any) error {
			return governor.Errorf(governor.Invalid, op, "metrics[%d]: %s", i, fmt.Sprintf(format, args...))
		}
		if r.Value == "" {
			return nil, fail("value is required")
		}
		v, err := strconv.ParseFloat(string(r.Value), 64)
		if err != nil || math.IsInf(v, 0) {
			return nil, fail("value %s is not a finite number", r.Value)
		}
		t := now
		if r.Time != "" {
			if t, err = time.Parse(time.RFC3339Nano, r.Time); err != nil {
				return nil, fail("time %q: want an RFC 3339 timestamp", r.Time)
			}
		}
		s := Sample{Name: r.Name, Labels: r.Labels, Value: v, Time: t.UTC()}
		if err := s.Validate(now, rules); err != nil {
			return nil, fail("%s", governor.ErrorMessage(err))
		}
		out[i] = s
	}
	return out, nil
}
