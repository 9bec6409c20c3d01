package scheduler_test

import (
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/agents"
	"github.com/agentcom/agentcom/internal/tasks"
)

// A submission that finds an idle agent is pushed before Submit returns,
// without a pass (the scheduler's loop does not run here); one that
// finds none waits for a pass.
func TestSubmitAssignsAtOnce(t *testing.T) {
	w := newWorld(t, config{})
	w.connect("a1", "go")
	w.connect("a2", "py")
	sub := w.submit(tasks.SubmitParams{Description: "py work", NeededCapabilities: []string{"py"}})
	if sub.Status != tasks.StatusQueued {
		t.Fatalf("answer %s, want the task as submitted", sub.Status)
	}
	ps := w.P.next(t, 5*time.Second)
	if ps.agent != "a2" || ps.task != sub.ID || ps.gen != 1 {
		t.Fatalf("push %+v", ps)
	}
	if a := w.agent("a2"); a.State != agents.Assigned || a.CurrentTask != sub.ID {
		t.Fatalf("a2 %+v", a)
	}
	// Nobody fits: queued until a pass finds an agent.
	late := w.submit(tasks.SubmitParams{Description: "rust", NeededCapabilities: []string{"rust"}})
	w.P.none(t, 100*time.Millisecond)
	w.connect("a3", "rust")
	if n := w.S.Pass(); n != 1 {
		t.Fatalf("pass assigned %d", n)
	}
	if ps := w.P.next(t, 5*time.Second); ps.agent != "a3" || ps.task != late.ID {
		t.Fatalf("push %+v", ps)
	}
	// A batch: what fits is pushed at once, the rest waits.
	ts, err := w.S.SubmitBatch([]tasks.BatchItem{
		{Key: "x", Params: tasks.SubmitParams{Description: "go", NeededCapabilities: []string{"go"}}},
		{Key: "y", Params: tasks.SubmitParams{Description: "go too", NeededCapabilities: []string{"go"}}}})
	if err != nil || len(ts) != 2 {
		t.Fatal(ts, err)
	}
	if ps := w.P.next(t, 5*time.Second); ps.agent != "a1" {
		t.Fatalf("batch push %+v", ps)
	}
	w.P.none(t, 100*time.Millisecond)
	if st := w.Q.Stats(); st.ByStatus["queued"] != 1 || st.ByStatus["assigned"] != 3 {
		t.Fatalf("stats %+v", st)
	}
}
