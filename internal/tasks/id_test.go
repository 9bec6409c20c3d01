package tasks

import (
	"regexp"
	"sort"
	"testing"
)

var idShape = regexp.MustCompile(`^task-[0-9a-f]{16}$`)

func TestIDsSortByTimeAndNeverRepeat(t *testing.T) {
	var g idGen
	const ms = 1_780_000_000_000
	var ids []string
	seen := map[string]bool{}
	// Many in one millisecond, then a clock that steps back, then on.
	for _, now := range []int64{ms, ms, ms, ms + 1, ms - 5_000, ms + 2} {
		for range 1000 {
			id := g.next(now)
			if !idShape.MatchString(id) {
				t.Fatalf("id %q: not task- and 16 hex digits", id)
			}
			if seen[id] {
				t.Fatalf("id %q handed out twice", id)
			}
			seen[id] = true
			ids = append(ids, id)
		}
	}
	if !sort.StringsAreSorted(ids) {
		t.Fatal("ids do not sort in the order they were made")
	}
	if v, _ := parseID(ids[0]); v>>idSeqBits != ms {
		t.Fatalf("first id %s holds time %d, want %d", ids[0], v>>idSeqBits, ms)
	}
}

func TestObserveStartsAboveStoredIDs(t *testing.T) {
	const ms = 1_780_000_000_000
	var old idGen
	stored := old.next(ms + 10_000) // made by a hub whose clock was ahead
	var g idGen
	for _, id := range []string{stored, "task-ffffffffffffffff", "not-a-task"} {
		// An old random id far in the future, and another shape: not followed.
		g.raise(followed(id, ms))
	}
	next := g.next(ms)
	if next <= stored {
		t.Fatalf("after observing %s the next id is %s: not above it", stored, next)
	}
	if v, _ := parseID(next); v>>idSeqBits > ms+10_000 {
		t.Fatalf("next id %s was pinned by the random id far ahead", next)
	}
}
