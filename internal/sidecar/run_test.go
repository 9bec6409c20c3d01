package sidecar

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/testenv"
)

func shellRun(t *testing.T, cfg *Config, script string) {
	cfg.RunCommand, cfg.RunShell = []string{script}, true
	cfg.OutputInterval = 20 * time.Millisecond
	cfg.KillGrace = 2 * time.Second
	killAgentOnCleanup(t, cfg.StateFile)
}

// killAgentOnCleanup stops the run-mode agent the state file names when
// the test ends: agents outlive their sidecar by design, and a failed test
// must not leave one running.
func killAgentOnCleanup(t *testing.T, stateFile string) {
	t.Cleanup(func() {
		if st, _, err := LoadState(stateFile, time.Now()); err == nil && st.Active != nil && st.Active.Run != nil {
			stopGroup(context.Background(), st.Active.Run.PGID, 0)
		}
	})
}

// progressOutput collects task_progress output until it contains want.
func progressOutput(t *testing.T, h *fakeHub, want string) string {
	t.Helper()
	var got strings.Builder
	for !strings.Contains(got.String(), want) {
		f := h.next("task_progress")
		got.WriteString(f.str("output"))
	}
	return got.String()
}

func TestRunModeStreamsOutputAndReportsExitAndUsage(t *testing.T) {
	h := newFakeHub(t, "tok-1")
	cfg := testConfig(t, h)
	shellRun(t, &cfg, `echo "working on $TASK_ID attempt $RUN_ATTEMPT"; echo '{"agentcom_usage":{"input_tokens":100,"output_tokens":20,"cost_usd":0.5}}'; echo "to stderr" >&2; echo '{"agentcom_usage":{"input_tokens":1,"output_tokens":2,"cost_usd":0.25}}'; echo done`)
	start(t, cfg, Options{})
	h.next("identify")
	id := taskID(1)
	h.assign(id, 1, nil, "run me")
	out := progressOutput(t, h, "done")
	if !strings.Contains(out, "working on "+id+" attempt 1") || !strings.Contains(out, "to stderr") {
		t.Fatalf("streamed output = %q", out)
	}
	done := h.next("task_complete")
	res, _ := done.m["result"].(map[string]any)
	if res["status"] != "success" || !strings.Contains(res["output"].(string), "done") || strings.Contains(res["output"].(string), "== agentcom") {
		t.Fatalf("result = %v", res)
	}
	u, _ := done.m["usage"].(map[string]any)
	if u["input_tokens"] != float64(101) || u["output_tokens"] != float64(22) || u["total_tokens"] != float64(123) || u["cost_usd"] != 0.75 {
		t.Fatalf("usage = %v", done.m["usage"])
	}
	if done.num("tokens_used") != 123 {
		t.Fatalf("tokens_used = %v", done.m["tokens_used"])
	}
}

func TestRunModeNonZeroExitFailsWithTail(t *testing.T) {
	h := newFakeHub(t, "tok-1")
	cfg := testConfig(t, h)
	shellRun(t, &cfg, `echo "compiler says no"; exit 3`)
	start(t, cfg, Options{})
	h.next("identify")
	h.assign(taskID(1), 1, nil, "x")
	f := h.next("task_failed")
	out, _ := f.m["output"].(map[string]any)
	if f.str("reason") != "exit_code_3" || out["exit_code"] != float64(3) || !strings.Contains(out["output"].(string), "compiler says no") {
		t.Fatalf("failed = %v", f.m)
	}
}

func TestRunModeResultFileDecidesAndMessageIsTheReason(t *testing.T) {
	h := newFakeHub(t, "tok-1")
	cfg := testConfig(t, h)
	shellRun(t, &cfg, `echo '{"status":"error","message":"could not reach the API","usage":{"total_tokens":7}}' > "$RESULT_FILE"`)
	start(t, cfg, Options{})
	h.next("identify")
	h.assign(taskID(1), 1, nil, "x")
	f := h.next("task_failed")
	u, _ := f.m["usage"].(map[string]any)
	if f.str("reason") != "could not reach the API" || u["total_tokens"] != float64(7) {
		t.Fatalf("failed = %v", f.m)
	}
}

func TestRunModeCancelStopsTheProcessGroup(t *testing.T) {
	h := newFakeHub(t, "tok-1")
	cfg := testConfig(t, h)
	// The agent starts a child that ignores nothing, then waits; SIGTERM
	// must reach the whole group.
	shellRun(t, &cfg, `sleep 300 & echo "child $!"; wait`)
	r := start(t, cfg, Options{})
	h.next("identify")
	id := taskID(1)
	h.assign(id, 1, nil, "long")
	progressOutput(t, h, "child ")
	var pgid int
	testenv.Eventually(t, "run recorded", func() bool {
		st := readState(t, cfg)
		if st.Active != nil && st.Active.Run != nil {
			pgid = st.Active.Run.PGID
		}
		return pgid > 0
	}, testenv.Within(wait))
	if !groupAlive(pgid) {
		t.Fatal("group not alive while running")
	}
	h.send(map[string]any{"type": "task_cancelled", "task_id": id})
	testenv.Eventually(t, "group gone", func() bool { return !groupAlive(pgid) }, testenv.Within(wait))
	testenv.Eventually(t, "stop logged", func() bool { return r.log.has("run_stopped") }, testenv.Within(wait))
	if st := readState(t, cfg); st.Active != nil {
		t.Fatalf("task still held: %+v", st.Active)
	}
}

func TestRunModeTimeoutStopsWithSIGKILLAfterGrace(t *testing.T) {
	h := newFakeHub(t, "tok-1")
	cfg := testConfig(t, h)
	shellRun(t, &cfg, `trap '' TERM; echo started; while :; do sleep 0.05; done`)
	cfg.RunTimeout = 300 * time.Millisecond
	cfg.KillGrace = 200 * time.Millisecond
	r := start(t, cfg, Options{})
	h.next("identify")
	h.assign(taskID(1), 1, nil, "x")
	f := h.next("task_failed")
	if f.str("reason") != "run_timeout_after_300ms" {
		t.Fatalf("failed = %v", f.m)
	}
	testenv.Eventually(t, "sigkill logged", func() bool { return strings.Contains(r.log.String(), `"sigkill":true`) }, testenv.Within(wait))
}

func TestRunModeVerificationRetriesWithFeedback(t *testing.T) {
	h := newFakeHub(t, "tok-1")
	cfg := testConfig(t, h)
	cfg.WorkDir = t.TempDir()
	// Attempt 1 writes a wrong answer; the check fails; attempt 2 sees
	// the feedback and fixes it.
	shellRun(t, &cfg, `if [ -n "$VERIFY_FEEDBACK_FILE" ] && grep -q "want 42" "$VERIFY_FEEDBACK_FILE" && [ -n "$VERIFY_FEEDBACK" ]; then echo 42 > answer; else echo 41 > answer; fi; echo "attempt $RUN_ATTEMPT"`)
	start(t, cfg, Options{})
	h.next("identify")
	id := taskID(1)
	h.assign(id, 1, map[string]any{"verify": []string{`test "$(cat answer)" = 42 || { echo "want 42, got $(cat answer)"; exit 1; }`}, "max_verify_attempts": 2}, "x")
	c1 := h.next("task_progress")
	for c1.m["check"] == nil {
		c1 = h.next("task_progress")
	}
	ck, _ := c1.m["check"].(map[string]any)
	if ck["passed"] != false || ck["attempt"] != float64(1) || ck["exit_code"] != float64(1) || !strings.Contains(ck["output_tail"].(string), "want 42, got 41") {
		t.Fatalf("first check = %v", ck)
	}
	done := h.next("task_complete")
	res, _ := done.m["result"].(map[string]any)
	ver, _ := res["verification"].([]any)
	if len(ver) != 2 || !strings.Contains(res["output"].(string), "attempt 2") {
		t.Fatalf("result = %v", res)
	}
	if b, _ := os.ReadFile(filepath.Join(cfg.WorkDir, "answer")); strings.TrimSpace(string(b)) != "42" {
		t.Fatalf("answer = %q", b)
	}
}

func TestRunModeVerificationBudgetExhausted(t *testing.T) {
	h := newFakeHub(t, "tok-1")
	cfg := testConfig(t, h)
	shellRun(t, &cfg, `echo "attempt $RUN_ATTEMPT"`)
	start(t, cfg, Options{})
	h.next("identify")
	h.assign(taskID(1), 1, map[string]any{"verify": "false", "max_verify_attempts": 2}, "x")
	f := h.next("task_failed")
	if !strings.HasPrefix(f.str("reason"), `verification_failed: "false" exited 1 after 2 attempts`) {
		t.Fatalf("failed = %v", f.m)
	}
}

func TestRunModeRestartAdoptsTheRunningProcess(t *testing.T) {
	h := newFakeHub(t, "tok-1")
	cfg := testConfig(t, h)
	ctl := t.TempDir()
	// Each start of the agent is counted; it finishes when told to.
	shellRun(t, &cfg, `echo x >> "`+ctl+`/starts"; echo '{"agentcom_usage":{"total_tokens":5}}'; while [ ! -e "`+ctl+`/go" ]; do sleep 0.02; done; echo finished`)
	h.set(func(h *fakeHub) {
		h.onRecovering = func(f rx) map[string]any {
			return map[string]any{"type": "task_continue", "task_id": f.str("task_id"), "generation": 2}
		}
	})
	r := start(t, cfg, Options{})
	h.next("identify")
	id := taskID(1)
	h.assign(id, 1, nil, "x")
	testenv.Eventually(t, "usage line read and saved", func() bool {
		st, _, err := LoadState(cfg.StateFile, time.Now())
		return err == nil && st.Active != nil && st.Active.Run != nil && st.Active.Run.Usage.TotalTokens == 5
	}, testenv.Within(wait))
	r.stop(t)
	st := readState(t, cfg)
	if st.Active == nil || st.Active.Run == nil || !groupAlive(st.Active.Run.PGID) {
		t.Fatalf("state after stop = %+v", st.Active)
	}
	r2 := start(t, cfg, Options{})
	testenv.Eventually(t, "adopted", func() bool { return r2.log.has("run_adopted") }, testenv.Within(wait))
	if err := os.WriteFile(filepath.Join(ctl, "go"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	done := h.next("task_complete")
	if u, _ := done.m["usage"].(map[string]any); done.num("generation") != 2 || u["total_tokens"] != float64(5) {
		t.Fatalf("complete = %v", done.m)
	}
	if b, _ := os.ReadFile(filepath.Join(ctl, "starts")); strconv.Itoa(strings.Count(string(b), "x")) != "1" {
		t.Fatalf("agent started %d times", strings.Count(string(b), "x"))
	}
}

// The sidecar's token, even when it came from the environment, is not
// passed on to the agent.
func TestRunModeAgentDoesNotInheritTheToken(t *testing.T) {
	t.Setenv("AGENTCOM_SIDECAR_TOKEN", "secret-token-value")
	h := newFakeHub(t, "tok-1")
	cfg := testConfig(t, h)
	shellRun(t, &cfg, `env`)
	start(t, cfg, Options{})
	h.next("identify")
	h.assign(taskID(1), 1, nil, "x")
	done := h.next("task_complete")
	res, _ := done.m["result"].(map[string]any)
	out, _ := res["output"].(string)
	if !strings.Contains(out, "TASK_ID="+taskID(1)) || strings.Contains(out, "secret-token-value") {
		t.Fatalf("agent environment = %q", out)
	}
}

// An unasked task_reassign older than the assignment the sidecar holds
// (the hub took the task back, then gave it to this agent again) does not
// stop the agent; a current one does.
func TestStaleReassignIsIgnored(t *testing.T) {
	h := newFakeHub(t, "tok-1")
	cfg := testConfig(t, h)
	shellRun(t, &cfg, `echo started; sleep 300`)
	r := start(t, cfg, Options{})
	h.next("identify")
	id := taskID(1)
	h.assign(id, 3, nil, "x")
	progressOutput(t, h, "started")
	h.send(map[string]any{"type": "task_reassign", "task_id": id, "generation": 2, "reason": "lease_expired"})
	testenv.Eventually(t, "stale ignored", func() bool { return r.log.has("reassign_stale_ignored") }, testenv.Within(wait))
	if st := readState(t, cfg); st.Active == nil || st.Active.Run == nil || !groupAlive(st.Active.Run.PGID) {
		t.Fatal("the agent was stopped by a stale take-back")
	}
	pgid := readState(t, cfg).Active.Run.PGID
	h.send(map[string]any{"type": "task_reassign", "task_id": id, "generation": 4, "reason": "deadline"})
	testenv.Eventually(t, "group gone", func() bool { return !groupAlive(pgid) }, testenv.Within(wait))
}

// Wake mode verifies too: a failed check wakes the agent again with the
// feedback, and the second result passes.
func TestWakeModeVerificationRewakesWithFeedback(t *testing.T) {
	h := newFakeHub(t, "tok-1")
	cfg := testConfig(t, h)
	cfg.WorkDir = t.TempDir()
	shellWake(&cfg, `: > "$STARTED_FILE"; if [ -n "$VERIFY_FEEDBACK" ]; then echo ok > verdict; else echo bad > verdict; fi; `+
		`echo '{"status":"success","output":"woken"}' > "$RESULT_FILE.tmp" && mv "$RESULT_FILE.tmp" "$RESULT_FILE"`)
	start(t, cfg, Options{})
	h.next("identify")
	h.assign(taskID(1), 1, map[string]any{"verify": `grep -q ok verdict`}, "x")
	done := h.next("task_complete")
	res, _ := done.m["result"].(map[string]any)
	ver, _ := res["verification"].([]any)
	if len(ver) != 2 || res["output"] != "woken" {
		t.Fatalf("result = %v", res)
	}
	first, _ := ver[0].(map[string]any)
	if first["passed"] != false || first["attempt"] != float64(1) {
		t.Fatalf("first check = %v", first)
	}
	if n := h.count("task_progress", ""); n < 2 {
		t.Fatalf("%d checks reported", n)
	}
}

// A verification retry is decided by the new run, not by the result file
// the first run left behind.
func TestRunModeRetryIgnoresTheEarlierResultFile(t *testing.T) {
	h := newFakeHub(t, "tok-1")
	cfg := testConfig(t, h)
	shellRun(t, &cfg, `if [ "$RUN_ATTEMPT" = 1 ]; then echo '{"status":"success","output":"first"}' > "$RESULT_FILE"; else echo "second run, no result file"; exit 5; fi`)
	start(t, cfg, Options{})
	h.next("identify")
	h.assign(taskID(1), 1, map[string]any{"verify": "false", "max_verify_attempts": 2}, "x")
	f := h.next("task_failed")
	if f.str("reason") != "exit_code_5" {
		t.Fatalf("failed = %v", f.m)
	}
}
