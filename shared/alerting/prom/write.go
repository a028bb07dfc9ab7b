package prom

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"time"

	"github.com/klauspost/compress/snappy"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/autonomics/autonomics/shared/alerting"
	"github.com/autonomics/autonomics/shared/fault"
)

// WriterOptions configure a Writer.
type WriterOptions struct {
	// URL is the remote write endpoint, such as
	// http://127.0.0.1:9090/api/v1/write.
	URL string
	// Client sends the requests; nil means a client of its own with
	// Timeout.
	Client *http.Client
	// Timeout bounds one attempt when Client is nil; 0 means
	// DefaultTimeout.
	Timeout time.Duration
	// Attempts bounds the attempts of one write (5xx, 429 and transport
	// errors are retried with jittered backoff); 0 means 3.
	Attempts int
	// Backoff is the first wait between attempts, doubled each time; 0
	// means 200ms.
	Backoff time.Duration
}

// Writer forwards samples to an engine with the Prometheus remote write
// protocol 1.0.
type Writer struct {
	o WriterOptions
}

// NewWriter returns a Writer to o.URL. It does not connect.
func NewWriter(o WriterOptions) (*Writer, error) {
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fault.Errorf(fault.Invalid, "prom.NewWriter", "remote write URL %q: want an http or https URL", o.URL)
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: o.Timeout}
	}
	if o.Attempts <= 0 {
		o.Attempts = 3
	}
	if o.Backoff <= 0 {
		o.Backoff = 200 * time.Millisecond
	}
	return &Writer{o: o}, nil
}

// Write sends samples in one request, the samples of each series in time
// order. An answer 4xx other than 429 (a sample the engine refuses, such
// as one out of order) is an Invalid error; what is still failing after
// the attempts is Unavailable. The protocol is idempotent for a sample
// the engine already holds with the same value and time.
func (w *Writer) Write(ctx context.Context, samples []alerting.Sample) error {
	const op = "prom.Write"
	if len(samples) == 0 {
		return nil
	}
	body := snappy.Encode(nil, EncodeWriteRequest(samples))
	var last error
	wait := w.o.Backoff
	for attempt := range w.o.Attempts {
		if attempt > 0 {
			t := time.NewTimer(wait/2 + rand.N(wait))
			select {
			case <-ctx.Done():
				t.Stop()
				return fault.Wrap(fault.Unavailable, op, fmt.Errorf("%w (last attempt: %v)", ctx.Err(), last))
			case <-t.C:
			}
			wait *= 2
		}
		retry, err := w.attempt(ctx, body)
		if err == nil {
			return nil
		}
		last = err
		if !retry {
			return fault.Wrap(fault.Invalid, op, err)
		}
	}
	return fault.Wrap(fault.Unavailable, op, last)
}

// attempt posts body once and says whether a failure may be retried.
func (w *Writer) attempt(ctx context.Context, body []byte) (retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.o.URL, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	resp, err := w.o.Client.Do(req)
	if err != nil {
		return true, err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	switch {
	case resp.StatusCode/100 == 2:
		return false, nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode/100 == 5:
		return true, fmt.Errorf("remote write answered %d: %s", resp.StatusCode, bytes.TrimSpace(msg))
	}
	return false, fmt.Errorf("remote write refused (%d): %s", resp.StatusCode, bytes.TrimSpace(msg))
}

// EncodeWriteRequest returns the protobuf encoding of the
// prometheus.WriteRequest of samples: one TimeSeries per series (labels,
// __name__ among them, sorted by name),
// its samples in time order, timestamps in milliseconds.
//
//	message WriteRequest { repeated TimeSeries timeseries = 1; }
//	message TimeSeries   { repeated Label labels = 1; repeated Sample samples = 2; }
//	message Label        { string name = 1; string value = 2; }
//	message Sample       { double value = 1; int64 timestamp = 2; }
func EncodeWriteRequest(samples []alerting.Sample) []byte {
	type series struct {
		name   string
		labels alerting.Labels
		points []alerting.Sample
	}
	byKey := map[string]*series{}
	var keys []string
	for _, s := range samples {
		k := s.Name + "\xfe" + s.Labels.Key()
		sr := byKey[k]
		if sr == nil {
			sr = &series{name: s.Name, labels: s.Labels}
			byKey[k] = sr
			keys = append(keys, k)
		}
		sr.points = append(sr.points, s)
	}
	sort.Strings(keys)
	var out, ts, lb, sm []byte
	for _, k := range keys {
		sr := byKey[k]
		sort.SliceStable(sr.points, func(i, j int) bool { return sr.points[i].Time.Before(sr.points[j].Time) })
		ts = ts[:0]
		names := append([]string{"__name__"}, sr.labels.Names()...)
		sort.Strings(names)
		for _, n := range names {
			v := sr.labels[n]
			if n == "__name__" {
				v = sr.name
			}
			lb = lb[:0]
			lb = protowire.AppendTag(lb, 1, protowire.BytesType)
			lb = protowire.AppendString(lb, n)
			lb = protowire.AppendTag(lb, 2, protowire.BytesType)
			lb = protowire.AppendString(lb, v)
			ts = protowire.AppendTag(ts, 1, protowire.BytesType)
			ts = protowire.AppendBytes(ts, lb)
		}
		for _, p := range sr.points {
			sm = sm[:0]
			sm = protowire.AppendTag(sm, 1, protowire.Fixed64Type)
			sm = protowire.AppendFixed64(sm, math.Float64bits(p.Value))
			sm = protowire.AppendTag(sm, 2, protowire.VarintType)
			sm = protowire.AppendVarint(sm, uint64(p.Time.UnixMilli()))
			ts = protowire.AppendTag(ts, 2, protowire.BytesType)
			ts = protowire.AppendBytes(ts, sm)
		}
		out = protowire.AppendTag(out, 1, protowire.BytesType)
		out = protowire.AppendBytes(out, ts)
	}
	return out
}

// String describes the writer for logs.
func (w *Writer) String() string { return "remote write to " + strconv.Quote(w.o.URL) }
