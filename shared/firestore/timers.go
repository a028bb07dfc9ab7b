package firestore

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	fs "cloud.google.com/go/firestore"
	"google.golang.org/api/iterator"

	"github.com/autonomics/autonomics/shared/store"
)

// timerDeleteCommits is how many commits of DeleteTimers run at once.
const timerDeleteCommits = 4

// DueTimers implements store.Store with one query per shard (shard ==,
// due <= t, ordered by due then id), run in parallel and merged. Timers due
// at the same time are ordered by id; a limit <= 0 means no limit. With a
// limit, each shard is read a page at a time and its next page only when
// the merge needs it, so that the documents read stay close to limit
// however the due timers spread over the shards.
func (s *Store) DueTimers(ctx context.Context, t time.Time, limit int) ([]store.TimerEntry, error) {
	const op = "firestore.DueTimers"
	cur := make([]dueShard, store.Shards)
	page := 0
	if limit > 0 {
		// A little more than the even share of each shard.
		page = limit/store.Shards + limit/(4*store.Shards) + 1
	}
	for i := range cur {
		cur[i] = dueShard{shard: int64(i), page: page}
	}
	if err := s.fill(ctx, op, t, cur); err != nil {
		return nil, err
	}
	if limit <= 0 {
		var out []store.TimerEntry
		for _, c := range cur {
			out = append(out, c.buf...)
		}
		slices.SortFunc(out, compareTimers)
		return out, nil
	}
	out := make([]store.TimerEntry, 0, limit)
	for len(out) < limit {
		// A shard that ran out of its page may hold the next timer: read
		// its next page, at most what is still wanted, twice the last.
		for i := range cur {
			if len(cur[i].buf) == 0 && !cur[i].done {
				cur[i].page = min(2*cur[i].page, limit-len(out))
			}
		}
		if err := s.fill(ctx, op, t, cur); err != nil {
			return nil, err
		}
		best := -1
		for i := range cur {
			if len(cur[i].buf) > 0 && (best < 0 || compareTimers(cur[i].buf[0], cur[best].buf[0]) < 0) {
				best = i
			}
		}
		if best < 0 {
			break
		}
		out = append(out, cur[best].buf[0])
		cur[best].buf = cur[best].buf[1:]
	}
	return out, nil
}

// compareTimers orders timers as DueTimers returns them: by due, then id.
func compareTimers(a, b store.TimerEntry) int {
	return cmp.Or(a.Due.Compare(b.Due), strings.Compare(a.ID, b.ID))
}

// dueShard is the reading of one shard's due timers by DueTimers.
type dueShard struct {
	shard int64
	// page is the size of the next page; 0 reads everything.
	page int
	// buf holds the timers read and not yet merged.
	buf []store.TimerEntry
	// last is the last document read, where the next page starts.
	last *fs.DocumentSnapshot
	// done is set once the shard has no more due timers.
	done bool
}

// fill reads, in parallel, the next page of every shard of cur whose
// buffer is empty and that is not done.
func (s *Store) fill(ctx context.Context, op string, t time.Time, cur []dueShard) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		ferr error
	)
	for i := range cur {
		c := &cur[i]
		if len(c.buf) > 0 || c.done {
			continue
		}
		wg.Go(func() {
			if err := s.readShard(ctx, op, t, c); err != nil {
				mu.Lock()
				ferr = cmp.Or(ferr, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return ferr
}

// readShard reads the next page of c's due timers into its buffer.
func (s *Store) readShard(ctx context.Context, op string, t time.Time, c *dueShard) error {
	q := s.c.Collection(colTimers).Where("shard", "==", c.shard).Where("due", "<=", t).
		OrderBy("due", fs.Asc).OrderBy(fs.DocumentID, fs.Asc)
	if c.last != nil {
		q = q.StartAfter(c.last)
	}
	if c.page > 0 {
		q = q.Limit(c.page)
	}
	it := q.Documents(ctx)
	defer it.Stop()
	n := 0
	for {
		snap, err := it.Next()
		if err == iterator.Done {
			break
		}
		if err != nil {
			return wrapErr(op, err)
		}
		e, err := decodeTimer(snap)
		if err != nil {
			return err
		}
		c.buf = append(c.buf, e)
		c.last = snap
		n++
	}
	c.done = c.page <= 0 || n < c.page
	return nil
}

// DeleteTimer implements store.Store.
func (s *Store) DeleteTimer(ctx context.Context, id string) error {
	const op = "firestore.DeleteTimer"
	if err := store.CheckID(op, "timer id", id); err != nil {
		return err
	}
	_, err := s.timerRef(id).Delete(ctx)
	return wrapErr(op, err)
}

// DeleteTimers implements store.Store: commits of up to
// store.MaxTimerDeletes deletes, timerDeleteCommits of them at once.
func (s *Store) DeleteTimers(ctx context.Context, ids ...string) error {
	const op = "firestore.DeleteTimers"
	seen := make(map[string]bool, len(ids))
	unique := make([]string, 0, len(ids))
	for _, id := range ids {
		if err := store.CheckID(op, "timer id", id); err != nil {
			return err
		}
		if !seen[id] {
			seen[id] = true
			unique = append(unique, id)
		}
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		derr error
		sem  = make(chan struct{}, timerDeleteCommits)
	)
	for chunk := range slices.Chunk(unique, store.MaxTimerDeletes) {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			err := s.c.RunTransaction(ctx, func(_ context.Context, t *fs.Transaction) error {
				for _, id := range chunk {
					if err := t.Delete(s.timerRef(id)); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				mu.Lock()
				derr = cmp.Or(derr, wrapErr(op, err))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return derr
}
