package webhook

import (
	"hash/fnv"
	"net/http"
	"strconv"
	"time"
)

// Policy is the retry schedule of a delivery: the n-th retry waits
// Initial × Multiplier^(n-1), at most Cap, varied by up to ±Jitter of
// itself (deterministically, from the delivery and the attempt), and no
// retry is scheduled later than MaxAge after the first attempt.
type Policy struct {
	Initial    time.Duration
	Multiplier float64
	Cap        time.Duration
	MaxAge     time.Duration
	// Jitter is a fraction, 0 to 0.5.
	Jitter float64
}

// DefaultPolicy retries after about 5s, 15s, 45s, 2m15s, 7m, 20m, 1h, 3h,
// 9h and then every 12h, for 3 days: about 14 attempts in all.
var DefaultPolicy = Policy{Initial: 5 * time.Second, Multiplier: 3, Cap: 12 * time.Hour, MaxAge: 72 * time.Hour, Jitter: 0.1}

// withDefaults fills the zero fields of p from DefaultPolicy.
func (p Policy) withDefaults() Policy {
	if p.Initial <= 0 {
		p.Initial = DefaultPolicy.Initial
	}
	if p.Multiplier < 1 {
		p.Multiplier = DefaultPolicy.Multiplier
	}
	if p.Cap <= 0 {
		p.Cap = DefaultPolicy.Cap
	}
	if p.MaxAge <= 0 {
		p.MaxAge = DefaultPolicy.MaxAge
	}
	p.Jitter = max(0, min(p.Jitter, 0.5))
	return p
}

// Delay returns the wait before the retry that follows attempt n (n ≥ 1)
// of the delivery named key.
func (p Policy) Delay(n int, key string) time.Duration {
	p = p.withDefaults()
	d := float64(p.Initial)
	for i := 1; i < n && d < float64(p.Cap); i++ {
		d *= p.Multiplier
	}
	d = min(d, float64(p.Cap))
	if p.Jitter > 0 {
		h := fnv.New64a()
		h.Write([]byte(key))
		h.Write([]byte{0})
		h.Write(strconv.AppendInt(nil, int64(n), 10))
		u := float64(h.Sum64()%10001)/10000*2 - 1 // in [-1, 1]
		d += d * p.Jitter * u
	}
	return time.Duration(d)
}

// Next returns when to retry after attempt n failed at now, for a delivery
// first attempted at first: after Delay(n), or after retryAfter when the
// receiver asked for longer (at most Cap), and false when that would be
// later than MaxAge after first.
func (p Policy) Next(n int, key string, first, now time.Time, retryAfter time.Duration) (time.Time, bool) {
	p = p.withDefaults()
	d := p.Delay(n, key)
	if retryAfter > d {
		d = min(retryAfter, p.Cap)
	}
	at := now.Add(d)
	if at.After(first.Add(p.MaxAge)) {
		return time.Time{}, false
	}
	return at, true
}

// Outcome classifies the answer to one attempt.
type Outcome string

// Outcomes of an attempt.
const (
	// Delivered: a 2xx answer.
	Delivered Outcome = "delivered"
	// Retry: 3xx, 408, 429, 5xx, a timeout or a transport error; the
	// attempt is repeated on the Policy's schedule.
	Retry Outcome = "retry"
	// Permanent: any other 4xx; the delivery fails for good.
	Permanent Outcome = "permanent"
	// Gone: 410; the endpoint is disabled and the delivery fails for good.
	Gone Outcome = "gone"
	// Unknown: the attempt's outcome was never recorded (the instance
	// stopped); it counts as a failure to retry.
	Unknown Outcome = "unknown"
	// InFlight: the attempt is under way.
	InFlight Outcome = "in_flight"
	// Refused: the attempt was not made because the Guard refused the
	// address or a secret could not be had; it is retried.
	Refused Outcome = "refused"
)

// Classify returns the outcome of an HTTP status (0 for a transport
// error).
func Classify(status int) Outcome {
	switch {
	case status >= 200 && status <= 299:
		return Delivered
	case status == http.StatusGone:
		return Gone
	case status == http.StatusRequestTimeout || status == http.StatusTooManyRequests:
		return Retry
	case status >= 400 && status <= 499:
		return Permanent
	}
	return Retry
}

// retryAfter parses a Retry-After header: seconds, or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil && s >= 0 {
		return time.Duration(min(s, 1<<31)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
