package sidecar

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/gitflow"
	"github.com/agentcom/agentcom/internal/protocol"
	"github.com/agentcom/agentcom/internal/testenv"
)

func TestMain(m *testing.M) { testenv.VerifyNone(m) }

// shellWake sets a shell wake command.
func shellWake(cfg *Config, script string) {
	cfg.WakeCommand, cfg.WakeShell = []string{script}, true
}

func TestCompletesTaskEndToEnd(t *testing.T) {
	h := newFakeHub(t, "tok-1")
	cfg := testConfig(t, h)
	// The agent confirms, works a little, then writes its result
	// atomically.
	shellWake(&cfg, `: > "$STARTED_FILE"; sleep 0.2; printf '{"status":"success","output":"done %s","tokens_used":5}' "$TASK_ID" > "$RESULT_FILE.tmp" && mv "$RESULT_FILE.tmp" "$RESULT_FILE"`)
	id := taskID(1)
	var savedBeforeAccept atomic.Bool
	h.set(func(h *fakeHub) {
		h.onFrame = func(f rx) {
			// task_accepted must only be sent once the task is durable.
			if f.str("type") == "task_accepted" {
				data, err := os.ReadFile(cfg.StateFile)
				if err == nil {
					st, _, err := DecodeState(data)
					savedBeforeAccept.Store(err == nil && st.Active != nil && st.Active.TaskID == id)
				}
			}
		}
	})
	r := start(t, cfg, Options{})

	idf := h.next("identify")
	if idf.str("agent_id") != "agent-1" || idf.str("token") != "tok-1" || idf.str("name") != "agent-1" ||
		idf.str("status") != "idle" || idf.str("client_type") != "sidecar" {
		t.Fatalf("identify = %v", idf.m)
	}
	if caps, _ := idf.m["capabilities"].([]any); len(caps) != 1 || caps[0] != "code" {
		t.Fatalf("capabilities = %v", idf.m["capabilities"])
	}
	h.assign(id, 1, map[string]any{"priority": "urgent"}, "Fix the \"login\" bug")
	if f := h.next("task_accepted"); f.str("task_id") != id {
		t.Fatalf("accepted %v", f.m)
	}
	if !savedBeforeAccept.Load() {
		t.Fatal("task_accepted was sent before the task was saved")
	}
	done := h.next("task_complete")
	if done.str("task_id") != id || done.num("generation") != 1 {
		t.Fatalf("complete = %v", done.m)
	}
	res, _ := done.m["result"].(map[string]any)
	if res["status"] != "success" || res["output"] != "done "+id || res["tokens_used"] != float64(5) {
		t.Fatalf("result = %v", res)
	}
	testenv.Eventually(t, "outbox drained", func() bool { st := readState(t, cfg); return st.Active == nil && len(st.Outbox) == 0 }, testenv.Within(wait))
	for _, p := range []string{r.s.resultPath(id), r.s.startedPath(id), r.s.taskFilePath(id)} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s not cleaned up", p)
		}
	}
	for _, ev := range []string{"task_received", "wake_attempt", "confirmation_received", "task_complete", "report_acked"} {
		testenv.Eventually(t, "log event "+ev, func() bool { return r.log.has(ev) }, testenv.Within(wait))
	}
	if strings.Contains(r.log.String(), "tok-1") {
		t.Error("the token appears in the log")
	}
}

func TestSecondAssignWhileBusyIsRejected(t *testing.T) {
	h := newFakeHub(t, "tok-1")
	cfg := testConfig(t, h)
	start(t, cfg, Options{})
	h.next("identify")
	h.assign(taskID(1), 1, nil, "first")
	h.next("task_accepted")
	h.assign(taskID(2), 1, nil, "second")
	rej := h.next("task_rejected")
	if rej.str("task_id") != taskID(2) || rej.str("reason") != "busy" {
		t.Fatalf("rejected = %v", rej.m)
	}
	if st := readState(t, cfg); st.Active == nil || st.Active.TaskID != taskID(1) {
		t.Fatalf("active = %+v", st.Active)
	}
}

func TestWakeGetsTaskThroughEnvironmentOnly(t *testing.T) {
	h := newFakeHub(t, "tok-1")
	cfg := testConfig(t, h)
	out := t.TempDir()
	shellWake(&cfg, `printf '%s' "$TASK_DESCRIPTION" > `+out+`/desc; cp "$TASK_FILE" `+out+`/task.json; `+
		`printf '%s|%s|%s|%s|%s|%s' "$TASK_ID" "$RESULTS_DIR" "$HUB_URL" "$AGENT_ID" "$TASK_GENERATION" "$RESULT_FILE" > `+out+`/vars; `+
		`printf '%s' "$TASK_JSON" > `+out+`/taskjson; : > "$STARTED_FILE"; echo '{"status":"success"}' > "$RESULT_FILE"`)
	start(t, cfg, Options{})
	h.next("identify")
	pwned := filepath.Join(out, "PWNED")
	desc := "Fix \"x\" $(touch " + pwned + ") `touch " + pwned + "` '; touch " + pwned + "; '\nline2 \\ end"
	id := taskID(7)
	h.assign(id, 4, map[string]any{"k": 1}, desc)
	h.next("task_complete")
	if _, err := os.Stat(pwned); !os.IsNotExist(err) {
		t.Fatal("the description was executed by the shell")
	}
	got, _ := os.ReadFile(filepath.Join(out, "desc"))
	if string(got) != desc {
		t.Fatalf("TASK_DESCRIPTION = %q, want %q", got, desc)
	}
	vars, _ := os.ReadFile(filepath.Join(out, "vars"))
	want := strings.Join([]string{id, cfg.ResultsDir, cfg.HubAPIURL, "agent-1", "4", filepath.Join(cfg.ResultsDir, id+".json")}, "|")
	if string(vars) != want {
		t.Fatalf("vars = %q, want %q", vars, want)
	}
	var tf TaskFile
	b, _ := os.ReadFile(filepath.Join(out, "task.json"))
	if err := json.Unmarshal(b, &tf); err != nil || tf.TaskID != id || tf.Description != desc || !jsonEq(tf.Metadata, `{"k":1}`) || tf.Generation != 4 || tf.AgentID != "agent-1" {
		t.Fatalf("task file = %s (%v)", b, err)
	}
	var tj Task
	b, _ = os.ReadFile(filepath.Join(out, "taskjson"))
	if err := json.Unmarshal(b, &tj); err != nil || tj.Description != desc || tj.Status != StatusWaking {
		t.Fatalf("TASK_JSON = %s (%v)", b, err)
	}
}

func TestWakeArgvWithoutShell(t *testing.T) {
	h := newFakeHub(t, "tok-1")
	cfg := testConfig(t, h)
	cfg.WakeCommand = []string{"/bin/sh", "-c", `: > "$STARTED_FILE"; echo '{"status":"success","output":"argv"}' > "$RESULT_FILE"`}
	start(t, cfg, Options{})
	h.next("identify")
	h.assign(taskID(1), 1, nil, "x")
	res, _ := h.next("task_complete").m["result"].(map[string]any)
	if res["output"] != "argv" {
		t.Fatalf("result = %v", res)
	}
}

func TestConfirmationBeforeWakeExitCounts(t *testing.T) {
	t.Parallel() // mostly waiting on child processes
	h := newFakeHub(t, "tok-1")
	cfg := testConfig(t, h)
	cfg.ConfirmationTimeout = 50 * time.Millisecond
	// .started appears while the wake command still runs; it exits well
	// after the confirmation timeout would have fired had it been lost.
	shellWake(&cfg, `: > "$STARTED_FILE"; sleep 0.4`)
	r := start(t, cfg, Options{})
	h.next("identify")
	id := taskID(1)
	h.assign(id, 1, nil, "x")
	h.next("task_accepted")
	testenv.Eventually(t, "wake done and working", func() bool {
		st := readState(t, cfg)
		return st.Active != nil && st.Active.Status == StatusWorking && r.log.has("wake_success")
	}, testenv.Within(wait))
	time.Sleep(3 * cfg.ConfirmationTimeout)
	writeResult(t, cfg, id, map[string]any{"status": "success"})
	h.next("task_complete")
	if n := h.count("task_failed", id); n != 0 {
		t.Fatalf("task_failed sent %d times", n)
	}
}

func TestConfirmationTimeout(t *testing.T) {
	h := newFakeHub(t, "tok-1")
	cfg := testConfig(t, h)
	cfg.ConfirmationTimeout = 50 * time.Millisecond
	shellWake(&cfg, `exit 0`)
	start(t, cfg, Options{})
	h.next("identify")
	h.assign(taskID(1), 2, nil, "x")
	f := h.next("task_failed")
	if f.str("reason") != "confirmation_timeout" || f.num("generation") != 2 {
		t.Fatalf("failed = %v", f.m)
	}
}

func TestWakeRetriesThenFails(t *testing.T) {
	h := newFakeHub(t, "tok-1")
	cfg := testConfig(t, h)
	cfg.WakeRetryDelays = []time.Duration{5 * time.Millisecond, 5 * time.Millisecond}
	count := filepath.Join(t.TempDir(), "count")
	shellWake(&cfg, `echo x >> `+count+`; echo boom >&2; exit 3`)
	r := start(t, cfg, Options{})
	h.next("identify")
	h.assign(taskID(1), 1, nil, "x")
	f := h.next("task_failed")
	if f.str("reason") != "wake_failed_after_2_attempts" {
		t.Fatalf("failed = %v", f.m)
	}
	b, _ := os.ReadFile(count)
	if n := strings.Count(string(b), "x"); n != 3 {
		t.Fatalf("wake ran %d times, want 3", n)
	}
	if !strings.Contains(r.log.String(), "boom") {
		t.Error("wake output not in the log")
	}
}

func TestWakeTimeoutKillsProcessGroup(t *testing.T) {
	t.Parallel() // mostly waiting on child processes
	h := newFakeHub(t, "tok-1")
	cfg := testConfig(t, h)
	cfg.WakeTimeout = 100 * time.Millisecond
	marker := filepath.Join(t.TempDir(), "survived")
	// The child of the shell must die with it.
	shellWake(&cfg, `(sleep 1; : > `+marker+`) & wait`)
	start(t, cfg, Options{})
	h.next("identify")
	h.assign(taskID(1), 1, nil, "x")
	if f := h.next("task_failed"); f.str("reason") != "wake_failed_after_0_attempts" {
		t.Fatalf("failed = %v", f.m)
	}
	time.Sleep(1500 * time.Millisecond)
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the wake command's child outlived the timeout")
	}
}

func TestResultWhileHubDownIsDeliveredOnce(t *testing.T) {
	h := newFakeHub(t, "tok-1")
	cfg := testConfig(t, h)
	r := start(t, cfg, Options{})
	h.next("identify")
	id := taskID(1)
	h.assign(id, 3, nil, "x")
	h.next("task_accepted")
	testenv.Eventually(t, "working", func() bool { st := readState(t, cfg); return st.Active != nil && st.Active.Status == StatusWorking }, testenv.Within(wait))

	h.setDown(true)
	writeResult(t, cfg, id, map[string]any{"status": "success", "output": "while down"})
	testenv.Eventually(t, "report in the outbox", func() bool { st := readState(t, cfg); return st.Active == nil && len(st.Outbox) == 1 }, testenv.Within(wait))
	if n := h.count("task_complete", id); n != 0 {
		t.Fatalf("complete sent while down %d times", n)
	}
	h.setDown(false)
	f := h.next("task_complete")
	if f.str("task_id") != id || f.num("generation") != 3 {
		t.Fatalf("complete after reconnect = %v", f.m)
	}
	testenv.Eventually(t, "outbox drained", func() bool { return len(readState(t, cfg).Outbox) == 0 }, testenv.Within(wait))

	// Another reconnect and another task: the first report is not resent.
	h.dropConns()
	h.next("identify")
	h.assign(taskID(2), 1, nil, "y")
	h.next("task_accepted")
	writeResult(t, cfg, taskID(2), map[string]any{"status": "success"})
	if f := h.next("task_complete"); f.str("task_id") != taskID(2) {
		t.Fatalf("second complete = %v", f.m)
	}
	if n := h.count("task_complete", id); n != 1 {
		t.Fatalf("first report sent %d times", n)
	}
	testenv.Eventually(t, "report_acked event", func() bool { return r.log.has("report_acked") }, testenv.Within(wait))
}

func TestReconnectReannouncesActiveTask(t *testing.T) {
	h := newFakeHub(t, "tok-1")
	cfg := testConfig(t, h)
	h.set(func(h *fakeHub) {
		h.onRecovering = func(f rx) map[string]any {
			return map[string]any{"type": "task_continue", "task_id": f.str("task_id"), "generation": 9}
		}
	})
	start(t, cfg, Options{})
	h.next("identify")
	id := taskID(1)
	h.assign(id, 2, map[string]any{"a": "b"}, "desc")
	h.next("task_accepted")
	h.dropConns() // the hub restarts or the network blips
	h.next("identify")
	rec := h.next("task_recovering")
	if rec.str("task_id") != id || rec.str("description") != "desc" || rec.str("last_status") != StatusWorking || rec.num("generation") != 2 {
		t.Fatalf("recovering = %v", rec.m)
	}
	if md, _ := rec.m["metadata"].(map[string]any); md["a"] != "b" {
		t.Fatalf("metadata = %v", rec.m["metadata"])
	}
	testenv.Eventually(t, "generation from task_continue saved", func() bool {
		st := readState(t, cfg)
		return st.Active != nil && st.Active.Generation == 9
	}, testenv.Within(wait))
	writeResult(t, cfg, id, map[string]any{"status": "failed", "error": "nope"})
	f := h.next("task_failed")
	if f.str("reason") != "nope" || f.num("generation") != 9 {
		t.Fatalf("failed = %v", f.m)
	}
}

func TestRestartRecoversAndPicksUpResultWrittenWhileDown(t *testing.T) {
	h := newFakeHub(t, "tok-1")
	cfg := testConfig(t, h)
	h.set(func(h *fakeHub) {
		h.onRecovering = func(f rx) map[string]any {
			return map[string]any{"type": "task_continue", "task_id": f.str("task_id"), "generation": 5}
		}
	})
	r1 := start(t, cfg, Options{})
	h.next("identify")
	id := taskID(1)
	h.assign(id, 1, nil, "recover me")
	h.next("task_accepted")
	testenv.Eventually(t, "working", func() bool { st := readState(t, cfg); return st.Active != nil && st.Active.Status == StatusWorking }, testenv.Within(wait))
	r1.stop(t)
	// While the sidecar is down, the agent finishes.
	writeResult(t, cfg, id, map[string]any{"status": "success", "output": "after restart"})

	r2 := start(t, cfg, Options{})
	h.next("identify")
	// Two orders are right. Usually the hub hears task_recovering first
	// and the report carries the generation task_continue gave. When the
	// result watcher finds the file before the connection is up (a loaded
	// machine), the finished task is reported at once with the generation
	// it had, and there is nothing left to recover.
	switch f := h.nextOf("task_recovering", "task_complete"); f.str("type") {
	case protocol.FrameTaskRecovering:
		if f.str("task_id") != id || f.str("description") != "recover me" {
			t.Fatalf("recovering = %v", f.m)
		}
		c := h.next("task_complete")
		if c.str("task_id") != id || c.num("generation") != 5 {
			t.Fatalf("complete = %v (must carry the generation from task_continue)", c.m)
		}
		testenv.Eventually(t, "recovery_continued", func() bool { return r2.log.has("recovery_continued") }, testenv.Within(wait))
	default:
		if f.str("task_id") != id || f.num("generation") != 1 {
			t.Fatalf("complete = %v", f.m)
		}
	}
	if !r2.log.has("recovery_found") {
		t.Error("recovery_found missing")
	}
	testenv.Eventually(t, "outbox drained", func() bool { return len(readState(t, cfg).Outbox) == 0 }, testenv.Within(wait))
	if n := h.count("task_complete", id); n != 1 {
		t.Fatalf("report sent %d times", n)
	}
}

func TestRestartRewakesTaskThatWasNeverWoken(t *testing.T) {
	h := newFakeHub(t, "tok-1")
	cfg := testConfig(t, h)
	// Simulate a crash right after the task was saved: state says
	// "accepted", nothing ran yet.
	id := taskID(3)
	if err := os.MkdirAll(filepath.Dir(cfg.StateFile), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := SaveState(cfg.StateFile, State{Active: &Task{TaskID: id, Description: "d", Metadata: json.RawMessage(`{}`), Status: StatusAccepted, Generation: 1}}); err != nil {
		t.Fatal(err)
	}
	shellWake(&cfg, `: > "$STARTED_FILE"; echo '{"status":"success","output":"rewoken"}' > "$RESULT_FILE"`)
	h.set(func(h *fakeHub) {
		h.onRecovering = func(f rx) map[string]any {
			return map[string]any{"type": "task_continue", "task_id": f.str("task_id"), "generation": 2}
		}
	})
	start(t, cfg, Options{})
	h.next("task_recovering")
	f := h.next("task_complete")
	if res, _ := f.m["result"].(map[string]any); res["output"] != "rewoken" || f.num("generation") != 2 {
		t.Fatalf("complete = %v", f.m)
	}
}

func TestReassignDropsTheTask(t *testing.T) {
	h := newFakeHub(t, "tok-1")
	cfg := testConfig(t, h)
	h.set(func(h *fakeHub) {
		h.onRecovering = func(f rx) map[string]any {
			return map[string]any{"type": "task_reassign", "task_id": f.str("task_id")}
		}
	})
	r1 := start(t, cfg, Options{})
	h.next("identify")
	h.assign(taskID(1), 1, nil, "old")
	h.next("task_accepted")
	r1.stop(t)
	r2 := start(t, cfg, Options{})
	h.next("task_recovering")
	testenv.Eventually(t, "task dropped", func() bool { return readState(t, cfg).Active == nil }, testenv.Within(wait))
	h.assign(taskID(2), 1, nil, "new")
	if f := h.next("task_accepted"); f.str("task_id") != taskID(2) {
		t.Fatalf("accepted = %v", f.m)
	}
	if !r2.log.has("recovery_reassigned") {
		t.Error("no recovery_reassigned event")
	}
	if h.count("task_rejected", "") != 0 {
		t.Error("new task rejected after reassign")
	}
}

func TestRedeliveredTaskIsNotRejected(t *testing.T) {
	h := newFakeHub(t, "tok-1")
	cfg := testConfig(t, h)
	start(t, cfg, Options{})
	h.next("identify")
	id := taskID(1)
	h.assign(id, 1, nil, "x")
	h.next("task_accepted")
	h.assign(id, 3, nil, "x")
	h.next("task_accepted")
	writeResult(t, cfg, id, map[string]any{"status": "success"})
	if f := h.next("task_complete"); f.num("generation") != 3 {
		t.Fatalf("complete = %v", f.m)
	}
	if h.count("task_rejected", "") != 0 {
		t.Fatal("redelivery was rejected")
	}
}

func TestCorruptStateIsMovedAsideAndReported(t *testing.T) {
	h := newFakeHub(t, "tok-1")
	cfg := testConfig(t, h)
	if err := os.MkdirAll(filepath.Dir(cfg.StateFile), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg.StateFile, []byte(`{"active": {"task_id": "task-1", `), 0o600); err != nil {
		t.Fatal(err)
	}
	r := start(t, cfg, Options{})
	h.next("identify")
	if !r.log.has("state_corrupt") {
		t.Fatal("corruption not reported")
	}
	matches, _ := filepath.Glob(cfg.StateFile + ".corrupt-*")
	if len(matches) != 1 {
		t.Fatalf("moved aside: %v", matches)
	}
	if b, _ := os.ReadFile(matches[0]); !strings.Contains(string(b), "task-1") {
		t.Fatalf("corrupt file content lost: %q", b)
	}
	h.assign(taskID(1), 1, nil, "x")
	h.next("task_accepted")
}

func TestRejectedTokenBacksOffLong(t *testing.T) {
	h := newFakeHub(t, "the-right-token")
	cfg := testConfig(t, h)
	cfg.AuthRetry = 400 * time.Millisecond
	r := start(t, cfg, Options{})
	testenv.Eventually(t, "two attempts", func() bool { return len(h.connects()) >= 2 }, testenv.Within(wait))
	c := h.connects()
	if gap := c[1].Sub(c[0]); gap < cfg.AuthRetry {
		t.Fatalf("retried after %s, want at least %s", gap, cfg.AuthRetry)
	}
	if !r.log.has("auth_rejected") || !strings.Contains(r.log.String(), "rejected this agent's token") {
		t.Fatal("no clear auth error in the log")
	}
}

func TestBackoffGrowsUntilIdentified(t *testing.T) {
	h := newFakeHub(t, "tok-1")
	h.set(func(h *fakeHub) { h.dropOnOpen = true }) // accept, then close at once
	cfg := testConfig(t, h)
	cfg.ReconnectMin, cfg.ReconnectMax = 20*time.Millisecond, 10*time.Second
	start(t, cfg, Options{})
	testenv.Eventually(t, "five attempts", func() bool { return len(h.connects()) >= 5 }, testenv.Within(wait))
	c := h.connects()
	// Nominal delays 20, 40, 80, 160 ms; jitter keeps at least half.
	if gap := c[4].Sub(c[3]); gap < 80*time.Millisecond {
		t.Fatalf("4th delay %s: the backoff was reset by accept-then-close", gap)
	}
}

func TestHeartbeatTimeoutReconnects(t *testing.T) {
	h := newFakeHub(t, "tok-1")
	h.set(func(h *fakeHub) { h.silentPong = true })
	cfg := testConfig(t, h)
	cfg.PingInterval, cfg.PongTimeout = 30*time.Millisecond, 30*time.Millisecond
	r := start(t, cfg, Options{})
	testenv.Eventually(t, "reconnect", func() bool { return len(h.connects()) >= 2 }, testenv.Within(wait))
	if !r.log.has("heartbeat_timeout") {
		t.Fatal("no heartbeat_timeout event")
	}
}

func TestAnswersHubPing(t *testing.T) {
	h := newFakeHub(t, "tok-1")
	cfg := testConfig(t, h)
	start(t, cfg, Options{})
	h.next("identify")
	h.send(map[string]any{"type": "ping"})
	if f := h.next("pong"); f.num("timestamp") == 0 {
		t.Fatalf("pong = %v", f.m)
	}
}

func TestProgressIsSentWhileWorking(t *testing.T) {
	h := newFakeHub(t, "tok-1")
	cfg := testConfig(t, h)
	cfg.ProgressInterval = 30 * time.Millisecond
	start(t, cfg, Options{})
	h.next("identify")
	h.assign(taskID(1), 1, nil, "x")
	h.next("task_accepted")
	if f := h.next("task_progress"); f.str("task_id") != taskID(1) {
		t.Fatalf("progress = %v", f.m)
	}
}

func TestStopWhileWakingClosesCleanly(t *testing.T) {
	t.Parallel() // mostly waiting on child processes
	h := newFakeHub(t, "tok-1")
	cfg := testConfig(t, h)
	marker := filepath.Join(t.TempDir(), "survived")
	shellWake(&cfg, `sleep 2; : > `+marker)
	r := start(t, cfg, Options{})
	h.next("identify")
	h.assign(taskID(1), 1, nil, "x")
	h.next("task_accepted")
	testenv.Eventually(t, "waking", func() bool { st := readState(t, cfg); return st.Active != nil && st.Active.Status == StatusWaking }, testenv.Within(wait))
	r.stop(t)
	testenv.Eventually(t, "close seen by the hub", func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return len(h.closes) > 0
	}, testenv.Within(wait))
	h.mu.Lock()
	ce := h.closes[0]
	h.mu.Unlock()
	if ce.Code != 1000 || ce.Reason != "shutdown" {
		t.Fatalf("close = %v", ce)
	}
	if st := readState(t, cfg); st.Active == nil || st.Active.TaskID != taskID(1) {
		t.Fatalf("state after stop = %+v", st)
	}
	time.Sleep(2500 * time.Millisecond)
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("wake command outlived the sidecar")
	}
}

func TestRejectedReportIsDropped(t *testing.T) {
	h := newFakeHub(t, "tok-1")
	cfg := testConfig(t, h)
	h.set(func(h *fakeHub) {
		h.onReport = func(rx) map[string]any {
			return map[string]any{"type": "error", "error": "task_complete_failed: stale_generation"}
		}
	})
	r := start(t, cfg, Options{})
	h.next("identify")
	h.assign(taskID(1), 1, nil, "x")
	h.next("task_accepted")
	writeResult(t, cfg, taskID(1), map[string]any{"status": "success"})
	h.next("task_complete")
	testenv.Eventually(t, "outbox drained", func() bool { return len(readState(t, cfg).Outbox) == 0 }, testenv.Within(wait))
	testenv.Eventually(t, "report_rejected event", func() bool { return r.log.has("report_rejected") }, testenv.Within(wait))
}

func TestUnsafeTaskIDIsIgnored(t *testing.T) {
	h := newFakeHub(t, "tok-1")
	cfg := testConfig(t, h)
	r := start(t, cfg, Options{})
	h.next("identify")
	h.assign("../../etc/passwd", 1, nil, "x")
	h.sendRaw(`{"type":"task_assign","task_id":"task-2","generation":1.0}`)
	h.sendRaw(`not json`)
	h.assign(taskID(3), 1, nil, "ok")
	if f := h.next("task_accepted"); f.str("task_id") != taskID(3) {
		t.Fatalf("accepted = %v", f.m)
	}
	if n := h.count("task_accepted", ""); n != 1 {
		t.Fatalf("%d accepts", n)
	}
	if !r.log.has("ws_message_parse_error") {
		t.Error("bad frames not logged")
	}
}

// The onboarding check goes through the configured command, so it proves
// the agent really runs; only a sidecar with no command answers it itself.
func TestOnboardingTestTaskGoesThroughTheCommand(t *testing.T) {
	h := newFakeHub(t, "tok-1")
	cfg := testConfig(t, h)
	marker := filepath.Join(t.TempDir(), "woken")
	shellRun(t, &cfg, `: > `+marker+`; echo "agent online"`)
	start(t, cfg, Options{})
	h.next("identify")
	h.assign(taskID(1), 1, map[string]any{"onboarding_test": true}, "Onboarding test")
	f := h.next("task_complete")
	if res, _ := f.m["result"].(map[string]any); res["status"] != "success" || !strings.Contains(res["output"].(string), "agent online") {
		t.Fatalf("complete = %v", f.m)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatal("the onboarding test did not run the command")
	}
}

func TestOnboardingTestTaskWithoutCommandIsAnsweredBySidecar(t *testing.T) {
	h := newFakeHub(t, "tok-1")
	cfg := testConfig(t, h)
	start(t, cfg, Options{})
	h.next("identify")
	h.assign(taskID(1), 1, map[string]any{"onboarding_test": true}, "Onboarding test")
	f := h.next("task_complete")
	if res, _ := f.m["result"].(map[string]any); res["status"] != "success" || res["onboarding_test"] != true {
		t.Fatalf("complete = %v", f.m)
	}
}

// fakeGit blocks StartTask until released, to show git never holds up the
// connection.
type fakeGit struct {
	release chan struct{}
	started chan gitflow.StartRequest
	submits chan gitflow.SubmitRequest
}

func (g *fakeGit) StartTask(ctx context.Context, req gitflow.StartRequest) (gitflow.StartResult, error) {
	g.started <- req
	select {
	case <-g.release:
	case <-ctx.Done():
		return gitflow.StartResult{}, ctx.Err()
	}
	return gitflow.StartResult{Branch: "agent/" + req.TaskID, BaseCommit: "abc1234"}, nil
}

func (g *fakeGit) Submit(_ context.Context, req gitflow.SubmitRequest) (gitflow.SubmitResult, error) {
	g.submits <- req
	return gitflow.SubmitResult{Branch: "agent/" + req.TaskID, Pushed: true, PRURL: "https://example.com/pr/1"}, nil
}

func TestGitWorkflowRunsWithoutBlockingHeartbeats(t *testing.T) {
	h := newFakeHub(t, "tok-1")
	cfg := testConfig(t, h)
	cfg.PingInterval = 20 * time.Millisecond
	g := &fakeGit{release: make(chan struct{}), started: make(chan gitflow.StartRequest, 1), submits: make(chan gitflow.SubmitRequest, 1)}
	start(t, cfg, Options{Git: g})
	h.next("identify")
	id := taskID(1)
	h.assign(id, 1, map[string]any{"priority": "high"}, "do git things")
	h.next("task_accepted")
	req := <-g.started
	if req.TaskID != id || req.Description != "do git things" || req.AgentID != "agent-1" {
		t.Fatalf("start request = %+v", req)
	}
	// git is stuck; pings keep flowing.
	before := h.count("ping", "")
	testenv.Eventually(t, "pings during git", func() bool { return h.count("ping", "") >= before+3 }, testenv.Within(wait))
	close(g.release)
	testenv.Eventually(t, "branch saved", func() bool {
		st := readState(t, cfg)
		return st.Active != nil && st.Active.Branch == "agent/"+id && st.Active.Status == StatusWorking
	}, testenv.Within(wait))
	writeResult(t, cfg, id, map[string]any{"status": "success", "output": "ok"})
	sub := <-g.submits
	if sub.TaskID != id || sub.Priority != "high" {
		t.Fatalf("submit request = %+v", sub)
	}
	res, _ := h.next("task_complete").m["result"].(map[string]any)
	if res["pr_url"] != "https://example.com/pr/1" || res["branch"] != "agent/"+id || res["output"] != "ok" {
		t.Fatalf("result = %v", res)
	}
}

func jsonEq(a json.RawMessage, b string) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return string(xb) == string(yb)
}

func TestCancelledTaskStopsTheWake(t *testing.T) {
	t.Parallel() // mostly waiting on child processes
	h := newFakeHub(t, "tok-1")
	cfg := testConfig(t, h)
	dir := t.TempDir()
	shellWake(&cfg, `sleep 1; : > `+dir+`/"$TASK_ID"`)
	r := start(t, cfg, Options{})
	h.next("identify")
	id := taskID(1)
	marker := filepath.Join(dir, id)
	h.assign(id, 1, nil, "x")
	h.next("task_accepted")
	testenv.Eventually(t, "waking", func() bool { st := readState(t, cfg); return st.Active != nil && st.Active.Status == StatusWaking }, testenv.Within(wait))
	h.send(map[string]any{"type": "task_cancelled", "task_id": id})
	testenv.Eventually(t, "task dropped", func() bool { return readState(t, cfg).Active == nil }, testenv.Within(wait))
	testenv.Eventually(t, "task_cancelled event", func() bool { return r.log.has("task_cancelled") }, testenv.Within(wait))
	// Idle again: the next task is accepted.
	h.assign(taskID(2), 1, nil, "y")
	if f := h.next("task_accepted"); f.str("task_id") != taskID(2) {
		t.Fatalf("accepted = %v", f.m)
	}
	time.Sleep(1500 * time.Millisecond)
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the wake of a cancelled task kept running")
	}
}

func TestFailedResultCarriesOutputAndRejectionCarriesGeneration(t *testing.T) {
	h := newFakeHub(t, "tok-1")
	cfg := testConfig(t, h)
	start(t, cfg, Options{})
	h.next("identify")
	id := taskID(1)
	h.assign(id, 2, nil, "x")
	h.next("task_accepted")
	h.assign(taskID(2), 6, nil, "y")
	if rej := h.next("task_rejected"); rej.num("generation") != 6 {
		t.Fatalf("rejected = %v", rej.m)
	}
	writeResult(t, cfg, id, map[string]any{"status": "failed", "reason": "tests fail", "log": "line 1"})
	f := h.next("task_failed")
	out, _ := f.m["output"].(map[string]any)
	if f.str("reason") != "tests fail" || out["log"] != "line 1" || f.num("generation") != 2 {
		t.Fatalf("failed = %v", f.m)
	}
}

func TestInternalErrorKeepsReportForNextConnection(t *testing.T) {
	h := newFakeHub(t, "tok-1")
	cfg := testConfig(t, h)
	var refuse atomic.Bool
	refuse.Store(true)
	h.set(func(h *fakeHub) {
		h.onReport = func(f rx) map[string]any {
			if refuse.Load() {
				return map[string]any{"type": "error", "error": "task_complete_failed: internal_error"}
			}
			return map[string]any{"type": "task_ack", "task_id": f.str("task_id"), "status": "complete"}
		}
	})
	r := start(t, cfg, Options{})
	h.next("identify")
	id := taskID(1)
	h.assign(id, 1, nil, "x")
	h.next("task_accepted")
	writeResult(t, cfg, id, map[string]any{"status": "success"})
	h.next("task_complete")
	testenv.Eventually(t, "report_deferred", func() bool { return r.log.has("report_deferred") }, testenv.Within(wait))
	if len(readState(t, cfg).Outbox) != 1 {
		t.Fatal("report dropped on a transient hub error")
	}
	refuse.Store(false)
	h.dropConns()
	h.next("task_complete")
	testenv.Eventually(t, "outbox drained", func() bool { return len(readState(t, cfg).Outbox) == 0 }, testenv.Within(wait))
}

func TestWakeThatLeavesABackgroundAgentSucceeds(t *testing.T) {
	t.Parallel() // mostly waiting on child processes
	h := newFakeHub(t, "tok-1")
	cfg := testConfig(t, h)
	cfg.ConfirmationTimeout = 20 * time.Second
	// The wake launches the "agent" in the background and exits at once;
	// the agent keeps the inherited output open while it works.
	shellWake(&cfg, `(sleep 2; : > "$STARTED_FILE"; echo '{"status":"success"}' > "$RESULT_FILE") & exit 0`)
	r := start(t, cfg, Options{})
	h.next("identify")
	h.assign(taskID(1), 1, nil, "x")
	h.next("task_complete")
	if r.log.has("wake_error") {
		t.Fatal("a wake that exited 0 was counted as a failure")
	}
}

func TestReplacedConnectionBacksOff(t *testing.T) {
	h := newFakeHub(t, "tok-1")
	h.set(func(h *fakeHub) { h.closeAfterIdentify = closeReplaced })
	cfg := testConfig(t, h)
	cfg.ReconnectMax = 300 * time.Millisecond
	r := start(t, cfg, Options{})
	testenv.Eventually(t, "two attempts", func() bool { return len(h.connects()) >= 2 }, testenv.Within(wait))
	c := h.connects()
	if gap := c[1].Sub(c[0]); gap < cfg.ReconnectMax {
		t.Fatalf("reconnected after %s although replaced", gap)
	}
	if !r.log.has("connection_replaced") {
		t.Fatal("no connection_replaced event")
	}
}

func TestAckDropsOnlyTheReportItAnswers(t *testing.T) {
	h := newFakeHub(t, "tok-1")
	cfg := testConfig(t, h)
	var ack atomic.Bool
	h.set(func(h *fakeHub) {
		h.onReport = func(f rx) map[string]any {
			if !ack.Load() {
				return nil // the hub is slow to answer the first report
			}
			return map[string]any{"type": "task_ack", "task_id": f.str("task_id"), "status": "retried"}
		}
	})
	start(t, cfg, Options{})
	h.next("identify")
	id := taskID(1)
	h.assign(id, 1, nil, "x")
	h.next("task_accepted")
	writeResult(t, cfg, id, map[string]any{"status": "failed", "reason": "first"})
	if f := h.next("task_failed"); f.num("generation") != 1 {
		t.Fatalf("first = %v", f.m)
	}
	// The hub retries the task on the same agent before acknowledging.
	h.assign(id, 2, nil, "x")
	h.next("task_accepted")
	writeResult(t, cfg, id, map[string]any{"status": "failed", "reason": "second"})
	testenv.Eventually(t, "two reports pending", func() bool { return len(readState(t, cfg).Outbox) == 2 }, testenv.Within(wait))
	ack.Store(true)
	h.send(map[string]any{"type": "task_ack", "task_id": id, "status": "retried"})
	f := h.next("task_failed")
	if f.num("generation") != 2 || f.str("reason") != "second" {
		t.Fatalf("second = %v", f.m)
	}
	testenv.Eventually(t, "outbox drained", func() bool { return len(readState(t, cfg).Outbox) == 0 }, testenv.Within(wait))
}

func TestResultWithFutureModTimeIsRead(t *testing.T) {
	h := newFakeHub(t, "tok-1")
	cfg := testConfig(t, h)
	start(t, cfg, Options{})
	h.next("identify")
	id := taskID(1)
	h.assign(id, 1, nil, "x")
	h.next("task_accepted")
	writeResult(t, cfg, id, map[string]any{"status": "success"})
	future := time.Now().Add(time.Hour)
	if err := os.Chtimes(filepath.Join(cfg.ResultsDir, id+".json"), future, future); err != nil {
		t.Fatal(err)
	}
	h.next("task_complete")
}
