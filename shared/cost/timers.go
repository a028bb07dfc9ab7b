package cost

import "context"

// OpDeleteTimers is the operation name of Store.DeleteTimers.
const OpDeleteTimers = "store.DeleteTimers"

// DeleteTimers implements store.Store: a delete per id.
func (s *Store) DeleteTimers(ctx context.Context, ids ...string) error {
	return s.call(OpDeleteTimers, func() (Op, error) {
		return Op{Deletes: int64(len(ids))}, s.inner.DeleteTimers(ctx, ids...)
	})
}
