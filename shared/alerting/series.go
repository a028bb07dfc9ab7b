package alerting

import (
	"sync"
	"time"

	"github.com/autonomics/autonomics/shared/governor"
)

// DefaultMaxSeries bounds the series a SeriesSet keeps when no limit is set.
const DefaultMaxSeries = 200_000

// SeriesOptions configure a SeriesSet.
type SeriesOptions struct {
	// MaxSeries bounds the number of series; 0 means DefaultMaxSeries.
	MaxSeries int
	// History maps metric names to how long their samples are kept (the
	// latest sample of every series is always kept). Fairness needs the
	// samples of its usage metric over its window.
	History map[string]time.Duration
}

// SeriesSet holds the latest sample of every series, indexed for policy
// matching. It is safe for concurrent use: ingestion takes a write lock,
// evaluation a read lock.
type SeriesSet struct {
	mu      sync.RWMutex
	metrics map[string]*metricSeries
	n       int
	max     int
	history map[string]time.Duration
	since   time.Time
}

// metricSeries are the series of one metric.
type metricSeries struct {
	all   []*series
	byKey map[string]*series
	// postings lists the series having each label pair, keyed name=value.
	postings map[string][]*series
}

// series is one labelled series of a metric.
type series struct {
	labels Labels
	key    string
	value  float64
	time   time.Time
	hist   []point
}

// point is a sample kept in a series' history.
type point struct {
	t time.Time
	v float64
}

// NewSeriesSet returns an empty set that started observing at since: a
// series it has never seen is known to have had no sample only for the
// time since then.
func NewSeriesSet(since time.Time, o SeriesOptions) *SeriesSet {
	if o.MaxSeries <= 0 {
		o.MaxSeries = DefaultMaxSeries
	}
	return &SeriesSet{metrics: map[string]*metricSeries{}, max: o.MaxSeries, history: o.History, since: since}
}

// Since returns when the set started observing.
func (s *SeriesSet) Since() time.Time { return s.since }

// Len returns the number of series.
func (s *SeriesSet) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.n
}

// Add records samples. A sample older than its series' latest one only
// enters the history. When the samples would create more series than the
// limit allows, none is recorded and an Invalid error says so.
func (s *SeriesSet) Add(samples ...Sample) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	fresh := map[string]bool{}
	for i := range samples {
		sm := &samples[i]
		if ms := s.metrics[sm.Name]; ms == nil || ms.byKey[sm.Labels.Key()] == nil {
			fresh[sm.Name+"\xfe"+sm.Labels.Key()] = true
		}
	}
	if s.n+len(fresh) > s.max {
		return governor.Errorf(governor.Invalid, "alerting.SeriesSet.Add",
			"series limit %d reached (%d series, %d new): reduce label cardinality", s.max, s.n, len(fresh))
	}
	for i := range samples {
		s.add(&samples[i])
	}
	return nil
}

func (s *SeriesSet) add(sm *Sample) {
	ms := s.metrics[sm.Name]
	if ms == nil {
		ms = &metricSeries{byKey: map[string]*series{}, postings: map[string][]*series{}}
		s.metrics[sm.Name] = ms
	}
	key := sm.Labels.Key()
	sr := ms.byKey[key]
	if sr == nil {
		sr = &series{labels: sm.Labels.Clone(), key: key, value: sm.Value, time: sm.Time}
		ms.insert(sr)
		s.n++
	} else if !sm.Time.Before(sr.time) {
		sr.value, sr.time = sm.Value, sm.Time
	}
	if keep, ok := s.history[sm.Name]; ok {
		sr.hist = append(sr.hist, point{t: sm.Time, v: sm.Value})
		sr.trim(sm.Time.Add(-keep))
	}
}

func (ms *metricSeries) insert(sr *series) {
	ms.all = append(ms.all, sr)
	ms.byKey[sr.key] = sr
	for k, v := range sr.labels {
		pk := k + "=" + v
		ms.postings[pk] = append(ms.postings[pk], sr)
	}
}

// trim drops history points before t.
func (sr *series) trim(t time.Time) {
	i := 0
	for i < len(sr.hist) && sr.hist[i].t.Before(t) {
		i++
	}
	if i > 0 {
		sr.hist = append(sr.hist[:0], sr.hist[i:]...)
	}
}

// Prune removes the series whose latest sample is older than before and
// returns how many it removed.
func (s *SeriesSet) Prune(before time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	removed := 0
	for name, ms := range s.metrics {
		keep := ms.all[:0:0]
		for _, sr := range ms.all {
			if sr.time.Before(before) {
				removed++
				continue
			}
			if w, ok := s.history[name]; ok {
				sr.trim(before.Add(-w))
			}
			keep = append(keep, sr)
		}
		if len(keep) == len(ms.all) {
			continue
		}
		if len(keep) == 0 {
			delete(s.metrics, name)
			continue
		}
		fresh := &metricSeries{byKey: make(map[string]*series, len(keep)), postings: map[string][]*series{}}
		for _, sr := range keep {
			fresh.insert(sr)
		}
		s.metrics[name] = fresh
	}
	s.n -= removed
	return removed
}

// Latest returns the latest sample of the series of metric with exactly
// labels.
func (s *SeriesSet) Latest(metric string, labels Labels) (Sample, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ms := s.metrics[metric]
	if ms == nil {
		return Sample{}, false
	}
	sr := ms.byKey[labels.Key()]
	if sr == nil {
		return Sample{}, false
	}
	return Sample{Name: metric, Labels: sr.labels.Clone(), Value: sr.value, Time: sr.time}, true
}

// selectSeries calls fn for every series of metric matching matchers. The
// caller holds the read lock.
func (s *SeriesSet) selectSeries(metric string, matchers Labels, fn func(*series)) {
	ms := s.metrics[metric]
	if ms == nil {
		return
	}
	cands := ms.all
	for k, v := range matchers {
		p := ms.postings[k+"="+v]
		if len(p) < len(cands) {
			cands = p
		}
		if len(cands) == 0 {
			return
		}
	}
	for _, sr := range cands {
		if matchers.Matches(sr.labels) {
			fn(sr)
		}
	}
}
