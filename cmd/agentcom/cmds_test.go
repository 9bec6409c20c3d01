package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/auth"
	"github.com/agentcom/agentcom/internal/client"
	"github.com/agentcom/agentcom/internal/hub"
	"github.com/agentcom/agentcom/internal/hubtest"
	"github.com/agentcom/agentcom/internal/protocol"
	"github.com/agentcom/agentcom/internal/resilience"
	"github.com/agentcom/agentcom/internal/testenv"
)

// cliRun runs commands against one hub and remembers every output, so a
// test can check at the end that the token never appeared.
type cliRun struct {
	t       *testing.T
	env     map[string]string
	outputs []string
}

func newCLI(t *testing.T, h *hubtest.Hub, token string) *cliRun {
	return &cliRun{t: t, env: map[string]string{"AGENTCOM_HUB": h.URL(), "AGENTCOM_TOKEN": token}}
}

// ok runs a command that must succeed and returns its stdout.
func (r *cliRun) ok(args ...string) string {
	r.t.Helper()
	code, out, errs := runCmd(r.t, r.env, args...)
	r.outputs = append(r.outputs, out, errs)
	if code != 0 {
		r.t.Fatalf("%v: exit %d\nstdout:\n%s\nstderr:\n%s", args, code, out, errs)
	}
	return out
}

// json runs a command with --json and decodes its stdout into v.
func (r *cliRun) json(v any, args ...string) {
	r.t.Helper()
	out := r.ok(append(args, "--json")...)
	mustJSON(r.t, strings.Join(args, " "), out, v)
}

// fail runs a command that must exit with code and returns its stderr.
func (r *cliRun) fail(code int, args ...string) string {
	r.t.Helper()
	got, out, errs := runCmd(r.t, r.env, args...)
	r.outputs = append(r.outputs, out, errs)
	if got != code || out != "" {
		r.t.Fatalf("%v: exit %d (want %d)\nstdout:\n%s\nstderr:\n%s", args, got, code, out, errs)
	}
	return errs
}

// noSecret asserts the token was never printed.
func (r *cliRun) noSecret(secret string) {
	r.t.Helper()
	for _, o := range r.outputs {
		if strings.Contains(o, secret) {
			r.t.Fatalf("a command printed the token:\n%s", o)
		}
	}
}

func contains(t *testing.T, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Fatalf("%s: no %q in\n%s", what, sub, s)
		}
	}
}

var taskIDRe = regexp.MustCompile(`task-[0-9a-f]{16}`)

// runTask takes one assignment on a and ends it with a task_complete or a
// task_failed.
func runTask(t *testing.T, a *hubtest.Client, id string, fail bool) {
	t.Helper()
	as := a.Expect("task_assign")
	if as["task_id"] != id {
		t.Fatalf("assigned %v, want %s", as["task_id"], id)
	}
	a.Send(map[string]any{"type": "task_accepted", "task_id": id, "protocol_version": 1})
	a.Expect("task_ack")
	f := map[string]any{"type": "task_complete", "task_id": id, "generation": as["generation"], "result": map[string]any{"status": "success", "output": "done"}}
	if fail {
		f = map[string]any{"type": "task_failed", "task_id": id, "generation": as["generation"], "error": "tests failed"}
	}
	a.Send(f)
	a.Expect("task_ack")
}

func TestTaskCommands(t *testing.T) {
	h := hubtest.Start(t, "")
	r := newCLI(t, h, h.AdminToken)

	// Human submit; flags after the description.
	out := r.ok("task", "submit", "Fix the login bug", "--priority", "high", "--capabilities", "code,go",
		"--target", "worker", "--max-retries", "2", "--complete-by", "30m", "--metadata", `{"k":1}`)
	contains(t, "submit", out, "submitted task-", "high lane", "agentcom task show")
	stuck := taskIDRe.FindString(out)
	_, task := h.Do("GET", "/api/tasks/"+stuck, h.AdminToken, nil)
	if task["description"] != "Fix the login bug" || task["priority"] != float64(1) || task["max_retries"] != float64(2) ||
		task["target_agent"] != "worker" || task["complete_by"] == nil || task["metadata"].(map[string]any)["k"] != float64(1) {
		t.Fatalf("stored task = %v", task)
	}

	// An agent fails two tasks (dead-lettered) and completes one.
	a := h.Agent("worker", "code")
	var dead [2]client.Submitted
	for i := range dead {
		r.json(&dead[i], "task", "submit", "will fail", "--max-retries", "1", "--target", "worker")
		if dead[i].Status != "queued" || dead[i].Priority != 2 {
			t.Fatalf("submit --json: %+v", dead[i])
		}
		runTask(t, a, dead[i].TaskID, true)
	}
	var done client.Submitted
	r.json(&done, "task", "submit", "will complete", "--priority", "low")
	runTask(t, a, done.TaskID, false)

	// list: human, with the dead letters; lane names, not numbers.
	out = r.ok("task", "list")
	contains(t, "list", out, "ID", "STATUS", "LANE", stuck, dead[0].TaskID, dead[1].TaskID, done.TaskID, "dead_letter", "completed", "queued", "high", "low", "worker")
	var l taskListing
	r.json(&l, "task", "list")
	if l.Total != 4 || l.Count != 4 || l.Tasks[3].Status != "dead_letter" {
		t.Fatalf("list --json: %+v", l)
	}
	// Filters go to the hub.
	r.json(&l, "task", "list", "--status", "dead_letter")
	if l.Total != 2 || l.Tasks[0].Status != "dead_letter" {
		t.Fatalf("--status dead_letter: %+v", l)
	}
	r.json(&l, "task", "dead-letter")
	if l.Total != 2 {
		t.Fatalf("dead-letter: %+v", l)
	}
	r.json(&l, "task", "list", "--lane", "high")
	if l.Total != 1 || l.Tasks[0].ID != stuck {
		t.Fatalf("--lane high: %+v", l)
	}
	r.json(&l, "task", "list", "--status", "completed", "--agent", "worker")
	if l.Total != 1 || l.Tasks[0].ID != done.TaskID {
		t.Fatalf("--agent worker: %+v", l)
	}
	// Paging runs across the active table into the dead letter.
	r.json(&l, "task", "list", "--limit", "2", "--offset", "1")
	if l.Total != 4 || l.Count != 2 || l.Tasks[0].Status == "dead_letter" || l.Tasks[1].Status != "dead_letter" {
		t.Fatalf("page 2 of 2: %+v", l)
	}
	r.json(&l, "task", "list", "--limit", "2", "--offset", "3")
	if l.Count != 1 || l.Tasks[0].Status != "dead_letter" {
		t.Fatalf("last page: %+v", l)
	}
	contains(t, "paged list", r.ok("task", "list", "--limit", "1"), "showing 1-1 of 4", "--offset 1")
	// Unknown status or lane: a usage error naming the valid values.
	errs := r.fail(2, "task", "list", "--status", "bogus")
	contains(t, "--status bogus", errs, `--status "bogus"`, "queued, assigned, completed, cancelled, dead_letter")
	contains(t, "--lane bogus", r.fail(2, "task", "list", "--lane", "critical"), "urgent, high, normal, low")

	// show: human and JSON.
	out = r.ok("task", "show", done.TaskID)
	contains(t, "show", out, "status:", "completed", "lane:", "low", "attempts", "history (newest first)", "worker", `"output":"done"`)
	var shown client.Task
	r.json(&shown, "task", "show", done.TaskID)
	if shown.ID != done.TaskID || len(shown.Attempts) != 1 || shown.Attempts[0].Outcome != "completed" {
		t.Fatalf("show --json: %+v", shown)
	}
	contains(t, "show missing", r.fail(1, "task", "show", "task-00000000000000ff"), "no task task-00000000000000ff", "hint: agentcom task list")

	// retry: a completed task says its state; a dead-lettered one goes back.
	errs = r.fail(1, "task", "retry", done.TaskID)
	contains(t, "retry completed", errs, "is completed, not dead-lettered", "hint: submit it again")
	contains(t, "retry missing", r.fail(1, "task", "retry", "task-00000000000000ff"), "no task task-00000000000000ff")
	contains(t, "retry", r.ok("task", "retry", dead[0].TaskID), "is queued again in the normal lane")
	var act client.TaskAction
	r.json(&act, "task", "retry", dead[1].TaskID)
	if act.Status != "requeued" || act.TaskID != dead[1].TaskID {
		t.Fatalf("retry --json: %+v", act)
	}

	// cancel: the second cancel says who cancelled; an ended task says its state.
	contains(t, "cancel", r.ok("task", "cancel", stuck, "--reason", "obsolete"), "task "+stuck+" cancelled")
	contains(t, "cancel twice", r.fail(1, "task", "cancel", stuck), "was already cancelled by admin", "nothing to cancel")
	contains(t, "cancel completed", r.fail(1, "task", "cancel", done.TaskID), "is already completed")
	other := strings.TrimSpace(r.ok("task", "submit", "to cancel", "--capabilities", "nobody", "--quiet"))
	if !taskIDRe.MatchString(other) || len(other) != len("task-0123456789abcdef") {
		t.Fatalf("submit --quiet printed %q", other)
	}
	r.json(&act, "task", "cancel", other)
	if act.Status != "cancelled" || act.TaskID != other {
		t.Fatalf("cancel --json: %+v", act)
	}

	// stats.
	contains(t, "stats", r.ok("task", "stats"), "STATUS", "completed", "LANE", "urgent")
	var st client.TaskStats
	r.json(&st, "task", "stats")
	if st.ByStatus["completed"] != 1 {
		t.Fatalf("stats --json: %+v", st)
	}

	// Usage errors.
	for _, args := range [][]string{{"task", "submit"}, {"task", "submit", "x", "--priority", "critical"}, {"task", "nope"},
		{"task", "submit", "x", "--complete-by", "soon"}, {"task", "submit", "x", "--metadata", "[1]"}, {"task", "submit", "a", "b"}, {"task", "submit", "a", "--quiet", "--wait"}} {
		r.fail(2, args...)
	}
	r.noSecret(h.AdminToken)
}

// TestTaskWaitAcrossHubOutage: --wait reports the outage once, says when
// the hub is back, and goes on; with --json stdout holds only the task.
func TestTaskWaitAcrossHubOutage(t *testing.T) {
	h := hubtest.Start(t, "")
	env := map[string]string{"AGENTCOM_HUB": h.URL(), "AGENTCOM_TOKEN": h.AdminToken}
	b := runBG(t, env, "task", "submit", "outlive the hub", "--capabilities", "nobody", "--wait", "--wait-timeout", "2m", "--json")
	testenv.Eventually(t, "the submission", func() bool { return strings.Contains(b.err.String(), "queued (generation 0)") }, testenv.Within(10*time.Second))
	id := taskIDRe.FindString(b.err.String())
	h.Stop()
	testenv.Eventually(t, "the outage report", func() bool { return strings.Contains(b.err.String(), "hub unreachable") }, testenv.Within(20*time.Second))
	// Not a synchronisation: the hub stays down for a few more polls, so
	// that a report per failed poll would show (the assertion below holds
	// whatever the timing).
	time.Sleep(3 * waitPoll)
	h.Restart()
	testenv.Eventually(t, "the recovery report", func() bool { return strings.Contains(b.err.String(), "the hub answers again") }, testenv.Within(20*time.Second))
	if st, _ := h.Do("POST", "/api/tasks/"+id+"/cancel", h.AdminToken, nil); st != 200 {
		t.Fatal(st)
	}
	code := b.wait(t, 30*time.Second)
	errs := b.err.String()
	if code != 1 || strings.Count(errs, "hub unreachable") != 1 {
		t.Fatalf("exit %d; stderr:\n%s", code, errs)
	}
	contains(t, "stderr", errs, "connection refused", "cancelled (generation", "ended cancelled")
	var task client.Task
	mustJSON(t, "stdout", b.out.String(), &task)
	if task.ID != id || task.Status != "cancelled" {
		t.Fatalf("final task: %+v", task)
	}
}

func TestMessageCommands(t *testing.T) {
	h := hubtest.Start(t, "")
	r := newCLI(t, h, h.AdminToken)
	bobTok := h.Token("bob", auth.RoleAgent)

	// bob is offline: direct messages wait in his mailbox.
	contains(t, "send", r.ok("message", "send", "bob", "Please update the changelog"), "sent ", "to bob")
	var sent client.Sent
	r.json(&sent, "message", "send", "bob", "--type", "request", "--payload", `{"task":"review","pr":12}`)
	if sent.Status != "sent" || len(sent.ID) != 16 {
		t.Fatalf("send --json: %+v", sent)
	}
	contains(t, "broadcast", r.ok("message", "send", "--broadcast", "deploy at 5"), "to everyone")

	// bob reads his inbox with his own token: no --agent needed, the
	// hub names the token's agent.
	bob := newCLI(t, h, bobTok)
	out := bob.ok("message", "inbox")
	contains(t, "inbox", out, "SEQ", "FROM", "admin", "Please update the changelog", `{"pr":12,"task":"review"}`, "deploy at 5", "agentcom message ack")
	var mb client.Mailbox
	bob.json(&mb, "message", "inbox")
	if mb.Count != 3 || mb.Messages[0].Text() != "Please update the changelog" || mb.Messages[1].TypeText() != "request" {
		t.Fatalf("inbox --json: %+v", mb)
	}
	// Acknowledge the first; then only two remain.
	contains(t, "ack", bob.ok("message", "ack", strconv.FormatUint(mb.Messages[0].Seq, 10)), "acknowledged bob's messages up to")
	bob.json(&mb, "message", "inbox")
	if mb.Count != 2 {
		t.Fatalf("after ack: %+v", mb)
	}
	var acked client.Acked
	bob.json(&acked, "message", "ack", strconv.FormatUint(mb.LastSeq, 10))
	if acked.Status != "acked" || acked.UpTo != mb.LastSeq {
		t.Fatalf("ack --json: %+v", acked)
	}
	contains(t, "empty inbox", bob.ok("message", "inbox"), "no messages for bob")
	// --ack reads and deletes.
	r.ok("message", "send", "bob", "one more")
	contains(t, "inbox --ack", r.ok("message", "inbox", "--agent", "bob", "--ack"), "one more", "acknowledged up to")
	contains(t, "inbox after --ack", r.ok("message", "inbox", "--agent", "bob"), "no messages")

	// Someone else's mailbox: refused, with the token hint.
	contains(t, "foreign inbox", bob.fail(1, "message", "inbox", "--agent", "admin"), "401", "--token")
	// AGENTCOM_AGENT picks the mailbox over the token's agent.
	bob.env["AGENTCOM_AGENT"] = "admin"
	contains(t, "AGENTCOM_AGENT", bob.fail(1, "message", "ack", "1"), "401", "/api/mailbox/admin/ack")
	// A viewer token has no mailbox; without a token the hint says so.
	watcher := newCLI(t, h, h.Token("watcher", auth.RoleViewer))
	contains(t, "viewer inbox", watcher.fail(1, "message", "inbox"), "viewer token (of watcher)", "no mailbox", "hint: use the agent's own token")
	contains(t, "no token", newCLI(t, h, "").fail(1, "message", "inbox"), "401", "none was given")
	// Usage errors.
	contains(t, "no text", r.fail(2, "message", "send", "bob"), "missing the message TEXT")
	contains(t, "unknown recipient", r.fail(1, "message", "send", "nobody-here", "hi"), `no agent "nobody-here" holds a token or is connected`, "hint: agentcom agents")
	contains(t, "no recipient", r.fail(2, "message", "send"), "--broadcast")
	contains(t, "both", r.fail(2, "message", "send", "bob", "x", "--payload", `{"a":1}`), "not both")
	contains(t, "bad payload", r.fail(2, "message", "send", "bob", "--payload", `[1]`), "JSON object")
	contains(t, "bad seq", r.fail(2, "message", "ack", "x", "--agent", "bob"), "sequence number")
	r.noSecret(h.AdminToken)
	bob.noSecret(bobTok)
}

func TestChannelCommands(t *testing.T) {
	h := hubtest.Start(t, "")
	r := newCLI(t, h, h.AdminToken)
	contains(t, "empty list", r.ok("channel", "list"), "no channels")
	contains(t, "create", r.ok("channel", "create", "releases", "--description", "release coordination"), "created channel releases")
	var res client.ChannelResult
	r.json(&res, "channel", "create", "ops")
	if res.Status != "created" || res.Channel != "ops" {
		t.Fatalf("create --json: %+v", res)
	}
	contains(t, "create again", r.fail(1, "channel", "create", "ops"), `channel "ops" already exists`, "channel subscribe ops")

	// bob subscribes; a publish reaches his mailbox.
	bobTok := h.Token("bob", auth.RoleAgent)
	bob := newCLI(t, h, bobTok)
	contains(t, "subscribe", bob.ok("channel", "subscribe", "releases"), "subscribed to releases")
	contains(t, "subscribe twice", bob.ok("channel", "subscribe", "releases"), "already subscribed")
	contains(t, "publish", r.ok("channel", "publish", "releases", "v1.2 is out"), "published on releases (seq 1)")
	r.json(&res, "channel", "publish", "releases", "--payload", `{"text":"v1.3 soon","eta":"friday"}`)
	if res.Status != "published" || res.Seq != 2 {
		t.Fatalf("publish --json: %+v", res)
	}
	contains(t, "bob's inbox", r.ok("message", "inbox", "--agent", "bob"), "v1.2 is out", "v1.3 soon")

	contains(t, "list", r.ok("channel", "list"), "CHANNEL", "SUBSCRIBERS", "releases", "release coordination", "ops")
	var chs []client.Channel
	r.json(&chs, "channel", "list")
	if len(chs) != 2 {
		t.Fatalf("list --json: %+v", chs)
	}
	contains(t, "show", r.ok("channel", "show", "releases"), "subscribers:", "1 bob", "created")
	var info client.ChannelInfo
	r.json(&info, "channel", "show", "releases")
	if info.SubscriberCount != 1 || info.Subscribers[0] != "bob" {
		t.Fatalf("show --json: %+v", info)
	}
	contains(t, "history", r.ok("channel", "history", "releases"), "SEQ", "v1.2 is out", "v1.3 soon", "admin")
	var hist []client.ChannelEntry
	r.json(&hist, "channel", "history", "releases", "--since", "1")
	if len(hist) != 1 || hist[0].Seq != 2 || hist[0].Message.Text() != "v1.3 soon" {
		t.Fatalf("history --json: %+v", hist)
	}
	contains(t, "unsubscribe", bob.ok("channel", "unsubscribe", "releases"), "unsubscribed from releases")

	// Unknown channel: the hint says how to find or make one.
	for _, args := range [][]string{{"channel", "show", "nope"}, {"channel", "publish", "nope", "x"}, {"channel", "subscribe", "nope"}} {
		contains(t, "unknown channel", r.fail(1, args...), `no channel "nope"`, "agentcom channel create nope")
	}

	// --follow prints new messages as they come, until interrupted; with
	// --json one object per line.
	b := runBG(t, r.env, "channel", "history", "releases", "--follow", "--json")
	testenv.Eventually(t, "the existing history", func() bool { return strings.Count(b.out.String(), "\n") == 2 }, testenv.Within(10*time.Second))
	r.ok("channel", "publish", "releases", "live one")
	testenv.Eventually(t, "the new message", func() bool { return strings.Contains(b.out.String(), "live one") }, testenv.Within(10*time.Second))
	b.cancel()
	if code := b.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("follow exit %d: %s", code, b.err.String())
	}
	lines := strings.Split(strings.TrimSpace(b.out.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("follow --json lines:\n%s", b.out.String())
	}
	for _, l := range lines {
		var e client.ChannelEntry
		mustJSON(t, "follow line", l, &e)
	}
	r.noSecret(h.AdminToken)
	bob.noSecret(bobTok)
}

func TestAgentsCommands(t *testing.T) {
	h := hubtest.Start(t, "")
	r := newCLI(t, h, h.AdminToken)
	contains(t, "none", r.ok("agents"), "no agents connected", "agentcom onboard")
	a := h.Agent("worker-1", "code", "docs")
	var sub client.Submitted
	r.json(&sub, "task", "submit", "document the API", "--target", "worker-1")
	as := a.Expect("task_assign")
	a.Send(map[string]any{"type": "task_accepted", "task_id": sub.TaskID, "protocol_version": 1})
	a.Expect("task_ack")
	_ = as

	out := r.ok("agents")
	contains(t, "agents", out, "AGENT", "STATE", "worker-1", "working", sub.TaskID, "code,docs")
	if out2 := r.ok("agents", "list"); out2 != out && !strings.Contains(out2, "worker-1") {
		t.Fatalf("agents list:\n%s", out2)
	}
	var rows []agentRow
	r.json(&rows, "agents")
	if len(rows) != 1 || rows[0].State != "working" || deref(rows[0].CurrentTaskID) != sub.TaskID || len(rows[0].Capabilities) != 2 {
		t.Fatalf("agents --json: %+v", rows)
	}
	// Without a token: the public presence list, and a note.
	anon := newCLI(t, h, "")
	contains(t, "anonymous", anon.ok("agents"), "worker-1", "current tasks need a token")

	testenv.Eventually(t, "the timeline", func() bool {
		return strings.Contains(r.ok("agents", "show", "worker-1"), "task_accepted")
	}, testenv.Within(10*time.Second))
	out = r.ok("agents", "show", "worker-1")
	contains(t, "show", out, "agent:", "worker-1", "state:", "working", "current task:", sub.TaskID, "tasks assigned to it",
		"document the API", "timeline (newest first)", "task_assigned")
	var d agentDetail
	r.json(&d, "agents", "show", "worker-1")
	if d.Agent.AgentID != "worker-1" || len(d.Tasks) != 1 || len(d.Timeline) == 0 || d.TimelineError != "" {
		t.Fatalf("show --json: %+v", d)
	}
	contains(t, "unknown agent", r.fail(1, "agents", "show", "ghost"), `agent "ghost" is not connected`, "agentcom agents")
	r.noSecret(h.AdminToken)

	// On a hub whose dashboard asks for a token, an agent token may not
	// read the timeline: the rest is shown and the gap is said.
	h2 := hubtest.Start(t, "", func(c *hub.Config) { c.DashboardToken = true })
	h2.Agent("worker-2", "code")
	agentTok := h2.Token("peer", auth.RoleAgent)
	peer := newCLI(t, h2, agentTok)
	contains(t, "peer show", peer.ok("agents", "show", "worker-2"), "state:", "idle", "the timeline needs a viewer or admin token")
	var pd agentDetail
	peer.json(&pd, "agents", "show", "worker-2")
	if pd.TimelineError == "" || len(pd.Timeline) != 0 {
		t.Fatalf("peer show --json: %+v", pd)
	}
	viewer := newCLI(t, h2, h2.Token("watcher", auth.RoleViewer))
	contains(t, "viewer show", viewer.ok("agents", "show", "worker-2"), "presence", "connected")
	peer.noSecret(agentTok)
}

func TestTokenCommands(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"AGENTCOM_DATA_DIR": dir}
	code, out, errs := runCmd(t, env, "token", "create", "--agent", "ops", "--admin")
	tok := strings.TrimSpace(out)
	if code != 0 || len(tok) != 64 || !strings.Contains(errs, "shown only now") {
		t.Fatalf("create: %d %q %q", code, out, errs)
	}
	var created createdToken
	code, out, _ = runCmd(t, env, "token", "create", "--agent", "viewer-1", "--role", "viewer", "--json")
	mustJSON(t, "create --json", out, &created)
	if code != 0 || created.Role != auth.RoleViewer || len(created.Token) != 64 {
		t.Fatalf("create --json: %d %q", code, out)
	}
	code, out, _ = runCmd(t, env, "token", "list")
	if code != 0 || !strings.Contains(out, "AGENT") || !strings.Contains(out, "ops") || !strings.Contains(out, tok[:8]) || strings.Contains(out, tok) {
		t.Fatalf("list: %d %q", code, out)
	}
	var list []auth.Listed
	code, out, _ = runCmd(t, env, "token", "list", "--json")
	mustJSON(t, "list --json", out, &list)
	if code != 0 || len(list) != 2 || strings.Contains(out, tok) || strings.Contains(out, created.Token) {
		t.Fatalf("list --json: %d %q", code, out)
	}
	// token list takes only its own flags.
	code, out, _ = runCmd(t, env, "token", "list", "--help")
	if code != 0 || strings.Contains(out, "--agent") || strings.Contains(out, "--role") || strings.Contains(out, "--file") {
		t.Fatalf("list --help shows other commands' flags:\n%s", out)
	}
	if code, _, _ := runCmd(t, env, "token", "list", "--agent", "x"); code != 2 {
		t.Fatalf("list --agent: %d", code)
	}
	code, out, _ = runCmd(t, env, "token", "revoke", "--agent", "viewer-1", "--json")
	if code != 0 || !strings.Contains(out, `"revoked": 1`) {
		t.Fatalf("revoke: %d %q", code, out)
	}
	if code, out, _ := runCmd(t, env, "token", "revoke", "--agent", "nobody"); code != 0 || out != "revoked 0 token(s) of \"nobody\"\n" {
		t.Fatalf("revoke human: %d %q", code, out)
	}
	// import: the original hub's tokens.json, human and JSON.
	old := strings.Repeat("a", 64)
	file := filepath.Join(t.TempDir(), "tokens.json")
	if err := os.WriteFile(file, []byte(`{"`+old+`":"legacy-1"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, _ = runCmd(t, env, "token", "import", "--file", file)
	if code != 0 || !strings.Contains(out, "imported 1 token(s) as role agent") || strings.Contains(out, old) {
		t.Fatalf("import: %d %q", code, out)
	}
	code, out, _ = runCmd(t, env, "token", "import", "--file", file, "--role", "viewer", "--json")
	if code != 0 || !strings.Contains(out, `"imported": 1`) || !strings.Contains(out, `"role": "viewer"`) {
		t.Fatalf("import --json: %d %q", code, out)
	}
	if code, _, errs := runCmd(t, env, "token", "create"); code != 2 || !strings.Contains(errs, "--agent is required") {
		t.Fatalf("create without agent: %d %q", code, errs)
	}
}

func TestAdminCommands(t *testing.T) {
	h := hubtest.Start(t, "")
	r := newCLI(t, h, h.AdminToken)
	if st, _ := h.Do("POST", "/api/tasks", h.AdminToken, map[string]any{"description": "something to back up"}); st != 201 {
		t.Fatal(st)
	}
	contains(t, "backup", r.ok("admin", "backup"), "TABLE", "task_queue", "ok", "tables backed up to")
	var b resilience.BackupResponse
	r.json(&b, "admin", "backup")
	if b.TablesTotal == 0 || b.TablesSuccess != b.TablesTotal {
		t.Fatalf("backup --json: %+v", b)
	}
	contains(t, "health", r.ok("admin", "health"), "status:", "TABLE", "RECORDS", "task_queue", "just now")
	var hl resilience.Health
	r.json(&hl, "admin", "health")
	if len(hl.Tables) == 0 || hl.Status == "" {
		t.Fatalf("health --json: %+v", hl)
	}
	contains(t, "backups", r.ok("admin", "backups", "task_queue"), "BACKUP", "TAKEN", "just now")
	var bl struct {
		Table   string                  `json:"table"`
		Backups []resilience.BackupInfo `json:"backups"`
	}
	r.json(&bl, "admin", "backups", "task_queue")
	if bl.Table != "task_queue" || len(bl.Backups) != 2 {
		t.Fatalf("backups --json: %+v", bl)
	}
	contains(t, "restore dry", r.ok("admin", "restore", "task_queue", "--dry-run"), "would restore task_queue")
	var rr resilience.RestoreResponse
	r.json(&rr, "admin", "restore", "task_queue", "--dry-run")
	if rr.Status != "dry_run" || rr.RecordCount != 1 {
		t.Fatalf("restore --json: %+v", rr)
	}
	contains(t, "compact all", r.ok("admin", "compact", "--force"), "compacted", "skipped")
	var ca resilience.CompactAllResponse
	r.json(&ca, "admin", "compact")
	if ca.TablesTotal == 0 {
		t.Fatalf("compact --json: %+v", ca)
	}
	contains(t, "compact one", r.ok("admin", "compact", "task_queue", "--force"), "task_queue:")
	var co resilience.CompactOneResponse
	r.json(&co, "admin", "compact", "task_queue")
	if co.Table != "task_queue" {
		t.Fatalf("compact one --json: %+v", co)
	}
	contains(t, "drill", r.ok("admin", "drill"), "TABLE", "task_queue", "ok")
	var dr resilience.DrillResponse
	r.json(&dr, "admin", "drill")
	if len(dr.Results) == 0 {
		t.Fatalf("drill --json: %+v", dr)
	}
	contains(t, "unknown table", r.fail(1, "admin", "backups", "nope"), "nope")
	// An agent token is refused with the hint about the role.
	agent := newCLI(t, h, h.Token("worker", auth.RoleAgent))
	contains(t, "agent token", agent.fail(1, "admin", "health"), "forbidden (403)", "hint:", "admin token")
	r.noSecret(h.AdminToken)
}

// TestTaskWaitEndsOnRefusal: a refusal that waiting cannot cure (the
// token revoked) ends the wait with the hint, instead of polling forever.
func TestTaskWaitEndsOnRefusal(t *testing.T) {
	h := hubtest.Start(t, "")
	tok := h.Token("submitter", auth.RoleAgent)
	b := runBG(t, map[string]string{"AGENTCOM_HUB": h.URL(), "AGENTCOM_TOKEN": tok}, "task", "submit", "orphan", "--capabilities", "nobody", "--wait", "--wait-timeout", "2m")
	testenv.Eventually(t, "the submission", func() bool { return strings.Contains(b.out.String(), "queued (generation 0)") }, testenv.Within(10*time.Second))
	if st, _ := h.Do("DELETE", "/admin/tokens/submitter", h.AdminToken, nil); st != 200 {
		t.Fatal(st)
	}
	if code := b.wait(t, 30*time.Second); code != 1 {
		t.Fatalf("exit %d", code)
	}
	contains(t, "stderr", b.err.String(), "unauthorized (401)", "hint: the token was refused")
	if strings.Contains(b.err.String(), tok) {
		t.Fatal("the token was printed")
	}
}

// TestServeStartsAndStops runs the hub command itself: it says where it
// listens, and an interrupt (the context) stops it cleanly, exit 0.
func TestServeStartsAndStops(t *testing.T) {
	dir := t.TempDir()
	b := runBG(t, nil, "serve", "--addr", "127.0.0.1:0", "--data", dir, "--log-format", "json", "--log-level", "error", "--first-backup", "1h")
	testenv.Eventually(t, "the listening line", func() bool { return strings.Contains(b.err.String(), "listening on 127.0.0.1:") }, testenv.Within(20*time.Second))
	b.cancel()
	if code := b.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("exit %d: %s", code, b.err.String())
	}
	if b.out.String() != "" {
		t.Fatalf("serve wrote to stdout: %q", b.out.String())
	}
	// The data directory is free again.
	if code, out, errs := runCmd(t, map[string]string{"AGENTCOM_DATA_DIR": dir}, "token", "list", "--json"); code != 0 || strings.TrimSpace(out) != "[]" {
		t.Fatalf("token list after serve: %d %q %q", code, out, errs)
	}
}

// TestMoreOutputs covers the human or JSON form the other tests leave
// out.
func TestMoreOutputs(t *testing.T) {
	h := hubtest.Start(t, "")
	r := newCLI(t, h, h.AdminToken)
	contains(t, "dead-letter empty", r.ok("task", "dead-letter"), "no tasks")
	r.ok("channel", "create", "c1")
	var res client.ChannelResult
	r.json(&res, "channel", "subscribe", "c1")
	if res.Status != "subscribed" || res.Channel != "c1" {
		t.Fatalf("subscribe --json: %+v", res)
	}
	r.json(&res, "channel", "unsubscribe", "c1")
	if res.Status != "unsubscribed" {
		t.Fatalf("unsubscribe --json: %+v", res)
	}
	h.Stop()

	// store compact and restore --json on the stopped hub's directory.
	code, out, errs := runCmd(t, nil, "store", "compact", "--data", h.Dir, "--json", "--force")
	var ca resilience.CompactAllResponse
	mustJSON(t, "store compact --json", out, &ca)
	if code != 0 || ca.TablesTotal == 0 {
		t.Fatalf("store compact --json: %d %s %s", code, out, errs)
	}
	code, out, errs = runCmd(t, nil, "store", "restore", "--data", h.Dir, "--table", "task_queue", "--dry-run", "--json")
	if code != 1 || out != "" || !strings.Contains(errs, "agentcom store restore: no verified backup for task_queue") {
		t.Fatalf("store restore without a backup: %d %q %q", code, out, errs)
	}

	// bench's human table.
	code, out, errs = runCmd(t, nil, "bench", "--scenario", "storage", "--storage-records", "200",
		"--storage-writers", "1", "--storage-phase", "50ms", "--tmp", t.TempDir(), "--quiet")
	if code != 0 || !strings.Contains(out, "storage") {
		t.Fatalf("bench: %d\n%s\n%s", code, out, errs)
	}
}

// TestTaskLogsCommand: the agent's output, human (terminal-safe on a
// terminal, raw when piped or with --raw) and --json; -f follows until
// the task ends.
func TestTaskLogsCommand(t *testing.T) {
	h := hubtest.Start(t, "")
	r := newCLI(t, h, h.AdminToken)
	a := h.Agent("worker", "code")
	var sub client.Submitted
	r.json(&sub, "task", "submit", "talk", "--target", "worker")
	as := a.Expect("task_assign")
	a.Send(map[string]any{"type": "task_accepted", "task_id": sub.TaskID, "protocol_version": 1})
	a.Expect("task_ack")
	a.Send(map[string]any{"type": "task_progress", "task_id": sub.TaskID, "output": "step 1\n\x1b[32mgreen\x1b[0m \x1b]0;title\x07\n", "protocol_version": 1})
	testenv.Eventually(t, "the output", func() bool { return strings.Contains(r.ok("task", "logs", sub.TaskID), "step 1") }, testenv.Within(10*time.Second))
	if out := r.ok("task", "logs", sub.TaskID); !strings.Contains(out, "\x1b]0;title\x07") {
		t.Fatalf("piped output is not raw: %q", out)
	}
	var o, e bytes.Buffer
	ce := &cmdEnv{stdout: &o, stderr: &e, getenv: func(k string) string { return r.env[k] }, stdoutTTY: true}
	if code := dispatch(context.Background(), ce, []string{"task", "logs", sub.TaskID}); code != 0 ||
		strings.Contains(o.String(), "\x1b]") || strings.Contains(o.String(), "\x07") || !strings.Contains(o.String(), "\x1b[32mgreen\x1b[0m") {
		t.Fatalf("terminal output: %d %q %s", code, o.String(), e.String())
	}
	var l protocol.TaskLogs
	r.json(&l, "task", "logs", sub.TaskID)
	if !strings.Contains(l.Data, "step 1") || l.Next == 0 {
		t.Fatalf("logs --json: %+v", l)
	}
	// -f follows until the task ends.
	b := runBG(t, r.env, "task", "logs", sub.TaskID, "-f", "--since", strconv.FormatInt(l.Next, 10))
	a.Send(map[string]any{"type": "task_progress", "task_id": sub.TaskID, "output": "step 2\n", "protocol_version": 1})
	testenv.Eventually(t, "the followed output", func() bool { return strings.Contains(b.out.String(), "step 2") }, testenv.Within(10*time.Second))
	a.Send(map[string]any{"type": "task_complete", "task_id": sub.TaskID, "generation": as["generation"], "result": map[string]any{"status": "success"}})
	if code := b.wait(t, 30*time.Second); code != 0 || strings.Contains(b.out.String(), "step 1") || !strings.Contains(b.err.String(), "completed") {
		t.Fatalf("logs -f: %d %q %q", code, b.out.String(), b.err.String())
	}
	contains(t, "no task", r.fail(1, "task", "logs", "task-00000000000000ff"), "no output kept for task task-00000000000000ff")
	r.noSecret(h.AdminToken)
}
