package hub_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/auth"
	"github.com/agentcom/agentcom/internal/hub"
	"github.com/agentcom/agentcom/internal/hubtest"
)

// batch posts a batch submit and returns the task ids by key.
func (e *engine) batch(items ...map[string]any) map[string]string {
	e.t.Helper()
	st, body := e.Do("POST", "/api/tasks/batch", e.AdminToken, map[string]any{"tasks": items})
	if st != 201 {
		e.t.Fatalf("batch: %d %v", st, body)
	}
	ids := map[string]string{}
	for _, x := range body["tasks"].([]any) {
		m := x.(map[string]any)
		ids[m["key"].(string)] = m["task_id"].(string)
	}
	return ids
}

func item(key, desc string, deps ...string) map[string]any {
	m := map[string]any{"key": key, "description": desc}
	if len(deps) > 0 {
		m["depends_on"] = deps
	}
	return m
}

func (e *engine) waitStatus(id, status string) map[string]any {
	e.t.Helper()
	return e.waitTask(id, status, func(m map[string]any) bool { return m["status"] == status })
}

// runOne takes the next assignment, checks it is want, and completes it
// with result. It returns the assign frame.
func runOne(t *testing.T, c *hubtest.Client, want string, result map[string]any) map[string]any {
	t.Helper()
	f := c.Expect("task_assign")
	if f["task_id"] != want {
		t.Fatalf("assigned %v, want %s", f["task_id"], want)
	}
	gen := int64(f["generation"].(float64))
	expectAck(t, report(c, "task_complete", want, gen, map[string]any{"result": result}), want, "complete")
	return f
}

// TestWorkflowChainRunsInOrder: a → b → c submitted as a batch runs in
// that order, each dependent waiting until its dependency completed, and
// c's assignment carries b's result.
func TestWorkflowChainRunsInOrder(t *testing.T) {
	e := newEngine(t)
	ids := e.batch(item("a", "migration"), item("b", "api", "a"), item("c", "docs", "b"))
	for _, k := range []string{"b", "c"} {
		if st := e.task(ids[k])["status"]; st != "waiting" {
			t.Fatalf("%s is %v, want waiting", k, st)
		}
	}
	st, body := e.Do("GET", "/api/tasks?status=waiting", e.AdminToken, nil)
	if st != 200 || body["total"].(float64) != 2 {
		t.Fatalf("waiting list: %d %v", st, body)
	}
	_, metrics := e.DoRaw("GET", "/metrics", e.AdminToken, nil)
	if !strings.Contains(string(metrics), `agentcom_queue_tasks{lane="all",status="waiting"} 2`) {
		t.Fatalf("metrics lack the waiting gauge:\n%s", metrics)
	}
	a := e.Agent("w1")
	runOne(t, a, ids["a"], map[string]any{"step": "a"})
	runOne(t, a, ids["b"], map[string]any{"step": "b"})
	f := runOne(t, a, ids["c"], map[string]any{"step": "c"})
	deps, _ := f["dependencies"].([]any)
	if len(deps) != 1 {
		t.Fatalf("c's assignment dependencies: %v", f["dependencies"])
	}
	d := deps[0].(map[string]any)
	if d["task_id"] != ids["b"] || d["status"] != "completed" || d["result"].(map[string]any)["step"] != "b" {
		t.Fatalf("c's dependency: %v", d)
	}
	show := e.task(ids["b"])
	if got := show["dependents"].([]any); len(got) != 1 || got[0] != ids["c"] {
		t.Fatalf("b's dependents: %v", show["dependents"])
	}
}

// TestWorkflowFailureCancelsTail: when the middle task of a chain is
// dead-lettered, the tail is cancelled with a reason naming it, and a
// dependent with on_dependency_failure "run" runs anyway.
func TestWorkflowFailureCancelsTail(t *testing.T) {
	e := newEngine(t, hubtest.NoBackoff)
	b := item("b", "api", "a")
	b["max_retries"] = 1
	runAnyway := item("d", "report", "b")
	runAnyway["on_dependency_failure"] = "run"
	ids := e.batch(item("a", "migration"), b, item("c", "docs", "b"), runAnyway)
	a := e.Agent("w1")
	runOne(t, a, ids["a"], map[string]any{})
	f := a.Expect("task_assign")
	if f["task_id"] != ids["b"] {
		t.Fatalf("assigned %v, want b", f["task_id"])
	}
	expectAck(t, report(a, "task_failed", ids["b"], int64(f["generation"].(float64)), map[string]any{"error": "boom"}), ids["b"], "dead_letter")
	c := e.waitStatus(ids["c"], "cancelled")
	h := history(c)
	reason := fmt.Sprint(h[len(h)-1]["details"])
	if !strings.Contains(reason, ids["b"]) || !strings.Contains(reason, "dead_letter") {
		t.Fatalf("cancel reason %q does not name the failed dependency", reason)
	}
	runOne(t, a, ids["d"], map[string]any{})
}

// TestWorkflowDiamond: a → b, c → d runs d once, after both b and c.
func TestWorkflowDiamond(t *testing.T) {
	e := newEngine(t)
	ids := e.batch(item("a", "a"), item("b", "b", "a"), item("c", "c", "a"), item("d", "d", "b", "c"))
	w1, w2 := e.Agent("w1"), e.Agent("w2")
	take := func(c *hubtest.Client) (string, int64) { return assignment(c) }
	// a goes to one agent; the other stays idle.
	var first *hubtest.Client
	id, gen := takeEither(t, w1, w2, &first)
	if id != ids["a"] {
		t.Fatalf("first assignment %s, want a", id)
	}
	expectAck(t, complete(first, id, gen), id, "complete")
	// b and c run in parallel on the two agents; d waits for both.
	id1, g1 := take(w1)
	id2, g2 := take(w2)
	if got := map[string]bool{id1: true, id2: true}; !got[ids["b"]] || !got[ids["c"]] {
		t.Fatalf("second wave %s %s, want b and c", id1, id2)
	}
	expectAck(t, complete(w1, id1, g1), id1, "complete")
	if st := e.task(ids["d"])["status"]; st != "waiting" {
		t.Fatalf("d is %v after one of b/c, want waiting", st)
	}
	expectAck(t, complete(w2, id2, g2), id2, "complete")
	did, dgen := takeEither(t, w1, w2, &first)
	if did != ids["d"] {
		t.Fatalf("third wave %s, want d", did)
	}
	expectAck(t, complete(first, did, dgen), did, "complete")
	d := e.task(ids["d"])
	if n := len(d["attempts"].([]any)); n != 1 {
		t.Fatalf("d ran %d times", n)
	}
	for _, c := range []*hubtest.Client{w1, w2} {
		c.NoFrame("task_assign", 300*time.Millisecond)
	}
}

// takeEither returns the next assignment to either agent.
func takeEither(t *testing.T, a, b *hubtest.Client, got **hubtest.Client) (string, int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, c := range []*hubtest.Client{a, b} {
			if f := c.Next(20 * time.Millisecond); f != nil && f["type"] == "task_assign" {
				*got = c
				return f["task_id"].(string), int64(f["generation"].(float64))
			}
		}
	}
	t.Fatal("no assignment")
	return "", 0
}

// TestWorkflowRefusesCyclesAndUnknownIDs: a batch with a cycle, a task
// depending on an unknown id, and a bad field are refused with field
// errors, and nothing is stored.
func TestWorkflowRefusesCyclesAndUnknownIDs(t *testing.T) {
	e := newEngine(t)
	cases := []struct {
		path  string
		body  any
		field string
		has   string
	}{
		{"/api/tasks/batch", map[string]any{"tasks": []any{item("a", "a", "c"), item("b", "b", "a"), item("c", "c", "b")}},
			"depends_on", "dependency cycle: a -> c -> b -> a"},
		{"/api/tasks/batch", map[string]any{"tasks": []any{item("a", "a", "a")}}, "tasks[0].depends_on[0]", "itself"},
		{"/api/tasks/batch", map[string]any{"tasks": []any{item("a", "a"), item("a", "b")}}, "tasks[1].key", "twice"},
		{"/api/tasks/batch", map[string]any{"tasks": []any{item("a", "a", "task-nope")}}, "tasks[0].depends_on[0]", "unknown task id"},
		{"/api/tasks", map[string]any{"description": "x", "depends_on": []string{"task-nope"}}, "depends_on[0]", "unknown task id"},
		{"/api/tasks", map[string]any{"description": "x", "run_at": "tomorrow"}, "run_at", "RFC 3339"},
		{"/api/tasks", map[string]any{"description": "x", "run_in": "5y"}, "run_in", "duration"},
		{"/api/tasks", map[string]any{"description": "x", "run_in": "1s", "run_at": 1}, "run_in", "not both"},
		{"/api/tasks", map[string]any{"description": "x", "unique_for": "1h"}, "unique_for", "needs unique_key"},
		{"/api/tasks", map[string]any{"description": "x", "unique_key": "k", "unique_for": "forever"}, "unique_for", "duration"},
		{"/api/tasks", map[string]any{"description": "x", "on_dependency_failure": "ignore"}, "on_dependency_failure", "cancel"},
		{"/api/tasks", map[string]any{"description": "x", "depends_on": make([]string, 33)}, "depends_on", "at most 32"},
	}
	for _, c := range cases {
		st, body := e.Do("POST", c.path, e.AdminToken, c.body)
		if st != 400 {
			t.Fatalf("%s %v: status %d %v", c.path, c.body, st, body)
		}
		errs, _ := body["errors"].([]any)
		if len(errs) == 0 {
			t.Fatalf("%s: no field errors: %v", c.path, body)
		}
		fe := errs[0].(map[string]any)
		if !strings.HasSuffix(fe["field"].(string), c.field) || !strings.Contains(fe["detail"].(string), c.has) {
			t.Fatalf("%s %v: error %v, want field %s with %q", c.path, c.body, fe, c.field, c.has)
		}
	}
	if st := e.stats(); len(st["by_status"].(map[string]any)) != 0 {
		t.Fatalf("refused submissions stored tasks: %v", st)
	}
}

// TestWorkflowScheduledTaskSurvivesRestart: a task scheduled 2 s ahead
// waits as scheduled, survives a hub restart, and runs once its time has
// come, not before.
func TestWorkflowScheduledTaskSurvivesRestart(t *testing.T) {
	e := newEngine(t)
	st, body := e.Do("POST", "/api/tasks", e.AdminToken, map[string]any{"description": "later", "run_in": "2s"})
	if st != 201 || body["status"] != "scheduled" {
		t.Fatalf("submit: %d %v", st, body)
	}
	id := body["task_id"].(string)
	runAt := int64(e.task(id)["run_at"].(float64))
	e.Restart()
	if s := e.task(id)["status"]; s != "scheduled" && time.Now().UnixMilli() < runAt {
		t.Fatalf("after restart: %v", s)
	}
	_, list := e.Do("GET", "/api/tasks?status=scheduled", e.AdminToken, nil)
	if time.Now().UnixMilli() < runAt && list["total"].(float64) != 1 {
		t.Fatalf("scheduled list: %v", list)
	}
	a := e.Agent("w1")
	f := a.ExpectWithin("task_assign", 10*time.Second)
	if f["task_id"] != id {
		t.Fatalf("assigned %v", f["task_id"])
	}
	if at := int64(f["assigned_at"].(float64)); at < runAt {
		t.Fatalf("assigned at %d, before run_at %d", at, runAt)
	}
}

// TestWorkflowUniqueUnderConcurrentSubmits: 50 concurrent submits with one
// unique_key create one task; the others get it back with 200 and
// "duplicate": true. Once it completes, a window (unique_for) still holds
// the key.
func TestWorkflowUniqueUnderConcurrentSubmits(t *testing.T) {
	e := newEngine(t)
	const n = 50
	type res struct {
		status int
		id     string
		dup    bool
	}
	out := make(chan res, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			b, _ := json.Marshal(map[string]any{"description": "ci hook", "unique_key": "pr-42", "unique_for": "1h"})
			req, _ := http.NewRequest("POST", e.URL()+"/api/tasks", bytes.NewReader(b))
			req.Header.Set("Authorization", "Bearer "+e.AdminToken)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				out <- res{}
				return
			}
			defer resp.Body.Close()
			var m map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&m)
			id, _ := m["task_id"].(string)
			dup, _ := m["duplicate"].(bool)
			out <- res{resp.StatusCode, id, dup}
		}()
	}
	close(start)
	wg.Wait()
	close(out)
	created, dups := 0, 0
	ids := map[string]bool{}
	for r := range out {
		ids[r.id] = true
		switch {
		case r.status == 201 && !r.dup:
			created++
		case r.status == 200 && r.dup:
			dups++
		default:
			t.Fatalf("unexpected answer %+v", r)
		}
	}
	if created != 1 || dups != n-1 || len(ids) != 1 {
		t.Fatalf("created %d, duplicates %d, distinct ids %d", created, dups, len(ids))
	}
	_, list := e.Do("GET", "/api/tasks?status=queued", e.AdminToken, nil)
	if list["total"].(float64) != 1 {
		t.Fatalf("queued: %v", list["total"])
	}
	var id string
	for k := range ids {
		id = k
	}
	a := e.Agent("w1")
	runOne(t, a, id, map[string]any{})
	// Completed but inside its window: still a duplicate.
	st, body := e.Do("POST", "/api/tasks", e.AdminToken, map[string]any{"description": "ci hook", "unique_key": "pr-42"})
	if st != 200 || body["task_id"] != id || body["duplicate"] != true {
		t.Fatalf("resubmit in window: %d %v", st, body)
	}
	// A while-active key is free once its task ended.
	st, body = e.Do("POST", "/api/tasks", e.AdminToken, map[string]any{"description": "x", "unique_key": "job-7"})
	if st != 201 {
		t.Fatalf("while-active submit: %d %v", st, body)
	}
	first := body["task_id"].(string)
	if st, _ := e.Do("POST", "/api/tasks/"+first+"/cancel", e.AdminToken, map[string]any{}); st != 200 {
		t.Fatalf("cancel: %d", st)
	}
	st, body = e.Do("POST", "/api/tasks", e.AdminToken, map[string]any{"description": "x", "unique_key": "job-7"})
	if st != 201 || body["task_id"] == first {
		t.Fatalf("key not freed by cancel: %d %v", st, body)
	}
}

// TestWorkflowPausedLane: a paused lane assigns nothing while another
// lane keeps working; the pause survives a restart and is listed; resume
// assigns at once.
func TestWorkflowPausedLane(t *testing.T) {
	e := newEngine(t)
	agentTok := e.Token("w1", auth.RoleAgent)
	if st, _ := e.Do("POST", "/api/tasks/pause", agentTok, map[string]any{"lane": "low"}); st != 403 {
		t.Fatalf("agent paused a lane: %d", st)
	}
	if st, body := e.Do("POST", "/api/tasks/pause", e.AdminToken, map[string]any{"lane": "slow"}); st != 400 {
		t.Fatalf("bad lane: %d %v", st, body)
	}
	if st, body := e.Do("POST", "/api/tasks/pause", e.AdminToken, map[string]any{"lane": "low"}); st != 200 || body["changed"] != true {
		t.Fatalf("pause: %d %v", st, body)
	}
	low := e.submit(map[string]any{"description": "low work", "priority": "low"})
	e.Restart()
	_, paused := e.Do("GET", "/api/tasks/paused", e.AdminToken, nil)
	if lanes := paused["lanes"].([]any); len(lanes) != 1 || lanes[0] != "low" {
		t.Fatalf("paused after restart: %v", paused)
	}
	if task := e.task(low); task["status"] != "queued" || task["paused"] != true {
		t.Fatalf("low task: %v %v", task["status"], task["paused"])
	}
	a := e.Connect("w1", agentTok)
	for i := range 3 {
		id := e.submit(map[string]any{"description": fmt.Sprint("normal ", i)})
		runOne(t, a, id, map[string]any{}) // the normal lane runs, the low task is passed over
	}
	if task := e.task(low); task["status"] != "queued" {
		t.Fatalf("paused low task is %v", task["status"])
	}
	_, list := e.Do("GET", "/api/tasks?status=queued", e.AdminToken, nil)
	if p := list["paused"].(map[string]any)["lanes"].([]any); len(p) != 1 {
		t.Fatalf("list paused: %v", list["paused"])
	}
	if st, _ := e.Do("POST", "/api/tasks/resume", e.AdminToken, map[string]any{"lane": "low"}); st != 200 {
		t.Fatalf("resume: %d", st)
	}
	runOne(t, a, low, map[string]any{})
}

// TestWorkflowPausedCapability: pausing a capability holds the tasks that
// need it and only those.
func TestWorkflowPausedCapability(t *testing.T) {
	e := newEngine(t)
	if st, _ := e.Do("POST", "/api/tasks/pause", e.AdminToken, map[string]any{"capability": "gpu"}); st != 200 {
		t.Fatal("pause capability")
	}
	gpu := e.submit(map[string]any{"description": "train", "needed_capabilities": []string{"gpu"}, "priority": "urgent"})
	plain := e.submit(map[string]any{"description": "lint"})
	a := e.Agent("w1", "gpu")
	runOne(t, a, plain, map[string]any{})
	if st, _ := e.Do("POST", "/api/tasks/resume", e.AdminToken, map[string]any{"capability": "gpu"}); st != 200 {
		t.Fatal("resume capability")
	}
	runOne(t, a, gpu, map[string]any{})
}

// TestScheduleTicksExactlyOnceAcrossKill9 runs a hub in a child process
// with a schedule ticking every second, kills it with SIGKILL, restarts
// it, and checks that no tick enqueued two tasks and that ticks go on
// after the restart.
func TestScheduleTicksExactlyOnceAcrossKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns hub processes")
	}
	dir := t.TempDir()
	setup, err := hub.New(crashConfig(dir, "127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	admin, err := setup.Tokens.Create("admin", auth.RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	if err := setup.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(crashHTTP.CloseIdleConnections)
	child := startCrashChild(t, dir, "127.0.0.1:0")
	base := "http://" + child.addr
	post := func(path string, body any) (int, map[string]any) {
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest("POST", base+path, bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+admin)
		req.Header.Set("Content-Type", "application/json")
		resp, err := crashHTTP.Do(req)
		if err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	if st, body := post("/api/schedules", map[string]any{"name": "tick", "cron": "@every 1s", "timezone": "UTC",
		"description": "periodic"}); st != 201 {
		t.Fatalf("add schedule: %d %v", st, body)
	}
	// ticks lists the scheduled tasks' ticks (no agent runs them, so all stay queued).
	ticks := func() map[int64]int {
		st, body, err := crashGet(base, admin, "/api/tasks?status=queued")
		if err != nil || st != 200 {
			t.Fatalf("list: %d %v", st, err)
		}
		out := map[int64]int{}
		for _, x := range body["tasks"].([]any) {
			m := x.(map[string]any)
			if m["schedule"] == "tick" {
				out[int64(m["schedule_tick"].(float64))]++
			}
		}
		return out
	}
	waitTicks := func(n int) map[int64]int {
		deadline := time.Now().Add(20 * time.Second)
		for {
			got := ticks()
			if len(got) >= n {
				return got
			}
			if time.Now().After(deadline) {
				t.Fatalf("only %d ticks: %v", len(got), got)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	before := waitTicks(3)
	child.kill(t)
	startCrashChild(t, dir, child.addr) // stopped by its cleanup
	after := waitTicks(len(before) + 3)
	var last int64
	for tick, n := range after {
		if n != 1 {
			t.Fatalf("tick %d enqueued %d tasks: %v", tick, n, after)
		}
		if tick%1000 != 0 {
			t.Fatalf("tick %d is not on the second", tick)
		}
		last = max(last, tick)
	}
	for tick := range before {
		if after[tick] != 1 {
			t.Fatalf("tick %d from before the kill lost or doubled: %v", tick, after)
		}
	}
	st, s, err := crashGet(base, admin, "/api/schedules/tick")
	if err != nil || st != 200 || int64(s["last_tick"].(float64)) < last {
		t.Fatalf("schedule after restart: %d %v %v", st, s, err)
	}
}
