package console

import (
	"context"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/autonomics/autonomics/shared/fault"
)

// MemoryRecords is a Records in memory, for tests and single-process
// stacks. It is safe for concurrent use.
type MemoryRecords struct {
	mu   sync.Mutex
	lim  RecordLimits
	dls  map[string]DeadLetter
	cps  map[string]CheckpointRecord
	down bool
}

var _ Records = (*MemoryRecords)(nil)

// NewMemoryRecords returns an empty MemoryRecords with limits l.
func NewMemoryRecords(l RecordLimits) *MemoryRecords {
	return &MemoryRecords{lim: l.WithDefaults(), dls: map[string]DeadLetter{}, cps: map[string]CheckpointRecord{}}
}

// Fail makes every call fail with an Unavailable error while on is true.
func (m *MemoryRecords) Fail(on bool) {
	m.mu.Lock()
	m.down = on
	m.mu.Unlock()
}

func (m *MemoryRecords) live(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return fault.Wrap(fault.Unavailable, op, err)
	}
	if m.down {
		return fault.Errorf(fault.Unavailable, op, "records are down")
	}
	return nil
}

func copyDL(d DeadLetter) DeadLetter {
	d.Attributes = maps.Clone(d.Attributes)
	d.Data = slices.Clone(d.Data)
	if d.Replay != nil {
		r := *d.Replay
		d.Replay = &r
	}
	return d
}

// PutDeadLetter records d unless its id is recorded.
func (m *MemoryRecords) PutDeadLetter(ctx context.Context, d DeadLetter) (bool, error) {
	const op = "console.PutDeadLetter"
	if err := ValidID("dead letter id", d.ID); err != nil {
		return false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.live(ctx, op); err != nil {
		return false, err
	}
	if _, ok := m.dls[d.ID]; ok {
		return false, nil
	}
	d = copyDL(d)
	d.ReceivedAt = d.ReceivedAt.UTC()
	d.PublishTime = d.PublishTime.UTC()
	m.dls[d.ID] = d
	return true, nil
}

// DeadLetter returns the dead letter id.
func (m *MemoryRecords) DeadLetter(ctx context.Context, id string) (DeadLetter, error) {
	const op = "console.DeadLetter"
	if err := ValidID("dead letter id", id); err != nil {
		return DeadLetter{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.live(ctx, op); err != nil {
		return DeadLetter{}, err
	}
	d, ok := m.dls[id]
	if !ok {
		return DeadLetter{}, fault.Errorf(fault.NotFound, op, "no dead letter %s", quote(id))
	}
	return copyDL(d), nil
}

// sortedDLs returns the dead letters newest first.
func (m *MemoryRecords) sortedDLs() []DeadLetter {
	all := slices.Collect(maps.Values(m.dls))
	slices.SortFunc(all, func(a, b DeadLetter) int {
		if c := b.ReceivedAt.Compare(a.ReceivedAt); c != 0 {
			return c
		}
		switch {
		case a.ID > b.ID:
			return -1
		case a.ID < b.ID:
			return 1
		}
		return 0
	})
	return all
}

// DeadLetters returns a page of dead letters, newest first.
func (m *MemoryRecords) DeadLetters(ctx context.Context, q DeadLetterQuery) ([]DeadLetter, error) {
	const op = "console.DeadLetters"
	if q.Limit <= 0 {
		return nil, fault.Errorf(fault.Invalid, op, "limit %d: want at least 1", q.Limit)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.live(ctx, op); err != nil {
		return nil, err
	}
	var out []DeadLetter
	for _, d := range m.sortedDLs() {
		if len(out) == q.Limit {
			break
		}
		if q.After.before(d.ReceivedAt, d.ID) {
			out = append(out, copyDL(d))
		}
	}
	return out, nil
}

// MarkReplayed records a replay of id.
func (m *MemoryRecords) MarkReplayed(ctx context.Context, id string, r Replay) error {
	const op = "console.MarkReplayed"
	if err := ValidID("dead letter id", id); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.live(ctx, op); err != nil {
		return err
	}
	d, ok := m.dls[id]
	if !ok {
		return fault.Errorf(fault.NotFound, op, "no dead letter %s", quote(id))
	}
	r.At = r.At.UTC()
	d.Replay = &r
	m.dls[id] = d
	return nil
}

func cpKey(c CheckpointRecord) string { return strconv.FormatInt(c.Size, 10) + " " + c.Root }

// PutCheckpoint records c unless it is recorded.
func (m *MemoryRecords) PutCheckpoint(ctx context.Context, c CheckpointRecord) (bool, error) {
	const op = "console.PutCheckpoint"
	if err := checkCheckpoint(op, c); err != nil {
		return false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.live(ctx, op); err != nil {
		return false, err
	}
	if _, ok := m.cps[cpKey(c)]; ok {
		return false, nil
	}
	c.Time, c.SeenAt = c.Time.UTC(), c.SeenAt.UTC()
	m.cps[cpKey(c)] = c
	return true, nil
}

// checkCheckpoint refuses a record no ledger would produce.
func checkCheckpoint(op string, c CheckpointRecord) error {
	if c.Size < 0 {
		return fault.Errorf(fault.Invalid, op, "checkpoint size %d is negative", c.Size)
	}
	if c.Root == "" || len(c.Root) > 64 {
		return fault.Errorf(fault.Invalid, op, "checkpoint root %s: want a base64 hash", quote(c.Root))
	}
	return nil
}

func (m *MemoryRecords) sortedCPs() []CheckpointRecord {
	all := slices.Collect(maps.Values(m.cps))
	slices.SortFunc(all, compareCheckpoints)
	return all
}

// compareCheckpoints orders largest tree first, then root descending.
func compareCheckpoints(a, b CheckpointRecord) int {
	switch {
	case a.Size != b.Size:
		if a.Size > b.Size {
			return -1
		}
		return 1
	case a.Root > b.Root:
		return -1
	case a.Root < b.Root:
		return 1
	}
	return 0
}

// Checkpoints returns up to limit checkpoints, largest tree first.
func (m *MemoryRecords) Checkpoints(ctx context.Context, limit int) ([]CheckpointRecord, error) {
	const op = "console.Checkpoints"
	if limit <= 0 {
		return nil, fault.Errorf(fault.Invalid, op, "limit %d: want at least 1", limit)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.live(ctx, op); err != nil {
		return nil, err
	}
	all := m.sortedCPs()
	return all[:min(limit, len(all))], nil
}

// Prune deletes what the limits no longer keep, PruneBatch of each kind
// at most.
func (m *MemoryRecords) Prune(ctx context.Context, now time.Time) error {
	const op = "console.Prune"
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.live(ctx, op); err != nil {
		return err
	}
	cut := now.Add(-m.lim.Retention)
	dls := m.sortedDLs()
	deleted := 0
	for i := len(dls) - 1; i >= 0 && deleted < PruneBatch; i-- {
		if i >= m.lim.MaxDeadLetters || dls[i].ReceivedAt.Before(cut) {
			delete(m.dls, dls[i].ID)
			deleted++
		}
	}
	cps := m.sortedCPs()
	for i := len(cps) - 1; i >= m.lim.MaxCheckpoints && len(cps)-i <= PruneBatch; i-- {
		delete(m.cps, cpKey(cps[i]))
	}
	return nil
}
