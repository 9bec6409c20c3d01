package hub_test

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/auth"
	"github.com/agentcom/agentcom/internal/hub"
	"github.com/agentcom/agentcom/internal/hubtest"
)

// listIDs lists tasks with query q as admin and returns their ids and the
// whole answer.
func (e *engine) listIDs(q string) ([]string, map[string]any) {
	e.t.Helper()
	st, body := e.Do("GET", "/api/tasks?"+q, e.AdminToken, nil)
	if st != 200 {
		e.t.Fatalf("list %s: %d %v", q, st, body)
	}
	var ids []string
	for _, t := range body["tasks"].([]any) {
		ids = append(ids, t.(map[string]any)["id"].(string))
	}
	if int(body["count"].(float64)) != len(ids) {
		e.t.Fatalf("list %s: count %v for %d tasks", q, body["count"], len(ids))
	}
	return ids, body
}

// deadLetter submits a task needing cap, lets agent a fail it once with
// max_retries 1, and returns its id.
func (e *engine) deadLetter(a *hubtest.Client, desc, cap string) string {
	e.t.Helper()
	id := e.submit(map[string]any{"description": desc, "needed_capabilities": []string{cap}, "max_retries": 1})
	got, g := assignment(a)
	if got != id {
		e.t.Fatalf("assigned %s, want %s", got, id)
	}
	accept(a, id)
	expectAck(e.t, report(a, "task_failed", id, g, map[string]any{"error": "boom: " + desc}), id, "dead_letter")
	return id
}

// TestTaskListFiltersAndPaging: GET /api/tasks covers every status (dead
// letter included), filters on the server, refuses unknown values, and
// pages with a bounded default.
func TestTaskListFiltersAndPaging(t *testing.T) {
	e := newEngine(t, hubtest.NoBackoff)
	alice := e.Token("alice", auth.RoleAgent)
	a := e.Agent("worker-1", "code")
	dead := e.deadLetter(a, "flaky migration", "code")
	done := e.submit(map[string]any{"description": "build docs", "needed_capabilities": []string{"code"}})
	_, g := assignment(a)
	accept(a, done)
	expectAck(t, complete(a, done, g), done, "complete")
	before := time.Now().UnixMilli()
	var queued []string
	for i := range 5 {
		lane := []string{"urgent", "low"}[i%2]
		queued = append(queued, e.submitAs(alice, map[string]any{"description": fmt.Sprintf("Parked job %d", i),
			"needed_capabilities": []string{"gpu"}, "priority": lane}))
	}

	all, body := e.listIDs("status=all")
	if len(all) != 7 || !slices.Contains(all, dead) || body["total"].(float64) != 7 || body["next_offset"] != nil {
		t.Fatalf("status=all: %v %v", all, body)
	}
	// Without a status the queue table only, as the original listed.
	if active, _ := e.listIDs(""); len(active) != 6 || slices.Contains(active, dead) {
		t.Fatalf("unfiltered list: %v", active)
	}
	if body["limit"].(float64) != 1000 {
		t.Fatalf("default limit %v, want 1000", body["limit"])
	}
	checks := []struct {
		q    string
		want []string
	}{
		{"status=dead_letter", []string{dead}},
		{"status=completed", []string{done}},
		{"status=queued&lane=urgent", []string{queued[0], queued[2], queued[4]}},
		{"priority=low", []string{queued[1], queued[3]}},
		{"status=all&capability=code", []string{done, dead}},
		{"status=all&agent=worker-1", []string{done, dead}},
		{"submitted_by=alice&lane=low", []string{queued[1], queued[3]}},
		{"status=all&q=FLAKY", []string{dead}},
		{"status=all&q=boom", []string{dead}}, // the last error
		{"status=all&q=" + dead, []string{dead}},
		{"q=FLAKY", nil},
		{"since=" + fmt.Sprint(before) + "&lane=urgent", []string{queued[0], queued[2], queued[4]}},
		{"until=" + fmt.Sprint(before) + "&status=completed", []string{done}},
		{"until=1", nil},
	}
	for _, c := range checks {
		got, _ := e.listIDs(c.q)
		slices.Sort(got)
		want := slices.Clone(c.want)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: got %v, want %v", c.q, got, want)
		}
	}

	// Paging: scheduling order, then newest first.
	p1, b1 := e.listIDs("status=queued&limit=2")
	p2, b2 := e.listIDs("status=queued&limit=2&offset=2")
	p3, b3 := e.listIDs("status=queued&limit=2&offset=4")
	if len(p1) != 2 || len(p2) != 2 || len(p3) != 1 || b1["next_offset"].(float64) != 2 || b2["next_offset"].(float64) != 4 ||
		b3["next_offset"] != nil || b3["total"].(float64) != 5 {
		t.Fatalf("pages %v %v %v / %v %v %v", p1, p2, p3, b1, b2, b3)
	}
	if pages := slices.Concat(p1, p2, p3); !slices.Equal(pages, []string{queued[0], queued[2], queued[4], queued[1], queued[3]}) {
		t.Fatalf("scheduling order %v", pages)
	}
	if newest, _ := e.listIDs("status=all&order=newest&limit=1"); len(newest) != 1 || newest[0] != queued[4] {
		t.Fatalf("newest first: %v", newest)
	}
	if _, b := e.listIDs("limit=5000"); b["limit"].(float64) != 1000 {
		t.Fatalf("limit not capped: %v", b["limit"])
	}
	// Dead-letter route pages alike.
	if ids, _ := func() ([]string, map[string]any) {
		st, body := e.Do("GET", "/api/tasks/dead-letter?q=nothing-like-this", e.AdminToken, nil)
		if st != 200 {
			t.Fatalf("dead letter: %d %v", st, body)
		}
		return nil, body
	}(); ids != nil {
		t.Fatal(ids)
	}

	// Unknown values are refused, naming the field; nothing else changes.
	for q, field := range map[string]string{"status=bogus": "status", "lane=critical": "lane", "order=random": "order",
		"limit=abc": "limit", "limit=0": "limit", "q=" + url.QueryEscape(strings.Repeat("x", 201)): "q"} {
		for _, route := range []string{"/api/tasks?", "/api/tasks/dead-letter?"} {
			st, body := e.Do("GET", route+q, e.AdminToken, nil)
			errs, _ := body["errors"].([]any)
			if st != 400 || body["error"] != "validation_failed" || len(errs) != 1 || errs[0].(map[string]any)["field"] != field {
				t.Errorf("%s%s: %d %v", route, q, st, body)
			}
		}
	}
}

// TestBulkRetryAndCancel: one request retries dead-letter tasks (and
// says why the others could not be), another cancels queued ones.
func TestBulkRetryAndCancel(t *testing.T) {
	e := newEngine(t, hubtest.NoBackoff)
	a := e.Agent("worker-1", "code")
	d1 := e.deadLetter(a, "first", "code")
	d2 := e.deadLetter(a, "second", "code")
	parked := e.submit(map[string]any{"description": "parked", "needed_capabilities": []string{"gpu"}})

	st, body := e.Do("POST", "/api/tasks/bulk", e.AdminToken, map[string]any{"action": "retry",
		"task_ids": []string{d1, d2, parked, "task-0000000000000000"}})
	if st != 200 || body["succeeded"].(float64) != 2 || body["failed"].(float64) != 2 {
		t.Fatalf("bulk retry: %d %v", st, body)
	}
	res := body["results"].([]any)
	want := []string{"requeued", "requeued", "task_not_retryable", "task_not_found"}
	for i, r := range res {
		if r.(map[string]any)["status"] != want[i] {
			t.Fatalf("result %d: %v, want %s", i, r, want[i])
		}
	}
	if res[2].(map[string]any)["state"] != "queued" {
		t.Fatalf("the refusal names the state: %v", res[2])
	}
	if dl, _ := e.listIDs("status=dead_letter"); len(dl) != 0 {
		t.Fatalf("dead letter after the retry: %v", dl)
	}
	// The agent gets the retried work again.
	if got, _ := assignment(a); got != d1 && got != d2 {
		t.Fatalf("assigned %s after the retry", got)
	}

	st, body = e.Do("POST", "/api/tasks/bulk", e.AdminToken, map[string]any{"action": "cancel", "task_ids": []string{parked, d2},
		"reason": "cleanup"})
	if st != 200 || body["succeeded"].(float64) < 1 {
		t.Fatalf("bulk cancel: %d %v", st, body)
	}
	if e.task(parked)["status"] != "cancelled" {
		t.Fatalf("parked: %v", e.task(parked)["status"])
	}

	// Refusals change nothing.
	for _, b := range []map[string]any{
		{"action": "delete", "task_ids": []string{parked}},
		{"action": "retry", "task_ids": []string{}},
		{"action": "retry", "task_ids": []string{d1, d1}},
		{"action": "retry"},
		{"action": "retry", "task_ids": make([]string, 501)},
	} {
		if st, body := e.Do("POST", "/api/tasks/bulk", e.AdminToken, b); st != 400 || body["error"] != "validation_failed" {
			t.Errorf("%v: %d %v", b, st, body)
		}
	}
	viewer := e.Token("wall", auth.RoleViewer)
	if st, _ := e.Do("POST", "/api/tasks/bulk", viewer, map[string]any{"action": "retry", "task_ids": []string{d1}}); st != 403 {
		t.Fatalf("viewer bulk: %d", st)
	}
}

// TestAlertAcknowledge: an active alert shows in the dashboard's health
// until an admin acknowledges it; the acknowledgement is in the panel.
func TestAlertAcknowledge(t *testing.T) {
	e := newEngine(t, func(c *hub.Config) { c.AlertInterval = 50 * time.Millisecond; c.DashboardToken = true })
	if st, body := e.Do("PUT", "/api/config/alerts", e.AdminToken, map[string]any{"rules": map[string]any{
		"no_idle_agent": map[string]any{"enabled": true, "severity": "warning", "for_seconds": 0}}}); st != 200 {
		t.Fatalf("alert config: %d %v", st, body)
	}
	if st, body := e.Do("POST", "/api/alerts/no_idle_agent/ack", e.AdminToken, nil); st != 404 || body["error"] != "alert_not_active" {
		t.Fatalf("ack before the alert: %d %v", st, body)
	}
	e.submit(map[string]any{"description": "nobody can take this", "needed_capabilities": []string{"gpu"}})
	state := func() map[string]any {
		st, body := e.Do("GET", "/api/dashboard/state", e.AdminToken, nil)
		if st != 200 {
			t.Fatalf("state: %d", st)
		}
		return body
	}
	hasAlertCondition := func(s map[string]any) bool {
		for _, d := range s["health"].(map[string]any)["details"].([]any) {
			if d.(map[string]any)["key"] == "alert_no_idle_agent" {
				return true
			}
		}
		return false
	}
	deadline := time.Now().Add(10 * time.Second)
	for s := state(); !hasAlertCondition(s); s = state() {
		if time.Now().After(deadline) {
			t.Fatalf("the alert never reached the health: %v", s["health"])
		}
		time.Sleep(20 * time.Millisecond)
	}
	if s := state(); s["health"].(map[string]any)["status"] == "ok" {
		t.Fatalf("healthy with an active alert: %v", s["health"])
	}
	viewer := e.Token("wall", auth.RoleViewer)
	if st, _ := e.Do("POST", "/api/alerts/no_idle_agent/ack", viewer, nil); st != 403 {
		t.Fatalf("viewer ack: %d", st)
	}
	st, body := e.Do("POST", "/api/alerts/no_idle_agent/ack", e.AdminToken, map[string]any{"note": "scaling up"})
	if st != 200 || body["acked_by"] != "admin" || body["acked_at"] == nil || body["ack_note"] != "scaling up" {
		t.Fatalf("ack: %d %v", st, body)
	}
	s := state()
	if hasAlertCondition(s) {
		t.Fatalf("an acknowledged alert still drives the health: %v", s["health"])
	}
	active := s["alert_panel"].(map[string]any)["active"].([]any)
	if len(active) != 1 || active[0].(map[string]any)["acked_by"] != "admin" {
		t.Fatalf("alert panel: %v", s["alert_panel"])
	}
}

// TestChartHistorySurvivesRestart: the per-minute chart history is kept
// in the hub's storage; after a restart the last hour still shows the
// completions and the series route still has them.
func TestChartHistorySurvivesRestart(t *testing.T) {
	e := newEngine(t)
	a := e.Agent("worker-1", "code")
	id := e.submit(map[string]any{"description": "count me", "needed_capabilities": []string{"code"}})
	_, g := assignment(a)
	accept(a, id)
	expectAck(t, complete(a, id, g), id, "complete")
	completed := func() (snap, hist int) {
		st, s := e.Do("GET", "/api/dashboard/state", e.AdminToken, nil)
		if st != 200 {
			t.Fatalf("state: %d", st)
		}
		for _, v := range s["series"].(map[string]any)["completed"].([]any) {
			snap += int(v.(float64))
		}
		st, h := e.Do("GET", "/api/dashboard/series?minutes=1440&step=5", e.AdminToken, nil)
		if st != 200 || h["step_ms"].(float64) != 300000 {
			t.Fatalf("series: %d %v", st, h["step_ms"])
		}
		for _, p := range h["points"].([]any) {
			hist += int(p.(map[string]any)["completed"].(float64))
		}
		return snap, hist
	}
	deadline := time.Now().Add(5 * time.Second)
	for s, _ := completed(); s < 1; s, _ = completed() {
		if time.Now().After(deadline) {
			t.Fatal("the completion never reached the chart")
		}
		time.Sleep(20 * time.Millisecond)
	}
	a.Close()
	e.Restart()
	if s, h := completed(); s != 1 || h != 1 {
		t.Fatalf("after the restart the charts show %d (last hour) and %d (history) completions, want 1", s, h)
	}
	// The recent completions are back too.
	_, s := e.Do("GET", "/api/dashboard/state", e.AdminToken, nil)
	if rc := s["recent_completions"].([]any); len(rc) != 1 || rc[0].(map[string]any)["task_id"] != id || rc[0].(map[string]any)["agent_id"] != "worker-1" {
		t.Fatalf("recent completions after the restart: %v", s["recent_completions"])
	}
	if st, body := e.Do("GET", "/api/dashboard/series?minutes=x", e.AdminToken, nil); st != 400 {
		t.Fatalf("bad minutes: %d %v", st, body)
	}
}

// TestMessagesView: recent messages, channels with members and history,
// and mailbox depth per agent, in one dashboard route.
func TestMessagesView(t *testing.T) {
	e := newEngine(t)
	ops := e.Token("ops", auth.RoleAgent)
	e.Token("offline-bot", auth.RoleAgent) // a known agent, not connected: its message waits
	if st, body := e.Do("POST", "/api/message", ops, map[string]any{"to": "offline-bot", "payload": map[string]any{"text": "hello"}}); st != 200 {
		t.Fatalf("send: %d %v", st, body)
	}
	if st, body := e.Do("POST", "/api/channels", ops, map[string]any{"name": "builds", "description": "CI"}); st != 200 && st != 201 {
		t.Fatalf("channel: %d %v", st, body)
	}
	e.Do("POST", "/api/channels/builds/subscribe", ops, map[string]any{})
	if st, body := e.Do("POST", "/api/channels/builds/publish", ops, map[string]any{"payload": map[string]any{"text": "green"}}); st != 200 {
		t.Fatalf("publish: %d %v", st, body)
	}
	st, v := e.Do("GET", "/api/dashboard/messages", e.AdminToken, nil)
	if st != 200 {
		t.Fatalf("messages: %d %v", st, v)
	}
	if s := fmt.Sprint(v["recent"]); !strings.Contains(s, "hello") || !strings.Contains(s, "offline-bot") {
		t.Fatalf("recent: %v", v["recent"])
	}
	chans := v["channels"].([]any)
	if len(chans) != 1 {
		t.Fatalf("channels: %v", chans)
	}
	ch := chans[0].(map[string]any)
	if ch["name"] != "builds" || fmt.Sprint(ch["members"]) != "[ops]" || !strings.Contains(fmt.Sprint(ch["history"]), "green") {
		t.Fatalf("channel: %v", ch)
	}
	found := false
	for _, m := range v["mailboxes"].([]any) {
		mb := m.(map[string]any)
		if mb["agent_id"] == "offline-bot" && mb["depth"].(float64) == 1 {
			found = true
		}
	}
	if !found {
		t.Fatalf("mailboxes: %v", v["mailboxes"])
	}
}
