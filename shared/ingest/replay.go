package ingest

import (
	"crypto/sha256"
	"sync"
	"time"
)

// MaxReplayEntries bounds the webhook ids remembered per producer. Each
// entry is a 16-byte digest and its expiry, so a full cache costs a few
// megabytes whatever the ids' length.
const MaxReplayEntries = 1 << 16

// replayKey is the digest of a webhook id: fixed-size, so that memory
// does not depend on what callers send.
type replayKey [16]byte

// replayEntry is one remembered id.
type replayEntry struct {
	key     replayKey
	expires time.Time
}

// replayCache remembers the webhook ids one producer used within ttl, at
// most max of them. Every entry lives exactly ttl from its insertion, so
// insertion order is expiry order and the oldest entries go first. It is
// safe for concurrent use.
type replayCache struct {
	ttl time.Duration
	max int

	mu    sync.Mutex
	seen  map[replayKey]struct{}
	queue []replayEntry // ring of len max: entries head..head+n-1
	head  int
	n     int
}

// newReplayCache returns a cache remembering ids for ttl, at most max.
func newReplayCache(ttl time.Duration, max int) *replayCache {
	return &replayCache{ttl: ttl, max: max, seen: map[replayKey]struct{}{}}
}

// replayOutcome says what add did.
type replayOutcome int

const (
	// replayNew: the id was not known and is remembered now.
	replayNew replayOutcome = iota
	// replaySeen: the id was used already.
	replaySeen
	// replayFull: the cache holds max live ids; nothing was remembered.
	replayFull
)

// add remembers id at now unless it is known or the cache is full. On
// replayFull it also returns when the oldest entry expires.
func (c *replayCache) add(id string, now time.Time) (replayOutcome, time.Time) {
	sum := sha256.Sum256([]byte(id))
	var k replayKey
	copy(k[:], sum[:])
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expire(now)
	if _, ok := c.seen[k]; ok {
		return replaySeen, time.Time{}
	}
	if c.n == c.max {
		return replayFull, c.queue[c.head].expires
	}
	if c.queue == nil {
		// Allocated on first use: most producers never sign.
		c.queue = make([]replayEntry, c.max)
	}
	c.queue[(c.head+c.n)%c.max] = replayEntry{key: k, expires: now.Add(c.ttl)}
	c.n++
	c.seen[k] = struct{}{}
	return replayNew, time.Time{}
}

// expire drops the entries expired at now; c.mu is held.
func (c *replayCache) expire(now time.Time) {
	for c.n > 0 && !now.Before(c.queue[c.head].expires) {
		delete(c.seen, c.queue[c.head].key)
		c.queue[c.head] = replayEntry{}
		c.head = (c.head + 1) % c.max
		c.n--
	}
}

// len returns the number of remembered ids.
func (c *replayCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}
