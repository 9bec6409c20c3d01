package tasks_test

import (
	"context"
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/hub"
	"github.com/agentcom/agentcom/internal/hubtest"
	"github.com/agentcom/agentcom/internal/testenv"
)

// TestArchivedTasksAcrossRestart: archiving a task and restarting the hub
// changes nothing a client can see of its workflow: a unique key whose
// window is still open keeps deduplicating (the archive is not loaded,
// the key's record is), a key whose window passed is free, a new task
// may depend on an archived completed task, and a task that waited on it
// runs once its other dependency completes.
func TestArchivedTasksAcrossRestart(t *testing.T) {
	t.Run("bolt", func(t *testing.T) { archivedAcrossRestart(t, "") })
	t.Run("postgres", func(t *testing.T) { archivedAcrossRestart(t, testenv.Postgres(t)) })
}

func archivedAcrossRestart(t *testing.T, storeURL string) {
	clk := newHubClock(time.Now())
	h := hubtest.Start(t, "", withArchive(clk, time.Hour), func(c *hub.Config) { c.Store = storeURL })
	submit := func(body map[string]any, want int) string {
		t.Helper()
		st, resp := h.Do("POST", "/api/tasks", h.AdminToken, body)
		if st != want {
			t.Fatalf("submit %v: %d %v, want %d", body, st, resp, want)
		}
		return resp["task_id"].(string)
	}
	a := h.Agent("agent-1")
	// Two unique tasks run to completion: one with a day's window, one
	// with an hour's.
	day := submit(map[string]any{"description": "nightly", "unique_key": "nightly", "unique_for": "24h", "target_agent": "agent-1"}, 201)
	complete(t, a, day)
	hour := submit(map[string]any{"description": "hourly", "unique_key": "hourly", "unique_for": "1h", "target_agent": "agent-1"}, 201)
	complete(t, a, hour)
	dep := runTask(t, h, a, "dependency")
	// A task waiting on the dependency and on one only agent-2 runs.
	other := submit(map[string]any{"description": "other", "target_agent": "agent-2"}, 201)
	waiting := submit(map[string]any{"description": "waits", "depends_on": []string{dep, other}, "target_agent": "agent-2"}, 201)
	a.Close()

	clk.advance(2 * time.Hour)
	res, err := h.Archiver.RunOnce(context.Background())
	if err != nil || res.Moved != 3 {
		t.Fatalf("archive pass: %+v, %v", res, err)
	}
	h.Restart()
	for _, id := range []string{day, hour, dep} {
		if _, body := h.Do("GET", "/api/tasks/"+id, h.AdminToken, nil); body["archived"] != true {
			t.Fatalf("%s not archived: %v", id, body)
		}
	}
	// The day's window is open: the archived task still holds its key.
	if got := submit(map[string]any{"description": "nightly again", "unique_key": "nightly", "unique_for": "24h"}, 200); got != day {
		t.Fatalf("duplicate answered %s, want the archived %s", got, day)
	}
	// The hour's has passed: the key is free.
	if got := submit(map[string]any{"description": "hourly again", "unique_key": "hourly", "unique_for": "1h", "target_agent": "nobody"}, 201); got == hour {
		t.Fatal("a key whose window passed still deduplicates")
	}
	// A new task may depend on the archived one, and is runnable at once.
	after := submit(map[string]any{"description": "after", "depends_on": []string{dep}, "target_agent": "nobody"}, 201)
	if _, body := h.Do("GET", "/api/tasks/"+after, h.AdminToken, nil); body["status"] != "queued" {
		t.Fatalf("a task depending on an archived completed one: %v", body)
	}
	// The waiting task runs once its live dependency completes.
	b := h.Agent("agent-2")
	complete(t, b, other)
	f := b.Expect("task_assign")
	if f["task_id"] != waiting {
		t.Fatalf("agent-2 got %v, want the released %s", f["task_id"], waiting)
	}

	// Once the day's window passes, a pass forgets the key, and a restart
	// does not bring it back.
	clk.advance(24 * time.Hour)
	if _, err := h.Archiver.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	b.Close()
	h.Restart()
	if got := submit(map[string]any{"description": "nightly, next day", "unique_key": "nightly", "unique_for": "24h", "target_agent": "nobody"}, 201); got == day {
		t.Fatal("a key whose window passed still deduplicates after a restart")
	}
}

// complete has agent a take (task_assign), accept and complete task id.
func complete(t *testing.T, a *hubtest.Client, id string) {
	t.Helper()
	f := a.Expect("task_assign")
	if f["task_id"] != id {
		t.Fatalf("assigned %v, want %s", f["task_id"], id)
	}
	a.Send(map[string]any{"type": "task_accepted", "task_id": id, "protocol_version": 1})
	a.Expect("task_ack")
	a.Send(map[string]any{"type": "task_complete", "task_id": id, "generation": f["generation"], "protocol_version": 1,
		"result": map[string]any{"ok": true}})
	if ack := a.Expect("task_ack"); ack["status"] != "complete" {
		t.Fatalf("complete ack: %v", ack)
	}
}
