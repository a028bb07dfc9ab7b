package alerting

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/autonomics/autonomics/shared/fault"
)

// Sample is one metric point.
type Sample struct {
	Name   string
	Labels Labels
	Value  float64
	Time   time.Time
}

// Defaults of the request limits of SampleRules.
const (
	// MaxSamplesPerRequest bounds the points of one POST /v1/metrics.
	MaxSamplesPerRequest = 10000
	// MaxMetricsBody bounds the body of one POST /v1/metrics: 2 MiB, room
	// for MaxSamplesPerRequest points of about 200 bytes.
	MaxMetricsBody = 2 << 20
	// MaxSeriesLabelBytes bounds a series' name plus its label names and
	// values.
	MaxSeriesLabelBytes = 2048
	// MaxRequestLabelBytes bounds the name and label bytes of all the
	// points of one request together.
	MaxRequestLabelBytes = 1 << 20
)

// SampleRules bound what ParseSamples accepts: the times of samples, and
// the size of a request. Zero size limits take their defaults.
type SampleRules struct {
	// MaxFuture is how far ahead of now a sample time may be (clock skew).
	MaxFuture time.Duration
	// MaxAge is how far behind now a sample time may be.
	MaxAge time.Duration
	// MaxBodyBytes bounds the body; 0 means MaxMetricsBody.
	MaxBodyBytes int64
	// MaxPoints bounds the points of a request; 0 means
	// MaxSamplesPerRequest.
	MaxPoints int
	// MaxSeriesLabelBytes bounds the name and label bytes of one point;
	// 0 means MaxSeriesLabelBytes.
	MaxSeriesLabelBytes int
	// MaxRequestLabelBytes bounds the name and label bytes of all the
	// points together; 0 means MaxRequestLabelBytes.
	MaxRequestLabelBytes int
}

// DefaultSampleRules accept samples from an hour ago to five minutes ahead,
// within the default request limits.
var DefaultSampleRules = SampleRules{
	MaxFuture: 5 * time.Minute, MaxAge: time.Hour,
	MaxBodyBytes: MaxMetricsBody, MaxPoints: MaxSamplesPerRequest,
	MaxSeriesLabelBytes: MaxSeriesLabelBytes, MaxRequestLabelBytes: MaxRequestLabelBytes,
}

// WithDefaults returns the rules with zero size limits set to their
// defaults.
func (r SampleRules) WithDefaults() SampleRules {
	if r.MaxBodyBytes <= 0 {
		r.MaxBodyBytes = MaxMetricsBody
	}
	if r.MaxPoints <= 0 {
		r.MaxPoints = MaxSamplesPerRequest
	}
	if r.MaxSeriesLabelBytes <= 0 {
		r.MaxSeriesLabelBytes = MaxSeriesLabelBytes
	}
	if r.MaxRequestLabelBytes <= 0 {
		r.MaxRequestLabelBytes = MaxRequestLabelBytes
	}
	return r
}

// Validate checks a sample against the naming rules and the series size
// limit, requires a finite value, and a time within rules of now. A series
// over the size limit is an error wrapping LimitSeriesLabelBytes.
func (s *Sample) Validate(now time.Time, rules SampleRules) error {
	const op = "alerting.Sample"
	rules = rules.WithDefaults()
	if r := metricNameReason(s.Name); r != "" {
		return fault.Errorf(fault.Invalid, op, "name %s %s", quoteInput(s.Name), r)
	}
	if r := labelsReason(s.Labels); r != "" {
		return fault.Errorf(fault.Invalid, op, "%s labels: %s", s.Name, r)
	}
	if n := labelBytes(s.Name, s.Labels); n > rules.MaxSeriesLabelBytes {
		return LimitError(LimitSeriesLabelBytes, op, "%s: name and labels are %d bytes, limit %d per series", s.Name, n, rules.MaxSeriesLabelBytes)
	}
	if math.IsNaN(s.Value) || math.IsInf(s.Value, 0) {
		return fault.Errorf(fault.Invalid, op, "%s value %v is not a finite number", s.Name, s.Value)
	}
	if s.Time.IsZero() {
		return fault.Errorf(fault.Invalid, op, "%s has no time", s.Name)
	}
	if rules.MaxFuture > 0 && s.Time.After(now.Add(rules.MaxFuture)) {
		return fault.Errorf(fault.Invalid, op, "%s time %s is more than %v ahead of the monitor's clock (%s)",
			s.Name, s.Time.UTC().Format(time.RFC3339Nano), rules.MaxFuture, now.UTC().Format(time.RFC3339))
	}
	if rules.MaxAge > 0 && s.Time.Before(now.Add(-rules.MaxAge)) {
		return fault.Errorf(fault.Invalid, op, "%s time %s is more than %v old",
			s.Name, s.Time.UTC().Format(time.RFC3339Nano), rules.MaxAge)
	}
	return nil
}

// ParseSamples decodes and validates the body of POST /v1/metrics: a JSON
// array of {name, labels, value, time}, time an RFC 3339 timestamp that
// defaults to now when omitted. The body is read one point at a time and
// strictly: duplicate member names (in a point or its labels), unknown
// members and trailing data are refused, and so is a body that breaks one
// of the size limits of rules, as soon as it does (with an error wrapping
// the Limit). The whole batch is refused, with an Invalid error naming the
// index of the first bad point, if any point is malformed.
func ParseSamples(body []byte, now time.Time, rules SampleRules) ([]Sample, error) {
	const op = "alerting.ParseSamples"
	rules = rules.WithDefaults()
	if int64(len(body)) > rules.MaxBodyBytes {
		return nil, LimitError(LimitBodyBytes, op, "body is %d bytes, limit %d", len(body), rules.MaxBodyBytes)
	}
	if !utf8.Valid(body) {
		return nil, fault.Errorf(fault.Invalid, op, "body is not valid UTF-8")
	}
	const want = "want a JSON array of {name, labels, value, time}"
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fault.Errorf(fault.Invalid, op, "body: empty (%s)", want)
		}
		return nil, fault.Errorf(fault.Invalid, op, "body: %s (%s)", jsonProblem(err), want)
	}
	if tok != json.Delim('[') {
		return nil, fault.Errorf(fault.Invalid, op, "body: %s, %s", describeToken(tok), want)
	}
	var out []Sample
	total := 0
	for i := 0; dec.More(); i++ {
		if i == rules.MaxPoints {
			return nil, LimitError(LimitPoints, op, "body: more than %d points, limit %d per request", rules.MaxPoints, rules.MaxPoints)
		}
		s, err := parsePoint(dec, now)
		if err == nil {
			err = s.Validate(now, rules)
		}
		if err != nil {
			if l, ok := LimitOf(err); ok {
				return nil, LimitError(l, op, "metrics[%d]: %s", i, fault.ErrorMessage(err))
			}
			return nil, fault.Errorf(fault.Invalid, op, "metrics[%d]: %s", i, fault.ErrorMessage(err))
		}
		total += labelBytes(s.Name, s.Labels)
		if total > rules.MaxRequestLabelBytes {
			return nil, LimitError(LimitRequestLabelBytes, op, "metrics[%d]: the names and labels of the points reach %d bytes, limit %d per request",
				i, total, rules.MaxRequestLabelBytes)
		}
		out = append(out, s)
	}
	if _, err := dec.Token(); err != nil {
		return nil, fault.Errorf(fault.Invalid, op, "body: %s", jsonProblem(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fault.Errorf(fault.Invalid, op, "body: trailing data after the array")
	}
	if len(out) == 0 {
		return nil, fault.Errorf(fault.Invalid, op, "body: no metric points")
	}
	return out, nil
}

// parsePoint reads one {name, labels, value, time} object. Nulls count as
// absent members.
func parsePoint(dec *json.Decoder, now time.Time) (Sample, error) {
	s := Sample{Time: now}
	var value json.Number
	err := readObject(dec, "point", func(member string) error {
		switch member {
		case "name":
			return readString(dec, member, &s.Name)
		case "labels":
			return readLabels(dec, &s.Labels)
		case "value":
			tok, err := dec.Token()
			if err != nil {
				return errors.New(jsonProblem(err))
			}
			switch v := tok.(type) {
			case nil:
			case json.Number:
				value = v
			default:
				return fmt.Errorf("value: want a number, got %s", describeToken(tok))
			}
			return nil
		case "time":
			var t string
			if err := readString(dec, member, &t); err != nil {
				return err
			}
			if t == "" {
				return nil
			}
			parsed, err := time.Parse(time.RFC3339Nano, t)
			if err != nil {
				return fmt.Errorf("time %s: want an RFC 3339 timestamp", quoteInput(t))
			}
			s.Time = parsed
			return nil
		}
		return fmt.Errorf("unknown field %s (want name, labels, value, time)", quoteInput(member))
	})
	if err != nil {
		return Sample{}, fault.Errorf(fault.Invalid, "alerting.parsePoint", "%v", err)
	}
	if value == "" {
		return Sample{}, fault.Errorf(fault.Invalid, "alerting.parsePoint", "value is required")
	}
	v, perr := strconv.ParseFloat(string(value), 64)
	if perr != nil || math.IsInf(v, 0) {
		return Sample{}, fault.Errorf(fault.Invalid, "alerting.parsePoint", "value %s is not a finite number", truncate(string(value), 64))
	}
	s.Value, s.Time = v, s.Time.UTC()
	return s, nil
}

// readLabels reads an object of string values. Null is no labels.
func readLabels(dec *json.Decoder, dst *Labels) error {
	l := Labels{}
	err := readObject(dec, "labels", func(name string) error {
		if len(l) == MaxLabels {
			return fmt.Errorf("labels: has at least %d labels, limit %d", MaxLabels+1, MaxLabels)
		}
		var v string
		if err := readString(dec, "labels."+name, &v); err != nil {
			return err
		}
		l[name] = v
		return nil
	})
	if err != nil {
		if errors.Is(err, errNull) {
			return nil
		}
		return err
	}
	*dst = l
	return nil
}

// errNull reports a null where readObject wanted an object.
var errNull = errors.New("null")

// readObject reads a JSON object, calling member with each member name;
// member must consume the value. A repeated name is an error. A null
// object is errNull for labels and no members otherwise.
func readObject(dec *json.Decoder, what string, member func(string) error) error {
	tok, err := dec.Token()
	if err != nil {
		return errors.New(jsonProblem(err))
	}
	if tok == nil {
		if what == "labels" {
			return errNull
		}
		return fmt.Errorf("want an object {name, labels, value, time}, got null")
	}
	if tok != json.Delim('{') {
		return fmt.Errorf("%s: want an object, got %s", what, describeToken(tok))
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return errors.New(jsonProblem(err))
		}
		name, _ := tok.(string)
		if seen[name] {
			return fmt.Errorf("%s: duplicate member %s", what, quoteInput(name))
		}
		seen[name] = true
		if err := member(name); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil {
		return errors.New(jsonProblem(err))
	}
	return nil
}

// readString reads a string member; null leaves dst empty.
func readString(dec *json.Decoder, what string, dst *string) error {
	tok, err := dec.Token()
	if err != nil {
		return errors.New(jsonProblem(err))
	}
	switch v := tok.(type) {
	case nil:
		return nil
	case string:
		*dst = v
		return nil
	}
	return fmt.Errorf("%s: want a string, got %s", what, describeToken(tok))
}

// describeToken names a JSON token for an error message.
func describeToken(tok json.Token) string {
	switch v := tok.(type) {
	case json.Delim:
		switch v {
		case '{':
			return "an object"
		case '[':
			return "an array"
		}
		return strconv.Quote(v.String())
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return "a value"
}
