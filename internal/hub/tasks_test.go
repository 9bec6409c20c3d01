package hub_test

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/auth"
	"github.com/agentcom/agentcom/internal/hub"
	"github.com/agentcom/agentcom/internal/hubtest"
	"github.com/agentcom/agentcom/internal/testenv"
)

// engine is a hub under test with helpers for the task routes.
type engine struct {
	*hubtest.Hub
	t *testing.T
}

func newEngine(t *testing.T, opts ...hubtest.Option) *engine {
	t.Helper()
	return &engine{Hub: hubtest.Start(t, "", opts...), t: t}
}

// submit posts a task as admin and returns its id.
func (e *engine) submit(body map[string]any) string {
	e.t.Helper()
	return e.submitAs(e.AdminToken, body)
}

func (e *engine) submitAs(token string, body map[string]any) string {
	e.t.Helper()
	st, resp := e.Do("POST", "/api/tasks", token, body)
	if st != 201 {
		e.t.Fatalf("submit: %d %v", st, resp)
	}
	return resp["task_id"].(string)
}

func (e *engine) task(id string) map[string]any {
	e.t.Helper()
	st, body := e.Do("GET", "/api/tasks/"+id, e.AdminToken, nil)
	if st != 200 {
		e.t.Fatalf("get %s: %d %v", id, st, body)
	}
	return body
}

// waitTask polls the task until cond holds (5 s).
func (e *engine) waitTask(id, what string, cond func(map[string]any) bool) map[string]any {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		task := e.task(id)
		if cond(task) {
			return task
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("task %s never %s: %v", id, what, task)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (e *engine) agentState(id string) map[string]any {
	e.t.Helper()
	st, body := e.Do("GET", "/api/agents/"+id+"/state", e.AdminToken, nil)
	if st != 200 {
		e.t.Fatalf("agent state %s: %d %v", id, st, body)
	}
	return body
}

func (e *engine) waitAgentState(id, state string) {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		a := e.agentState(id)
		if a["fsm_state"] == state {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("agent %s never %s: %v", id, state, a)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (e *engine) stats() map[string]any {
	e.t.Helper()
	st, body := e.Do("GET", "/api/tasks/stats", e.AdminToken, nil)
	if st != 200 {
		e.t.Fatalf("stats: %d %v", st, body)
	}
	return body
}

// assignment waits for a task_assign and returns its task id and generation.
// acceptTimerControl offers a task to a fresh agent that never accepts
// it and returns once the acceptance timer has reclaimed it. Any
// acceptance timer started before this one and still running has fired
// by then, so "this task was not reclaimed" needs no fixed sleep and
// cannot pass just because a loaded machine ran the timer late.
func (e *engine) acceptTimerControl(name string) {
	e.t.Helper()
	c := e.Agent(name)
	id := e.submit(map[string]any{"description": "timer control", "target_agent": name})
	assignment(c)
	e.waitTask(id, "the control task reclaimed by the acceptance timer", func(m map[string]any) bool {
		return slices.Contains(historyEvents(m), "reclaimed:acceptance_timeout")
	})
}

func assignment(c *hubtest.Client) (string, int64) {
	c.T.Helper()
	f := c.Expect("task_assign")
	return f["task_id"].(string), int64(f["generation"].(float64))
}

func accept(c *hubtest.Client, id string) {
	c.T.Helper()
	c.Send(map[string]any{"type": "task_accepted", "task_id": id, "protocol_version": 1})
	if ack := c.Expect("task_ack"); ack["task_id"] != id || ack["status"] != "accepted" {
		c.T.Fatalf("accept ack: %v", ack)
	}
}

// report sends task_complete or task_failed and returns the reply (a
// task_ack or an error).
func report(c *hubtest.Client, typ, id string, gen int64, extra map[string]any) map[string]any {
	c.T.Helper()
	f := map[string]any{"type": typ, "task_id": id, "generation": gen, "protocol_version": 1}
	maps.Copy(f, extra)
	c.Send(f)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		m := c.Next(time.Until(deadline))
		if m == nil {
			break
		}
		if m["type"] == "task_ack" || m["type"] == "error" {
			return m
		}
	}
	c.T.Fatalf("no reply to %s", typ)
	return nil
}

func complete(c *hubtest.Client, id string, gen int64) map[string]any {
	c.T.Helper()
	return report(c, "task_complete", id, gen, map[string]any{"result": map[string]any{"status": "success"}})
}

func expectAck(t *testing.T, reply map[string]any, id, status string) {
	t.Helper()
	if reply["type"] != "task_ack" || reply["task_id"] != id || reply["status"] != status {
		t.Fatalf("want task_ack %s for %s, got %v", status, id, reply)
	}
}

func expectRefused(t *testing.T, reply map[string]any, id, errText string) {
	t.Helper()
	if reply["type"] != "error" || reply["error"] != errText || reply["task_id"] != id {
		t.Fatalf("want error %q for %s, got %v", errText, id, reply)
	}
}

func history(task map[string]any) []map[string]any {
	var out []map[string]any
	for _, h := range task["history"].([]any) {
		out = append(out, h.(map[string]any))
	}
	slices.Reverse(out) // oldest first
	return out
}

func historyEvents(task map[string]any) []string {
	var out []string
	for _, h := range history(task) {
		ev := h["event"].(string)
		if d, ok := h["details"].(string); ok && (ev == "reclaimed" || ev == "dead_letter" || ev == "retry") {
			ev += ":" + d
		}
		out = append(out, ev)
	}
	return out
}

func count(s []string, v string) int {
	n := 0
	for _, x := range s {
		if x == v {
			n++
		}
	}
	return n
}

func keys(m map[string]any) []string {
	out := slices.Collect(maps.Keys(m))
	sort.Strings(out)
	return out
}

func gen(task map[string]any) int64 { return int64(task["generation"].(float64)) }

func TestTaskFullLifecycle(t *testing.T) {
	e := newEngine(t)
	a := e.Agent("worker-1", "code")
	st, resp := e.Do("POST", "/api/tasks", e.AdminToken, map[string]any{"description": "fix the bug", "priority": "high",
		"metadata": map[string]any{"repo": "agentcom"}, "needed_capabilities": []string{"code"}})
	if st != 201 || !slices.Equal(keys(resp), []string{"created_at", "priority", "status", "task_id"}) ||
		resp["status"] != "queued" || resp["priority"] != float64(1) {
		t.Fatalf("submit: %d %v", st, resp)
	}
	id := resp["task_id"].(string)
	as := a.Expect("task_assign")
	if !slices.Equal(keys(as), []string{"assigned_at", "description", "generation", "metadata", "task_id", "type"}) ||
		as["task_id"] != id || as["description"] != "fix the bug" || as["generation"] != float64(1) ||
		!reflect.DeepEqual(as["metadata"], map[string]any{"repo": "agentcom"}) {
		t.Fatalf("assign: %v", as)
	}
	if task := e.task(id); task["status"] != "assigned" || task["assigned_to"] != "worker-1" || gen(task) != 1 ||
		task["assigned_at"] != as["assigned_at"] {
		t.Fatalf("assigned task: %v", task)
	}
	e.waitAgentState("worker-1", "assigned")
	accept(a, id)
	e.waitAgentState("worker-1", "working")
	before := e.task(id)["updated_at"].(float64)
	time.Sleep(2 * time.Millisecond)
	a.Send(map[string]any{"type": "task_progress", "task_id": id, "progress": 50})
	e.waitTask(id, "touched by progress", func(m map[string]any) bool { return m["updated_at"].(float64) > before })
	reply := report(a, "task_complete", id, 1, map[string]any{"result": map[string]any{"status": "success", "tokens_used": 42}})
	if !reflect.DeepEqual(reply, map[string]any{"type": "task_ack", "task_id": id, "status": "complete"}) {
		t.Fatalf("complete ack: %v", reply)
	}
	task := e.task(id)
	if task["status"] != "completed" || task["tokens_used"] != float64(42) || task["assigned_to"] != "worker-1" ||
		!reflect.DeepEqual(task["result"], map[string]any{"status": "success", "tokens_used": float64(42)}) {
		t.Fatalf("completed task: %v", task)
	}
	if ev := historyEvents(task); !slices.Equal(ev, []string{"queued", "assigned", "completed"}) {
		t.Fatalf("history: %v", ev)
	}
	e.waitAgentState("worker-1", "idle")
	if s := e.stats(); !reflect.DeepEqual(s["by_status"], map[string]any{"completed": float64(1)}) || s["dead_letter"] != float64(0) {
		t.Fatalf("stats: %v", s)
	}
}

func TestTaskFailureRetryDeadLetterManualRetry(t *testing.T) {
	e := newEngine(t, hubtest.NoBackoff)
	alice := e.Token("alice", auth.RoleAgent)
	a := e.Agent("worker-1")
	id := e.submitAs(alice, map[string]any{"description": "flaky", "max_retries": 2})
	_, g := assignment(a)
	accept(a, id)
	expectAck(t, report(a, "task_failed", id, g, map[string]any{"error": "tests failed"}), id, "retried")
	_, g2 := assignment(a)
	if g2 != g+2 {
		t.Fatalf("generation after retry: %d", g2)
	}
	accept(a, id)
	// The original sidecar puts the text in "reason".
	expectAck(t, report(a, "task_failed", id, g2, map[string]any{"reason": "still failing"}), id, "dead_letter")
	task := e.task(id)
	if task["status"] != "dead_letter" || task["last_error"] != "still failing" || task["retry_count"] != float64(2) {
		t.Fatalf("dead letter: %v", task)
	}
	if ev := historyEvents(task); !slices.Equal(ev, []string{"queued", "assigned", "retry:tests failed", "assigned", "dead_letter:still failing"}) {
		t.Fatalf("history: %v", ev)
	}
	if _, dl := e.Do("GET", "/api/tasks/dead-letter", e.AdminToken, nil); dl["count"] != float64(1) {
		t.Fatalf("dead-letter list: %v", dl)
	}
	if _, l := e.Do("GET", "/api/tasks", e.AdminToken, nil); l["count"] != float64(0) {
		t.Fatalf("queue list shows the dead-letter task: %v", l)
	}
	if s := e.stats(); s["dead_letter"] != float64(1) || len(s["by_status"].(map[string]any)) != 0 {
		t.Fatalf("stats: %v", s)
	}
	// Only the submitter or an admin may bring it back.
	bob := e.Token("bob", auth.RoleAgent)
	if st, body := e.Do("POST", "/api/tasks/"+id+"/retry", bob, nil); st != 403 {
		t.Fatalf("retry by another agent: %d %v", st, body)
	}
	st, body := e.Do("POST", "/api/tasks/"+id+"/retry", alice, nil)
	if st != 200 || !reflect.DeepEqual(body, map[string]any{"status": "requeued", "task_id": id, "priority": float64(2)}) {
		t.Fatalf("retry: %d %v", st, body)
	}
	// A retry of a task that is not dead-lettered is a conflict naming
	// its state (queued, or already assigned to the idle agent); a task
	// that does not exist is not found.
	st, body = e.Do("POST", "/api/tasks/"+id+"/retry", alice, nil)
	if state := body["status"]; state != "queued" && state != "assigned" {
		t.Fatalf("second retry: %d %v", st, body)
	}
	if delete(body, "status"); st != 409 || !reflect.DeepEqual(body, map[string]any{
		"error": "task_not_retryable", "task_id": id, "detail": "only a dead-lettered task can be retried"}) {
		t.Fatalf("second retry: %d %v", st, body)
	}
	if st, body := e.Do("POST", "/api/tasks/task-0123456789abcdef/retry", alice, nil); st != 404 ||
		!reflect.DeepEqual(body, map[string]any{"error": "task_not_found", "task_id": "task-0123456789abcdef"}) {
		t.Fatalf("retry of a missing task: %d %v", st, body)
	}
	_, g3 := assignment(a)
	if g3 != g2+2 {
		t.Fatalf("generation after manual retry: %d", g3)
	}
	expectAck(t, complete(a, id, g3), id, "complete")
	task = e.task(id)
	if task["status"] != "completed" || task["retry_count"] != float64(0) || task["last_error"] != nil {
		t.Fatalf("after manual retry: %v", task)
	}
	// Neither a retry nor a cancel applies to a completed task; both say so.
	for action, code := range map[string]string{"retry": "task_not_retryable", "cancel": "task_not_cancellable"} {
		st, body := e.Do("POST", "/api/tasks/"+id+"/"+action, alice, nil)
		if st != 409 || body["error"] != code || body["status"] != "completed" || body["task_id"] != id || body["cancelled_by"] != nil {
			t.Fatalf("%s of a completed task: %d %v", action, st, body)
		}
	}
}

func TestTaskDisconnectReclaimAnotherAgentCompletes(t *testing.T) {
	e := newEngine(t)
	a := e.Agent("worker-1", "code")
	id := e.submit(map[string]any{"description": "x", "needed_capabilities": []string{"code"}})
	_, g := assignment(a)
	accept(a, id)
	b := e.Agent("worker-2", "code")
	a.Close()
	id2, g2 := assignment(b)
	if id2 != id || g2 != g+2 {
		t.Fatalf("reassigned %s gen %d", id2, g2)
	}
	task := e.task(id)
	if ev := historyEvents(task); !slices.Contains(ev, "reclaimed:agent_disconnect") || task["retry_count"] != float64(0) {
		t.Fatalf("history: %v", ev)
	}
	expectAck(t, complete(b, id, g2), id, "complete")
	// The first agent comes back and reports its stale work: refused.
	a2 := e.Connect("worker-1", e.Token("worker-1", auth.RoleAgent), "code")
	expectRefused(t, complete(a2, id, g), id, "task_complete_failed: invalid_state")
	task = e.task(id)
	if task["assigned_to"] != "worker-2" || count(historyEvents(task), "completed") != 1 {
		t.Fatalf("completed task: %v", task)
	}
}

// TestTaskFencing: a stale generation, the wrong agent and an unknown task
// are refused with an error naming the task; a completion resent after it
// was applied is acknowledged again and changes nothing.
func TestTaskFencing(t *testing.T) {
	e := newEngine(t)
	a := e.Agent("worker-1")
	id := e.submit(map[string]any{"description": "x"})
	_, g := assignment(a)
	b := e.Agent("worker-2")
	expectRefused(t, complete(a, id, 999), id, "task_complete_failed: stale_generation")
	expectRefused(t, complete(b, id, g), id, "task_complete_failed: stale_generation")
	expectRefused(t, report(b, "task_failed", id, g, nil), id, "task_fail_failed: stale_generation")
	expectRefused(t, complete(a, "task-0000000000000000", 1), "task-0000000000000000", "task_complete_failed: not_found")
	if task := e.task(id); task["status"] != "assigned" || task["assigned_to"] != "worker-1" || gen(task) != g {
		t.Fatalf("refused reports changed the task: %v", task)
	}
	expectAck(t, complete(a, id, g), id, "complete")
	before := e.task(id)
	reply := complete(a, id, g)
	expectAck(t, reply, id, "complete")
	if reply["duplicate"] != true {
		t.Fatalf("resend not marked: %v", reply)
	}
	if after := e.task(id); !reflect.DeepEqual(before, after) {
		t.Fatalf("resent completion changed the task:\n%v\n%v", before, after)
	}
	expectRefused(t, report(a, "task_failed", id, g, nil), id, "task_fail_failed: invalid_state")
	// A resent failure gets its outcome again.
	id2 := e.submit(map[string]any{"description": "y", "max_retries": 1, "target_agent": "worker-1"})
	_, g2 := assignment(a)
	expectAck(t, report(a, "task_failed", id2, g2, map[string]any{"error": "e"}), id2, "dead_letter")
	before = e.task(id2)
	reply = report(a, "task_failed", id2, g2, map[string]any{"error": "e"})
	expectAck(t, reply, id2, "dead_letter")
	if reply["duplicate"] != true || !reflect.DeepEqual(before, e.task(id2)) {
		t.Fatalf("resent failure: %v", reply)
	}
}

// TestTaskRejected: the original sidecar's task_rejected puts the task back
// for another agent; a task only the decliner can run comes back to it
// after the busy hold.
func TestTaskRejected(t *testing.T) {
	e := newEngine(t, func(c *hub.Config) { c.BusyHold = 300 * time.Millisecond })
	a := e.Agent("worker-1")
	id := e.submit(map[string]any{"description": "x"})
	_, g := assignment(a)
	b := e.Agent("worker-2")
	a.Send(map[string]any{"type": "task_rejected", "task_id": id, "reason": "busy"})
	if ack := a.Expect("task_ack"); !reflect.DeepEqual(ack, map[string]any{"type": "task_ack", "task_id": id, "status": "rejected"}) {
		t.Fatalf("reject ack: %v", ack)
	}
	id2, g2 := assignment(b)
	if id2 != id || g2 != g+2 {
		t.Fatalf("after reject: %s %d", id2, g2)
	}
	if ev := historyEvents(e.task(id)); !slices.Contains(ev, "rejected") {
		t.Fatalf("history: %v", ev)
	}
	e.waitAgentState("worker-1", "idle") // the hold ends
	expectAck(t, complete(b, id, g2), id, "complete")

	only := e.submit(map[string]any{"description": "for a", "target_agent": "worker-1"})
	_, g = assignment(a)
	a.Send(map[string]any{"type": "task_rejected", "task_id": only, "reason": "busy"})
	a.Expect("task_ack")
	if st := e.agentState("worker-1"); st["fsm_state"] != "blocked" {
		t.Fatalf("decliner: %v", st)
	}
	id3, g3 := assignment(a)
	if id3 != only || g3 != g+2 {
		t.Fatalf("targeted task after the hold: %s %d", id3, g3)
	}
	expectAck(t, complete(a, only, g3), only, "complete")
	// Declining a task one does not hold is refused.
	a.Send(map[string]any{"type": "task_rejected", "task_id": only, "reason": "busy"})
	if m := a.Expect("error"); m["error"] != "task_reject_failed: not_found" {
		t.Fatalf("reject of a finished task: %v", m)
	}
}

// TestTaskRecoveryAfterSidecarRestart: a sidecar that comes back on a new
// socket while the hub still has its task asks with task_recovering, gets
// task_continue with the same generation, and keeps the task past the
// acceptance timeout. One that does not ask loses the task to the timer.
func TestTaskRecoveryAfterSidecarRestart(t *testing.T) {
	const timeout = 400 * time.Millisecond
	e := newEngine(t, hubtest.FastTimers, func(c *hub.Config) { c.AcceptTimeout = timeout })
	tok := e.Token("worker-1", auth.RoleAgent)
	a := e.Connect("worker-1", tok, "code")
	id := e.submit(map[string]any{"description": "long job"})
	_, g := assignment(a)
	accept(a, id)
	// The restarted sidecar's new socket replaces the old one.
	a2 := e.Connect("worker-1", tok, "code")
	if code, _ := a.Closed(5 * time.Second); code != 4001 {
		t.Fatalf("old socket closed with %d", code)
	}
	a2.Send(`{"type":"task_recovering","task_id":"` + id + `","description":"long job","metadata":{},"last_status":"working","protocol_version":1}`)
	if f := a2.Expect("task_continue"); !reflect.DeepEqual(f, map[string]any{"type": "task_continue", "task_id": id, "generation": float64(g)}) {
		t.Fatalf("continue: %v", f)
	}
	e.waitAgentState("worker-1", "working")
	e.acceptTimerControl("control")
	if task := e.task(id); task["status"] != "assigned" || gen(task) != g || slices.Contains(historyEvents(task), "reclaimed:acceptance_timeout") {
		t.Fatalf("continued task was reclaimed: %v", task)
	}
	expectAck(t, complete(a2, id, g), id, "complete")

	// Without task_recovering (or task_accepted) the timer reclaims it.
	id2 := e.submit(map[string]any{"description": "second"})
	_, g2 := assignment(a2)
	accept(a2, id2)
	a3 := e.Connect("worker-1", tok, "code")
	_, g3 := assignment(a3) // reclaimed after the timeout, offered again
	if g3 != g2+2 {
		t.Fatalf("generation %d after %d", g3, g2)
	}
	task := e.task(id2)
	if !slices.Contains(historyEvents(task), "reclaimed:acceptance_timeout") {
		t.Fatalf("history: %v", historyEvents(task))
	}
	if flags := e.agentState("worker-1")["flags"].([]any); !slices.Contains(flags, any("unresponsive")) {
		t.Fatalf("flags: %v", flags)
	}
}

// TestTaskRecoveryAfterHubRestart: tasks stay assigned across a hub
// restart; the returning agent continues with the same generation and is
// not reclaimed by the acceptance timer.
func TestTaskRecoveryAfterHubRestart(t *testing.T) {
	const timeout = 400 * time.Millisecond
	e := newEngine(t, hubtest.FastTimers, func(c *hub.Config) { c.AcceptTimeout = timeout })
	tok := e.Token("worker-1", auth.RoleAgent)
	a := e.Connect("worker-1", tok)
	id := e.submit(map[string]any{"description": "x"})
	_, g := assignment(a)
	accept(a, id)
	e.Restart()
	if code, _ := a.Closed(5 * time.Second); code != 1001 {
		t.Fatalf("socket closed with %d at restart", code)
	}
	if task := e.task(id); task["status"] != "assigned" || gen(task) != g {
		t.Fatalf("after restart: %v", task)
	}
	a2 := e.Connect("worker-1", tok)
	a2.Send(map[string]any{"type": "task_recovering", "task_id": id, "protocol_version": 1})
	if f := a2.Expect("task_continue"); f["generation"] != float64(g) {
		t.Fatalf("continue: %v", f)
	}
	time.Sleep(3 * timeout)
	if task := e.task(id); task["status"] != "assigned" || gen(task) != g {
		t.Fatalf("reclaimed after continue: %v", task)
	}
	expectAck(t, complete(a2, id, g), id, "complete")
	// A task the hub no longer gives the agent: reassign.
	a2.Send(map[string]any{"type": "task_recovering", "task_id": id})
	if f := a2.Expect("task_reassign"); !reflect.DeepEqual(f, map[string]any{"type": "task_reassign", "task_id": id}) {
		t.Fatalf("reassign: %v", f)
	}
}

func TestTaskCapabilityAndLaneOrder(t *testing.T) {
	e := newEngine(t)
	var order []string
	sub := func(desc, pri string, caps ...string) string {
		id := e.submit(map[string]any{"description": desc, "priority": pri, "needed_capabilities": caps})
		time.Sleep(2 * time.Millisecond) // distinct created_at
		return id
	}
	low := sub("low", "low")
	normal1 := sub("normal-1", "normal")
	gpu := sub("urgent-gpu", "urgent", "gpu")
	urgent := sub("urgent", "urgent", "code")
	normal2 := sub("normal-2", "normal")
	high := sub("high", "high")
	crit := sub("critical is normal", "critical")
	c := e.Agent("coder", "code")
	for range 6 {
		id, g := assignment(c)
		order = append(order, id)
		expectAck(t, complete(c, id, g), id, "complete")
	}
	want := []string{urgent, high, normal1, normal2, crit, low}
	if !slices.Equal(order, want) {
		t.Fatalf("order %v, want %v", order, want)
	}
	if task := e.task(gpu); task["status"] != "queued" {
		t.Fatalf("gpu task: %v", task)
	}
	g := e.Agent("gpu-box", "gpu", "code")
	if id, _ := assignment(g); id != gpu {
		t.Fatalf("gpu agent got %s", id)
	}
}

func TestTaskCancel(t *testing.T) {
	e := newEngine(t)
	alice := e.Token("alice", auth.RoleAgent)
	bob := e.Token("bob", auth.RoleAgent)
	a := e.Agent("worker-1")
	id := e.submitAs(alice, map[string]any{"description": "x"})
	_, g := assignment(a)
	accept(a, id)
	if st, body := e.Do("POST", "/api/tasks/"+id+"/cancel", bob, map[string]any{}); st != 403 || body["error"] != "forbidden" {
		t.Fatalf("cancel by another agent: %d %v", st, body)
	}
	st, body := e.Do("POST", "/api/tasks/"+id+"/cancel", alice, map[string]any{"reason": "not needed"})
	if st != 200 || !reflect.DeepEqual(body, map[string]any{"status": "cancelled", "task_id": id, "was_assigned_to": "worker-1",
		"generation": float64(g + 1)}) {
		t.Fatalf("cancel: %d %v", st, body)
	}
	if f := a.Expect("task_cancelled"); !reflect.DeepEqual(f, map[string]any{"type": "task_cancelled", "task_id": id}) {
		t.Fatalf("cancel frame: %v", f)
	}
	expectRefused(t, complete(a, id, g), id, "task_complete_failed: invalid_state")
	task := e.task(id)
	if task["status"] != "cancelled" || task["cancelled_by"] != "alice" {
		t.Fatalf("cancelled task: %v", task)
	}
	e.waitAgentState("worker-1", "idle")
	// A second cancel names the state and who cancelled it.
	if st, body := e.Do("POST", "/api/tasks/"+id+"/cancel", e.AdminToken, nil); st != 409 || !reflect.DeepEqual(body, map[string]any{
		"error": "task_not_cancellable", "task_id": id, "status": "cancelled", "cancelled_by": "alice",
		"detail": "the task already ended"}) {
		t.Fatalf("second cancel: %d %v", st, body)
	}
	if st, _ := e.Do("POST", "/api/tasks/task-0123456789abcdef/cancel", e.AdminToken, nil); st != 404 {
		t.Fatalf("cancel unknown: %d", st)
	}
	// An admin may cancel anyone's task; a queued one has no holder.
	a.Close()
	e.waitAgentGone("worker-1")
	q := e.submitAs(bob, map[string]any{"description": "queued"})
	st, body = e.Do("POST", "/api/tasks/"+q+"/cancel", e.AdminToken, nil)
	if st != 200 || body["was_assigned_to"] != nil {
		t.Fatalf("admin cancel: %d %v", st, body)
	}
	if s := e.stats(); !reflect.DeepEqual(s["by_status"], map[string]any{"cancelled": float64(2)}) || s["queued_index_size"] != float64(0) {
		t.Fatalf("stats: %v", s)
	}
}

func (e *engine) waitAgentGone(id string) {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, _ := e.Do("GET", "/api/agents/"+id+"/state", e.AdminToken, nil)
		if st == 404 {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("agent %s still registered", id)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestTaskTargetAgent(t *testing.T) {
	e := newEngine(t)
	a := e.Agent("worker-1")
	b := e.Agent("worker-2")
	id := e.submit(map[string]any{"description": "for b", "target_agent": "worker-2"})
	if got, _ := assignment(b); got != id {
		t.Fatalf("worker-2 got %s", got)
	}
	later := e.submit(map[string]any{"description": "for c", "target_agent": "worker-3"})
	// A task for worker-1 submitted last is the first worker-1 may get:
	// had it been offered "for b" or "for c" (older, same lane), those
	// would have come first.
	mine := e.submit(map[string]any{"description": "for a", "target_agent": "worker-1"})
	a.NoFrameBefore("task_assign", func(m map[string]any) bool { return m["type"] == "task_assign" && m["task_id"] == mine })
	if task := e.task(later); task["status"] != "queued" || task["target_agent"] != "worker-3" {
		t.Fatalf("task for an absent target: %v", task)
	}
	c := e.Agent("worker-3")
	if got, _ := assignment(c); got != later {
		t.Fatalf("worker-3 got %s", got)
	}
}

// TestTaskDeadline: past its complete_by, a held task is reclaimed
// (reason "deadline") and dead-lettered with "deadline exceeded"; a queued
// one goes straight to the dead letter.
func TestTaskDeadline(t *testing.T) {
	e := newEngine(t, hubtest.FastTimers)
	a := e.Agent("worker-1")
	id := e.submit(map[string]any{"description": "x", "complete_by": time.Now().Add(300 * time.Millisecond).UnixMilli()})
	_, g := assignment(a)
	accept(a, id)
	task := e.waitTask(id, "dead-lettered", func(m map[string]any) bool { return m["status"] == "dead_letter" })
	if task["last_error"] != "deadline exceeded" || gen(task) != g+1 {
		t.Fatalf("expired task: %v", task)
	}
	ev := historyEvents(task)
	if !slices.Equal(ev[len(ev)-2:], []string{"reclaimed:deadline", "dead_letter:deadline exceeded"}) {
		t.Fatalf("history: %v", ev)
	}
	expectRefused(t, complete(a, id, g), id, "task_complete_failed: not_found")
	e.waitAgentState("worker-1", "idle")
	a.Close()
	e.waitAgentGone("worker-1")
	past := e.submit(map[string]any{"description": "late", "complete_by": time.Now().Add(-time.Second).UnixMilli()})
	task = e.waitTask(past, "dead-lettered", func(m map[string]any) bool { return m["status"] == "dead_letter" })
	if task["last_error"] != "deadline exceeded" || gen(task) != 0 {
		t.Fatalf("expired queued task: %v", task)
	}
}

// TestTaskLease: a holder that keeps pinging keeps its task past the lease;
// one that goes silent (socket still open) loses it with reason
// lease_expired, once the documented 5 min have passed and not before.
// The lease clock is injected and the sweep driven by hand, so a loaded
// machine cannot make a ping late.
func TestTaskLease(t *testing.T) {
	clk := testenv.NewClock(time.Now())
	ttl := hub.DefaultConfig().Scheduler.LeaseTTL
	e := newEngine(t, func(c *hub.Config) {
		c.Scheduler.Now = clk.Now
		c.Scheduler.SweepInterval = time.Hour // swept below
	})
	a := e.Agent("pinger")
	ia := e.submit(map[string]any{"description": "a", "target_agent": "pinger"})
	_, ga := assignment(a)
	accept(a, ia)
	s := e.Agent("silent")
	is := e.submit(map[string]any{"description": "s", "target_agent": "silent"})
	_, _ = assignment(s)
	accept(s, is)
	// Real time since the clock was made is well under a quarter lease.
	for step := 1; step <= 8; step++ {
		clk.Advance(ttl / 4)
		a.Send(map[string]any{"type": "ping", "protocol_version": 1})
		a.Expect("pong")
		e.Scheduler.Sweep()
		reclaimed := slices.Contains(historyEvents(e.task(is)), "reclaimed:lease_expired")
		// Silent since the start: inside the lease up to 4 quarters (the
		// task's last update is a little after the clock's start), out of
		// it from the fifth.
		if reclaimed != (step >= 5) {
			t.Fatalf("after %d/4 of the lease: silent holder's task reclaimed = %v", step, reclaimed)
		}
	}
	if task := e.task(ia); task["status"] != "assigned" || gen(task) != ga || task["assigned_to"] != "pinger" {
		t.Fatalf("pinging holder lost its task: %v", task)
	}
	if task := e.task(is); task["retry_count"] != float64(0) {
		t.Fatalf("a reclaim counted as a failure: %v", task)
	}
}

// TestNodeSidecarTaskSequence replays the original sidecar's task frames
// (original-protocol.md §3.6.6) and checks every reply's exact shape.
func TestNodeSidecarTaskSequence(t *testing.T) {
	e := newEngine(t)
	tok := e.Token("a1", auth.RoleAgent)
	c := hubtest.Dial(t, e.WSURL())
	c.Send(`{"type":"identify","agent_id":"a1","token":"` + tok + `","name":"a1","status":"idle","capabilities":["code"],"client_type":"sidecar","protocol_version":1}`)
	if f := c.Expect("identified"); !reflect.DeepEqual(f, map[string]any{"type": "identified", "agent_id": "a1"}) {
		t.Fatalf("identified: %v", f)
	}
	id := e.submit(map[string]any{"description": "Fix bug"})
	as := c.Expect("task_assign")
	at, ok := as["assigned_at"].(float64)
	if !ok || at < float64(time.Now().Add(-time.Minute).UnixMilli()) ||
		!reflect.DeepEqual(as, map[string]any{"type": "task_assign", "task_id": id, "description": "Fix bug",
			"metadata": map[string]any{}, "generation": float64(1), "assigned_at": at}) {
		t.Fatalf("task_assign: %v", as)
	}
	c.Send(`{"type":"task_accepted","task_id":"` + id + `","protocol_version":1}`)
	if f := c.Expect("task_ack"); !reflect.DeepEqual(f, map[string]any{"type": "task_ack", "task_id": id, "status": "accepted"}) {
		t.Fatalf("accepted ack: %v", f)
	}
	c.Send(`{"type":"ping","protocol_version":1}`)
	if f := c.Expect("pong"); len(f) != 2 || f["timestamp"] == nil {
		t.Fatalf("pong: %v", f)
	}
	c.Send(`{"type":"task_complete","task_id":"` + id + `","result":{"status":"success","output":"..."},"generation":1,"protocol_version":1}`)
	if f := c.Expect("task_ack"); !reflect.DeepEqual(f, map[string]any{"type": "task_ack", "task_id": id, "status": "complete"}) {
		t.Fatalf("complete ack: %v", f)
	}
	c.Send(`{"type":"task_recovering","task_id":"` + id + `","description":"Fix bug","metadata":{},"last_status":"working","protocol_version":1}`)
	if f := c.Expect("task_reassign"); !reflect.DeepEqual(f, map[string]any{"type": "task_reassign", "task_id": id}) {
		t.Fatalf("reassign: %v", f)
	}
	task := e.task(id)
	if task["status"] != "completed" || !reflect.DeepEqual(task["result"], map[string]any{"status": "success", "output": "..."}) ||
		task["tokens_used"] != nil {
		t.Fatalf("task: %v", task)
	}
}

// TestTaskStatsMatchListing: after a mixed run, stats agree with the
// listings.
func TestTaskStatsMatchListing(t *testing.T) {
	e := newEngine(t, hubtest.NoBackoff)
	a := e.Agent("worker-1")
	for i := range 6 {
		e.submit(map[string]any{"description": fmt.Sprint(i), "priority": []string{"urgent", "low"}[i%2], "max_retries": 1})
	}
	for i := range 4 {
		id, g := assignment(a)
		if i%2 == 0 {
			expectAck(t, complete(a, id, g), id, "complete")
		} else {
			expectAck(t, report(a, "task_failed", id, g, nil), id, "dead_letter")
		}
	}
	id, _ := assignment(a) // one held
	s := e.stats()
	_, all := e.Do("GET", "/api/tasks", e.AdminToken, nil)
	byStatus := map[string]any{}
	byPri := map[string]any{}
	for _, x := range all["tasks"].([]any) {
		task := x.(map[string]any)
		st := task["status"].(string)
		byStatus[st] = valueOr(byStatus[st]) + 1
		p := fmt.Sprint(task["priority"])
		byPri[p] = valueOr(byPri[p]) + 1
	}
	_, dl := e.Do("GET", "/api/tasks/dead-letter", e.AdminToken, nil)
	if !reflect.DeepEqual(s["by_status"], byStatus) || !reflect.DeepEqual(s["by_priority"], byPri) ||
		s["dead_letter"] != dl["count"] || s["queued_index_size"] != byStatus["queued"] {
		t.Fatalf("stats %v\nlisting by_status %v by_priority %v dead %v", s, byStatus, byPri, dl["count"])
	}
	_, mine := e.Do("GET", "/api/tasks?status=assigned&assigned_to=worker-1", e.AdminToken, nil)
	if mine["count"] != float64(1) || mine["tasks"].([]any)[0].(map[string]any)["id"] != id {
		t.Fatalf("held listing: %v", mine)
	}
}

func valueOr(v any) float64 {
	f, _ := v.(float64)
	return f
}

// TestTaskReidentifyKeepsWork: identify sent again on the same socket does
// not restart the acceptance timer on a task being worked on.
func TestTaskReidentifyKeepsWork(t *testing.T) {
	const timeout = 300 * time.Millisecond
	e := newEngine(t, func(c *hub.Config) { c.AcceptTimeout = timeout })
	tok := e.Token("worker-1", auth.RoleAgent)
	a := e.Connect("worker-1", tok)
	id := e.submit(map[string]any{"description": "x"})
	_, g := assignment(a)
	accept(a, id)
	a.Send(map[string]any{"type": "identify", "agent_id": "worker-1", "token": tok, "name": "worker-1",
		"capabilities": []string{}, "client_type": "sidecar", "protocol_version": 1})
	a.Expect("identified")
	e.acceptTimerControl("control")
	if task := e.task(id); task["status"] != "assigned" || gen(task) != g {
		t.Fatalf("re-identify cost the task: %v", task)
	}
	e.waitAgentState("worker-1", "working")
	expectAck(t, complete(a, id, g), id, "complete")
}

// TestTaskRejectFencedByGeneration: a task_rejected that names an old
// generation (the Go sidecar sends it) does not take away the agent's
// current assignment of the same task.
func TestTaskRejectFencedByGeneration(t *testing.T) {
	e := newEngine(t, func(c *hub.Config) { c.BusyHold = -1 }) // no hold
	a := e.Agent("worker-1")
	id := e.submit(map[string]any{"description": "x"})
	_, g := assignment(a)
	a.Send(map[string]any{"type": "task_rejected", "task_id": id, "reason": "busy", "generation": g})
	a.Expect("task_ack")
	_, g2 := assignment(a) // no one else: back to the decliner
	a.Send(map[string]any{"type": "task_rejected", "task_id": id, "reason": "busy", "generation": g})
	if m := a.Expect("error"); m["error"] != "task_reject_failed: stale_generation" || m["task_id"] != id {
		t.Fatalf("stale reject: %v", m)
	}
	if task := e.task(id); task["status"] != "assigned" || gen(task) != g2 {
		t.Fatalf("stale reject changed the task: %v", task)
	}
	expectAck(t, complete(a, id, g2), id, "complete")
}
