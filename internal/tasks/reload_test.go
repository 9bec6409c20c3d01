package tasks_test

import (
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/protocol"
	"github.com/agentcom/agentcom/internal/tasks"
)

// TestReloadKeepsEndedTasksSemantics: a start only summarizes the tasks
// that ended (it does not decode them), and still counts them per status
// and lane, lists their dependencies, lets a completed task keep its
// unique key for its window, and reads them in full on Get.
func TestReloadKeepsEndedTasksSemantics(t *testing.T) {
	e := newEnv(t, tasks.DefaultConfig())
	dep := e.submit(tasks.SubmitParams{Description: "dependency", Priority: 1})
	keyed := e.submit(tasks.SubmitParams{Description: "keyed", Priority: 3, UniqueKey: "nightly \"report\"",
		UniqueFor: time.Hour, Metadata: map[string]any{"status": "not the status", "nested": []any{"}", map[string]any{"a": "]"}}}})
	child := e.submit(tasks.SubmitParams{Description: "child", DependsOn: []string{dep.ID}})
	e.assignID(keyed.ID, "w")
	spent := protocol.Usage{InputTokens: 10, OutputTokens: 5, TotalTokens: 15, CostUSD: 0.25}
	if _, _, err := e.Q.CompleteWithUsage(keyed.ID, "w", 1, map[string]any{"out": "done"}, nil, &spent); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.Q.Cancel(child.ID, "op", true, "not needed"); err != nil {
		t.Fatal(err)
	}
	before := e.Q.Stats()
	doneAt := e.get(keyed.ID).UpdatedAt
	e.reopen()
	// The start-up pass found the one usage report, for the metrics.
	if u := e.Q.StoredUsage(); len(u) != 1 || u[0].Agent != "w" || u[0].Usage != spent || u[0].At.UnixMilli() != doneAt {
		t.Fatalf("stored usage after restart: %+v", u)
	}
	if u := e.Q.StoredUsage(); u != nil {
		t.Fatalf("stored usage handed out twice: %+v", u)
	}
	after := e.Q.Stats()
	if !maps.Equal(before.ByStatus, after.ByStatus) || !maps.Equal(before.ByPriority, after.ByPriority) {
		t.Fatalf("stats before %+v, after restart %+v", before, after)
	}
	if after.ByStatus["completed"] != 1 || after.ByStatus["cancelled"] != 1 || after.ByStatus["queued"] != 1 {
		t.Fatalf("stats after restart %+v", after)
	}
	if got := e.Q.Dependents(dep.ID); !slices.Equal(got, []string{child.ID}) {
		t.Fatalf("dependents of %s after restart: %v", dep.ID, got)
	}
	got, dup, err := e.Q.SubmitTask(tasks.SubmitParams{Description: "again", UniqueKey: "nightly \"report\""})
	if err != nil || !dup || got.ID != keyed.ID {
		t.Fatalf("unique key of the completed task after restart: %v dup=%v %v", got, dup, err)
	}
	full := e.get(keyed.ID)
	if full.Status != tasks.StatusCompleted || full.Metadata["status"] != "not the status" || full.Result == nil {
		t.Fatalf("completed task read after restart: %+v", full)
	}
}
