package dashboard_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/bus"
	"github.com/agentcom/agentcom/internal/hub"
	"github.com/agentcom/agentcom/internal/hubtest"
	"github.com/agentcom/agentcom/internal/resilience"
	"github.com/agentcom/agentcom/internal/testenv"
)

// TestSnapshotFromRealEvents drives a real hub through a task's life and
// checks every part of the snapshot the page shows.
func TestSnapshotFromRealEvents(t *testing.T) {
	h, _ := startHub(t)
	a := h.Agent("worker-1", "code")

	s := waitState(t, h, "agent listed", func(s map[string]any) bool { return len(arr(s, "agents")) == 1 })
	ag := arr(s, "agents")[0].(map[string]any)
	if ag["agent_id"] != "worker-1" || ag["fsm_state"] != "idle" || ag["current_task_id"] != nil {
		t.Fatalf("agent: %v", ag)
	}
	caps := arr(ag, "capabilities")
	if len(caps) != 1 || caps[0].(map[string]any)["name"] != "code" {
		t.Fatalf("capabilities: %v", caps)
	}
	for _, k := range []string{"connected_at", "last_state_change", "last_seen"} {
		if numOf(ag[k]) == 0 {
			t.Fatalf("agent %s missing: %v", k, ag)
		}
	}

	// One task nobody can take stays queued; it must be listed.
	waiting := submit(t, h, map[string]any{"description": "needs a gpu", "needed_capabilities": []string{"gpu"}, "priority": "high"})
	done := submit(t, h, map[string]any{"description": "fix the bug", "needed_capabilities": []string{"code"}})
	if got := runTask(t, a, true); got != done {
		t.Fatalf("ran %s, want %s", got, done)
	}
	s = waitState(t, h, "completion counted", func(s map[string]any) bool { return len(arr(s, "recent_completions")) == 1 })
	rc := arr(s, "recent_completions")[0].(map[string]any)
	if rc["task_id"] != done || rc["agent_id"] != "worker-1" || rc["description"] != "fix the bug" || numOf(rc["tokens_used"]) != 42 {
		t.Fatalf("recent completion: %v", rc)
	}
	tp := obj(s, "throughput")
	if numOf(tp["completed_last_hour"]) != 1 || numOf(tp["total_tokens_hour"]) != 42 {
		t.Fatalf("throughput counts each completion once: %v", tp)
	}
	series := obj(s, "series")
	sum := 0
	for _, v := range arr(series, "completed") {
		sum += numOf(v)
	}
	if sum != 1 || len(arr(series, "completed")) != 60 || len(arr(series, "queue_depth")) != 60 {
		t.Fatalf("series: %v", series)
	}
	q := obj(s, "queue")
	if numOf(obj(q, "by_priority")["1"]) != 1 || numOf(obj(q, "by_priority")["2"]) != 0 || numOf(q["queued"]) != 1 {
		t.Fatalf("queue counts queued tasks per lane: %v", q)
	}
	if numOf(obj(q, "by_status")["completed"]) != 1 {
		t.Fatalf("by_status: %v", q)
	}
	qt := arr(s, "queued_tasks")
	if len(qt) != 1 || qt[0].(map[string]any)["id"] != waiting || qt[0].(map[string]any)["lane"] != "high" {
		t.Fatalf("queued_tasks: %v", qt)
	}

	// A running task shows with its agent and age.
	running := submit(t, h, map[string]any{"description": "long job", "needed_capabilities": []string{"code"}})
	as := a.Expect("task_assign")
	a.Send(map[string]any{"type": "task_accepted", "task_id": running})
	a.Expect("task_ack")
	s = waitState(t, h, "running task", func(s map[string]any) bool {
		rt := arr(s, "running_tasks")
		return len(rt) == 1 && rt[0].(map[string]any)["accepted"] == true
	})
	rt := arr(s, "running_tasks")[0].(map[string]any)
	if rt["id"] != running || rt["agent_id"] != "worker-1" {
		t.Fatalf("running: %v", rt)
	}
	if ag := arr(s, "agents")[0].(map[string]any); ag["fsm_state"] != "working" || ag["current_task_id"] != running ||
		ag["current_task_description"] != "long job" {
		t.Fatalf("agent while working: %v", ag)
	}
	a.Send(map[string]any{"type": "task_complete", "task_id": running, "generation": as["generation"], "result": map[string]any{}})
	a.Expect("task_ack")

	// A failure that dead-letters shows in recent failures (with its
	// error) and in the dead-letter list.
	dead := submit(t, h, map[string]any{"description": "doomed", "needed_capabilities": []string{"code"}, "max_retries": 1})
	if got := runTask(t, a, false); got != dead {
		t.Fatalf("ran %s, want %s", got, dead)
	}
	s = waitState(t, h, "dead letter listed", func(s map[string]any) bool { return len(arr(s, "dead_letter_tasks")) == 1 })
	dl := arr(s, "dead_letter_tasks")[0].(map[string]any)
	if dl["id"] != dead || dl["last_error"] != "compile error in main.go" || numOf(dl["retry_count"]) != 1 {
		t.Fatalf("dead letter: %v", dl)
	}
	rf := arr(s, "recent_failures")
	if len(rf) != 1 || rf[0].(map[string]any)["outcome"] != "dead_letter" || rf[0].(map[string]any)["error"] != "compile error in main.go" {
		t.Fatalf("recent failures: %v", rf)
	}
	if tp := obj(s, "throughput"); numOf(tp["failed_last_hour"]) != 1 || numOf(tp["completed_last_hour"]) != 2 {
		t.Fatalf("throughput after failure: %v", tp)
	}
	if numOf(obj(s, "queue")["dead_letter"]) != 1 {
		t.Fatalf("dead letter count: %v", obj(s, "queue"))
	}

	// The agent's timeline has its state changes and tasks.
	st, tl := h.Do("GET", "/api/dashboard/agents/worker-1/timeline", "", nil)
	if st != 200 {
		t.Fatalf("timeline: %d %v", st, tl)
	}
	var kinds = map[string]bool{}
	for _, e := range arr(tl, "entries") {
		kinds[e.(map[string]any)["kind"].(string)] = true
	}
	if !kinds["state"] || !kinds["task"] || !kinds["presence"] {
		t.Fatalf("timeline kinds %v: %v", kinds, tl)
	}

	// Storage comes from the coordinator's health view.
	s = waitState(t, h, "storage view", func(s map[string]any) bool { return obj(s, "storage")["available"] == true })
	if tables := arr(obj(s, "dets_health"), "tables"); len(tables) != 9 {
		t.Fatalf("dets_health: %v", obj(s, "dets_health"))
	}
}

// TestHealthConditions checks the conditions built from real events.
func TestHealthConditions(t *testing.T) {
	h, fs := startHub(t, func(c *hub.Config) { c.Dashboard.BackupGrace = time.Nanosecond })
	s := waitState(t, h, "storage loaded", func(s map[string]any) bool { return obj(s, "storage")["available"] == true })
	if hl := obj(s, "health"); hl["status"] != "warning" || describe(hl["conditions"]) != `["Backup: never run"]` {
		t.Fatalf("health before any backup: %v", hl)
	}
	if _, err := fs.Backup(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitState(t, h, "health ok after backup", func(s map[string]any) bool { return obj(s, "health")["status"] == "ok" })

	// An agent leaving is a warning until it comes back.
	a := h.Agent("flaky")
	waitState(t, h, "agent listed", func(s map[string]any) bool { return len(arr(s, "agents")) == 1 })
	a.Close()
	s = waitState(t, h, "agent offline", func(s map[string]any) bool { return obj(s, "health")["status"] == "warning" })
	if c := describe(obj(s, "health")["conditions"]); c != `["Agent offline: flaky"]` {
		t.Fatalf("conditions: %s", c)
	}
	h.Agent("flaky")
	waitState(t, h, "agent back", func(s map[string]any) bool { return obj(s, "health")["status"] == "ok" })

	// Degraded mode is critical until the table is restored.
	bus.Publish(h.Bus, resilience.DegradedModeEvent{Table: "agent_mailbox"})
	s = waitState(t, h, "degraded", func(s map[string]any) bool { return obj(s, "health")["status"] == "critical" })
	if d := describe(obj(s, "storage")["degraded_tables"]); d != `["agent_mailbox"]` {
		t.Fatalf("degraded tables: %s", d)
	}
	if _, err := fs.Restore(t.Context(), "agent_mailbox", "", false); err != nil {
		t.Fatal(err)
	}
	s = waitState(t, h, "restored", func(s map[string]any) bool { return obj(s, "health")["status"] == "ok" })
	evs := arr(obj(s, "storage"), "events")
	if len(evs) < 2 || evs[0].(map[string]any)["type"] != "recovery_complete" || evs[1].(map[string]any)["type"] != "degraded_mode" {
		t.Fatalf("storage events: %v", evs)
	}
}

// TestSocketSnapshotEventsAndActions speaks the /ws/dashboard protocol.
func TestSocketSnapshotEventsAndActions(t *testing.T) {
	h, fs := startHub(t)
	c := hubtest.Dial(t, dashURL(h))
	hello := c.Expect("hello")
	if hello["can_act"] != true || hello["role"] != "admin" {
		t.Fatalf("hello on a loopback hub: %v", hello)
	}
	snap := c.Expect("snapshot")
	if d := obj(snap, "data"); d["health"] == nil || d["queue"] == nil || d["uptime_ms"] == nil {
		t.Fatalf("snapshot: %v", snap)
	}

	a := h.Agent("worker-1", "code")
	ev := expectEvent(t, c, "agent_joined")
	if ev["agent_id"] != "worker-1" || describe(ev["capabilities"]) != `["code"]` {
		t.Fatalf("agent_joined: %v", ev)
	}
	id := submit(t, h, map[string]any{"description": "fail me", "needed_capabilities": []string{"code"}, "max_retries": 1})
	ev = expectEvent(t, c, "task_event")
	if ev["task_id"] != id || ev["event"] != "task_submitted" || ev["agent_id"] != nil {
		t.Fatalf("task_event: %v", ev)
	}
	runTask(t, a, false)
	expectEventWhere(t, c, "task_dead_letter", func(e map[string]any) bool {
		return e["type"] == "task_event" && e["event"] == "task_dead_letter"
	})

	// retry_task → retry_result, as the original.
	c.Send(map[string]any{"type": "retry_task", "task_id": id})
	if r := c.Expect("retry_result"); r["task_id"] != id || r["status"] != "requeued" {
		t.Fatalf("retry_result: %v", r)
	}
	c.Send(map[string]any{"type": "retry_task", "task_id": "task-0000000000000000", "ref": "x1"})
	if r := c.Expect("retry_result"); r["status"] != "not_found" || r["ref"] != "x1" {
		t.Fatalf("retry_result for unknown task: %v", r)
	}
	// The retried task goes to the agent again; a retry of it now answers
	// not_found, as the original's did for a task not in the dead letter.
	as := a.Expect("task_assign")
	c.Send(map[string]any{"type": "retry_task", "task_id": id, "ref": "x2"})
	if r := c.Expect("retry_result"); r["status"] != "not_found" || r["ref"] != "x2" || r["error"] != nil {
		t.Fatalf("retry_result for an assigned task: %v", r)
	}
	// Cancel it while running.
	c.Send(map[string]any{"type": "cancel_task", "task_id": as["task_id"]})
	if r := c.Expect("cancel_result"); r["status"] != "cancelled" || r["was_assigned_to"] != "worker-1" {
		t.Fatalf("cancel_result: %v", r)
	}
	a.Expect("task_cancelled")
	c.Send(map[string]any{"type": "cancel_task", "task_id": as["task_id"]})
	if r := c.Expect("cancel_result"); r["status"] != "not_cancellable" {
		t.Fatalf("second cancel: %v", r)
	}

	// Storage actions run through the coordinator and report back.
	c.Send(map[string]any{"type": "compact", "table": "task_queue", "force": true})
	r := c.Expect("compact_result")
	if r["status"] != "ok" || r["table"] != "task_queue" || r["force"] != true {
		t.Fatalf("compact_result: %v", r)
	}
	ev = expectEvent(t, c, "compaction_complete")
	if res := arr(ev, "results"); len(res) != 1 || numOf(res[0].(map[string]any)["duration_ms"]) != 12 {
		t.Fatalf("compaction_complete: %v", ev)
	}
	c.Send(map[string]any{"type": "backup_now"})
	if r := c.Expect("backup_result"); r["status"] != "ok" || obj(r, "result")["tables_success"] != float64(9) {
		t.Fatalf("backup_result: %v", r)
	}
	c.Send(map[string]any{"type": "restore", "table": "task_queue", "dry_run": true})
	r = c.Expect("restore_result")
	if r["status"] != "ok" || r["dry_run"] != true || obj(r, "result")["backup"] != "task_queue_2026-01-01T00-00-00.bbolt" {
		t.Fatalf("restore dry run: %v", r)
	}
	fs.mu.Lock()
	restored := len(fs.restores)
	fs.mu.Unlock()
	if restored != 0 {
		t.Fatalf("a dry run restored")
	}
	c.Send(map[string]any{"type": "restore", "table": "task_queue", "backup": "task_queue_2026-01-01T00-00-00.bbolt", "dry_run": false})
	if r := c.Expect("restore_result"); r["status"] != "ok" || r["backup"] != "task_queue_2026-01-01T00-00-00.bbolt" {
		t.Fatalf("restore: %v", r)
	}
	fs.mu.Lock()
	fs.failCompact = true
	fs.mu.Unlock()
	c.Send(map[string]any{"type": "compact"})
	// The coordinator's error stays in the hub log; the frame carries a
	// stable code and the log line's id. The per-table reasons are the
	// result's.
	if r := c.Expect("compact_result"); r["status"] != "error" || r["error"] != "storage_action_failed" || r["error_id"] == nil || r["table"] != nil {
		t.Fatalf("failed compaction: %v", r)
	}
	ev = expectEvent(t, c, "compaction_failed")
	if f := arr(ev, "failures"); len(f) != 9 || f[0].(map[string]any)["reason"] != "disk full" {
		t.Fatalf("compaction_failed: %v", ev)
	}
	s := waitState(t, h, "history", func(s map[string]any) bool { return len(arr(s, "compaction_history")) == 2 })
	if res := arr(arr(s, "compaction_history")[1].(map[string]any), "results"); len(res) != 1 ||
		res[0].(map[string]any)["table"] != "task_queue" {
		t.Fatalf("compaction history: %v", arr(s, "compaction_history"))
	}

	// Bad frames get structured errors; the socket stays up.
	c.Send(`{"type":"restore","table":"Task Queue"}`)
	e := c.Expect("error")
	if e["error"] != "validation_failed" || e["request"] != "restore" || len(arr(e, "errors")) != 2 {
		t.Fatalf("validation error: %v", e)
	}
	c.Send(`not json`)
	if e := c.Expect("error"); e["error"] != "invalid_json" {
		t.Fatalf("invalid json: %v", e)
	}
	c.Send(map[string]any{"type": "ping", "ref": "p"})
	if p := c.Expect("pong"); p["ref"] != "p" {
		t.Fatalf("pong: %v", p)
	}
	c.Send(map[string]any{"type": "request_snapshot"})
	c.Expect("snapshot")
	c.Send(map[string]any{"type": "agent_timeline", "agent_id": "worker-1"})
	if tl := c.Expect("agent_timeline"); len(arr(tl, "entries")) == 0 {
		t.Fatalf("timeline: %v", tl)
	}
}

// expectEvent returns the first event of typ from the next events frames
// (later events of the same frame are skipped).
func expectEvent(t *testing.T, c *hubtest.Client, typ string) map[string]any {
	t.Helper()
	return expectEventWhere(t, c, typ, func(e map[string]any) bool { return e["type"] == typ })
}

func expectEventWhere(t *testing.T, c *hubtest.Client, what string, match func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		f := c.Next(time.Until(deadline))
		if f == nil {
			break
		}
		if f["type"] != "events" {
			continue
		}
		for _, e := range arr(f, "data") {
			if m := e.(map[string]any); match(m) {
				return m
			}
		}
	}
	t.Fatalf("no %s event", what)
	return nil
}

// TestManyClients: one aggregator serves many sockets: every socket gets
// the same events, and simultaneous snapshot requests share builds.
func TestManyClients(t *testing.T) {
	h, _ := startHub(t, func(c *hub.Config) { c.Dashboard.SnapshotInterval = 2 * time.Second })
	const n = 40
	clients := make([]*hubtest.Client, n)
	for i := range clients {
		clients[i] = hubtest.Dial(t, dashURL(h))
	}
	for _, c := range clients {
		c.Expect("snapshot") // first snapshots share builds too
	}
	testenv.Eventually(t, "all clients registered", func() bool { return h.Dashboard.Aggregator().Clients() == n })
	before := h.Dashboard.Aggregator().Builds()
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Go(func() { c.Send(map[string]any{"type": "request_snapshot"}) })
	}
	wg.Wait()
	for _, c := range clients {
		c.Expect("snapshot")
	}
	if builds := h.Dashboard.Aggregator().Builds() - before; builds > 5 {
		t.Fatalf("%d requests took %d snapshot builds", n, builds)
	}

	submit(t, h, map[string]any{"description": "broadcast me"})
	for i, c := range clients {
		if ev := expectEvent(t, c, "task_event"); ev["event"] != "task_submitted" {
			t.Fatalf("client %d: %v", i, ev)
		}
	}
}

// TestBatching: events applied between two flushes leave as one frame,
// in order.
func TestBatching(t *testing.T) {
	h, _ := startHub(t, func(c *hub.Config) { c.Dashboard.FlushInterval = time.Hour })
	c := hubtest.Dial(t, dashURL(h))
	c.Expect("snapshot")
	agg := h.Dashboard.Aggregator()
	testenv.Eventually(t, "client registered", func() bool { return agg.Clients() == 1 })
	const n = 25
	for i := range n {
		agg.Apply(bus.Event{Data: resilience.BackupCompleteEvent{TablesBackedUp: []string{fmt.Sprint("t", i)}}})
	}
	agg.Flush()
	f := c.Expect("events")
	data := arr(f, "data")
	if len(data) != n {
		t.Fatalf("one frame should carry all %d events, got %d", n, len(data))
	}
	for i, e := range data {
		if got := describe(e.(map[string]any)["tables_backed_up"]); got != fmt.Sprintf(`["t%d"]`, i) {
			t.Fatalf("event %d out of order: %s", i, got)
		}
	}
	agg.Flush() // nothing pending: no frame
	c.Send(map[string]any{"type": "ping"})
	if f := c.Next(5 * time.Second); f == nil || f["type"] != "pong" {
		t.Fatalf("an empty flush sent a frame: %v", f)
	}
}
