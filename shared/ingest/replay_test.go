package ingest

import (
	"fmt"
	"testing"
	"time"
)

func TestReplayCache(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	c := newReplayCache(10*time.Minute, 3)
	steps := []struct {
		id   string
		at   time.Duration
		want replayOutcome
	}{
		{"a", 0, replayNew},
		{"a", time.Second, replaySeen},
		{"b", time.Minute, replayNew},
		{"c", 2 * time.Minute, replayNew},
		{"d", 3 * time.Minute, replayFull},
		{"a", 9 * time.Minute, replaySeen},
		// a expires at 10m and its place is free again.
		{"d", 10 * time.Minute, replayNew},
		{"a", 10*time.Minute + time.Second, replayFull},
		{"b", 11 * time.Minute, replayNew},
	}
	for i, s := range steps {
		got, until := c.add(s.id, t0.Add(s.at))
		if got != s.want {
			t.Fatalf("step %d: add(%s, +%s) = %d, want %d", i, s.id, s.at, got, s.want)
		}
		if got == replayFull && !until.After(t0.Add(s.at)) {
			t.Errorf("step %d: full until %s, not after now", i, until)
		}
	}
}

// TestReplayCacheIsBounded: however many ids are sent, at most max are
// kept.
func TestReplayCacheIsBounded(t *testing.T) {
	c := newReplayCache(time.Hour, 100)
	now := time.Now()
	for i := range 1000 {
		c.add(fmt.Sprintf("id-%d-%s", i, string(make([]byte, 1000))), now)
	}
	if c.len() != 100 || len(c.seen) != 100 {
		t.Fatalf("cache holds %d (%d in the map), want 100", c.len(), len(c.seen))
	}
	c.add("later", now.Add(2*time.Hour))
	if c.len() != 1 {
		t.Fatalf("after expiry the cache holds %d, want 1", c.len())
	}
}
