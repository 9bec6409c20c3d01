package agents_test

import (
	"slices"
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/agents"
)

func idleIDs(r *agents.Registry) []string {
	var ids []string
	for _, a := range r.Idle() {
		ids = append(ids, a.ID)
	}
	return ids
}

// The idle set follows every transition: an agent is in it, in the
// order it became idle, exactly while its state is idle.
func TestIdleSetFollowsTransitions(t *testing.T) {
	r, _, _ := newRegistry(t, time.Hour, time.Hour)
	for _, id := range []string{"a", "b", "c", "d"} {
		r.Connect(id, id, []string{"go"}, 1, "")
	}
	r.Connect("e", "e", nil, 1, "held-task") // starts assigned
	if got := idleIDs(r); !slices.Equal(got, []string{"a", "b", "c", "d"}) {
		t.Fatalf("idle %v", got)
	}
	r.Reserve("a", "t1")
	r.Busy("b")
	r.Disconnect("c", 1)
	r.Release("e", "held-task", "")
	if got := idleIDs(r); !slices.Equal(got, []string{"d", "e"}) {
		t.Fatalf("idle %v", got)
	}
	r.Release("a", "t1", "")
	r.Connect("d", "d", []string{"py"}, 1, "") // same connection: capabilities change
	r.Connect("c", "c", []string{"go"}, 2, "")
	if got := idleIDs(r); !slices.Equal(got, []string{"e", "a", "d", "c"}) {
		t.Fatalf("idle %v", got)
	}
	if m := r.ReserveFor("t2", "", []string{"py"}, nil, false); m.ID != "d" {
		t.Fatalf("py went to %+v", m)
	}
	if r.IdleCount() != 3 || r.Counts()[agents.Idle] != 3 {
		t.Fatalf("idle count %d, counts %v", r.IdleCount(), r.Counts())
	}
}

// ReserveFor takes the longest-idle agent that fits (target,
// capabilities), passes over the agents to avoid unless allowed, and
// says whether anything fits.
func TestReserveFor(t *testing.T) {
	r, _, _ := newRegistry(t, time.Hour, 0)
	r.Connect("gpu1", "", []string{"gpu", "go"}, 1, "")
	r.Connect("go1", "", []string{"go"}, 1, "")
	r.Connect("go2", "", []string{"go", "go"}, 1, "") // listed twice
	r.Connect("any", "", nil, 1, "")

	if m := r.ReserveFor("t0", "", []string{"gpu", "rust"}, nil, false); m.ID != "" || m.Fits || m.HeldBack {
		t.Fatalf("nobody has rust: %+v", m)
	}
	// go1 declined: go2 gets it although go1 waited longer.
	if m := r.ReserveFor("t1", "", []string{"go"}, []string{"gpu1", "go1"}, false); m.ID != "go2" || !m.Fits || m.Conn != 1 {
		t.Fatalf("go: %+v", m)
	}
	if a, _ := r.Get("go2"); a.State != agents.Assigned || a.CurrentTask != "t1" {
		t.Fatalf("go2 %+v", a)
	}
	// Only decliners left: held back, or taken when allowed.
	if m := r.ReserveFor("t2", "", []string{"go"}, []string{"gpu1", "go1"}, false); m.ID != "" || !m.HeldBack || !m.Fits {
		t.Fatalf("held back: %+v", m)
	}
	if m := r.ReserveFor("t2", "", []string{"go"}, []string{"gpu1", "go1"}, true); m.ID != "gpu1" {
		t.Fatalf("decliner allowed: %+v", m)
	}
	// A target: that agent or nobody.
	if m := r.ReserveFor("t3", "go2", nil, nil, false); m.ID != "" || m.Fits {
		t.Fatalf("busy target: %+v", m)
	}
	if m := r.ReserveFor("t3", "any", nil, nil, false); m.ID != "any" {
		t.Fatalf("target: %+v", m)
	}
	if m := r.ReserveFor("t4", "", nil, nil, false); m.ID != "go1" {
		t.Fatalf("no needs: %+v", m)
	}
	if m := r.ReserveFor("t5", "", nil, nil, false); m.ID != "" || m.Fits || r.IdleCount() != 0 {
		t.Fatalf("nobody idle: %+v", m)
	}
}
