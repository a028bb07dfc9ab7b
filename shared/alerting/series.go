package alerting

import (
	"math"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/autonomics/autonomics/shared/governor"
)

// Defaults of SeriesOptions.
const (
	// DefaultMaxSeries bounds the pushed series of all sources together.
	DefaultMaxSeries = 100_000
	// DefaultMaxSeriesMemory bounds the estimated memory of the pushed
	// series (SeriesCost), in bytes: 96 MiB, a fifth of a 512 MiB
	// instance, so that the live heap, the garbage collector's headroom
	// and the requests in flight fit together.
	DefaultMaxSeriesMemory = 96 << 20
	// DefaultSourceShare is the part of the series budget, by number and
	// by memory, that one source may hold.
	DefaultSourceShare = 0.25
	// DefaultMaxHistoryPoints bounds the points of history a series of a
	// History metric keeps; older points are dropped first.
	DefaultMaxHistoryPoints = 128
)

// SeriesOptions configure a SeriesSet. Zero fields take their defaults.
type SeriesOptions struct {
	// MaxSeries bounds the number of pushed series (all but the reserved
	// ones); 0 means DefaultMaxSeries.
	MaxSeries int
	// MaxMemory bounds the estimated memory of the pushed series, in
	// bytes (see SeriesCost); 0 means DefaultMaxSeriesMemory.
	MaxMemory int64
	// SourceShare is the fraction (0 < share ≤ 1) of MaxSeries and of
	// MaxMemory that one source may hold; 0 means DefaultSourceShare.
	// Samples added without a source (Add) are held to the totals only.
	SourceShare float64
	// Reserved names the metrics only AddReserved writes: their series
	// have a budget of their own (ReservedSeries), which pushed series
	// cannot take, and pushes naming them are refused. Nil means
	// ReceiptMetricNames.
	Reserved []string
	// ReservedSeries bounds the series of the reserved metrics; 0 means
	// ReceiptSeriesBound(DefaultMaxReceiptTenants).
	ReservedSeries int
	// History maps metric names to how long their samples are kept (the
	// latest sample of every series is always kept). Fairness needs the
	// samples of its usage metric over its window.
	History map[string]time.Duration
	// MaxHistoryPoints bounds the history of one series; 0 means
	// DefaultMaxHistoryPoints.
	MaxHistoryPoints int
}

// withDefaults fills in the zero fields.
func (o SeriesOptions) withDefaults() SeriesOptions {
	if o.MaxSeries <= 0 {
		o.MaxSeries = DefaultMaxSeries
	}
	if o.MaxMemory <= 0 {
		o.MaxMemory = DefaultMaxSeriesMemory
	}
	if o.SourceShare <= 0 || o.SourceShare > 1 {
		o.SourceShare = DefaultSourceShare
	}
	if o.Reserved == nil {
		o.Reserved = ReceiptMetricNames
	}
	if o.ReservedSeries <= 0 {
		o.ReservedSeries = ReceiptSeriesBound(DefaultMaxReceiptTenants)
	}
	if o.MaxHistoryPoints <= 0 {
		o.MaxHistoryPoints = DefaultMaxHistoryPoints
	}
	return o
}

// SeriesSet holds the latest sample of every series, indexed for policy
// matching, within a memory budget:
//
//   - pushed series (Add, AddFrom) are bounded by number (MaxSeries) and
//     by estimated memory (MaxMemory, see SeriesCost);
//   - each source may hold at most SourceShare of both: a source is
//     charged for the series it creates (and the metric names and its own
//     record) until they are pruned, whoever updates them afterwards;
//   - the reserved metrics (the receipt-derived ones by default) have a
//     budget of their own, written only by AddReserved, so that no push
//     can crowd them out.
//
// A batch that would exceed a bound is refused whole, recording nothing.
// It is safe for concurrent use: ingestion takes a write lock, evaluation
// a read lock.
type SeriesSet struct {
	mu       sync.RWMutex
	o        SeriesOptions
	reserved map[string]bool
	metrics  map[string]*metricSeries
	since    time.Time
	// pushed totals the pushed series, metrics and sources.
	pushed   usage
	reserveN int
	sources  map[string]*usage
	// shareSeries and shareMemory are one source's part of the budget.
	shareSeries int
	shareMemory int64
}

// usage is what one source (or all of them, in SeriesSet.pushed) holds.
type usage struct {
	source string
	series int
	// metrics counts the metric indexes the source was charged for.
	metrics int
	memory  int64
}

// metricSeries are the series of one metric.
type metricSeries struct {
	all   []*series
	byKey map[string]*series
	// postings lists the series having each label pair, keyed name=value.
	postings map[string][]*series
	// payer was charged for the index; nil for reserved metrics.
	payer *usage
}

// labelPair is one label of a series.
type labelPair struct{ name, value string }

// series is one labelled series of a metric. Its label names and values
// are substrings of its key, so that its label bytes are stored once.
type series struct {
	labels []labelPair // sorted by name
	key    string
	value  float64
	time   time.Time
	hist   []point
	// owner was charged cost for the series; nil for reserved ones.
	owner *usage
	cost  int64
}

// point is a sample kept in a series' history.
type point struct {
	t int64 // Unix nanoseconds
	v float64
}

// NewSeriesSet returns an empty set that started observing at since: a
// series it has never seen is known to have had no sample only for the
// time since then.
func NewSeriesSet(since time.Time, o SeriesOptions) *SeriesSet {
	o = o.withDefaults()
	s := &SeriesSet{
		o: o, reserved: make(map[string]bool, len(o.Reserved)), metrics: map[string]*metricSeries{},
		since: since, sources: map[string]*usage{},
		shareSeries: max(int(math.Floor(float64(o.MaxSeries)*o.SourceShare)), 1),
		shareMemory: max(int64(math.Floor(float64(o.MaxMemory)*o.SourceShare)), 1),
	}
	for _, name := range o.Reserved {
		s.reserved[name] = true
	}
	return s
}

// Since returns when the set started observing.
func (s *SeriesSet) Since() time.Time { return s.since }

// Len returns the number of series, reserved ones included.
func (s *SeriesSet) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.pushed.series + s.reserveN
}

// BudgetUsage describes how much of its budget a SeriesSet uses. Memory
// is estimated (SeriesCost).
type BudgetUsage struct {
	// Series and Memory are what the pushed series hold, of MaxSeries and
	// MaxMemory.
	Series    int   `json:"series"`
	MaxSeries int   `json:"max_series"`
	Memory    int64 `json:"memory_bytes"`
	MaxMemory int64 `json:"max_memory_bytes"`
	// Sources counts the sources holding series; SourceMaxSeries and
	// SourceMaxMemory are one source's share; Largest* what the largest
	// holder holds.
	Sources             int   `json:"sources"`
	SourceMaxSeries     int   `json:"source_max_series"`
	SourceMaxMemory     int64 `json:"source_max_memory_bytes"`
	LargestSourceSeries int   `json:"largest_source_series"`
	LargestSourceMemory int64 `json:"largest_source_memory_bytes"`
	// Reserved is the number of series of reserved metrics, of
	// MaxReserved.
	Reserved    int `json:"reserved_series"`
	MaxReserved int `json:"max_reserved_series"`
}

// Usage returns the set's use of its budget.
func (s *SeriesSet) Usage() BudgetUsage {
	s.mu.RLock()
	defer s.mu.RUnlock()
	u := BudgetUsage{
		Series: s.pushed.series, MaxSeries: s.o.MaxSeries, Memory: s.pushed.memory, MaxMemory: s.o.MaxMemory,
		Sources: len(s.sources), SourceMaxSeries: s.shareSeries, SourceMaxMemory: s.shareMemory,
		Reserved: s.reserveN, MaxReserved: s.o.ReservedSeries,
	}
	for _, su := range s.sources {
		u.LargestSourceSeries = max(u.LargestSourceSeries, su.series)
		u.LargestSourceMemory = max(u.LargestSourceMemory, su.memory)
	}
	return u
}

// SourceUsage returns the series and estimated memory source holds.
func (s *SeriesSet) SourceUsage(source string) (series int, memory int64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if u := s.sources[source]; u != nil {
		return u.series, u.memory
	}
	return 0, 0
}

// IsReserved reports whether metric is one only AddReserved writes.
func (s *SeriesSet) IsReserved(metric string) bool { return s.reserved[metric] }

// Add records samples that no source is accountable for (in-process
// callers): they are held to the totals of the budget but not to a share.
// See AddFrom.
func (s *SeriesSet) Add(samples ...Sample) error { return s.AddFrom("", samples...) }

// AddFrom records samples pushed by source. A sample older than its
// series' latest one only enters the history. Samples of reserved metrics
// are refused. When the new series of the batch would take the pushed
// series past the budget, or source past its share, none is recorded and
// an Invalid error wrapping LimitSeries or LimitSourceShare says so.
func (s *SeriesSet) AddFrom(source string, samples ...Sample) error {
	const op = "alerting.SeriesSet.Add"
	for i := range samples {
		if s.reserved[samples[i].Name] {
			return governor.Errorf(governor.Invalid, op, "metric %q is reserved: the monitor derives it from receipts", samples[i].Name)
		}
	}
	keys := make([]string, len(samples))
	for i := range samples {
		keys[i] = samples[i].Labels.Key()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.sources[source]
	// The cost of what the batch creates.
	var newSeries, newMetrics int
	var mem int64
	fresh := map[string]bool{}
	freshMetric := map[string]bool{}
	for i := range samples {
		sm := &samples[i]
		ms := s.metrics[sm.Name]
		if ms != nil && ms.byKey[keys[i]] != nil {
			continue
		}
		id := sm.Name + "\xfe" + keys[i]
		if fresh[id] {
			continue
		}
		fresh[id] = true
		newSeries++
		mem += SeriesCost(sm.Name, sm.Labels, s.historyPoints(sm.Name))
		if ms == nil && !freshMetric[sm.Name] {
			freshMetric[sm.Name] = true
			newMetrics++
			mem += metricCost + int64(len(sm.Name))
		}
	}
	if newSeries == 0 {
		for i := range samples {
			s.add(&samples[i], keys[i], u)
		}
		return nil
	}
	if u == nil {
		mem += sourceCost + int64(len(source))
	}
	if source != "" {
		held, heldMem := 0, int64(0)
		if u != nil {
			held, heldMem = u.series, u.memory
		}
		if held+newSeries > s.shareSeries || heldMem+mem > s.shareMemory {
			return LimitError(LimitSourceShare, op,
				"source %s holds %d series (%d bytes) and asks for %d more (%d bytes): one source may hold at most %d series and %d bytes",
				quoteInput(source), held, heldMem, newSeries, mem, s.shareSeries, s.shareMemory)
		}
	}
	if s.pushed.series+newSeries > s.o.MaxSeries {
		return LimitError(LimitSeries, op, "series limit %d reached (%d series, %d new): reduce label cardinality",
			s.o.MaxSeries, s.pushed.series, newSeries)
	}
	if s.pushed.memory+mem > s.o.MaxMemory {
		return LimitError(LimitSeries, op, "series memory limit of %d bytes reached (%d bytes held, %d more needed): reduce label cardinality or label sizes",
			s.o.MaxMemory, s.pushed.memory, mem)
	}
	if u == nil {
		u = &usage{source: source, memory: sourceCost + int64(len(source))}
		s.sources[source] = u
		s.pushed.memory += u.memory
	}
	for i := range samples {
		s.add(&samples[i], keys[i], u)
	}
	return nil
}

// AddReserved records samples of reserved metrics, the monitor's own. They
// are held to the reserved budget only, which pushes cannot take: when the
// batch would exceed it (which a correctly sized budget never lets happen)
// nothing is recorded and an Invalid error wrapping LimitReservedSeries
// says so.
func (s *SeriesSet) AddReserved(samples ...Sample) error {
	const op = "alerting.SeriesSet.AddReserved"
	for i := range samples {
		if !s.reserved[samples[i].Name] {
			return governor.Errorf(governor.Invalid, op, "metric %q is not reserved", samples[i].Name)
		}
	}
	keys := make([]string, len(samples))
	for i := range samples {
		keys[i] = samples[i].Labels.Key()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fresh := map[string]bool{}
	for i := range samples {
		sm := &samples[i]
		if ms := s.metrics[sm.Name]; ms == nil || ms.byKey[keys[i]] == nil {
			fresh[sm.Name+"\xfe"+keys[i]] = true
		}
	}
	if s.reserveN+len(fresh) > s.o.ReservedSeries {
		return LimitError(LimitReservedSeries, op, "reserved series limit %d reached (%d series, %d new)",
			s.o.ReservedSeries, s.reserveN, len(fresh))
	}
	for i := range samples {
		s.add(&samples[i], keys[i], nil)
	}
	return nil
}

// historyPoints returns the points of history a series of metric keeps.
func (s *SeriesSet) historyPoints(metric string) int {
	if _, ok := s.o.History[metric]; ok {
		return s.o.MaxHistoryPoints
	}
	return 0
}

// add records one sample; u is the source charged for what it creates,
// nil for a reserved metric. The caller holds the write lock and has
// checked the budget.
func (s *SeriesSet) add(sm *Sample, key string, u *usage) {
	ms := s.metrics[sm.Name]
	if ms == nil {
		ms = &metricSeries{byKey: map[string]*series{}, postings: map[string][]*series{}}
		s.metrics[sm.Name] = ms
		if u != nil {
			ms.payer = u
			u.metrics++
			c := int64(metricCost + len(sm.Name))
			u.memory += c
			s.pushed.memory += c
			s.pushed.metrics++
		}
	}
	sr := ms.byKey[key]
	if sr == nil {
		sr = &series{labels: pairsOf(key, sm.Labels), key: key, value: sm.Value, time: sm.Time}
		ms.insert(sr)
		if u != nil {
			sr.owner = u
			sr.cost = SeriesCost(sm.Name, sm.Labels, s.historyPoints(sm.Name))
			u.series++
			u.memory += sr.cost
			s.pushed.series++
			s.pushed.memory += sr.cost
		} else {
			s.reserveN++
		}
	} else if !sm.Time.Before(sr.time) {
		sr.value, sr.time = sm.Value, sm.Time
	}
	if keep, ok := s.o.History[sm.Name]; ok {
		sr.record(point{t: sm.Time.UnixNano(), v: sm.Value}, s.o.MaxHistoryPoints)
		sr.trim(sr.time.Add(-keep))
	}
}

// pairsOf returns the labels as pairs sorted by name whose strings are
// substrings of key, which must be l.Key().
func pairsOf(key string, l Labels) []labelPair {
	if len(l) == 0 {
		return nil
	}
	pairs := make([]labelPair, 0, len(l))
	off := 0
	for _, k := range l.Names() {
		v := l[k]
		pairs = append(pairs, labelPair{name: key[off : off+len(k)], value: key[off+len(k)+1 : off+len(k)+1+len(v)]})
		off += len(k) + 1 + len(v) + 1
	}
	return pairs
}

// pairKeys calls fn with the name=value posting key of every label of sr,
// a substring of its key.
func (sr *series) pairKeys(fn func(string)) {
	off := 0
	for _, p := range sr.labels {
		n := len(p.name) + 1 + len(p.value)
		fn(sr.key[off : off+n])
		off += n + 1
	}
}

// get returns the value of label name, or "".
func (sr *series) get(name string) string {
	i := sort.Search(len(sr.labels), func(i int) bool { return sr.labels[i].name >= name })
	if i < len(sr.labels) && sr.labels[i].name == name {
		return sr.labels[i].value
	}
	return ""
}

// matches reports whether every matcher of m has the same value in sr.
func (sr *series) matches(m Labels) bool {
	for k, v := range m {
		if sr.get(k) != v {
			return false
		}
	}
	return true
}

// labelMap returns a copy of sr's labels; nil when it has none.
func (sr *series) labelMap() Labels {
	if len(sr.labels) == 0 {
		return nil
	}
	l := make(Labels, len(sr.labels))
	for _, p := range sr.labels {
		l[strings.Clone(p.name)] = strings.Clone(p.value)
	}
	return l
}

func (ms *metricSeries) insert(sr *series) {
	ms.all = append(ms.all, sr)
	ms.byKey[sr.key] = sr
	sr.pairKeys(func(pk string) {
		ms.postings[pk] = append(ms.postings[pk], sr)
	})
}

// record adds p to the history in time order, dropping the oldest point
// when the history holds limit points.
func (sr *series) record(p point, limit int) {
	i := sort.Search(len(sr.hist), func(i int) bool { return sr.hist[i].t > p.t })
	if len(sr.hist) >= limit {
		if i == 0 {
			return // older than everything kept
		}
		copy(sr.hist, sr.hist[1:i])
		sr.hist[i-1] = p
		return
	}
	sr.hist = append(sr.hist, point{})
	copy(sr.hist[i+1:], sr.hist[i:])
	sr.hist[i] = p
}

// trim drops history points before t.
func (sr *series) trim(t time.Time) {
	tn := t.UnixNano()
	i := 0
	for i < len(sr.hist) && sr.hist[i].t < tn {
		i++
	}
	if i > 0 {
		sr.hist = append(sr.hist[:0], sr.hist[i:]...)
	}
}

// Prune removes the series whose latest sample is older than before,
// returning their budget to the sources that were charged for them, and
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
				s.release(sr)
				continue
			}
			if w, ok := s.o.History[name]; ok {
				sr.trim(before.Add(-w))
			}
			keep = append(keep, sr)
		}
		if len(keep) == len(ms.all) {
			continue
		}
		if len(keep) == 0 {
			delete(s.metrics, name)
			if u := ms.payer; u != nil {
				c := int64(metricCost + len(name))
				u.metrics--
				u.memory -= c
				s.pushed.memory -= c
				s.pushed.metrics--
				s.forget(u)
			}
			continue
		}
		fresh := &metricSeries{byKey: make(map[string]*series, len(keep)), postings: map[string][]*series{}, payer: ms.payer}
		for _, sr := range keep {
			fresh.insert(sr)
		}
		s.metrics[name] = fresh
	}
	return removed
}

// release returns a removed series' budget. The caller holds the write
// lock.
func (s *SeriesSet) release(sr *series) {
	u := sr.owner
	if u == nil {
		s.reserveN--
		return
	}
	u.series--
	u.memory -= sr.cost
	s.pushed.series--
	s.pushed.memory -= sr.cost
	s.forget(u)
}

// forget drops the record of a source that holds nothing any more.
func (s *SeriesSet) forget(u *usage) {
	if u.series > 0 || u.metrics > 0 {
		return
	}
	if s.sources[u.source] == u {
		delete(s.sources, u.source)
		s.pushed.memory -= sourceCost + int64(len(u.source))
	}
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
	return Sample{Name: metric, Labels: sr.labelMap(), Value: sr.value, Time: sr.time}, true
}

// Count returns the number of series of metric.
func (s *SeriesSet) Count(metric string) int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if ms := s.metrics[metric]; ms != nil {
		return len(ms.all)
	}
	return 0
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
		if sr.matches(matchers) {
			fn(sr)
		}
	}
}
