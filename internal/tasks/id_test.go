package tasks

import (
	"regexp"
	"testing"

	"github.com/agentcom/agentcom/internal/timeid"
)

// Task ids keep their shape, and a queue follows only ids of that shape.
func TestTaskIDShape(t *testing.T) {
	const ms = 1_780_000_000_000
	var g timeid.Gen
	id := newID(&g, ms)
	if !regexp.MustCompile(`^task-[0-9a-f]{16}$`).MatchString(id) {
		t.Fatalf("id %q: not task- and 16 hex digits", id)
	}
	if followed(id, ms) == 0 {
		t.Fatalf("a fresh id %s is not followed", id)
	}
	if v := followed(id[len(idPrefix):], ms); v != 0 {
		t.Fatalf("an id without the task- prefix is followed: %d", v)
	}
}
