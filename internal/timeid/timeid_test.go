package timeid

import (
	"regexp"
	"sort"
	"testing"
)

const ms = 1_780_000_000_000

func TestIDsSortByTimeAndNeverRepeat(t *testing.T) {
	var g Gen
	shape := regexp.MustCompile(`^x-[0-9a-f]{16}$`)
	var ids []string
	seen := map[string]bool{}
	// Many in one millisecond, then a clock that steps back, then on.
	for _, now := range []int64{ms, ms, ms, ms + 1, ms - 5_000, ms + 2} {
		for range 1000 {
			id := Format("x-", g.Next(now))
			if !shape.MatchString(id) {
				t.Fatalf("id %q: not x- and 16 hex digits", id)
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
	if v, _ := Parse("x-", ids[0]); v>>SeqBits != ms {
		t.Fatalf("first id %s holds time %d, want %d", ids[0], v>>SeqBits, ms)
	}
}

func TestRaiseStartsAboveFollowedIDs(t *testing.T) {
	var old Gen
	stored := Format("", old.Next(ms+10_000)) // made by a hub whose clock was ahead
	var g Gen
	// An old random id far in the future, and other shapes: not followed.
	for _, id := range []string{stored, "ffffffffffffffff", "task-" + stored, "0123", "zzzzzzzzzzzzzzzz"} {
		g.Raise(Followed("", id, ms))
	}
	next := Format("", g.Next(ms))
	if next <= stored {
		t.Fatalf("after following %s the next id is %s: not above it", stored, next)
	}
	if v, _ := Parse("", next); v>>SeqBits > ms+10_000 {
		t.Fatalf("next id %s was pinned by the random id far ahead", next)
	}
}

func TestParseRefusesOtherShapes(t *testing.T) {
	for _, id := range []string{"", "task-", "task-0123456789abcde", "task-0123456789abcdef0", "job-0123456789abcdef", "task-0123456789abcdeg"} {
		if _, ok := Parse("task-", id); ok {
			t.Errorf("Parse(task-, %q) accepted", id)
		}
	}
	if v, ok := Parse("task-", "task-00000000000000ff"); !ok || v != 255 {
		t.Errorf("Parse(task-00000000000000ff) = %d, %v", v, ok)
	}
}
